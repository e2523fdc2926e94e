"""Metrics on moto: the point and its aggregate in one transaction, validation, day buckets, shards.

Concurrency against a real engine (threads racing on one aggregate) is in
tests/integration/test_metrics_local.py; here a stale read is injected to show the guard.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from core.client import new_client
from core.config import Settings
from core.errors import AlreadyExists, DataLayerError, InvalidInput, InvalidKey, RetriesExhausted
from core.retry import RetryPolicy
from models import Metric, MetricAggregate
from models.metric import RETENTION
from models.rules import WriteShards
from repositories import metrics
from repositories.metrics import get_hourly_aggregates, get_metrics, record_metric
from tests.helpers import off, on

Item = dict[str, Any]
T0 = datetime(2024, 3, 10, 10, 15, tzinfo=UTC)


def declare_shards(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Declare ``count`` write shards on ``Metric`` for this test (as an edit of models/metric.py would)."""
    rules = tuple(WriteShards(count) if isinstance(rule, WriteShards) else rule for rule in Metric.rules)
    monkeypatch.setattr(Metric, "rules", rules)


@pytest.fixture
def raw(moto_table: Settings) -> Any:
    """A raw botocore client on the test's table, for seeding and checking."""
    return new_client(moto_table)


def new_id() -> str:
    return uuid.uuid4().hex


def all_items(raw: Any, settings: Settings) -> list[Item]:
    items: list[Item] = raw.scan(TableName=settings.table_name, ConsistentRead=True)["Items"]
    return items


def aggregate_item(raw: Any, settings: Settings, device: str, hour: str, name: str = "temp") -> Item | None:
    probe = MetricAggregate(device_id=device, metric_name=name, hour=hour)
    key = {"PK": {"S": probe.pk}, "SK": {"S": probe.sk}}
    item: Item | None = raw.get_item(TableName=settings.table_name, Key=key, ConsistentRead=True).get("Item")
    return item


def seed_points(raw: Any, settings: Settings, device: str, *points: tuple[datetime, str, str]) -> None:
    """Write points with raw put_item calls (wire items from the model, keys from its templates)."""
    for at, name, value in points:
        item = Metric(device_id=device, metric_name=name, timestamp=at, value=Decimal(value)).serialize()
        raw.put_item(TableName=settings.table_name, Item=item)


def seed_aggregate(
    raw: Any, settings: Settings, device: str, hour: str, name: str = "temp", **numbers: str
) -> None:
    probe = MetricAggregate(device_id=device, metric_name=name, hour=hour)
    item = {"PK": {"S": probe.pk}, "SK": {"S": probe.sk}, "EntityType": {"S": "METRIC_AGG"},
            "DeviceId": {"S": device}, "MetricName": {"S": name}, "Hour": {"S": hour}}  # fmt: skip
    item.update({attr: {"N": value} for attr, value in numbers.items()})
    raw.put_item(TableName=settings.table_name, Item=item)


def summary(item: Item | None) -> tuple[str, ...]:
    assert item is not None
    return tuple(item[a]["N"] for a in ("Count", "Sum", "Min", "Max"))


# --- record_metric --------------------------------------------------------------------------------


def test_record_metric_writes_the_point_with_its_ttl_and_the_hourly_aggregate(
    raw: Any, moto_table: Settings
) -> None:
    device = new_id()

    point = record_metric(device, "temp", Decimal("21.5"), at=T0, dimensions={"room": "kitchen"})

    key = {"PK": {"S": point.pk}, "SK": {"S": point.sk}}
    item = raw.get_item(TableName=moto_table.table_name, Key=key)["Item"]
    assert point.pk == f"DEVICE#{device}#2024-03-10"
    assert point.sk == f"METRIC#2024-03-10T10:15:00.000000Z#temp#{point.series}" and point.series != "-"
    assert item["Value"] == {"N": "21.5"} and item["Dimensions"] == {"M": {"room": {"S": "kitchen"}}}
    assert item["ExpiresAt"] == {"N": str(int((T0 + RETENTION).timestamp()))}
    assert summary(aggregate_item(raw, moto_table, device, "2024-03-10T10")) == ("1", "21.5", "21.5", "21.5")


