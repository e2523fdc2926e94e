"""Unreadable items on DynamoDB Local: real paging (Limit, LastEvaluatedKey) past items that do not
build into their entity, on the table and on GSI1."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.config import Settings
from core.errors import UnreadableItem
from models import Order
from repositories.orders import get_order, get_user_orders, orders_by_status
from repositories.paging import Page
from tests.helpers import BASE, Item, all_pages, existing_user, order_item, seed

LIMIT = 2
BAD = {2, 3, 6}  # on GSI1, each page boundary falls on bad items: the cursors land on them


def keys_of(item: Item) -> tuple[str, str]:
    return item["PK"]["S"], item["SK"]["S"]


@pytest.fixture
def orders(local_table: Settings) -> tuple[str, list[Item]]:
    """Eight PENDING orders of two users, one a minute; those at ``BAD`` broken as another writer
    might leave them (an amount as a string, a fractional version, a status no enum has)."""
    users = [existing_user(local_table), existing_user(local_table)]
    items = [order_item(users[i % 2], BASE + timedelta(minutes=i)) for i in range(8)]
    breakages: list[Item] = [{"Amount": {"S": "x"}}, {"Version": {"N": "1.5"}}, {"Status": {"S": "LOST"}}]
    for position, breakage in zip(sorted(BAD), breakages, strict=True):
        items[position] = {**items[position], **breakage}
    seed(local_table, items)
    return users[1], items


def check_pages(pages: list[Page[Order]], items: list[tuple[int, Item]]) -> None:
    """The good orders once each, in order; the bad keys listed once each; full pages but the last."""
    assert [o.order_id for p in pages for o in p.items] == [
        item["OrderId"]["S"] for i, item in items if i not in BAD]
    assert [k for p in pages for k in p.unreadable] == [keys_of(item) for i, item in items if i in BAD]
    assert all(len(p.items) == LIMIT for p in pages[:-1])
    assert [p.has_more for p in pages] == [True] * (len(pages) - 1) + [False]


def test_orders_by_status_pages_past_unreadable_items(orders: tuple[str, list[Item]]) -> None:
    _, items = orders
    pages = list(all_pages(lambda **kw: orders_by_status("PENDING", **kw), LIMIT))
    check_pages(pages, list(enumerate(items)))
    assert [len(p.items) for p in pages] == [2, 2, 1]


def test_a_users_orders_page_past_unreadable_items(orders: tuple[str, list[Item]]) -> None:
    user_id, items = orders
    mine = [(i, item) for i, item in enumerate(items) if item["UserId"]["S"] == user_id]  # 1, 3, 5, 7
    check_pages(list(all_pages(lambda **kw: get_user_orders(user_id, newest_first=False, **kw), LIMIT)), mine)
    check_pages(list(all_pages(lambda **kw: get_user_orders(user_id, **kw), LIMIT)), mine[::-1])


def test_get_order_of_an_unreadable_item_names_its_keys(orders: tuple[str, list[Item]]) -> None:
    _, items = orders
    for position in sorted(BAD):
        item = items[position]
        with pytest.raises(UnreadableItem) as caught:
            get_order(item["UserId"]["S"], item["OrderId"]["S"])
        assert caught.value.keys == keys_of(item) and caught.value.entity == "Order"
