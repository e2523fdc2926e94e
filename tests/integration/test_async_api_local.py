"""The async API (``repositories.asyncio``, the entities' awaited methods) on DynamoDB Local.

Each awaited function must do what its synchronous twin does (results, what is stored, typed
refusals with nothing sent), with every request awaited on the running loop: concurrent calls from
one loop share it, and the loop keeps running other tasks while a call is in flight. State is set up
and checked with raw botocore calls (``tests.helpers``); the checks run inside the loop where that
reads best. Each test runs its own loop (``arun``), closing the async API's pools on it.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.config import Settings
from core.retry import RetryPolicy
from models import Order, Product, Transfer, User, atransaction, new_order_id
from repositories import orders as sync_orders
from repositories import users as sync_users
from repositories.accounts import transfer_id_for_key
from repositories.asyncio import accounts, batch, cache, errors, metrics, orders, products, users
from tests.async_helpers import Requests, arun, stored, watched
from tests.helpers import (
    BASE,
    RawTable,
    claims,
    existing_user,
    new_user_id,
    random_email,
    raw_get,
    raw_scan,
    seed_orders,
)

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
PATIENT = RetryPolicy(max_attempts=200, base_delay=0.01, max_delay=0.2)  # contention is the point


@pytest.fixture
def raw(local_table: Settings) -> RawTable:
    """This test's table through a raw botocore client."""
    return RawTable(local_table)


@pytest.fixture
def requests(local_table: Settings) -> Iterator[Requests]:
    """Every request the models' client sends during the test (see ``Requests``)."""
    yield from watched()


# --- every function, awaited ---------------------------------------------------------------------


def test_accounts_open_read_and_move_money_exactly_once(raw: RawTable, local_table: Settings) -> None:
    key, pay = f"open-{uuid.uuid4()}", f"pay-{uuid.uuid4()}"

    async def main() -> None:
        account = await accounts.open_account(balance=Decimal("100.00"), idempotency_key=key)
        again = await accounts.open_account(balance=Decimal("100.00"), idempotency_key=key)
        other = await accounts.open_account(account_id=uuid.uuid4().hex)
        a, b = account.account_id, other.account_id
        assert again.account_id == a and account.balance == Decimal("100.00")
        with pytest.raises(errors.AlreadyExists):
            await accounts.open_account(account_id=b, balance=5)
        transfer = await accounts.transfer_funds(a, b, "30.50", idempotency_key=pay)
        replayed = await accounts.transfer_funds(a, b, "30.50", idempotency_key=pay)
        assert transfer.transfer_id == replayed.transfer_id == transfer_id_for_key(pay, a)
        with pytest.raises(errors.InsufficientFunds):
            await accounts.transfer_funds(b, a, "30.51")
        with pytest.raises(errors.NotFound):
            await accounts.transfer_funds(a, uuid.uuid4().hex, "1")
        assert (await accounts.get_account(a)).balance == raw.balance(a) == Decimal("69.50")
        assert raw.balance(b) == Decimal("30.50")
        read = await accounts.get_transfer(transfer.transfer_id)
        assert (read.from_account, read.to_account, read.amount) == (a, b, Decimal("30.50"))
        for missing in (accounts.get_account, accounts.get_transfer):
            with pytest.raises(errors.NotFound):
                await missing(uuid.uuid4().hex)
        assert [t["TransferId"]["S"] for t in raw.transfers()] == [transfer.transfer_id]
        assert sorted(i["AccountId"]["S"] for i in stored(local_table, "ACCOUNT")) == sorted([a, b])

    arun(main)


def test_users_live_and_die_with_their_email_claim(local_table: Settings) -> None:
    email, new_email = random_email(), random_email("moved")

    async def main() -> None:
        user = await users.create_user(email, "Ada")
        with pytest.raises(errors.AlreadyExists):
            await users.create_user(email.upper(), "Eve")
        [row] = stored(local_table, "USER")
        assert (row["UserId"]["S"], row["Name"]["S"]) == (user.user_id, "Ada")
        got = await users.get_user(user.user_id)
        found = await users.find_user_by_email(email.upper())
        assert got.email == email and found is not None and found.user_id == user.user_id
        assert await users.find_user_by_email(new_email) is None
        moved = await users.update_user(got, name="Ada Lovelace", email=new_email)
        assert (moved.name, moved.email, moved.version) == ("Ada Lovelace", new_email, got.version + 1)
        assert [c["ClaimedEmail"]["S"] for c in claims(local_table)] == [new_email]
        with pytest.raises(errors.ConflictError):
            await users.update_user(got, name="A stale copy")
        await users.delete_user(moved)
        with pytest.raises(errors.NotFound):
            await users.get_user(user.user_id)
        assert stored(local_table, "USER") == [] and claims(local_table) == []

    arun(main)


