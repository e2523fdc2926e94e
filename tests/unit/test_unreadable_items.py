"""Items that no longer build into their entity: pages skip and list them, single reads name them.

A bad item is seeded with a raw ``put_item`` next to good ones, as another service (or a hand edit)
would leave it: an ``Amount`` stored as a string, a ``Version`` of ``1.5``, a status no enum has.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.config import Settings
from core.errors import AlreadyExists, UnreadableItem
from models import Order, Product
from repositories import paging, query
from repositories.batch import batch_get, batch_write
from repositories.orders import get_order, get_user_orders, orders_by_status
from repositories.paging import SECRET_ENV, Page
from repositories.products import get_product, get_products
from repositories.streams import decode_stream_record
from tests.helpers import BASE, Item, all_pages, existing_user, order_item, raw_client, raw_get, seed

LIMIT = 2


@pytest.fixture(autouse=True)
def _cursor_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto has no local endpoint, so paged queries need a real secret."""
    monkeypatch.setenv(SECRET_ENV, "unreadable-unit-test-secret-0123456789")


def keys_of(item: Item) -> tuple[str, str]:
    return item["PK"]["S"], item["SK"]["S"]


def put_raw(settings: Settings, item: Item) -> None:
    """Write one item as it is, with a raw client (not through the layer)."""
    raw_client(settings).put_item(TableName=settings.table_name, Item=item)


def orders_with_bad_ones(
    settings: Settings, user_id: str, count: int, bad: set[int], breakage: dict[str, Any], **kw: Any
) -> tuple[list[str], list[tuple[str, str]]]:
    """``count`` orders of ``user_id``, one a minute, those at the positions in ``bad`` broken by
    ``breakage`` (attributes replaced); the good ids and the bad keys, oldest first."""
    items = [order_item(user_id, BASE + timedelta(minutes=i), **kw) for i in range(count)]
    for position in bad:
        items[position] = {**items[position], **breakage}
    seed(settings, items)
    good = [item["OrderId"]["S"] for i, item in enumerate(items) if i not in bad]
    return good, [keys_of(item) for i, item in enumerate(items) if i in bad]


def check_pages(pages: list[Page[Order]], good: list[str], bad: list[tuple[str, str]]) -> None:
    """Every good order once, in order; every bad key listed once; full pages until the last."""
    assert [o.order_id for p in pages for o in p.items] == good
    assert [k for p in pages for k in p.unreadable] == bad
    assert [p.has_more for p in pages] == [True] * (len(pages) - 1) + [False]
    assert all(len(p.items) == LIMIT for p in pages[:-1])  # a skipped item never shortens a page
    assert pages[-1].next_cursor is None


AMOUNT_AS_TEXT = {"Amount": {"S": "not-a-number"}}


@pytest.mark.parametrize("bad", [{0}, {2}, {3}, {6}, {2, 3}, {1, 2, 3, 4}], ids=str)
@pytest.mark.parametrize("newest_first", [True, False])
def test_a_users_orders_skip_bad_items_and_page_on_exactly(
    moto_table: Settings, bad: set[int], newest_first: bool
) -> None:
    user_id = existing_user(moto_table)
    good, bad_keys = orders_with_bad_ones(moto_table, user_id, 7, bad, AMOUNT_AS_TEXT)
    pages = list(all_pages(lambda **kw: get_user_orders(user_id, newest_first=newest_first, **kw), LIMIT))
    if newest_first:
        good, bad_keys = good[::-1], bad_keys[::-1]
    check_pages(pages, good, bad_keys)


@pytest.mark.parametrize("bad", [{1}, {2}, {4, 5}], ids=str)
def test_orders_by_status_skip_bad_items_of_any_user_and_page_on_exactly(
    moto_table: Settings, bad: set[int]
) -> None:
    users = [existing_user(moto_table), existing_user(moto_table)]
    items = [order_item(users[i % 2], BASE + timedelta(minutes=i)) for i in range(6)]  # GSI1: by time
    for position in bad:
        items[position] = {**items[position], "Version": {"N": "1.5"}}
    seed(moto_table, items)
    pages = list(all_pages(lambda **kw: orders_by_status("PENDING", **kw), LIMIT))
    check_pages(pages, [item["OrderId"]["S"] for i, item in enumerate(items) if i not in bad],
                [keys_of(item) for i, item in enumerate(items) if i in bad])


