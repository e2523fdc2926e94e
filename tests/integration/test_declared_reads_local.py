"""Declared reads on DynamoDB Local: a collection (a user and its orders in one query), projections
(partial entities), money's scale through them, and cursors across page sizes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pynamodb.attributes import UnicodeAttribute

from core.budgets import Budget
from core.config import Settings
from core.errors import InvalidCursor, InvalidInput, NotFetched, NotFound
from models import ENTITIES, Order, OrderStatus, User
from models.indexes import GlobalIndex, IndexKey
from models.keys import EntityKeys
from models.partial import Partial
from models.queries import Query
from models.table import TableModel
from models.writes import transaction
from repositories.batch import batch_write
from repositories.metrics import get_hourly_aggregates, get_metrics, record_metric
from repositories.orders import get_order, get_user_orders, orders_by_status, place_order, set_order_status
from repositories.testing import assert_within_budget
from repositories.users import create_user, find_user_by_email, get_user_with_orders
from tests.helpers import (
    count_calls,
    new_user_id,
    order_item,
    random_email,
    raw_client,
    seed,
    seed_orders,
    seed_user,
)
from tests.scratch import scratch_entities


def _user_with_orders(settings: Settings, count: int) -> tuple[str, list[str]]:
    user_id = seed_user(settings)[0]
    return user_id, seed_orders(settings, user_id, count)


# --- collections ----------------------------------------------------------------------------------


def test_a_user_and_its_newest_orders_are_one_query(local_table: Settings) -> None:
    user_id, ids = _user_with_orders(local_table, 5)
    seed_orders(local_table, new_user_id(), 3)  # another partition
    queries = count_calls(Order, "Query")
    gets = count_calls(Order, "GetItem")

    user, page = get_user_with_orders(user_id, limit=3)

    assert len(queries) == 1 and gets == []
    assert isinstance(user, User) and user.user_id == user_id
    assert [type(o) for o in page.items] == [Order] * 3
    assert [o.order_id for o in page.items] == ids[::-1][:3]
    assert page.has_more and page.next_cursor is not None


def test_the_collection_cursor_continues_the_orders_and_is_a_cursor_of_the_users_orders(
    local_table: Settings,
) -> None:
    user_id, ids = _user_with_orders(local_table, 5)
    user, first = get_user_with_orders(user_id, limit=2)
    assert first.next_cursor is not None

    again, second = get_user_with_orders(user_id, limit=2, cursor=first.next_cursor)
    as_orders = get_user_orders(user_id, limit=10, cursor=first.next_cursor)

    assert again.user_id == user.user_id
    assert [o.order_id for o in second.items] == ids[::-1][2:4] and second.has_more
    assert [o.order_id for o in as_orders.items] == ids[::-1][2:] and not as_orders.has_more
    with pytest.raises(InvalidCursor):
        get_user_orders(user_id, newest_first=False, cursor=first.next_cursor)  # other direction


def test_a_user_without_orders_comes_with_an_empty_page(local_table: Settings) -> None:
    user_id = seed_user(local_table)[0]
    user, page = get_user_with_orders(user_id)
    assert user.user_id == user_id and page.items == [] and not page.has_more and page.next_cursor is None


def test_orders_without_their_user_are_not_found(local_table: Settings) -> None:
    user_id = new_user_id()
    seed_orders(local_table, user_id, 2)
    with pytest.raises(NotFound):
        get_user_with_orders(user_id)


def test_an_exactly_full_collection_page_says_no_more(local_table: Settings) -> None:
    user_id, ids = _user_with_orders(local_table, 4)
    _, page = get_user_with_orders(user_id, limit=4)
    assert [o.order_id for o in page.items] == ids[::-1] and not page.has_more and page.next_cursor is None


def test_a_collection_refuses_a_bad_id_before_any_request(local_table: Settings) -> None:
    queries = count_calls(Order, "Query")
    for bad in ("", "a#b", 7):
        with pytest.raises(InvalidInput):
            get_user_with_orders(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        get_user_with_orders(new_user_id(), limit=0)
    assert queries == []


# --- projections ----------------------------------------------------------------------------------


def _placed(settings: Settings, amount: str = "10.00") -> Order:
    user = create_user(random_email(), "Projection")
    return place_order(user.user_id, Decimal(amount))


def test_a_partial_order_has_what_was_fetched_and_the_keys(local_table: Settings) -> None:
    order = _placed(local_table)
    got = count_calls(Order, "GetItem")

    partial = get_order(order.user_id, order.order_id, attributes=["status", "amount"])

    assert isinstance(partial, Partial) and partial.entity_class is Order
    assert (partial.status, partial.amount) == (OrderStatus.PENDING, Decimal("10.00"))
    assert str(partial.amount) == "10.00"  # money keeps its scale through a projection
    assert (partial.user_id, partial.order_id) == (order.user_id, order.order_id)  # the keys' parts
    request_items = got[0]["Item"]
    assert set(request_items) == {"PK", "SK", "EntityType", "Status", "Amount", "UserId", "OrderId"}


def test_reading_an_attribute_that_was_not_fetched_raises(local_table: Settings) -> None:
    order = _placed(local_table)
    partial = get_order(order.user_id, order.order_id, attributes=["status"])
    with pytest.raises(NotFetched) as raised:
        _ = partial.amount
    assert raised.value.attribute == "amount" and "amount" in str(raised.value)
    with pytest.raises(NotFetched):
        _ = partial.version


def test_a_partial_order_cannot_be_written(local_table: Settings) -> None:
    order = _placed(local_table)
    partial: Any = get_order(order.user_id, order.order_id, attributes=["status"])
    for write in (partial.save, lambda: partial.update([Order.status.set("PAID")]),
                  partial.delete, lambda: set_order_status(partial, "PAID")):
        with pytest.raises(InvalidInput):
            write()
    with pytest.raises(InvalidInput):
        partial.status = OrderStatus.PAID
    for compose in (lambda t: t.save(partial), lambda t: t.update(partial, [Order.status.set("PAID")]),
                    lambda t: t.delete(partial)):
        with pytest.raises(InvalidInput, match="partial Order"), transaction() as t:
            compose(t)
    with pytest.raises(InvalidInput, match="Partial"):
        batch_write([partial])
    assert get_order(order.user_id, order.order_id).status is OrderStatus.PENDING


def test_a_page_of_partial_orders_pages_like_a_whole_one(local_table: Settings) -> None:
    user_id, ids = _user_with_orders(local_table, 5)
    first = get_user_orders(user_id, limit=2, attributes=["amount"])
    assert all(isinstance(o, Partial) for o in first.items)
    assert [o.amount for o in first.items] == [Decimal("10.00")] * 2
    rest = get_user_orders(user_id, limit=10, cursor=first.next_cursor)  # the cursor is the query's
    assert [o.order_id for o in first.items] + [o.order_id for o in rest.items] == ids[::-1]


def test_orders_by_status_can_read_some_attributes(local_table: Settings) -> None:
    user_id = seed_user(local_table)[0]
    seed(local_table, [order_item(user_id, order_time, status="SHIPPED", amount="12.50")
                       for order_time in _times(3)])
    page = orders_by_status("SHIPPED", limit=100, attributes=["amount", "user_id"])
    mine = [o for o in page.items if o.user_id == user_id]
    assert [str(o.amount) for o in mine] == ["12.50"] * 3
    with pytest.raises(NotFetched):
        _ = mine[0].created_at


def test_an_unknown_attribute_is_refused_before_any_request(local_table: Settings) -> None:
    queries, gets = count_calls(Order, "Query"), count_calls(Order, "GetItem")
    for attributes in (["colour"], [], "status", [7]):
        with pytest.raises(InvalidInput):
            get_order(new_user_id(), "01ARZ3NDEKTSV4RRFFQ69G5FAV", attributes=attributes)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            get_user_orders(new_user_id(), attributes=attributes)  # type: ignore[arg-type]
    assert queries == [] and gets == []


# --- cursors and page sizes -----------------------------------------------------------------------


def test_the_page_size_may_change_between_pages(local_table: Settings) -> None:
    user_id = new_user_id()
    ids = seed_orders(local_table, user_id, 9)
    sizes, seen, cursor = [2, 5, 1, 10], [], None
    for size in sizes:
        page = get_user_orders(user_id, limit=size, cursor=cursor)
        seen += [o.order_id for o in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids[::-1]


def test_a_status_cursor_may_change_page_size_but_not_status(local_table: Settings) -> None:
    user_id = seed_user(local_table)[0]
    seed(local_table, [order_item(user_id, t, status="DELIVERED") for t in _times(4)])
    first = orders_by_status("DELIVERED", limit=1)
    assert first.next_cursor is not None
    assert len(orders_by_status("DELIVERED", limit=3, cursor=first.next_cursor).items) == 3
    with pytest.raises(InvalidCursor):
        orders_by_status("PAID", limit=1, cursor=first.next_cursor)


def _times(count: int) -> list[Any]:
    now = datetime.now(UTC)
    return [now - timedelta(seconds=i) for i in range(count)]


# --- budgets --------------------------------------------------------------------------------------


def test_every_declared_query_states_a_budget() -> None:
    declared = [getattr(entity, name) for entity in ENTITIES for name, value in vars(entity).items()
                if isinstance(value, Query)]
    names = {query.qualified_name for query in declared}
    assert names >= {"Order.of_user", "Order.in_status", "User.with_email"}
    assert [query.qualified_name for query in declared if query.budget is None] == []


def test_todays_patterns_keep_their_budgets(local_table: Settings) -> None:
    user = create_user(random_email(), "Budget")
    for _ in range(3):
        place_order(user.user_id, Decimal("5.00"))
    day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    device = f"dev-{user.user_id}"
    for minute in range(0, 60, 10):
        for name in ("temp", "rh"):
            record_metric(device, name, Decimal(minute), at=day + timedelta(minutes=minute))

    with assert_within_budget() as watch:
        get_user_orders(user.user_id, limit=100)
        orders_by_status("PENDING", limit=5)
        assert find_user_by_email(user.email) is not None
        get_user_with_orders(user.user_id, limit=2)
        assert len(get_metrics(device, day, day + timedelta(hours=1), name="temp")) == 6
        assert len(get_hourly_aggregates(device, day, day + timedelta(hours=1))) == 2

    checked = {pattern for pattern, _ in watch.pages}
    assert checked >= {"Order.of_user", "Order.in_status", "User.with_email", "Order.with_user",
                       "Metric.in_day", "MetricAggregate.in_day"}


# --- an index that projects some attributes ------------------------------------------------------


def test_a_partial_query_of_an_include_index_reads_what_it_projects(local_table: Settings) -> None:
    index_name = f"TestOnly-Topic-{uuid.uuid4().hex[:8]}"
    with scratch_entities([]) as made:
        class Memo(TableModel, discriminator=f"TEST_MEMO_{uuid.uuid4().hex[:8]}"):
            keys = EntityKeys(pk="MEMO#{memo_id}", sk="MEMO")
            memo_id = UnicodeAttribute(attr_name="MemoId")
            topic = UnicodeAttribute(attr_name="Topic")
            title = UnicodeAttribute(attr_name="Title")
            body = UnicodeAttribute(attr_name="Body")
            by_topic = GlobalIndex(index_name, pk=IndexKey("TopicPK", "TOPIC#{topic}"), projection="INCLUDE",
                                   include=("title",))
            on_topic = Query(by_topic, partial=True, budget=Budget(max_requests_per_page=2))

        made.append(Memo)
        _create_index(local_table, Memo)
        topic = uuid.uuid4().hex
        for n in range(3):
            Memo(memo_id=f"{topic}-{n}", topic=topic, title=f"t{n}", body="long text").save()

        first = Memo.on_topic.page(topic=topic, limit=2, attributes=["title"])
        rest = Memo.on_topic.page(topic=topic, limit=2, cursor=first.next_cursor, attributes=["title"])

        assert sorted(m.title for m in first.items + rest.items) == ["t0", "t1", "t2"]
        assert first.has_more and not rest.has_more
        assert all(isinstance(m, Partial) and m.entity_class is Memo for m in first.items)
        with pytest.raises(NotFetched):
            _ = first.items[0].body
        with pytest.raises(InvalidInput, match="does not project 'body'"):
            Memo.on_topic.page(topic=topic, attributes=["body"])


def _create_index(settings: Settings, model: type[TableModel]) -> None:
    index = model.on_topic.source()  # type: ignore[attr-defined]
    client = raw_client(settings)
    client.update_table(
        TableName=settings.table_name,
        AttributeDefinitions=[{"AttributeName": "TopicPK", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": index.Meta.index_name,
            "KeySchema": [{"AttributeName": "TopicPK", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE",
                           "NonKeyAttributes": index.Meta.projection.non_key_attributes},
        }}],
    )
    for _ in range(100):
        described = client.describe_table(TableName=settings.table_name)["Table"]
        states = [i["IndexStatus"] for i in described.get("GlobalSecondaryIndexes", [])
                  if i["IndexName"] == index.Meta.index_name]
        if states == ["ACTIVE"]:
            return
        time.sleep(0.1)
    raise AssertionError("the index did not become active")