def test_orders_place_read_page_and_move_as_the_sync_api_does(local_table: Settings) -> None:
    user_id = existing_user(local_table)
    ids = seed_orders(local_table, user_id, 23)

    async def main() -> None:
        placed = await orders.place_order(user_id, "12.5", status="PAID")
        with pytest.raises(errors.NotFound):
            await orders.place_order(new_user_id(), "1.00")
        read = await orders.get_order(user_id, placed.order_id)
        assert (read.order_id, read.amount, read.status.value) == (placed.order_id, Decimal("12.50"), "PAID")
        partial = await orders.get_order(user_id, placed.order_id, attributes=["status"])
        assert partial.status.value == "PAID"
        with pytest.raises(errors.NotFetched):
            _ = partial.amount
        with pytest.raises(errors.NotFound):
            await orders.get_order(user_id, new_order_id(BASE))
        # a cursor of one API continues in the other
        first = await orders.get_user_orders(user_id, limit=10, newest_first=False)
        second = sync_orders.get_user_orders(user_id, limit=10, newest_first=False, cursor=first.next_cursor)
        third = await orders.get_user_orders(user_id, limit=10, newest_first=False, cursor=second.next_cursor)
        assert [o.order_id for p in (first, second, third) for o in p.items] == [*ids, placed.order_id]
        assert [p.has_more for p in (first, second, third)] == [True, True, False]
        shipped = await orders.set_order_status(placed, "SHIPPED")
        with pytest.raises(errors.ConflictError):
            await orders.set_order_status(placed, "CANCELLED")  # a stale copy
        with pytest.raises(errors.InvalidInput):
            await orders.set_order_status(shipped, "PENDING")  # not a move the lifecycle allows
        item = raw_get(local_table, Order, user_id=user_id, order_id=placed.order_id)
        assert item is not None and (item["Status"], item["GSI1PK"], item["Version"]) == (
            {"S": "SHIPPED"}, {"S": "STATUS#SHIPPED"}, {"N": "2"})
        by_status = await orders.orders_by_status("SHIPPED", limit=5)
        assert [o.order_id for o in by_status.items] == [placed.order_id]
        user, page = await users.get_user_with_orders(user_id, limit=5)
        assert user.user_id == user_id
        assert [o.order_id for o in page.items] == [placed.order_id, *ids[::-1][:4]]
        assert len(stored(local_table, "ORDER")) == 24

    arun(main)


def test_metrics_record_and_read_across_day_buckets(local_table: Settings) -> None:
    device = uuid.uuid4().hex
    times = [AT, AT + timedelta(minutes=5), AT + timedelta(days=1, minutes=1)]

    async def main() -> None:
        for at, value in zip(times, (3, 7, 5), strict=True):
            await metrics.record_metric(device, "temp", value, at=at)
        await metrics.record_metric(device, "hum", 40, at=AT + timedelta(minutes=1))
        with pytest.raises(errors.AlreadyExists):
            await metrics.record_metric(device, "temp", 99, at=AT)
        end = AT + timedelta(days=2)
        every = await metrics.get_metrics(device, AT - timedelta(hours=1), end)
        assert [(m.metric_name, m.value) for m in every] == [("temp", 3), ("hum", 40), ("temp", 7),
                                                             ("temp", 5)]
        assert [m.timestamp for m in await metrics.get_metrics(device, AT, end, name="temp")] == times
        hourly = await metrics.get_hourly_aggregates(device, AT, end, name="temp")
        assert [(a.hour, a.sample_count, a.total, a.minimum, a.maximum) for a in hourly] == [
            ("2025-06-01T12", 2, 10, 3, 7), ("2025-06-02T12", 1, 5, 5, 5)]
        first_hour = await metrics.get_hourly_aggregates(device, AT, AT)
        assert sorted((a.metric_name, a.sample_count) for a in first_hour) == [("hum", 1), ("temp", 2)]
        assert len(stored(local_table, "METRIC")) == 4 and len(stored(local_table, "METRIC_AGG")) == 3

    arun(main)


