"""Cost budgets on DynamoDB Local: real consumed capacity and ScannedCount, per page of a pattern."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from core.budgets import BUDGET_EXCEEDED, Budget
from core.config import Settings
from core.logs import configure_logging, metering
from models import Order
from repositories.metrics import get_metrics, record_metric
from repositories.orders import get_user_orders, orders_by_status
from repositories.paging import Page, RawKey, paginate
from repositories.testing import assert_within_budget
from tests.helpers import BASE, Item, existing_user, order_item, raw_client, seed, seed_orders

pytestmark = pytest.mark.integration


def budget_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == BUDGET_EXCEEDED]


def order_lines(order: Item, count: int) -> list[Item]:
    """``count`` items of another entity type, stored under the order's sort key (``ORDER#id#LINE#n``):
    the key condition ``begins_with(SK, "ORDER#")`` cannot tell them from orders."""
    return [{"PK": order["PK"], "SK": {"S": f"{order['SK']['S']}#LINE#{n:03d}"},
             "EntityType": {"S": "ORDER_LINE"}, "Quantity": {"N": "1"}} for n in range(count)]


def users_orders_page(user_id: str, budget: Budget | None) -> Page[Order]:
    """One page of a user's orders run as a declared query with ``budget`` would run."""
    partition = Order.key_template("pk").compose(user_id=user_id)

    def run(start_key: RawKey | None, count: int) -> Iterator[Order]:
        return iter(Order.query(partition, Order.sk.startswith("ORDER#"), page_size=count,
                                last_evaluated_key=start_key))

    binding = {"fn": "Order.of_user", "keys": {"user_id": user_id}, "forward": True, "range": None}
    return paginate(run, binding=binding, limit=20, cursor=None, pattern="Order.of_user", budget=budget)


def test_a_users_orders_page_within_its_budget_passes(local_table: Settings) -> None:
    user_id = existing_user(local_table)
    seed_orders(local_table, user_id, 150)
    budget = Budget(max_read_units_per_page=8, max_items_read_per_item_returned=1.0, max_requests_per_page=1)
    with capture_logs() as events, assert_within_budget("Order.of_user", budget) as watch:
        page = get_user_orders(user_id, limit=100)
    assert len(page.items) == 100 and page.has_more
    [(pattern, cost)] = watch.pages
    assert pattern == "Order.of_user"
    assert (cost.requests, cost.items_read, cost.items_returned) == (1, 101, 101)
    assert cost.read_units is not None and 0 < cost.read_units <= 8
    assert budget_events(events) == []


def test_items_of_another_type_in_the_partition_fail_the_block_and_log_the_overrun(
    local_table: Settings,
) -> None:
    user_id = existing_user(local_table)
    orders = [order_item(user_id, BASE + timedelta(minutes=i)) for i in range(3)]
    seed(local_table, orders)
    lines = [line for order in orders for line in order_lines(order, 20)]
    for start in range(0, len(lines), 25):
        raw_client(local_table).batch_write_item(RequestItems={
            local_table.table_name: [{"PutRequest": {"Item": line}} for line in lines[start:start + 25]]})
    with (
        capture_logs() as events, pytest.raises(AssertionError) as failure,
        assert_within_budget("Order.of_user", Budget(max_items_read_per_item_returned=2)) as watch,
    ):
        page = get_user_orders(user_id)
    assert [o.order_id for o in page.items] == [o["OrderId"]["S"] for o in orders][::-1]  # still served
    [(_, cost)] = watch.pages
    assert (cost.items_read, cost.items_returned) == (63, 3)  # 60 lines read and dropped by the filter
    assert cost.requests == 4  # three full pages of 21, then an empty one: DynamoDB could not tell
    assert str(failure.value) == (
        "over budget: Order.of_user: max_items_read_per_item_returned is 2, a page measured 21 "
        "(checked against max_items_read_per_item_returned=2)")
    logged = budget_events(events)
    assert {event["event"] for event in logged} == {BUDGET_EXCEEDED}
    assert {event["pattern"] for event in logged} == {"Order.of_user"}
    # the overruns of Order.of_user's declared budget (PAGE_OF_ORDERS), and of the one this block names
    assert sorted((e["bound"], e["limit"], e["measured"]) for e in logged) == [
        ("max_items_read_per_item_returned", 1.5, 21.0), ("max_items_read_per_item_returned", 2, 21.0),
        ("max_requests_per_page", 2, 4)]
    assert user_id not in repr(events)


