"""Cost budgets: what a budget accepts, how a page is measured and checked, what a test is told."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from core.budgets import (
    BUDGET_EXCEEDED,
    Budget,
    Overrun,
    PageCost,
    checked_page,
    checks_for,
    watching,
)
from core.config import Settings
from core.logs import metering
from models import Order
from repositories import testing
from repositories.orders import get_user_orders
from repositories.paging import RawKey, paginate, read_all
from tests.conftest import ClientHooks
from tests.helpers import existing_user, off, on, raw_client, seed_orders

BINDING = {"fn": "Order.of_user", "keys": {"user_id": "u1"}, "forward": True, "range": None}
query_budgets = testing.query_budgets  # the public fixture, as an application's conftest.py would use it


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cursor secret, so that paged queries run on moto (no local endpoint)."""
    monkeypatch.setenv("DATALAYER_CURSOR_SECRET", "unit-test-secret-0123456789abcdef")


def _nothing(start_key: RawKey | None, count: int) -> Iterator[Order]:
    return iter(())


# --- the declaration -------------------------------------------------------------------------


@pytest.mark.parametrize("bounds", [
    {},
    {"max_read_units_per_page": 0},
    {"max_read_units_per_page": -1.5},
    {"max_read_units_per_page": math.nan},
    {"max_read_units_per_page": math.inf},
    {"max_read_units_per_page": True},
    {"max_read_units_per_page": "4"},
    {"max_items_read_per_item_returned": 0.0},
    {"max_requests_per_page": 1.5},
    {"max_requests_per_page": 0},
])
def test_a_budget_without_a_bound_or_with_a_non_positive_bound_is_refused(bounds: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"Budget|must be"):
        Budget(**bounds)


def test_a_budget_is_frozen_and_hashable() -> None:
    budget = Budget(max_read_units_per_page=4, max_items_read_per_item_returned=1.5, max_requests_per_page=2)
    assert {budget: 1}[Budget(4, 1.5, 2)] == 1
    with pytest.raises(AttributeError):
        budget.max_requests_per_page = 3  # type: ignore[misc]


def test_a_page_over_a_bound_is_an_overrun_and_a_page_at_the_bound_is_not() -> None:
    budget = Budget(max_read_units_per_page=2, max_items_read_per_item_returned=1.5, max_requests_per_page=1)
    at = PageCost(requests=1, read_units=2.0, items_read=15, items_returned=10)
    assert budget.overruns("P.q", at) == []
    over = PageCost(requests=2, read_units=2.5, items_read=16, items_returned=10)
    assert budget.overruns("P.q", over) == [
        Overrun("P.q", "max_read_units_per_page", 2, 2.5),
        Overrun("P.q", "max_items_read_per_item_returned", 1.5, 1.6),
        Overrun("P.q", "max_requests_per_page", 1, 2),
    ]


def test_a_page_that_used_no_item_compares_the_items_read_to_one() -> None:
    empty = PageCost(requests=1, read_units=None, items_read=3, items_returned=0)
    assert empty.items_read_per_item_returned == 3
    assert Budget(max_items_read_per_item_returned=2).overruns(
        "P.q", PageCost(requests=1, read_units=None, items_read=2, items_returned=0)) == []


def test_a_bound_the_answers_did_not_report_is_not_checked() -> None:
    unreported = PageCost(requests=1, read_units=None, items_read=None, items_returned=0)
    budget = Budget(max_read_units_per_page=0.5, max_items_read_per_item_returned=1)
    assert budget.overruns("P.q", unreported) == []


def test_an_overrun_names_the_pattern_the_bound_and_the_measured_value() -> None:
    text = str(Overrun("Order.of_user", "max_read_units_per_page", 4, 5.5))
    assert text == "Order.of_user: max_read_units_per_page is 4, a page measured 5.5"


# --- checking --------------------------------------------------------------------------------


def test_without_a_budget_or_a_watch_nothing_is_measured() -> None:
    assert checks_for("Order.of_user", None) is None
    with watching():  # a watch with neither a pattern nor a budget checks declared budgets only
        assert checks_for("Order.of_user", None) is None
    with watching("Order.in_status", Budget(max_requests_per_page=1)):
        assert checks_for("Order.of_user", None) is None


