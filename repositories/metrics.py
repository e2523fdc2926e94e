"""Device metrics: readings in per-day partitions with a TTL, and hourly aggregates beside them.

What ``Metric`` declares is kept by its own write (``models.planning``): saving a reading folds it
into its hour's ``MetricAggregate`` in ONE ``TransactWriteItems`` (``MetricAggregate.fold_step``
explains why no extreme is lost), both expire by TTL, and the day partitions are write-sharded
over the declared ``WriteShards`` count. A second reading of the same metric, dimensions and
microsecond is ``AlreadyExists``. ``record_metric(..., idempotency_key=)`` is scoped to the device:
the key's ``IdempotencyRecord`` joins the same transaction, so the same key with the same
arguments returns the first reading and folds nothing twice (``models.idempotency``).

Values are ``int``, ``Decimal``, numeric ``str`` or ``float``: metrics are measurements, so a
float is accepted and converted as written, ``Decimal(repr(v))`` (``0.1`` is stored as ``0.1``,
not ``0.1000000000000000055...``). NaN and infinities are refused.

``get_metrics`` queries every day bucket of the range (and every shard of each), concurrently in
a bounded pool (threads; tasks of the caller's loop for ``repositories.asyncio``), each to its last
page, and merges them in time order. The name is the sort key's
second part, after the timestamp, so it cannot narrow the key condition: ``name=`` is a filter (it
saves transfer, not read capacity). Reads fan out over the declared shard count and the unsharded
partition (readings stored before sharding); after lowering the count, raise it back for reads.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from core.engine import bridge
from core.errors import ConflictError, InvalidInput, RetriesExhausted
from core.retry import RetryPolicy
from models import idempotency, planning, sending
from models.attributes import check_text, to_decimal
from models.idempotency import IdempotencyKey
from models.metric import RETENTION, Metric
from models.metric_aggregate import MetricAggregate, hour_of
from models.queries import BoundQuery
from models.table import TableModel, utcnow
from repositories import query
from repositories._common import aware_utc, key_part, retry_policy

T = TypeVar("T", bound=TableModel)

MAX_RANGE = timedelta(days=366)
MAX_WORKERS = 8
MAX_DIMENSION_LENGTH = 256
_PAGE_SIZE: int | None = None  # DynamoDB's 1 MB pages; tests shrink it to prove the paging
_TICK = timedelta(microseconds=1)  # timestamps in keys have microsecond resolution
_EXPONENTS = range(-130, 126)  # the magnitudes a DynamoDB number can hold: 1E-130 .. 9.99E+125


def record_metric(
    device_id: str,
    name: str,
    value: int | Decimal | str | float,
    *,
    at: datetime | None = None,
    dimensions: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
    idempotency_key: str | None = None,
) -> Metric:
    """Store one reading and fold it into its hour's aggregate, in one transaction.

    ``AlreadyExists`` if this metric has a reading with these dimensions at this exact timestamp;
    ``RetriesExhausted`` if concurrent writers kept winning (``retry``); nothing is written then.
    ``idempotency_key`` (scoped to the device, kept 7 days): called again with the same key and the
    same arguments, the first call's reading is returned and nothing is written or folded again,
    also when the first call ended in ``WriteOutcomeUnknown``; with other arguments,
    ``IdempotencyKeyReused``.
    """
    device_id, name = key_part(device_id, "device_id"), key_part(name, "name")
    number = _number(value)
    policy = retry_policy(retry, sending.CONTENTION_RETRY)
    given = None if at is None else aware_utc(at, "at")
    when = utcnow() if given is None else given
    if when > datetime.max.replace(tzinfo=UTC) - RETENTION - timedelta(hours=1):
        raise InvalidInput("at + the retention is past the end of time")
    extra = _dimensions(dimensions)
    point = Metric(device_id=device_id, metric_name=name, timestamp=when, value=number, dimensions=extra)
    point.fill_keys()  # every key part checked before any request
    arguments = {"device_id": device_id, "name": name, "value": number, "at": given, "dimensions": extra}
    key = IdempotencyKey.of("record_metric", idempotency_key, owner=device_id, arguments=arguments)
    try:
        first = idempotency.execute(lambda: planning.plan_put(point), key, Metric, what="record_metric",
                                    retry=policy)
    except ConflictError as exc:
        message = "concurrent writers kept winning; the reading was not recorded"
        raise RetriesExhausted(message, [point]) from exc
    return point if first is None else first


def get_metrics(device_id: str, start: datetime, end: datetime, *, name: str | None = None) -> list[Metric]:
    """The device's readings with ``start <= timestamp <= end``, in time order, across day buckets."""
    device_id = key_part(device_id, "device_id")
    start, end = _range(start, end)
    between = ({"timestamp": start}, {"timestamp": end + _TICK})
    condition, _ = query.sort_condition(Metric.in_day, between=between)
    flt = None if name is None else Metric.metric_name == key_part(name, "name")
    found = _fan_out(Metric.in_day, _partitions(Metric, device_id, start, end), condition, flt)
    return list(heapq.merge(*found, key=lambda metric: metric.sk))


