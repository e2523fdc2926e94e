"""Orders on moto: exact money, time-sorted ids, key-condition date ranges, signed paging, status moves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from pynamodb.exceptions import PynamoDBException
from ulid import ULID

from core.config import Settings
from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    InvalidCursor,
    InvalidInput,
    InvalidKey,
    NotFound,
    Throttled,
    WriteOutcomeUnknown,
)
from models import Order, OrderStatus, new_order_id
from models.order import order_identity, ulid_text
from repositories.orders import (
    get_order,
    get_user_orders,
    orders_by_status,
    place_order,
    set_order_status,
)
from repositories.paging import SECRET_ENV, CursorSecretMissing, Page
from tests.conftest import ClientHooks
from tests.helpers import (
    BASE,
    all_pages,
    count_calls,
    existing_user,
    order_item,
    raw_client,
    raw_get,
    raw_scan,
    seed,
    seed_orders,
)


@pytest.fixture(autouse=True)
def _cursor_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto has no local endpoint, so paged queries need a real secret."""
    monkeypatch.setenv(SECRET_ENV, "orders-unit-test-secret-0123456789")


# --- place_order -----------------------------------------------------------------------------------


def test_place_order_stores_an_exact_amount_a_status_and_a_time_sortable_id(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    at = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
    order = place_order(user_id, Decimal("1234567890.25"), status=OrderStatus.PAID, created_at=at)
    assert ULID.from_str(order.order_id).datetime == at
    stored = raw_get(moto_table, Order, user_id=user_id, order_id=order.order_id)
    assert stored is not None
    assert stored["Amount"] == {"N": "1234567890.25"}
    assert stored["Status"] == {"S": "PAID"}
    assert stored["GSI1PK"] == {"S": Order.key_template("gsi1pk").compose(status="PAID")}
    assert datetime.fromisoformat(stored["CreatedAt"]["S"]) == at
    assert stored["Version"] == {"N": "1"} and order.version == 1


@pytest.mark.parametrize(("amount", "expected"), [
    (Decimal("0.01"), Decimal("0.01")), (5, Decimal(5)), ("19.90", Decimal("19.90")),
    (Decimal("1.500"), Decimal("1.5")), (Decimal("1E+3"), Decimal(1000)),
])
def test_place_order_accepts_decimal_int_and_string_amounts(
    moto_table: Settings, amount: Any, expected: Decimal
) -> None:
    order = place_order(existing_user(moto_table), amount)
    assert get_order(order.user_id, order.order_id).amount == expected


def test_place_order_accepts_a_status_by_value_and_defaults_to_pending(moto_table: Settings) -> None:
    assert place_order(existing_user(moto_table), 1).status is OrderStatus.PENDING
    assert place_order(existing_user(moto_table), 1, status="SHIPPED").status is OrderStatus.SHIPPED


def test_place_order_defaults_to_now(moto_table: Settings) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    order = place_order(existing_user(moto_table), 1)
    assert order.created_at is not None and before <= order.created_at
    assert before <= ULID.from_str(order.order_id).datetime


def test_place_order_with_a_taken_id_raises_already_exists_and_keeps_the_first(moto_table: Settings) -> None:
    user_id, order_id = existing_user(moto_table), new_order_id()
    place_order(user_id, 1, order_id=order_id)
    before = raw_scan(moto_table)
    with pytest.raises(AlreadyExists) as raised:
        place_order(user_id, 2, order_id=order_id)
    assert raised.value.__cause__ is not None
    assert raw_scan(moto_table) == before


def test_the_same_order_id_may_be_used_by_two_users(moto_table: Settings) -> None:
    order_id = new_order_id()
    first, second = existing_user(moto_table), existing_user(moto_table)
    place_order(first, 1, order_id=order_id)
    place_order(second, 1, order_id=order_id)
    assert [get_order(user, order_id).user_id for user in (first, second)] == [first, second]


@pytest.mark.parametrize("offset", [timedelta(milliseconds=1), timedelta(milliseconds=-1), timedelta(days=3)])
def test_place_order_with_an_order_id_made_at_another_time_than_created_at_is_refused_and_writes_nothing(
    moto_table: Settings, offset: timedelta
) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 2)
    before = raw_scan(moto_table)
    with pytest.raises(InvalidInput, match="millisecond"):
        place_order(user_id, 1, order_id=new_order_id(BASE), created_at=BASE + offset)
    assert raw_scan(moto_table) == before