def test_an_overrun_logs_one_warning_per_bound_with_no_keys_and_is_not_raised() -> None:
    check = checks_for("Order.of_user", Budget(max_read_units_per_page=1, max_requests_per_page=1))
    assert check is not None
    with capture_logs() as events:
        found = check.check(PageCost(requests=3, read_units=2.0, items_read=1, items_returned=1))
    assert len(found) == 2
    assert events == [
        {"event": BUDGET_EXCEEDED, "log_level": "warning", "pattern": "Order.of_user",
         "bound": "max_read_units_per_page", "limit": 1, "measured": 2.0},
        {"event": BUDGET_EXCEEDED, "log_level": "warning", "pattern": "Order.of_user",
         "bound": "max_requests_per_page", "limit": 1, "measured": 3},
    ]


def test_a_page_within_budget_logs_nothing() -> None:
    check = checks_for("Order.of_user", Budget(max_requests_per_page=1))
    assert check is not None
    with capture_logs() as events:
        assert check.check(PageCost(requests=1, read_units=0.5, items_read=1, items_returned=1)) == []
    assert events == []


def test_a_watch_with_a_budget_of_its_own_checks_it_and_the_declared_one_still_logs() -> None:
    declared = Budget(max_requests_per_page=5)
    with watching("Order.of_user", Budget(max_requests_per_page=1)) as watch, capture_logs() as events:
        check = checks_for("Order.of_user", declared)
        assert check is not None
        check.check(PageCost(requests=6, read_units=None, items_read=None, items_returned=0))
    assert [o.limit for o in watch.overruns] == [1]
    assert sorted(e["limit"] for e in events) == [1, 5]


def test_checked_page_measures_a_read_outside_the_page_engine(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 3)
    with (
        watching("Order.first", Budget(max_items_read_per_item_returned=1)) as watch,
        checked_page("Order.first", None) as use,
    ):
        use.items = len(list(Order.query(f"USER#{user_id}", Order.sk.startswith("ORDER#"))))
    [(pattern, cost)] = watch.pages
    assert (pattern, cost.requests, cost.items_read, cost.items_returned) == ("Order.first", 1, 3, 3)
    assert watch.overruns == []


# --- measuring, on moto ----------------------------------------------------------------------


def test_every_data_call_asks_for_capacity_by_index_and_an_explicit_none_is_kept(
    moto_table: Settings, client_hooks: ClientHooks
) -> None:
    user_id = existing_user(moto_table)
    sent = client_hooks.record(Order, "Query")
    list(Order.query(f"USER#{user_id}"))  # at WARNING, outside any meter
    assert sent[0]["ReturnConsumedCapacity"] == "INDEXES"  # PynamoDB's own TOTAL, widened

    client = raw_client(moto_table)
    raw: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        raw.append(json.loads(params["body"]))

    on(client, "before-call.dynamodb.Query", record)
    query = {"TableName": moto_table.table_name, "KeyConditionExpression": "PK = :pk",
             "ExpressionAttributeValues": {":pk": {"S": "USER#nobody"}}}
    try:
        with metering() as meter:
            client.query(**query)
            client.query(**query, ReturnConsumedCapacity="NONE")
    finally:
        off(client, "before-call.dynamodb.Query", record)
    assert [request.get("ReturnConsumedCapacity") for request in raw] == ["INDEXES", "NONE"]
    assert [call.capacity_units is None for call in meter.calls] == [False, True]


def test_a_meter_sees_each_call_of_its_block_and_nested_meters_see_them_too(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 3)
    list(Order.query(f"USER#{user_id}"))
    with metering() as outer:
        with metering() as inner:
            list(Order.query(f"USER#{user_id}"))
        list(Order.query(f"USER#{user_id}"))
    assert (inner.requests, outer.requests) == (1, 2)
    # read: the user's profile and three orders; returned: the orders (PynamoDB filters on the entity type)
    assert (inner.items_read, inner.items_returned) == (4, 3)
    assert inner.read_units is not None and inner.read_units > 0
    assert outer.read_units == 2 * inner.read_units


