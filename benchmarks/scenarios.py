"""The operations ``make bench`` times, each with its variants and one live recording.

``seed`` stores the data through the layer's public functions (a user with 1,000 orders, two
accounts, 30 days of one device's readings). Each ``Scenario`` then runs the layer's operation
once against DynamoDB Local and keeps every response it received; that recording is what every
variant is answered with afterwards, so all of them decode the very same bytes. Each other
variant also runs once live first, which proves its hand-built requests valid.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from benchmarks import baselines
from benchmarks.baselines import BareModels
from benchmarks.replay import WIRE, Recording
from benchmarks.timing import Variant
from core.config import Settings
from models import Product
from repositories import accounts, batch, metrics, orders, products, users

ORDERS = 1000
PAGE = 100
DAYS = 30
READINGS_A_DAY = 8
TOTAL = "TOTAL"
ONE_BY_ONE = "one put per item"


@dataclass
class Fixture:
    """The seeded data and the clients of the baselines."""

    settings: Settings
    bare: BareModels
    raw: Any
    table: Any
    user_id: str  # holds the 1,000 orders that are read
    order_id: str
    writer_id: str  # the user new orders are placed for
    source: str
    target: str
    device_id: str
    start: datetime
    end: datetime

    @property
    def table_name(self) -> str:
        """The benchmark's table."""
        return self.settings.table_name


@dataclass
class Scenario:
    """One operation: its variants (the layer first) and the responses they are all answered with."""

    name: str
    variants: list[Variant]
    recording: Recording = field(default_factory=Recording)
    block: int = 100
    latency: float = 0.0
    warmup: list[Variant] | None = None  # stand-ins for the warm-up, when the variants are long

    def variant(self, name: str) -> Variant:
        """The variant called ``name``."""
        return next(v for v in self.variants if v.name == name)


def _parallel(fn: Callable[[int], Any], count: int, workers: int = 4) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, range(count)))