def test_the_aggregate_counts_sums_and_keeps_the_extremes_of_every_point(
    raw: Any, moto_table: Settings
) -> None:
    device = new_id()
    values = ["5", "-2.25", "17", "3.5", "17", "-2.25", "0"]
    for i, value in enumerate(values):
        record_metric(device, "temp", value, at=T0 + timedelta(seconds=i))

    total = sum(Decimal(v) for v in values)
    expected = (str(len(values)), str(total), "-2.25", "17")
    assert summary(aggregate_item(raw, moto_table, device, "2024-03-10T10")) == expected


def test_record_metric_accepts_a_float_as_written(raw: Any, moto_table: Settings) -> None:
    point = record_metric(new_id(), "temp", 0.1, at=T0)
    item = raw.get_item(TableName=moto_table.table_name, Key={"PK": {"S": point.pk}, "SK": {"S": point.sk}})[
        "Item"
    ]
    assert item["Value"] == {"N": "0.1"} and point.value == Decimal("0.1")


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"), True, None, "abc",
              Decimal("1E+126"), Decimal("1E-131"), Decimal("1." + "1" * 38)],
)  # fmt: skip
def test_record_metric_refuses_a_value_dynamodb_cannot_hold_exactly(
    raw: Any, moto_table: Settings, value: Any
) -> None:
    with pytest.raises(InvalidInput):
        record_metric(new_id(), "temp", value, at=T0)
    assert all_items(raw, moto_table) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"device_id": "a#b"}, InvalidKey),
        ({"device_id": ""}, InvalidKey),
        ({"device_id": 7}, InvalidInput),
        ({"name": "t#x"}, InvalidKey),
        ({"at": datetime(2024, 1, 1)}, InvalidInput),
        ({"at": "2024-01-01T00:00:00Z"}, InvalidInput),
        ({"dimensions": {"room": 3}}, InvalidInput),
        ({"dimensions": {"room": "a\u202eb"}}, InvalidInput),
    ],
)
def test_record_metric_refuses_bad_input_and_writes_nothing(
    raw: Any, moto_table: Settings, kwargs: Item, error: type[Exception]
) -> None:
    args = {"device_id": new_id(), "name": "temp", "value": 1, "at": T0, **kwargs}
    with pytest.raises(error):
        record_metric(args.pop("device_id"), args.pop("name"), args.pop("value"), **args)
    assert all_items(raw, moto_table) == []


def test_a_second_reading_at_the_same_instant_is_already_exists_and_leaves_the_aggregate(
    raw: Any, moto_table: Settings
) -> None:
    device = new_id()
    record_metric(device, "temp", 1, at=T0)
    with pytest.raises(AlreadyExists):
        record_metric(device, "temp", 99, at=T0)
    assert summary(aggregate_item(raw, moto_table, device, "2024-03-10T10")) == ("1", "1", "1", "1")


@pytest.mark.parametrize("stale", ["Min", "Max"])
def test_a_stale_read_of_an_extreme_cannot_overwrite_it(
    raw: Any, moto_table: Settings, monkeypatch: pytest.MonkeyPatch, stale: str
) -> None:
    device = new_id()
    seed_aggregate(raw, moto_table, device, "2024-03-10T10", Count="2", Sum="11", Min="1", Max="10")
    real, reads = MetricAggregate._extremes, []

    def first_read_stale(aggregate: MetricAggregate) -> tuple[Decimal | None, Decimal | None]:
        reads.append(aggregate.sk)
        low, high = real(aggregate)
        if len(reads) == 1:  # as if a concurrent writer moved this extreme after our read
            return (Decimal(9), high) if stale == "Min" else (low, Decimal(2))
        return low, high

    monkeypatch.setattr(MetricAggregate, "_extremes", first_read_stale)

    record_metric(device, "temp", 5, at=T0, retry=RetryPolicy(sleep=lambda _: None))

    assert len(reads) == 2  # the guarded SET failed, the transaction was retried after a fresh read
    assert summary(aggregate_item(raw, moto_table, device, "2024-03-10T10")) == ("3", "16", "1", "10")