def test_paginate_measures_a_page_when_a_budget_applies(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 3)
    with testing.assert_within_budget("Order.of_user", Budget(max_requests_per_page=1)) as watch:
        get_user_orders(user_id)
    [(pattern, cost)] = watch.pages
    assert pattern == "Order.of_user"
    assert (cost.requests, cost.items_read, cost.items_returned) == (1, 3, 3)
    assert cost.read_units is not None and cost.read_units > 0


def test_paginate_checks_the_budget_it_is_given_and_serves_the_page(
    moto_table: Settings
) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 5)

    def run(start_key: RawKey | None, count: int) -> Iterator[Order]:
        # a filter no key condition can replace: four of the five orders are read for nothing
        return iter(Order.query(f"USER#{user_id}", Order.sk.startswith("ORDER#"), page_size=count,
                                filter_condition=Order.order_id == "nothing-matches"))

    budget = Budget(max_items_read_per_item_returned=2)
    with capture_logs() as events:
        page = paginate(run, binding=BINDING, limit=10, cursor=None, pattern="Order.filtered", budget=budget)
    assert page.items == [] and not page.has_more
    assert events == [{"event": BUDGET_EXCEEDED, "log_level": "warning", "pattern": "Order.filtered",
                       "bound": "max_items_read_per_item_returned", "limit": 2, "measured": 5.0}]


def test_read_all_checks_each_response_as_a_page(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 5)
    with watching("Order.every", Budget(max_requests_per_page=1)) as watch:
        items = read_all(Order.query(f"USER#{user_id}", Order.sk.startswith("ORDER#"), page_size=2),
                         "Order.every")
    assert len(items) == 5
    assert [cost.items_returned for _, cost in watch.pages] == [2, 2, 1]
    assert watch.overruns == []


# --- assert_within_budget --------------------------------------------------------------------


def test_assert_within_budget_fails_naming_the_pattern_the_bound_and_the_value(moto_table: Settings) -> None:
    user_id = existing_user(moto_table)
    seed_orders(moto_table, user_id, 4)
    with (
        pytest.raises(AssertionError) as failure,
        testing.assert_within_budget("Order.of_user", Budget(max_items_read_per_item_returned=0.5)),
    ):
        page = get_user_orders(user_id)
    assert len(page.items) == 4  # the page was served; the block failed after it
    message = str(failure.value)
    assert "Order.of_user: max_items_read_per_item_returned is 0.5, a page measured 1" in message
    assert user_id not in message


def test_a_named_pattern_that_ran_no_page_fails_the_block(moto_table: Settings) -> None:
    with (
        pytest.raises(AssertionError, match=r"no page of Order\.of_user ran"),
        testing.assert_within_budget("Order.of_user", Budget(max_requests_per_page=1)),
    ):
        pass


def test_a_named_pattern_with_no_budget_at_all_fails_the_block(moto_table: Settings) -> None:
    with (
        pytest.raises(AssertionError, match=r"Probe\.unbudgeted declares no budget"),
        testing.assert_within_budget("Probe.unbudgeted"),
    ):
        paginate(_nothing, binding=BINDING, limit=5, cursor=None, pattern="Probe.unbudgeted")


def test_a_declared_query_without_a_budget_needs_one_from_the_caller() -> None:
    class Declared:
        qualified_name = "Order.of_user"
        budget = None

    with (
        pytest.raises(ValueError, match="declares no budget"),
        testing.assert_within_budget(Declared()),
    ):
        pass


def test_a_declared_querys_own_budget_is_the_one_checked(moto_table: Settings) -> None:
    class Declared:
        qualified_name = "Order.of_user"
        budget = Budget(max_requests_per_page=1)

    user_id = existing_user(moto_table)
    with testing.assert_within_budget(Declared()) as watch:
        get_user_orders(user_id)
    assert len(watch.pages) == 1 and watch.overruns == []


def test_an_error_raised_in_the_block_is_not_replaced() -> None:
    with (
        pytest.raises(KeyError),
        testing.assert_within_budget("Order.of_user", Budget(max_requests_per_page=1)),
    ):
        raise KeyError("the app's own")


def test_the_fixture_watches_every_declared_budget(query_budgets: Any) -> None:
    with capture_logs():
        paginate(_nothing, binding=BINDING, limit=5, cursor=None, budget=Budget(max_requests_per_page=1))
    assert query_budgets.pattern is None and [p for p, _ in query_budgets.pages] == ["Order.of_user"]