def test_a_declared_budget_overrun_is_logged_and_the_page_served_in_production(local_table: Settings) -> None:
    user_id = existing_user(local_table)
    big = "x" * 8000  # an attribute the entity does not declare, written by another service
    seed(local_table, [{**order_item(user_id, BASE + timedelta(minutes=i)), "Notes": {"S": big}}
                       for i in range(10)])
    budget = Budget(max_read_units_per_page=4)
    with capture_logs() as events:
        page = users_orders_page(user_id, budget)
    assert len(page.items) == 10 and not page.has_more
    [event] = budget_events(events)
    assert (event["pattern"], event["bound"], event["limit"]) == (
        "Order.of_user", "max_read_units_per_page", 4)
    assert event["measured"] >= 10  # ten items of about 8 KB, eventually consistent: 0.5 unit per 4 KB
    assert big not in repr(events) and user_id not in repr(events)

    overrun = r"Order\.of_user: max_read_units_per_page is 4, a page measured"
    with pytest.raises(AssertionError, match=overrun), assert_within_budget():  # every declared budget
        users_orders_page(user_id, budget)


def test_a_pattern_that_declares_no_budget_is_checked_against_an_explicit_one(local_table: Settings) -> None:
    user_id = existing_user(local_table)
    seed_orders(local_table, user_id, 30, status="PAID")
    with assert_within_budget("Order.in_status", Budget(max_read_units_per_page=2, max_requests_per_page=1)):
        orders_by_status("PAID", limit=20)
    overrun = r"Order\.in_status: max_read_units_per_page is 0\.5, a page measured 1\b"
    with (pytest.raises(AssertionError, match=overrun),
          assert_within_budget("Order.in_status", Budget(max_read_units_per_page=0.5))):
        orders_by_status("PAID", limit=20)


def test_a_filtered_read_of_every_page_is_checked_response_by_response(local_table: Settings) -> None:
    day = BASE.replace(hour=0)
    for minute in range(10):
        for name in ("temp", "humidity", "pressure"):
            record_metric("dev-1", name, Decimal(minute), at=day + timedelta(minutes=minute))
    with assert_within_budget("Metric.in_day", Budget(max_items_read_per_item_returned=1)):
        assert len(get_metrics("dev-1", day, day + timedelta(hours=1))) == 30
    overrun = r"Metric\.in_day: max_items_read_per_item_returned is 1, a page measured 3"
    with (pytest.raises(AssertionError, match=overrun),
          assert_within_budget("Metric.in_day", Budget(max_items_read_per_item_returned=1))):
        assert len(get_metrics("dev-1", day, day + timedelta(hours=1), name="temp")) == 10


def test_the_call_event_keeps_the_total_capacity_when_indexes_are_asked_for(
    local_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = existing_user(local_table)
    seed_orders(local_table, user_id, 30, status="SHIPPED")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    configure_logging(force=True)
    try:
        with capture_logs() as events, metering() as meter:
            orders_by_status("SHIPPED", limit=20)  # PynamoDB asks for TOTAL: the models' client widens it
            raw_client(local_table).query(  # nothing asked: the data layer asks for INDEXES
                TableName=local_table.table_name, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk",
                ExpressionAttributeValues={":pk": {"S": "STATUS#SHIPPED"}}, Limit=21)
    finally:
        monkeypatch.setenv("LOG_LEVEL", "WARNING")
        configure_logging(force=True)
    calls = [event for event in events if event["event"] == "dynamodb.call"]
    assert [call["index"] for call in calls] == ["GSI1", "GSI1"]
    totals = [call.capacity_units for call in meter.calls]
    assert [call["consumed_capacity"] for call in calls] == totals == [1.0, 1.0]
    assert meter.calls[0].units_by_index == meter.calls[1].units_by_index == {"table": 0.0, "GSI1": 1.0}