def seed(settings: Settings) -> Fixture:
    """Store the benchmark's data through the layer's public functions."""
    user = users.create_user(f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench")
    writer = users.create_user(f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench writer")
    placed = _parallel(lambda _: orders.place_order(user.user_id, Decimal("10.50")), ORDERS)
    source = accounts.open_account(balance=Decimal("1000000"))
    target = accounts.open_account()
    device = f"dev-{uuid.uuid4().hex[:8]}"
    # Future days: the readings' TTL has not passed.
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)

    def day_of_readings(day: int) -> None:
        for n in range(READINGS_A_DAY):
            at = first + timedelta(days=day, hours=n * 24 // READINGS_A_DAY, minutes=7)
            metrics.record_metric(device, "temperature", Decimal(20 + n) / 4, at=at)

    _parallel(day_of_readings, DAYS)
    return Fixture(
        settings=settings, bare=baselines.bare_models(settings), raw=baselines.raw_client(settings),
        table=baselines.boto3_table(settings), user_id=user.user_id, order_id=placed[0].order_id,
        writer_id=writer.user_id, source=source.account_id, target=target.account_id, device_id=device,
        start=first, end=first + timedelta(days=DAYS) - timedelta(microseconds=1),
    )


def _recorded(layer: Variant, others: Sequence[Variant],
              check: Callable[[str, Any], None] | None = None) -> Recording:
    """Run the layer's operation live and keep its responses; then each other variant live once.
    ``check(name, result)`` is called with what each returned."""
    with WIRE.recording() as recording:
        result = layer.op(0)
    if check is not None:
        check(layer.name, result)
    for variant in others:
        result = variant.op(0)
        if check is not None:
            check(variant.name, result)
    return recording


def _json_floor(recording: Recording, operation: str) -> Variant:
    bodies = recording.bodies(operation)
    return Variant("json.loads", lambda _: [json.loads(body) for body in bodies], sends=False)


# --- single operations ----------------------------------------------------------------------


def put_order(fx: Fixture) -> Scenario:
    """Place one order: a put only if new, with a check that the user exists, in one transaction."""
    variants = [
        Variant("layer", lambda _: orders.place_order(fx.writer_id, Decimal("10.50"))),
        Variant("bare PynamoDB", lambda _: baselines.pynamodb_place_order(fx.bare, fx.writer_id, 10.5)),
        Variant("botocore", lambda _: baselines.botocore_place_order(fx.raw, fx.table_name, fx.writer_id,
                                                                     "10.50")),
    ]
    recording = _recorded(variants[0], variants[1:])
    return Scenario("put order", [*variants, _json_floor(recording, "TransactWriteItems")], recording)


def get_order(fx: Fixture) -> Scenario:
    """Read one order by its key."""
    pk, sk = f"USER#{fx.user_id}", f"ORDER#{fx.order_id}"
    variants = [
        Variant("layer", lambda _: orders.get_order(fx.user_id, fx.order_id)),
        Variant("bare PynamoDB", lambda _: fx.bare.Order.get(pk, sk)),
        Variant("botocore", lambda _: fx.raw.get_item(
            TableName=fx.table_name, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ReturnConsumedCapacity=TOTAL)),
        Variant("boto3 Table", lambda _: fx.table.get_item(Key={"PK": pk, "SK": sk},
                                                           ReturnConsumedCapacity=TOTAL)),
    ]
    recording = _recorded(variants[0], variants[1:])
    return Scenario("get order", [*variants, _json_floor(recording, "GetItem")], recording)


def _boto3_page(fx: Fixture, start_key: dict[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "KeyConditionExpression": Key("PK").eq(f"USER#{fx.user_id}") & Key("SK").begins_with("ORDER#"),
        "ScanIndexForward": False, "Limit": PAGE, "ReturnConsumedCapacity": TOTAL,
    }
    if start_key is not None:
        params["ExclusiveStartKey"] = start_key
    result: dict[str, Any] = fx.table.query(**params)
    return result


def query_page(fx: Fixture) -> Scenario:
    """One page of 100 of a user's orders, newest first."""
    model = fx.bare.Order
    variants = [
        Variant("layer", lambda _: orders.get_user_orders(fx.user_id, limit=PAGE)),
        Variant("bare PynamoDB", lambda _: list(model.query(
            f"USER#{fx.user_id}", model.sk.startswith("ORDER#"), scan_index_forward=False, limit=PAGE))),
        Variant("botocore", lambda _: fx.raw.query(**baselines.order_query(fx.table_name, fx.user_id,
                                                                          PAGE, None))),
        Variant("boto3 Table", lambda _: _boto3_page(fx, None)),
    ]
    recording = _recorded(variants[0], variants[1:])
    return Scenario("query 100", [*variants, _json_floor(recording, "Query")], recording, block=20)


def transfer(fx: Fixture) -> Scenario:
    """Move money: one transaction of the transfer record and two conditioned balance updates."""
    variants = [
        Variant("layer", lambda _: accounts.transfer_funds(fx.source, fx.target, Decimal(1))),
        Variant("bare PynamoDB", lambda _: baselines.pynamodb_transfer(fx.bare, fx.source, fx.target, 1)),
        Variant("botocore", lambda _: baselines.botocore_transfer(fx.raw, fx.table_name, fx.source,
                                                                  fx.target, "1")),
    ]
    recording = _recorded(variants[0], variants[1:])
    return Scenario("transfer", [*variants, _json_floor(recording, "TransactWriteItems")], recording)


# --- 1,000 items through the public API -------------------------------------------------------


def read_orders(fx: Fixture) -> Scenario:
    """All 1,000 orders of the user, page by page (the layer through its cursors)."""
    model = fx.bare.Order

    def layer(_: int) -> int:
        page = orders.get_user_orders(fx.user_id, limit=PAGE)
        count = len(page.items)
        while page.has_more:
            page = orders.get_user_orders(fx.user_id, limit=PAGE, cursor=page.next_cursor)
            count += len(page.items)
        return count

    def raw(_: int) -> int:
        count, start_key = 0, None
        while True:
            result = fx.raw.query(**baselines.order_query(fx.table_name, fx.user_id, PAGE, start_key))
            count += len(result["Items"])
            start_key = result.get("LastEvaluatedKey")
            if start_key is None:
                return count

    def resource(_: int) -> int:
        count, start_key = 0, None
        while True:
            result = _boto3_page(fx, start_key)
            count += len(result["Items"])
            start_key = result.get("LastEvaluatedKey")
            if start_key is None:
                return count

    variants = [
        Variant("layer", layer),
        Variant("bare PynamoDB", lambda _: list(model.query(
            f"USER#{fx.user_id}", model.sk.startswith("ORDER#"), scan_index_forward=False,
            limit=ORDERS, page_size=PAGE))),
        Variant("botocore", raw),
        Variant("boto3 Table", resource),
    ]
    def check(name: str, result: Any) -> None:
        count = len(result) if isinstance(result, list) else result
        if count != ORDERS:
            raise AssertionError(f"{name} read {count} orders live, not the {ORDERS} seeded")

    recording = _recorded(variants[0], variants[1:], check)
    return Scenario("read 1,000", [*variants, _json_floor(recording, "Query")], recording, block=4)


# --- get_metrics: 30 day buckets, concurrently -------------------------------------------------

_KEY_CONDITION = re.compile(r"(#\w+) = (:\w+)")


def _partition_of(body: bytes) -> str:
    """The partition key value a recorded ``Query`` asked for."""
    request = json.loads(body)
    names = request.get("ExpressionAttributeNames", {})
    for name, value in _KEY_CONDITION.findall(request["KeyConditionExpression"]):
        if names.get(name, name) == "PK":
            partition: str = request["ExpressionAttributeValues"][value]["S"]
            return partition
    raise AssertionError("a metrics query without a PK condition")


def get_metrics(fx: Fixture, latency: float) -> Scenario:
    """30 days of a device's readings: the layer's ``get_metrics`` against a loop over the buckets
    (bare PynamoDB) and 8 threads over raw botocore, each request answered after ``latency``."""
    layer = Variant("layer", lambda _: metrics.get_metrics(fx.device_id, fx.start, fx.end))
    with WIRE.recording() as recording:
        found = layer.op(0)
    if len(found) != DAYS * READINGS_A_DAY:
        raise AssertionError(f"get_metrics found {len(found)} readings, not {DAYS * READINGS_A_DAY}")
    # The baselines query exactly the partitions the layer queried, with the same range.
    partitions = [_partition_of(body) for body in recording.requests["Query"]]
    low = f"METRIC#{fx.start.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#"
    high = f"METRIC#{(fx.end + timedelta(microseconds=1)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#"
    model = fx.bare.Metric

    def sequential(_: int) -> list[Any]:
        found: list[Any] = []
        for pk in partitions:
            found.extend(model.query(pk, model.sk.between(low, high)))
        return found

    def bucket(pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "TableName": fx.table_name, "KeyConditionExpression": "PK = :pk AND SK BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":lo": {"S": low}, ":hi": {"S": high}},
            "ReturnConsumedCapacity": TOTAL,
        }
        while True:
            result = fx.raw.query(**params)
            items.extend(result["Items"])
            if "LastEvaluatedKey" not in result:
                return items
            params["ExclusiveStartKey"] = result["LastEvaluatedKey"]

    def threaded(_: int) -> list[Any]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return [item for items in pool.map(bucket, partitions) for item in items]

    others = [Variant("bare PynamoDB", sequential), Variant("botocore", threaded)]
    for variant in others:
        if len(variant.op(0)) != len(found):
            raise AssertionError(f"{variant.name} read another number of readings than get_metrics")
    return Scenario(f"get_metrics {len(partitions)} buckets", [layer, *others], recording, block=2,
                    latency=latency)


# --- batch writes ------------------------------------------------------------------------------


def _products(prefix: str, count: int) -> list[tuple[str, str, Decimal]]:
    return [(f"{prefix}-{n:06d}", f"Product {n}", Decimal(n % 5000) / 100) for n in range(count)]


def _batch_variants(fx: Fixture, items: list[tuple[str, str, Decimal]], singles: int) -> list[Variant]:
    """Write ``items``: the layer's ``batch_write``, PynamoDB's ``Model.batch_write()``, raw
    ``BatchWriteItem``; and the layer's ``put_product`` for the first ``singles`` of them."""

    def layer(_: int) -> None:
        batch.batch_write([Product(product_id=p, name=name, price=price) for p, name, price in items])

    def bare(_: int) -> None:
        when = baselines.now()
        with fx.bare.Product.batch_write() as writer:
            for p, name, price in items:
                writer.save(baselines.pynamodb_product(fx.bare, p, name, float(price), when))

    def raw(_: int) -> None:
        when = baselines.stamp(baselines.now())
        wire = [baselines.botocore_product(p, name, str(price), when) for p, name, price in items]
        baselines.botocore_batch_write(fx.raw, fx.table_name, wire)

    def one_by_one(_: int) -> None:
        for p, name, price in items[:singles]:
            products.put_product(p, name, price)

    count = len(items)
    return [
        Variant("layer", layer, block=1, items=count),
        Variant("bare PynamoDB", bare, block=1, items=count),
        Variant("botocore", raw, block=1, items=count),
        Variant(ONE_BY_ONE, one_by_one, block=1, items=singles),
    ]


def batch_write(fx: Fixture, count: int, singles: int) -> Scenario:
    """``count`` new products written in batches (and ``singles`` of them one put each)."""
    live = [_batch_variants(fx, _products(f"live{n}", 100), 1) for n in range(3)]
    with WIRE.recording() as recording:
        live[0][0].op(0)  # the layer's batch_write
        live[0][3].op(0)  # and one put_product
    live[1][1].op(0)
    live[2][2].op(0)
    return Scenario(f"batch_write {count:,}", _batch_variants(fx, _products("p", count), singles),
                    recording, block=1, warmup=_batch_variants(fx, _products("w", 500), 20))