def test_when_writers_keep_winning_record_metric_gives_up_and_writes_nothing(
    raw: Any, moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = new_id()
    seed_aggregate(raw, moto_table, device, "2024-03-10T10", Count="2", Sum="11", Min="1", Max="10")
    monkeypatch.setattr(MetricAggregate, "_extremes", lambda aggregate: (None, None))

    with pytest.raises(RetriesExhausted) as raised:
        record_metric(device, "temp", 5, at=T0, retry=RetryPolicy(max_attempts=3, sleep=lambda _: None))

    assert [p.sk for p in raised.value.unprocessed] == ["METRIC#2024-03-10T10:15:00.000000Z#temp#-"]
    assert [i["SK"]["S"] for i in all_items(raw, moto_table)] == ["AGG#2024-03-10T10#temp"]
    assert summary(aggregate_item(raw, moto_table, device, "2024-03-10T10")) == ("2", "11", "1", "10")


def test_a_transaction_in_progress_is_left_to_botocore_and_not_retried_again(moto_table: Settings) -> None:
    # Fabricated after botocore's retry handler, as if its own retries of the token were spent:
    # a fresh attempt now could store the reading twice, so record_metric reports it instead.
    sent: list[str] = []

    def in_progress(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        sent.append(params["url_path"])
        error = {"Error": {"Code": "TransactionInProgressException", "Message": "injected"}}
        return AWSResponse("https://dynamodb.invalid", 400, HTTPHeaders(), None), error

    client = Metric._get_connection().connection.client
    on(client, "before-call.dynamodb.TransactWriteItems", in_progress)  # type: ignore[arg-type]
    try:
        with pytest.raises(DataLayerError, match="TransactionInProgressException") as raised:
            record_metric(new_id(), "temp", 5, at=T0, retry=RetryPolicy(sleep=lambda _: None))
    finally:
        off(client, "before-call.dynamodb.TransactWriteItems", in_progress)
    assert not isinstance(raised.value, RetriesExhausted)
    assert len(sent) == 1


# --- get_metrics ----------------------------------------------------------------------------------


def test_get_metrics_reads_every_day_bucket_in_time_order(raw: Any, moto_table: Settings) -> None:
    device = new_id()
    start, end = datetime(2024, 3, 9, 22, tzinfo=UTC), datetime(2024, 3, 11, 2, tzinfo=UTC)
    inside = [start, start + timedelta(hours=3), T0, T0 + timedelta(microseconds=1), end]
    outside = [start - timedelta(microseconds=1), end + timedelta(microseconds=1)]
    seed_points(raw, moto_table, device, *[(at, "temp", "1") for at in reversed(inside + outside)])
    seed_points(raw, moto_table, device, (T0, "humidity", "40"))
    seed_aggregate(raw, moto_table, device, "2024-03-10T10", Count="1", Sum="1", Min="1", Max="1")

    found = get_metrics(device, start, end)

    assert [(m.timestamp, m.metric_name) for m in found] == sorted(
        [(at, "temp") for at in inside] + [(T0, "humidity")]
    )
    assert all(isinstance(m, Metric) for m in found)


def test_get_metrics_by_name_filters_the_other_names(raw: Any, moto_table: Settings) -> None:
    device = new_id()
    seed_points(
        raw, moto_table, device, (T0, "temp", "1"), (T0, "humidity", "40"), (T0 + timedelta(1), "temp", "2")
    )
    found = get_metrics(device, T0, T0 + timedelta(days=1), name="temp")
    assert [m.value for m in found] == [Decimal(1), Decimal(2)]


def test_get_metrics_reads_every_page_of_a_bucket(
    raw: Any, moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = new_id()
    seed_points(raw, moto_table, device, *[(T0 + timedelta(seconds=i), "temp", str(i)) for i in range(7)])
    monkeypatch.setattr(metrics, "_PAGE_SIZE", 2)
    assert [m.value for m in get_metrics(device, T0, T0 + timedelta(hours=1))] == [
        Decimal(i) for i in range(7)
    ]


def test_get_metrics_queries_the_day_buckets_concurrently(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three queries must be in flight together to pass the barrier; one after another, it breaks.
    barrier, real = threading.Barrier(3, timeout=10), Metric.query

    def query(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(Metric, "query", query)
    assert get_metrics(new_id(), T0, T0 + timedelta(days=2)) == []


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (T0, T0 - timedelta(microseconds=1)),
        (T0, T0 + timedelta(days=366, microseconds=1)),
        (T0.replace(tzinfo=None), T0),
        (T0, "tomorrow"),
        (T0, datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_get_metrics_refuses_a_bad_range(moto_table: Settings, start: Any, end: Any) -> None:
    with pytest.raises(InvalidInput):
        get_metrics(new_id(), start, end)
    with pytest.raises(InvalidInput):
        get_hourly_aggregates(new_id(), start, end)


def test_a_range_of_366_days_in_another_time_zone_is_accepted(moto_table: Settings) -> None:
    tz = timezone(timedelta(hours=-5))
    assert get_metrics(new_id(), T0.astimezone(tz), T0.astimezone(tz) + timedelta(days=366)) == []


# --- get_hourly_aggregates ------------------------------------------------------------------------


def test_get_hourly_aggregates_returns_every_hour_overlapping_the_range(
    raw: Any, moto_table: Settings
) -> None:
    device = new_id()
    for hour in ("2024-03-10T09", "2024-03-10T10", "2024-03-10T11", "2024-03-10T12", "2024-03-11T00"):
        seed_aggregate(raw, moto_table, device, hour, Count="1", Sum="2", Min="2", Max="2")
    seed_aggregate(
        raw, moto_table, device, "2024-03-10T11", name="humidity", Count="1", Sum="5", Min="5", Max="5"
    )
    seed_points(raw, moto_table, device, (T0, "temp", "1"))

    found = get_hourly_aggregates(device, datetime(2024, 3, 10, 10, 30, tzinfo=UTC),
                                  datetime(2024, 3, 11, 0, 0, tzinfo=UTC))  # fmt: skip

    assert [(a.hour, a.metric_name) for a in found] == [
        ("2024-03-10T10", "temp"), ("2024-03-10T11", "humidity"), ("2024-03-10T11", "temp"),
        ("2024-03-10T12", "temp"), ("2024-03-11T00", "temp"),
    ]  # fmt: skip
    assert all(isinstance(a, MetricAggregate) and a.sample_count == 1 for a in found)
    narrowed = get_hourly_aggregates(device, T0, T0 + timedelta(hours=1), name="humidity")
    assert [(a.hour, a.total) for a in narrowed] == [("2024-03-10T11", Decimal(5))]


# --- write sharding -------------------------------------------------------------------------------


def test_sharded_points_spread_over_the_shards_and_read_back_merged(
    raw: Any, moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = new_id()
    record_metric(device, "temp", 100, at=T0 - timedelta(minutes=1))  # before sharding was declared
    declare_shards(monkeypatch, 4)
    values = [Decimal(i) / 4 for i in range(40)]
    for i, value in enumerate(values):
        record_metric(device, "temp", value, at=T0 + timedelta(milliseconds=i * 7))

    partitions = {i["PK"]["S"] for i in all_items(raw, moto_table)}
    shards = {Metric.sharded_pk.parse(pk)["shard"] for pk in partitions if pk.count("#") == 3}
    assert shards == {"0", "1", "2", "3"}

    found = get_metrics(device, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [m.value for m in found] == [Decimal(100), *values]

    (hourly,) = get_hourly_aggregates(device, T0, T0)
    everything = [Decimal(100), *values]
    assert (hourly.sample_count, hourly.total, hourly.minimum, hourly.maximum) == (
        len(everything), sum(everything), min(everything), max(everything),
    )  # fmt: skip


def test_the_declared_shard_count_is_used_by_writes_and_reads_alike(
    raw: Any, moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = new_id()
    declare_shards(monkeypatch, 3)
    for i in range(12):
        record_metric(device, "temp", i, at=T0 + timedelta(seconds=i))

    assert all(i["PK"]["S"].count("#") == 3 for i in all_items(raw, moto_table))
    assert [m.value for m in get_metrics(device, T0, T0 + timedelta(minutes=1))] == [
        Decimal(i) for i in range(12)
    ]
    with pytest.raises(TypeError):
        WriteShards(True).bind(Metric)


def test_a_repeated_sharded_reading_meets_its_duplicate(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare_shards(monkeypatch, 8)
    device = new_id()
    record_metric(device, "temp", 1, at=T0)
    with pytest.raises(AlreadyExists):
        record_metric(device, "temp", 2, at=T0)