def test_products_and_batches(local_table: Settings) -> None:
    many = [Product(product_id=f"b{i:03d}", name=f"Batch {i}", price=Decimal(i)) for i in range(30)]

    async def main() -> None:
        assert (await products.put_product("lamp", "Lamp", Decimal("9.99"), colour="red")).version == 1
        assert (await products.put_product("lamp", "Lamp", Decimal("8.00"))).version == 2
        read = await products.get_product("lamp")
        assert (read.price, read.attributes) == (Decimal("8.00"), None)
        with pytest.raises(errors.NotFound):
            await products.get_product("nothing")
        await batch.batch_write(many)
        with pytest.raises(errors.AlreadyExists):  # a new entity whose key is taken: nothing written
            await batch.batch_write([Product(product_id="b001", name="Again", price=Decimal(1))])
        some = await products.get_products(["b002", "nothing", "lamp", "b002"])
        assert [p.product_id for p in some] == ["b002", "lamp"]
        found = await batch.batch_get(Product, [{"product_id": p.product_id} for p in many[::-1]])
        assert [p.product_id for p in found] == [p.product_id for p in many[::-1]]

    arun(main)
    rows = {i["ProductId"]["S"]: i for i in stored(local_table, "PRODUCT")}
    assert len(rows) == 31 and rows["b001"]["Name"] == {"S": "Batch 1"}
    assert {rows[p.product_id]["Version"]["N"] for p in many} == {"1"}
    assert Decimal(rows["lamp"]["Price"]["N"]) == 8


BAD_CALLS: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
    ("accounts", "open_account", (), {"balance": "-1"}),
    ("accounts", "open_account", (), {"account_id": "a#b"}),
    ("accounts", "get_account", ("",), {}),
    ("accounts", "get_transfer", ("a#b",), {}),
    ("accounts", "transfer_funds", ("a", "a", "1"), {}),
    ("accounts", "transfer_funds", ("a", "b", 2.5), {}),
    ("batch", "batch_write", ([object()],), {}),
    ("batch", "batch_get", (Product, [{"product_id": ""}]), {}),
    ("metrics", "record_metric", ("d", "t", 1), {"at": datetime(2025, 1, 1)}),  # naive
    ("metrics", "get_metrics", ("d", AT, AT - timedelta(hours=1)), {}),
    ("metrics", "get_hourly_aggregates", ("", AT, AT), {}),
    ("orders", "place_order", ("u", 1.5), {}),
    ("orders", "get_order", ("u", ""), {}),
    ("orders", "get_user_orders", ("u",), {"limit": 0}),
    ("orders", "orders_by_status", ("NOPE",), {}),
    ("orders", "set_order_status", (Order(user_id="u", order_id="o"), "PAID"), {}),
    ("products", "put_product", ("p", "P", 1.5), {}),
    ("products", "get_product", ("a#b",), {}),
    ("products", "get_products", ([""],), {}),
    ("users", "create_user", ("not an email", "Ada"), {}),
    ("users", "get_user", ("",), {}),
    ("users", "get_user_with_orders", ("u",), {"limit": 101}),
    ("users", "find_user_by_email", ("nobody",), {}),
    ("users", "update_user", (User(user_id="u", email="a@example.com"),), {"name": "N"}),
    ("users", "delete_user", ("u",), {}),
]


def test_bad_input_raises_the_sync_apis_typed_error_and_sends_nothing(
    local_table: Settings, requests: Requests
) -> None:
    async def main() -> list[tuple[str, type[Exception], type[Exception]]]:
        raised = []
        for module, name, args, kwargs in BAD_CALLS:
            with pytest.raises(errors.InvalidInput) as sync_error:
                getattr(importlib.import_module(f"repositories.{module}"), name)(*args, **kwargs)
            with pytest.raises(errors.InvalidInput) as async_error:
                awaited = getattr(importlib.import_module(f"repositories.asyncio.{module}"), name)
                await awaited(*args, **kwargs)
            raised.append((name, type(async_error.value), type(sync_error.value)))
        return raised

    raised = arun(main)
    assert [(name, awaited) for name, awaited, _ in raised] == [(name, sync) for name, _, sync in raised]
    assert requests.sent == [] and raw_scan(local_table) == []


# --- the entities' own awaited methods ---------------------------------------------------------------


