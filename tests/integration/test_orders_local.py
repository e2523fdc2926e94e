"""Orders on DynamoDB Local: real paging (LastEvaluatedKey), key-condition ranges, GSI1, concurrency."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from core.config import Settings
from core.errors import ConflictError, InvalidCursor, InvalidInput
from models import Order, OrderStatus
from repositories.orders import get_order, get_user_orders, orders_by_status, place_order, set_order_status
from repositories.paging import SECRET_ENV, Page
from tests.helpers import (
    BASE,
    all_pages,
    count_calls,
    existing_user,
    new_user_id,
    order_item,
    race,
    raw_client,
    raw_get,
    seed,
    seed_orders,
)


@pytest.mark.parametrize("newest_first", [True, False])
def test_95_orders_paged_10_at_a_time_come_back_once_each_in_order(
    local_table: Settings, newest_first: bool
) -> None:
    user_id = new_user_id()
    ids = seed_orders(local_table, user_id, 95)
    seed_orders(local_table, new_user_id(), 5)
    pages = list(all_pages(lambda **kw: get_user_orders(user_id, newest_first=newest_first, **kw), 10))
    assert [len(p.items) for p in pages] == [10] * 9 + [5]
    assert [p.has_more for p in pages] == [True] * 9 + [False]
    assert [o.order_id for p in pages for o in p.items] == (ids[::-1] if newest_first else ids)


def test_an_exactly_full_last_page_says_no_more_where_dynamodb_would_say_maybe(local_table: Settings) -> None:
    user_id = new_user_id()
    seed_orders(local_table, user_id, 10)
    pk = Order.key_template("pk").compose(user_id=user_id)
    raw = raw_client(local_table).query(
        TableName=local_table.table_name, KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}}, Limit=10,
    )
    assert raw["Count"] == 10 and "LastEvaluatedKey" in raw  # DynamoDB cannot tell that nothing follows
    page = get_user_orders(user_id, limit=10)
    assert len(page.items) == 10
    assert page == Page(items=page.items, next_cursor=None, has_more=False)


def test_a_date_range_reads_only_the_orders_inside_it(local_table: Settings) -> None:
    user_id = new_user_id()
    ids = seed_orders(local_table, user_id, 72, step=timedelta(hours=1))
    responses = count_calls(Order, "Query")
    start, end = BASE + timedelta(hours=24), BASE + timedelta(hours=47)
    fetch = partial(get_user_orders, user_id, start=start, end=end)
    got = [o.order_id for p in all_pages(fetch, 10) for o in p.items]
    assert got == ids[24:48][::-1]
    assert len(responses) == 3
    assert sum(r["Count"] for r in responses) == 24 + 2  # each later page re-reads one extra item
    assert all(r["ScannedCount"] == r["Count"] for r in responses)


def test_orders_by_status_pages_through_gsi1(local_table: Settings) -> None:
    shipped = seed_orders(local_table, new_user_id(), 13, status="SHIPPED")
    shipped += seed_orders(local_table, new_user_id(), 13, status="SHIPPED", start=BASE + timedelta(days=2))
    seed_orders(local_table, new_user_id(), 4, status="PAID")
    pages = list(all_pages(lambda **kw: orders_by_status(OrderStatus.SHIPPED, **kw), 13))
    assert [o.order_id for p in pages for o in p.items] == shipped
    assert [p.has_more for p in pages] == [True, False]


def test_the_development_secret_serves_a_local_endpoint_and_no_other_secret_accepts_its_cursors(
    local_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    user_id = new_user_id()
    ids = seed_orders(local_table, user_id, 6)
    first = get_user_orders(user_id, limit=4, newest_first=False)
    assert first.next_cursor is not None
    second = get_user_orders(user_id, limit=4, newest_first=False, cursor=first.next_cursor)
    assert [o.order_id for o in first.items + second.items] == ids
    monkeypatch.setenv(SECRET_ENV, "a-production-like-secret-0123456789")
    with pytest.raises(InvalidCursor):
        get_user_orders(user_id, limit=4, newest_first=False, cursor=first.next_cursor)


def test_two_stale_status_changes_one_wins(local_table: Settings) -> None:
    user_id = existing_user(local_table)
    for _ in range(3):
        order = place_order(user_id, "25.00")
        stale = get_order(order.user_id, order.order_id)
        outcomes: list[Any] = race(partial(set_order_status, stale, "PAID"),
                                   partial(set_order_status, stale, "CANCELLED"))
        winners = [o for o in outcomes if isinstance(o, Order)]
        assert len(winners) == 1 and sum(isinstance(o, ConflictError) for o in outcomes) == 1
        stored = get_order(order.user_id, order.order_id)
        assert (stored.status, stored.version) == (winners[0].status, stale.version + 1)
        assert stored.gsi1pk == Order.key_template("gsi1pk").compose(status=stored.status)


def test_amounts_read_back_with_their_two_places_through_every_order_read(local_table: Settings) -> None:
    user_id = existing_user(local_table)
    placed = [place_order(user_id, "10.00", status="SHIPPED"), place_order(user_id, "12.5", status="SHIPPED")]
    stored = raw_get(local_table, Order, user_id=user_id, order_id=placed[0].order_id)
    assert stored is not None and stored["Amount"] == {"N": "10"}  # what DynamoDB gives back
    expected = [("10.00", Decimal("10.00")), ("12.50", Decimal("12.50"))]
    read = {
        "place_order": placed,
        "get_order": [get_order(user_id, o.order_id) for o in placed],
        "get_user_orders": get_user_orders(user_id, limit=5, newest_first=False).items,
        "orders_by_status": orders_by_status(OrderStatus.SHIPPED, limit=5).items,
    }
    for path, got in read.items():
        assert [(str(o.amount), o.amount) for o in got] == expected, path


def test_a_stored_amount_with_more_places_is_read_as_stored_and_not_written_back(
    local_table: Settings,
) -> None:
    user_id = existing_user(local_table)
    (order_id,) = seed(local_table, [order_item(user_id, BASE, amount="12.345")])  # another writer's
    order = get_order(user_id, order_id)
    assert str(order.amount) == "12.345"  # not rounded on read
    with pytest.raises(InvalidInput, match="more than 2 decimal places"):
        order.save()
    stored = raw_get(local_table, Order, user_id=user_id, order_id=order_id)
    assert stored is not None and stored["Amount"] == {"N": "12.345"}
