"""Metrics on DynamoDB Local: real transactions racing on one aggregate, real day buckets."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.client import new_client
from core.config import Settings
from core.retry import RetryPolicy
from models import Metric, MetricAggregate
from repositories.metrics import get_hourly_aggregates, get_metrics, record_metric

pytestmark = pytest.mark.integration

HOUR = datetime(2024, 6, 1, 13, tzinfo=UTC)
THREADS, PER_THREAD = 8, 20
# Contention is what this test provokes; on a loaded machine the default 10 attempts could run out
# (RetriesExhausted) without anything being wrong. A lost extreme still fails the assertions.
PATIENT = RetryPolicy(max_attempts=200, base_delay=0.01, max_delay=0.5)


def query_all(client: Any, settings: Settings, pk: str, sk_prefix: str) -> list[dict[str, Any]]:
    """Every item of one partition whose SK starts with ``sk_prefix``, by raw queries."""
    pages = client.get_paginator("query").paginate(
        TableName=settings.table_name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": sk_prefix}},
        ConsistentRead=True,
    )
    return [item for page in pages for item in page["Items"]]


def test_concurrent_writers_never_lose_a_count_a_sum_or_an_extreme(local_table: Settings) -> None:
    device = uuid.uuid4().hex
    start = threading.Barrier(THREADS)

    def writer(thread: int) -> None:
        rng = random.Random(thread)
        start.wait()  # all threads race from the same moment
        sign = 1 if thread % 2 else -1
        for i in range(PER_THREAD):
            # Random values in a band that widens step by step: nearly every write is a new
            # extreme, so the threads keep racing for Min and Max.
            value = sign * Decimal(i * 1000 + rng.randint(0, 999)) / 100
            at = HOUR + timedelta(seconds=i * THREADS + thread)  # distinct instants, one hour
            record_metric(device, "load", value, at=at, retry=PATIENT)

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(writer, t) for t in range(THREADS)]:
            future.result()

    client = new_client(local_table)
    probe = MetricAggregate(device_id=device, metric_name="load", hour="2024-06-01T13")
    points = query_all(client, local_table, probe.pk, Metric.key_template("sk").prefix())
    values = [Decimal(p["Value"]["N"]) for p in points]
    (aggregate,) = query_all(client, local_table, probe.pk, probe.sk)
    assert len(values) == THREADS * PER_THREAD
    assert int(aggregate["Count"]["N"]) == len(values)
    assert Decimal(aggregate["Sum"]["N"]) == sum(values)
    assert Decimal(aggregate["Min"]["N"]) == min(values)
    assert Decimal(aggregate["Max"]["N"]) == max(values)
    (hourly,) = get_hourly_aggregates(device, HOUR, HOUR)
    assert (hourly.sample_count, hourly.total, hourly.minimum, hourly.maximum) == (
        len(values), sum(values), min(values), max(values),
    )  # fmt: skip


def test_get_metrics_across_three_day_buckets_returns_every_point_in_time_order(
    local_table: Settings,
) -> None:
    device = uuid.uuid4().hex
    client = new_client(local_table)
    first = datetime(2024, 6, 1, 23, 59, 59, 999_999, tzinfo=UTC)
    instants = [first + timedelta(minutes=29 * i) for i in range(100)]  # 2024-06-01 .. 2024-06-03
    shuffled = instants[:]
    random.Random(7).shuffle(shuffled)
    for at in shuffled:  # seeded with raw put_item calls, in random order
        item = Metric(
            device_id=device, metric_name="temp", timestamp=at, value=Decimal(at.minute)
        ).serialize()
        client.put_item(TableName=local_table.table_name, Item=item)
    days = {Metric(device_id=device, metric_name="temp", timestamp=at).pk for at in instants}
    assert len(days) == 3

    found = get_metrics(device, instants[0], instants[90])

    assert [m.timestamp for m in found] == instants[:91]
    assert {m.pk for m in found} == days