def test_entity_methods_queries_and_collections_awaited(local_table: Settings) -> None:
    user_id = existing_user(local_table)
    ids = seed_orders(local_table, user_id, 7)

    async def main() -> None:
        lamp = Product(product_id="lamp", name="Lamp", price=Decimal("9.99"))
        await lamp.asave()
        await lamp.aupdate([Product.price.set(Decimal("7.50"))])
        read = await Product.aget(lamp.pk, lamp.sk, consistent_read=True)
        assert (lamp.version, read.version, read.price) == (2, 2, Decimal("7.50"))
        item = raw_get(local_table, Product, product_id="lamp")
        assert item is not None and (item["Price"], item["Version"]) == ({"N": "7.50"}, {"N": "2"})
        gone = Product(product_id="gone", name="Gone", price=Decimal(1))
        await gone.asave()
        assert raw_get(local_table, Product, product_id="gone") is not None
        await gone.adelete()
        assert raw_get(local_table, Product, product_id="gone") is None
        with pytest.raises(Product.DoesNotExist):
            await Product.aget(gone.pk, gone.sk, consistent_read=True)
        first = await Order.of_user.apage(user_id=user_id, limit=4)
        second = Order.of_user.page(user_id=user_id, limit=4, cursor=first.next_cursor)
        assert [o.order_id for p in (first, second) for o in p.items] == ids
        assert (await Order.of_user.afirst(user_id=user_id)).order_id == ids[0]  # type: ignore[union-attr]
        every = await Order.of_user.aall(user_id=user_id)
        assert [o.order_id for o in every] == ids
        some = await Order.abatch_get([(o.pk, o.sk) for o in every[:3]])
        assert sorted(o.order_id for o in some) == ids[:3]
        user, page = await Order.with_user.apage(user_id=user_id, limit=3)
        assert user.user_id == user_id and [o.order_id for o in page.items] == ids[::-1][:3]

    arun(main)


def test_a_composed_transaction_commits_once_and_an_exception_in_the_block_sends_nothing(
    local_table: Settings, requests: Requests
) -> None:
    user_id = existing_user(local_table)
    placed = [Order(user_id=user_id, order_id=new_order_id(BASE + timedelta(seconds=i)),
                    amount=Decimal(i + 1), status="PENDING") for i in range(2)]

    async def main() -> None:
        async with atransaction() as t:
            for order in placed:
                t.save(order)
        assert requests.sent == [("TransactWriteItems", False)]
        with pytest.raises(LookupError):
            async with atransaction() as t:
                t.save(Order(user_id=user_id, order_id=new_order_id(BASE), amount=Decimal(5),
                             status="PENDING"))
                raise LookupError("the block failed")

    arun(main)
    assert len(requests.sent) == 1 and [o.version for o in placed] == [1, 1]
    rows = stored(local_table, "ORDER")
    assert sorted(o["OrderId"]["S"] for o in rows) == sorted(o.order_id for o in placed)


def test_reads_go_through_the_cache_and_async_writes_invalidate_it(
    local_table: Settings, raw: RawTable, requests: Requests
) -> None:
    user = arun(lambda: users.create_user(random_email(), "Ada"))
    cache.configure(ttl_seconds=60)
    seen: list[tuple[str, int]] = []

    def note(read: User) -> None:
        seen.append((read.name, requests.count("GetItem")))

    async def main() -> None:
        note(await users.get_user(user.user_id))
        raw.client.update_item(  # another writer, behind the cache's back
            TableName=raw.table, Key={"PK": {"S": user.pk}, "SK": {"S": user.sk}},
            UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "Name"},
            ExpressionAttributeValues={":n": {"S": "Behind"}})
        cached = await users.get_user(user.user_id)
        note(cached)
        note(sync_users.get_user(user.user_id))  # one cache for both APIs
        await users.update_user(cached, name="Ada Lovelace")
        note(await users.get_user(user.user_id))

    try:
        arun(main)
    finally:
        cache.reset()
    assert seen == [("Ada", 1), ("Ada", 1), ("Ada", 1), ("Ada Lovelace", 2)]
    assert arun(lambda: users.get_user(user.user_id)).name == "Ada Lovelace"
    assert requests.count("GetItem") == 3  # no cache any more: read from the table


# --- one loop, many tasks ----------------------------------------------------------------------------