def get_hourly_aggregates(
    device_id: str, start: datetime, end: datetime, *, name: str | None = None
) -> list[MetricAggregate]:
    """The hourly aggregates of every hour that overlaps ``[start, end]``, by hour then name.

    With sharding, the shards' aggregates of one hour and name are summed into one (not saved).
    """
    device_id = key_part(device_id, "device_id")
    start, end = _range(start, end)
    last_hour = end.replace(minute=0, second=0, microsecond=0)
    between = ({"hour": hour_of(start)}, {"hour": hour_of(last_hour + timedelta(hours=1))})
    condition, _ = query.sort_condition(MetricAggregate.in_day, between=between)
    flt = None if name is None else MetricAggregate.metric_name == key_part(name, "name")
    partitions = _partitions(MetricAggregate, device_id, start, end)
    groups: dict[tuple[str, str], list[MetricAggregate]] = {}
    for part in _fan_out(MetricAggregate.in_day, partitions, condition, flt):
        for aggregate in part:
            groups.setdefault((aggregate.hour, aggregate.metric_name), []).append(aggregate)
    return [_combine(groups[key]) for key in sorted(groups)]


def _fan_out(declared: BoundQuery[T], partitions: Sequence[str], condition: Any, flt: Any) -> list[list[T]]:
    """Query each partition to its last page, concurrently; one sorted list per partition."""

    def fetch(pk: str) -> list[T]:
        return query.every(declared, pk, condition, filter_condition=flt, page_size=_PAGE_SIZE)

    declared.model._get_connection()  # build the cached connection here, not racing in the workers
    # Threads for a caller that waits, tasks of its loop (asyncio.gather) for one that awaits.
    return bridge.map_bounded(fetch, partitions, limit=MAX_WORKERS)


def _partitions(
    model: type[Metric] | type[MetricAggregate], device_id: str, start: datetime, end: datetime
) -> list[str]:
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    out = [model.key_template("pk").compose(device_id=device_id, day=day) for day in days]
    shards = Metric.shards()
    if shards > 1:
        sharded = model.sharded_pk
        out += [sharded.compose(device_id=device_id, day=day, shard=s) for day in days for s in range(shards)]
    return out


def _combine(parts: list[MetricAggregate]) -> MetricAggregate:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return MetricAggregate(
        device_id=first.device_id,
        metric_name=first.metric_name,
        hour=first.hour,
        sample_count=sum(p.sample_count for p in parts),
        total=sum((p.total for p in parts if p.total is not None), Decimal(0)),
        minimum=min((p.minimum for p in parts if p.minimum is not None), default=None),
        maximum=max((p.maximum for p in parts if p.maximum is not None), default=None),
        created_at=min((p.created_at for p in parts if p.created_at is not None), default=None),
        updated_at=max((p.updated_at for p in parts if p.updated_at is not None), default=None),
    )


def _number(value: Any) -> Decimal:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput("value must be finite")
        value = Decimal(repr(value))
    number = to_decimal(value, what="value")
    if number and number.adjusted() not in _EXPONENTS:
        raise InvalidInput("value is outside the range a DynamoDB number can hold")
    return number


def _range(start: Any, end: Any) -> tuple[datetime, datetime]:
    start, end = aware_utc(start, "start"), aware_utc(end, "end")
    if start > end:
        raise InvalidInput("start is after end")
    if end - start > MAX_RANGE:
        raise InvalidInput(f"a range may span at most {MAX_RANGE.days} days")
    if end > datetime.max.replace(tzinfo=UTC) - timedelta(hours=1):
        raise InvalidInput("end is too close to the end of time")
    return start, end


def _dimensions(dimensions: Any) -> dict[str, str] | None:
    if dimensions is None:
        return None
    if not isinstance(dimensions, Mapping):
        raise InvalidInput("dimensions must be a mapping of str to str")
    for key, val in dimensions.items():
        if not (isinstance(key, str) and key and isinstance(val, str)):
            raise InvalidInput("dimensions must map non-empty str names to str values")
        check_text(key, "a dimension's name", max_length=MAX_DIMENSION_LENGTH)
        check_text(val, "a dimension's value", max_length=MAX_DIMENSION_LENGTH, min_length=0)
    return dict(dimensions) or None