def test_a_page_of_good_orders_lists_nothing_unreadable(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    orders_with_bad_ones(moto_table, user_id, 3, set(), {})
    page = get_user_orders(user_id, limit=5)
    assert len(page.items) == 3 and page.unreadable == [] and page.has_more is False


def test_a_page_skips_at_most_max_unreadable_items_and_the_next_one_goes_on(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "MAX_UNREADABLE", 2)
    user_id = existing_user(moto_table)
    good, bad_keys = orders_with_bad_ones(moto_table, user_id, 7, {1, 2, 3, 4, 5}, AMOUNT_AS_TEXT)
    pages = list(all_pages(lambda **kw: get_user_orders(user_id, newest_first=False, **kw), 5))
    assert [[o.order_id for o in p.items] for p in pages] == [[good[0]], [], [good[1]]]
    assert [p.unreadable for p in pages] == [bad_keys[:2], bad_keys[2:4], bad_keys[4:]]
    assert [p.has_more for p in pages] == [True, True, False]


@pytest.mark.parametrize(("breakage", "attribute"), [
    (AMOUNT_AS_TEXT, "Amount"),
    ({"Version": {"N": "1.5"}}, "Version"),
    ({"Version": {"N": "-1"}}, "Version"),
    ({"Status": {"S": "LOST"}}, "Status"),
    ({"CreatedAt": {"S": "yesterday"}}, "CreatedAt"),
    ({"EntityType": {"S": "NOT_DECLARED_BY_ANY_MODEL"}}, "EntityType"),
    ({"EntityType": {"S": "USER"}}, "EntityType"),  # another entity's item under an order's key
], ids=["amount-as-text", "version-1.5", "version-minus-1", "unknown-status", "bad-timestamp",
        "undeclared-entity-type", "another-entitys-type"])
def test_get_order_of_a_bad_item_raises_unreadable_item_naming_its_keys(
    moto_table: Settings, breakage: Item, attribute: str
) -> None:
    user_id = existing_user(moto_table)
    item = {**order_item(user_id, BASE), **breakage}
    put_raw(moto_table, item)
    with pytest.raises(UnreadableItem) as caught:
        get_order(user_id, item["OrderId"]["S"])
    error = caught.value
    assert (error.keys, error.entity, error.attribute) == (keys_of(item), "Order", attribute)
    assert item["PK"]["S"] in str(error) and item["SK"]["S"] in str(error) and "repaired" in str(error)
    assert error.__cause__ is not None  # what the deserializer raised, kept


def test_a_version_that_is_not_a_non_negative_integer_is_unreadable_and_an_integer_is_not(
    moto_table: Settings,
) -> None:
    user_id = existing_user(moto_table)
    for version, readable in (("1.5", False), ("-1", False), ("0", True), ("12", True)):
        item = {**order_item(user_id, BASE), "Version": {"N": version}}
        put_raw(moto_table, item)
        if readable:
            assert get_order(user_id, item["OrderId"]["S"]).version == int(version)
        else:
            with pytest.raises(UnreadableItem, match="Version"):
                get_order(user_id, item["OrderId"]["S"])


def test_a_skipped_item_is_logged_once_as_a_warning_without_key_or_item_values(
    moto_table: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    user_id = existing_user(moto_table)
    secret_value = f"bad-{uuid.uuid4().hex}"
    good, (bad_key,) = orders_with_bad_ones(moto_table, user_id, 3, {1}, {"Amount": {"S": secret_value}})
    with caplog.at_level(logging.WARNING, logger="dynamodb"):
        page = get_user_orders(user_id)
    assert page.unreadable == [bad_key] and len(page.items) == 2
    events = [r for r in caplog.records
              if getattr(r, "event_dict", {}).get("event") == "dynamodb.unreadable_item"]
    assert len(events) == 1
    (record,) = events
    event = record.__dict__["event_dict"]
    assert record.levelno == logging.WARNING
    assert event["entity"] == "Order" and event["attribute"] == "Amount"
    logged = record.getMessage() + json.dumps(event, default=repr)
    for value in (user_id, *good, *bad_key, bad_key[1].removeprefix("ORDER#"), secret_value):
        assert value not in logged


def test_every_skips_bad_items(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    good, _ = orders_with_bad_ones(moto_table, user_id, 4, {0, 2}, AMOUNT_AS_TEXT)
    condition, _ = query.sort_condition(Order.of_user)
    pk = Order.key_template("pk").compose(user_id=user_id)
    assert [o.order_id for o in query.every(Order.of_user, pk, condition, page_size=1)] == good


def product_item(product_id: str, **replaced: Any) -> Item:
    return {
        "PK": {"S": f"PRODUCT#{product_id}"}, "SK": {"S": f"METADATA#{product_id}"},
        "EntityType": {"S": "PRODUCT"}, "ProductId": {"S": product_id}, "Name": {"S": "Lamp"},
        "Price": {"N": "12.50"}, "Version": {"N": "1"}, **replaced,
    }


def test_batch_get_leaves_out_bad_items_and_get_product_raises(moto_table: Settings) -> None:
    ids = [uuid.uuid4().hex for _ in range(3)]
    for product_id in ids:
        put_raw(moto_table, product_item(product_id))
    broken = product_item(ids[1], Price={"S": "cheap"})
    put_raw(moto_table, broken)
    assert [p.product_id for p in get_products(ids)] == [ids[0], ids[2]]
    assert [p.product_id for p in batch_get(Product, [{"product_id": i} for i in ids])] == [ids[0], ids[2]]
    with pytest.raises(UnreadableItem) as caught:
        get_product(ids[1])
    assert caught.value.keys == keys_of(broken) and caught.value.attribute == "Price"


def test_batch_get_reports_an_item_whose_entity_type_is_not_a_string(moto_table: Settings) -> None:
    product_id = uuid.uuid4().hex
    put_raw(moto_table, product_item(product_id, EntityType={"N": "1"}))
    assert batch_get(Product, [{"product_id": product_id}]) == []


def test_batch_write_over_an_item_with_a_bad_stored_version(moto_table: Settings) -> None:
    product_id = uuid.uuid4().hex
    put_raw(moto_table, product_item(product_id, Version={"N": "1.5"}))
    def fresh() -> Product:
        return Product(product_id=product_id, name="New", price=Decimal(2))

    with pytest.raises(AlreadyExists):
        batch_write([fresh()])
    batch_write([fresh()], overwrite=True)  # the repair: the version only ever goes up
    stored = raw_get(moto_table, Product, product_id=product_id)
    assert stored is not None and stored["Version"] == {"N": "3"} and stored["Name"] == {"S": "New"}
    assert get_product(product_id).version == 3


def stream_record(image: Item) -> dict[str, Any]:
    return {"eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb",
            "dynamodb": {"Keys": {"PK": image["PK"], "SK": image["SK"]}, "NewImage": image,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"}}


@pytest.mark.parametrize(("breakage", "attribute"), [
    (AMOUNT_AS_TEXT, "Amount"),
    ({"Version": {"N": "1.5"}}, "Version"),
    ({"EntityType": {"N": "1"}}, "EntityType"),
], ids=["amount", "version", "entity-type"])
def test_decoding_a_bad_stream_image_raises_unreadable_item_naming_its_keys(
    breakage: Item, attribute: str
) -> None:
    image = {**order_item(uuid.uuid4().hex, BASE), **breakage}
    with pytest.raises(UnreadableItem) as caught:
        decode_stream_record(json.loads(json.dumps(stream_record(image))))
    assert caught.value.keys == keys_of(image) and caught.value.attribute == attribute


def test_a_page_lists_unreadable_keys_by_default_as_empty() -> None:
    assert Page(items=[], next_cursor=None, has_more=False).unreadable == []