def test_64_concurrent_orders_from_one_loop_are_in_flight_together_and_each_stored_once(
    local_table: Settings, requests: Requests
) -> None:
    user_id = existing_user(local_table)

    async def main() -> list[Order]:
        return list(await asyncio.gather(*(orders.place_order(user_id, Decimal(i + 1)) for i in range(64))))

    placed = arun(main)
    rows = stored(local_table, "ORDER")
    assert sorted(r["OrderId"]["S"] for r in rows) == sorted({o.order_id for o in placed})
    assert sum(Decimal(r["Amount"]["N"]) for r in rows) == sum(range(1, 65))
    assert requests.most_in_flight > 8  # not one after the other


def test_concurrent_transfers_between_the_same_accounts_keep_every_cent(raw: RawTable) -> None:
    a, b = raw.seed_account("100.00"), raw.seed_account("100.00")
    # at most 96.00 each way: never short of funds, whatever the order
    moves = [(a, b, Decimal(i % 3 + 1)) if i % 2 else (b, a, Decimal(i % 3 + 1)) for i in range(64)]

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(accounts.transfer_funds(*move) for move in moves),
                                         return_exceptions=True))

    outcomes = arun(main)
    assert all(isinstance(o, (Transfer, errors.ConflictError)) for o in outcomes), outcomes
    done = [o for o in outcomes if isinstance(o, Transfer)]
    assert done
    assert sorted(t["TransferId"]["S"] for t in raw.transfers()) == sorted(t.transfer_id for t in done)
    net = sum((t.amount if t.to_account == a else -t.amount) for t in done)
    assert (raw.balance(a), raw.balance(b)) == (Decimal(100) + net, Decimal(100) - net)


def test_concurrent_readings_of_one_hour_lose_no_count_sum_or_extreme(local_table: Settings) -> None:
    device = uuid.uuid4().hex
    values = [Decimal((i * 37) % 101 - 50) / 4 for i in range(64)]

    async def main() -> list[Any]:
        await asyncio.gather(*(metrics.record_metric(device, "load", value, at=AT + timedelta(seconds=i),
                                                     retry=PATIENT) for i, value in enumerate(values)))
        return await metrics.get_hourly_aggregates(device, AT, AT)

    (hourly,) = arun(main)
    (aggregate,) = stored(local_table, "METRIC_AGG")
    expected = (64, sum(values), min(values), max(values))
    assert (int(aggregate["Count"]["N"]), *(Decimal(aggregate[n]["N"]) for n in ("Sum", "Min", "Max"))) == (
        expected)
    assert (hourly.sample_count, hourly.total, hourly.minimum, hourly.maximum) == expected


def test_every_request_is_awaited_and_the_loop_runs_other_tasks_while_it_is_in_flight(
    local_table: Settings, requests: Requests
) -> None:
    async def calls() -> None:
        account = await accounts.open_account(balance=10)  # PutItem
        other = await accounts.open_account()
        await accounts.get_account(account.account_id)  # GetItem
        await accounts.transfer_funds(account.account_id, other.account_id, 1)  # TransactWriteItems
        user = await users.create_user(random_email(), "Ada")
        await users.update_user(user, name="Ada L")  # UpdateItem
        await orders.get_user_orders(user.user_id)  # Query
        await metrics.get_metrics("device", AT, AT + timedelta(days=2))  # fanned out over three days

    arun(lambda: requests.ticking(calls()))
    operations = [op for op, _ in requests.sent]
    assert {"PutItem", "GetItem", "TransactWriteItems", "UpdateItem"} <= set(operations)
    assert operations.count("Query") == 4
    assert [op for op, inside_run in requests.sent if inside_run] == []  # none sent blocking the loop
    assert len(requests.ticks_during) == len(operations) and min(requests.ticks_during) >= 1


def test_batch_requests_are_awaited_too(local_table: Settings, requests: Requests) -> None:
    many = [Product(product_id=f"b{i}", name="B", price=Decimal(1)) for i in range(3)]

    async def calls() -> None:
        await batch.batch_write(many)
        await batch.batch_get(Product, [{"product_id": p.product_id} for p in many])

    arun(lambda: requests.ticking(calls()))
    assert {op for op, _ in requests.sent} >= {"BatchWriteItem", "BatchGetItem"}
    assert [op for op, inside_run in requests.sent if inside_run] == []
    assert min(requests.ticks_during) >= 1