def test_place_order_with_an_order_id_of_created_ats_millisecond_is_found_by_its_time(
    moto_table: Settings,
) -> None:
    user_id = existing_user(moto_table)
    created_at = (BASE + timedelta(microseconds=999)).astimezone(timezone(timedelta(hours=2)))
    order = place_order(user_id, 1, order_id=new_order_id(BASE), created_at=created_at)
    assert order.created_at == created_at
    found = get_user_orders(user_id, start=created_at, end=created_at).items
    assert [o.order_id for o in found] == [order.order_id]


@pytest.mark.parametrize("at", [
    BASE + timedelta(milliseconds=123),
    # ULID.from_datetime turns this exact millisecond into the one before (a float truncated)
    datetime(1970, 7, 14, 19, 21, 0, 82000, UTC),
])
def test_place_order_with_only_an_order_id_takes_created_at_from_the_id(
    moto_table: Settings, at: datetime
) -> None:
    user_id = existing_user(moto_table)
    order_id = str(ULID.from_timestamp(int(at.timestamp() * 1000 + 0.5)))  # exactly `at`'s millisecond
    order = place_order(user_id, 1, order_id=order_id)
    assert order.created_at is not None
    assert at <= order.created_at < at + timedelta(milliseconds=1)
    assert ULID.from_datetime(order.created_at).milliseconds == ULID.from_str(order_id).milliseconds
    found = get_user_orders(user_id, start=order.created_at, end=order.created_at).items
    assert [o.order_id for o in found] == [order.order_id]


def test_place_order_without_an_order_id_makes_one_of_created_ats_millisecond(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    for order in [place_order(user_id, 1) for _ in range(20)]:
        assert order.created_at is not None
        assert ULID.from_datetime(order.created_at).milliseconds == ULID.from_str(order.order_id).milliseconds


BAD_ORDERS: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"amount": 10.5}, InvalidInput),
    ({"amount": 0}, InvalidInput),
    ({"amount": Decimal("-1")}, InvalidInput),
    ({"amount": Decimal("0.00")}, InvalidInput),
    ({"amount": Decimal("1.005")}, InvalidInput),
    ({"amount": "0.001"}, InvalidInput),
    ({"amount": Decimal("NaN")}, InvalidInput),
    ({"amount": Decimal("Infinity")}, InvalidInput),
    ({"amount": "ten"}, InvalidInput),
    ({"amount": True}, InvalidInput),
    ({"amount": None}, InvalidInput),
    ({"amount": "1" * 39}, InvalidInput),
    ({"amount": Decimal("1E+126")}, InvalidInput),
    ({"status": "BOGUS"}, InvalidInput),
    ({"status": "paid"}, InvalidInput),
    ({"status": 1}, InvalidInput),
    ({"user_id": ""}, InvalidKey),
    ({"user_id": "a#b"}, InvalidKey),
    ({"user_id": 42}, InvalidInput),
    ({"order_id": "not-a-ulid"}, InvalidInput),
    ({"order_id": new_order_id().lower()}, InvalidInput),
    ({"order_id": "a#b"}, InvalidKey),
    ({"order_id": ""}, InvalidKey),
    ({"created_at": datetime(2025, 1, 1)}, InvalidInput),
    ({"created_at": "2025-01-01T00:00:00Z"}, InvalidInput),
    ({"created_at": datetime(1969, 12, 31, tzinfo=UTC)}, InvalidInput),
]


@pytest.mark.parametrize(("override", "error"), BAD_ORDERS)
def test_place_order_refuses_bad_input_and_writes_nothing(
    moto_table: Settings, override: dict[str, Any], error: type[Exception]
) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 2)
    before = raw_scan(moto_table)
    arguments: dict[str, Any] = {"user_id": user_id, "amount": Decimal("9.99"), **override}
    with pytest.raises(error):
        place_order(arguments.pop("user_id"), arguments.pop("amount"), **arguments)
    assert raw_scan(moto_table) == before


# --- get_order -------------------------------------------------------------------------------------


def test_get_order_reads_a_stored_order(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    [order_id] = seed(moto_table, [order_item(user_id, BASE, status="SHIPPED", amount="42.10")])
    order = get_order(user_id, order_id)
    assert (order.user_id, order.order_id, order.amount, order.status, order.version) == (
        user_id, order_id, Decimal("42.10"), OrderStatus.SHIPPED, 1)
    assert order.created_at == BASE


def test_get_order_of_another_user_raises_not_found(moto_table: Settings) -> None:
    [order_id] = seed_orders(moto_table, existing_user(moto_table), 1)
    with pytest.raises(NotFound):
        get_order(existing_user(moto_table), order_id)


@pytest.mark.parametrize(("user_id", "order_id", "error"), [
    ("", "x", InvalidKey), ("u", "a#b", InvalidKey), (None, "x", InvalidInput), ("u", 5, InvalidInput),
])
def test_get_order_refuses_bad_ids(
    moto_table: Settings, user_id: Any, order_id: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        get_order(user_id, order_id)


# --- get_user_orders -------------------------------------------------------------------------------


@pytest.mark.parametrize("newest_first", [True, False])
def test_95_orders_paged_10_at_a_time_come_back_once_each_in_order(
    moto_table: Settings, newest_first: bool
) -> None:
    user_id = existing_user(moto_table)
    ids = seed_orders(moto_table, user_id, 95)
    seed_orders(moto_table, existing_user(moto_table), 5)  # a neighbour's orders never leak in
    pages = list(all_pages(lambda **kw: get_user_orders(user_id, newest_first=newest_first, **kw), 10))
    assert [len(p.items) for p in pages] == [10] * 9 + [5]
    assert [p.has_more for p in pages] == [True] * 9 + [False]
    assert pages[-1].next_cursor is None
    got = [o.order_id for p in pages for o in p.items]
    assert got == (ids[::-1] if newest_first else ids)


def test_an_exactly_full_last_page_says_there_is_no_more(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 20)
    first = get_user_orders(user_id, limit=10)
    second = get_user_orders(user_id, limit=10, cursor=first.next_cursor)
    assert len(second.items) == 10
    assert second.has_more is False and second.next_cursor is None


def test_a_user_without_orders_gets_one_empty_page(moto_table: Settings) -> None:
    assert get_user_orders(existing_user(moto_table)) == Page(items=[], next_cursor=None, has_more=False)


def test_a_date_range_is_a_key_condition_that_reads_only_the_orders_inside(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    ids = seed_orders(moto_table, user_id, 60, step=timedelta(hours=1))
    responses = count_calls(Order, "Query")
    start, end = BASE + timedelta(hours=10), BASE + timedelta(hours=29)  # both ends exactly on orders
    page = get_user_orders(user_id, start=start, end=end, limit=100, newest_first=False)
    assert [o.order_id for o in page.items] == ids[10:30]
    assert page.has_more is False
    [response] = responses
    assert response["Count"] == 20
    assert response["ScannedCount"] == response["Count"]


@pytest.mark.parametrize(("start_hour", "end_hour", "expected"), [
    (55, None, slice(55, 60)), (None, 4, slice(0, 5)), (7, 7, slice(7, 8)), (100, 200, slice(0, 0)),
])
def test_an_open_or_single_point_range_returns_exactly_its_orders(
    moto_table: Settings, start_hour: int | None, end_hour: int | None, expected: slice
) -> None:
    user_id = existing_user(moto_table)
    ids = seed_orders(moto_table, user_id, 60, step=timedelta(hours=1))
    start = BASE + timedelta(hours=start_hour) if start_hour is not None else None
    end = BASE + timedelta(hours=end_hour) if end_hour is not None else None
    page = get_user_orders(user_id, start=start, end=end, limit=100, newest_first=False)
    assert [o.order_id for o in page.items] == ids[expected]


def test_range_bounds_are_inclusive_to_the_millisecond(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    ids = seed_orders(moto_table, user_id, 3, step=timedelta(milliseconds=1))
    just_after_first = BASE + timedelta(microseconds=1)
    within_last = BASE + timedelta(microseconds=2999)
    page = get_user_orders(user_id, start=just_after_first, end=within_last, newest_first=False)
    assert [o.order_id for o in page.items] == ids  # the first and last orders' milliseconds count
    page = get_user_orders(user_id, start=just_after_first, end=within_last - timedelta(milliseconds=1),
                           newest_first=False)
    assert [o.order_id for o in page.items] == ids[:2]


def test_a_range_in_another_time_zone_means_the_same_instants(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    ids = seed_orders(moto_table, user_id, 10, step=timedelta(hours=1))
    plus_two = timezone(timedelta(hours=2))
    page = get_user_orders(user_id, start=(BASE + timedelta(hours=3)).astimezone(plus_two),
                           end=(BASE + timedelta(hours=5)).astimezone(plus_two), newest_first=False)
    assert [o.order_id for o in page.items] == ids[3:6]


def test_a_date_range_pages_within_its_bounds(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    ids = seed_orders(moto_table, user_id, 40, step=timedelta(hours=1))

    def fetch(**kw: Any) -> Page[Order]:
        return get_user_orders(user_id, start=BASE + timedelta(hours=5), end=BASE + timedelta(hours=34), **kw)

    got = [o.order_id for p in all_pages(fetch, 7) for o in p.items]
    assert got == ids[5:35][::-1]


@pytest.mark.parametrize("newest_first", [True, False])
def test_the_page_size_may_change_between_pages_of_one_query(
    moto_table: Settings, newest_first: bool
) -> None:
    user_id = existing_user(moto_table)
    ids = seed_orders(moto_table, user_id, 12)
    expected = ids[::-1] if newest_first else ids
    got: list[str] = []
    page = get_user_orders(user_id, limit=2, newest_first=newest_first)
    for limit in (5, 1, 3, 100):
        got += [o.order_id for o in page.items]
        assert page.next_cursor is not None
        page = get_user_orders(user_id, limit=limit, cursor=page.next_cursor, newest_first=newest_first)
    got += [o.order_id for o in page.items]
    assert got == expected and page.has_more is False  # no order twice, none left out
    first = get_user_orders(user_id, limit=2, newest_first=newest_first)
    with pytest.raises(InvalidCursor):  # still bound to the user
        get_user_orders(existing_user(moto_table), limit=5, cursor=first.next_cursor,
                        newest_first=newest_first)


def test_the_page_size_may_change_between_pages_by_status(moto_table: Settings) -> None:
    paid = seed_orders(moto_table, existing_user(moto_table), 9, status="PAID")
    first = orders_by_status("PAID", limit=2)
    second = orders_by_status("PAID", limit=5, cursor=first.next_cursor)
    third = orders_by_status("PAID", limit=5, cursor=second.next_cursor)
    assert [o.order_id for p in (first, second, third) for o in p.items] == paid
    assert (second.has_more, third.has_more) == (True, False)
    with pytest.raises(InvalidCursor):
        orders_by_status("SHIPPED", limit=5, cursor=first.next_cursor)


def _cursor_after_first_page(user_id: str, **query: Any) -> str:
    page = get_user_orders(user_id, limit=5, **query)
    assert page.next_cursor is not None
    return page.next_cursor


@pytest.mark.parametrize("other", [
    {"user_id": "someone-else"},
    {"newest_first": False},
    {"start": BASE},
    {"end": BASE + timedelta(days=1)},
])
def test_a_cursor_from_another_query_is_refused_before_any_request(
    moto_table: Settings, other: dict[str, Any]
) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 20)
    cursor = _cursor_after_first_page(user_id)
    query: dict[str, Any] = {"user_id": user_id, "limit": 5, **other}
    responses = count_calls(Order, "Query")
    with pytest.raises(InvalidCursor):
        get_user_orders(query.pop("user_id"), cursor=cursor, **query)
    assert responses == []


def test_a_tampered_cursor_is_refused(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 20)
    cursor = _cursor_after_first_page(user_id)
    tampered = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    with pytest.raises(InvalidCursor):
        get_user_orders(user_id, limit=5, cursor=tampered)


def test_a_cursor_signed_with_another_secret_is_refused(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 20)
    cursor = _cursor_after_first_page(user_id)
    monkeypatch.setenv(SECRET_ENV, "a-rotated-secret-0123456789abcdef")
    with pytest.raises(InvalidCursor):
        get_user_orders(user_id, limit=5, cursor=cursor)


def test_without_a_secret_a_remote_endpoint_refuses_to_page(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV)
    responses = count_calls(Order, "Query")
    with pytest.raises(CursorSecretMissing):
        get_user_orders(existing_user(moto_table))
    assert responses == []


@pytest.mark.parametrize(("query", "error"), [
    ({"limit": 0}, InvalidInput),
    ({"limit": 101}, InvalidInput),
    ({"limit": "10"}, InvalidInput),
    ({"start": BASE + timedelta(days=1), "end": BASE}, InvalidInput),
    ({"start": datetime(2025, 1, 1)}, InvalidInput),
    ({"end": "2025-01-01"}, InvalidInput),
    ({"start": datetime(1969, 1, 1, tzinfo=UTC)}, InvalidInput),
    ({"newest_first": "yes"}, InvalidInput),
    ({"cursor": "garbage"}, InvalidCursor),
    ({"cursor": 12}, InvalidCursor),
    ({"user_id": "a#b"}, InvalidKey),
    ({"user_id": ""}, InvalidKey),
])
def test_get_user_orders_refuses_bad_input_before_any_request(
    moto_table: Settings, query: dict[str, Any], error: type[Exception]
) -> None:
    responses = count_calls(Order, "Query")
    arguments: dict[str, Any] = {"user_id": existing_user(moto_table), **query}
    with pytest.raises(error):
        get_user_orders(arguments.pop("user_id"), **arguments)
    assert responses == []


# --- orders_by_status ------------------------------------------------------------------------------


def test_orders_by_status_lists_every_order_in_that_status_once_oldest_first(moto_table: Settings) -> None:
    paid = seed_orders(moto_table, existing_user(moto_table), 12, status="PAID")
    later = BASE + timedelta(days=1)
    paid += seed_orders(moto_table, existing_user(moto_table), 11, status="PAID", start=later)
    seed_orders(moto_table, existing_user(moto_table), 7, status="PENDING")
    pages = list(all_pages(lambda **kw: orders_by_status("PAID", **kw), 5))
    assert [o.order_id for p in pages for o in p.items] == paid
    assert [p.has_more for p in pages] == [True] * 4 + [False]
    assert all(o.status is OrderStatus.PAID for p in pages for o in p.items)


def test_orders_by_status_newest_first(moto_table: Settings) -> None:
    ids = seed_orders(moto_table, existing_user(moto_table), 6, status=OrderStatus.DELIVERED.value)
    page = orders_by_status(OrderStatus.DELIVERED, newest_first=True, limit=10)
    assert [o.order_id for o in page.items] == ids[::-1]


def test_a_cursor_of_another_status_or_query_is_refused(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 8, status="PAID")
    cursor = orders_by_status("PAID", limit=3).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        orders_by_status("SHIPPED", limit=3, cursor=cursor)
    with pytest.raises(InvalidCursor):
        orders_by_status("PAID", limit=3, cursor=cursor, newest_first=True)
    with pytest.raises(InvalidCursor):
        get_user_orders(user_id, limit=3, cursor=cursor, newest_first=False)


@pytest.mark.parametrize(("query", "error"), [
    ({"status": "LOST"}, InvalidInput), ({"status": None}, InvalidInput),
    ({"limit": 0}, InvalidInput), ({"cursor": "x.y"}, InvalidCursor),
])
def test_orders_by_status_refuses_bad_input(
    moto_table: Settings, query: dict[str, Any], error: type[Exception]
) -> None:
    arguments: dict[str, Any] = {"status": "PAID", **query}
    with pytest.raises(error):
        orders_by_status(arguments.pop("status"), **arguments)


# --- set_order_status ------------------------------------------------------------------------------


def test_set_order_status_moves_the_order_to_its_new_status_list(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    [order_id] = seed_orders(moto_table, user_id, 1, status="PENDING")
    order = get_order(user_id, order_id)
    updated = set_order_status(order, "PAID")
    assert (updated.status, updated.version) == (OrderStatus.PAID, 2)
    assert updated.updated_at is not None and updated.updated_at > BASE
    assert (order.status, order.version) == (OrderStatus.PENDING, 1)  # the argument is left as it was
    stored = raw_get(moto_table, Order, user_id=user_id, order_id=order_id)
    assert stored is not None and stored["Status"] == {"S": "PAID"} and stored["Version"] == {"N": "2"}
    assert stored["GSI1PK"] == {"S": Order.key_template("gsi1pk").compose(status=OrderStatus.PAID)}
    assert [o.order_id for o in orders_by_status("PAID").items] == [order_id]
    assert orders_by_status("PENDING").items == []


def test_set_order_status_with_a_stale_order_raises_conflict_and_changes_nothing(
    moto_table: Settings,
) -> None:
    user_id = existing_user(moto_table)
    [order_id] = seed_orders(moto_table, user_id, 1)
    stale = get_order(user_id, order_id)
    set_order_status(stale, OrderStatus.PAID)
    before = raw_scan(moto_table)
    with pytest.raises(ConflictError) as raised:
        set_order_status(stale, OrderStatus.CANCELLED)
    assert raised.value.__cause__ is not None
    assert raw_scan(moto_table) == before


def test_set_order_status_of_a_deleted_order_raises_conflict_and_recreates_nothing(
    moto_table: Settings,
) -> None:
    user_id = existing_user(moto_table)
    [order_id] = seed_orders(moto_table, user_id, 1)
    order = get_order(user_id, order_id)
    raw_client(moto_table).delete_item(TableName=moto_table.table_name, Key={
        "PK": {"S": order.pk}, "SK": {"S": order.sk}})
    before = raw_scan(moto_table)
    with pytest.raises(ConflictError):
        set_order_status(order, "PAID")
    assert raw_scan(moto_table) == before
    assert raw_get(moto_table, Order, user_id=order.user_id, order_id=order.order_id) is None


@pytest.mark.parametrize(("make_order", "status"), [
    ("stored", "LOST"), ("stored", None), ("unsaved", "PAID"), ("not an order", "PAID"),
])
def test_set_order_status_refuses_bad_input_and_writes_nothing(
    moto_table: Settings, make_order: str, status: Any
) -> None:
    user_id = existing_user(moto_table)
    [order_id] = seed_orders(moto_table, user_id, 1)
    makers: dict[str, Callable[[], Any]] = {
        "stored": lambda: get_order(user_id, order_id),
        "unsaved": lambda: Order(user_id=user_id, order_id=new_order_id(), amount=Decimal(1),
                                 status=OrderStatus.PENDING),
        "not an order": lambda: {"user_id": user_id, "order_id": order_id},
    }
    order = makers[make_order]()
    before = raw_scan(moto_table)
    with pytest.raises(InvalidInput):
        set_order_status(order, status)
    assert raw_scan(moto_table) == before


# --- errors nobody expects ---------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "error"), [
    ("ProvisionedThroughputExceededException", Throttled),
    ("RequestLimitExceeded", Throttled),
    ("InternalServerError", DataLayerError),
])
def test_every_order_function_maps_an_unexpected_error_into_the_tree_with_its_cause(
    moto_table: Settings, client_hooks: ClientHooks, code: str, error: type[DataLayerError]
) -> None:
    user_id = existing_user(moto_table)
    [order_id] = seed_orders(moto_table, user_id, 1)
    stored = get_order(user_id, order_id)
    before = raw_scan(moto_table)
    for operation in ("TransactWriteItems", "GetItem", "Query", "UpdateItem"):
        client_hooks.fail(Order, operation, code)
    reads: list[Callable[[], Any]] = [
        lambda: get_order(user_id, order_id),
        lambda: get_user_orders(user_id),
        lambda: orders_by_status("PENDING"),
    ]
    writes: list[Callable[[], Any]] = [
        lambda: place_order(user_id, 1), lambda: set_order_status(stored, "PAID"),
    ]
    # A 5xx that outlived botocore's retries leaves a write's outcome unknown; a read just failed.
    write_error = WriteOutcomeUnknown if code == "InternalServerError" else error
    for calls, expected in ((reads, error), (writes, write_error)):
        for call in calls:
            with pytest.raises(expected) as raised:
                call()
            assert type(raised.value) is expected
            assert isinstance(raised.value.__cause__, (PynamoDBException, ClientError))
    assert raw_scan(moto_table) == before


@settings(max_examples=300, deadline=None)
@given(value=st.integers(min_value=0, max_value=(1 << 128) - 1))
def test_an_order_id_is_spelled_as_python_ulid_spells_the_same_bits(value: int) -> None:
    assert ulid_text(value) == str(ULID.from_bytes(value.to_bytes(16)))


@settings(max_examples=100, deadline=None)
@given(at=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31),
                       timezones=st.just(UTC)))
def test_an_order_id_holds_the_millisecond_python_ulid_gives_its_time(at: datetime) -> None:
    made = [new_order_id(at) for _ in range(3)]
    expected = ULID.from_datetime(at).milliseconds
    assert {ULID.from_str(order_id).milliseconds for order_id in made} == {expected}
    assert made == sorted(made) and len(set(made)) == 3  # within one millisecond: the randomness plus one


def test_an_order_id_made_now_sorts_after_every_id_made_before() -> None:
    made = [new_order_id() for _ in range(2000)]
    assert made == sorted(made) and len(set(made)) == len(made)


def test_a_time_a_ulid_cannot_hold_is_refused_as_python_ulid_refuses_it() -> None:
    with pytest.raises(InvalidInput):
        order_identity(None, datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC))
