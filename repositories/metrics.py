"""Device metrics: points in per-day partitions with a TTL, and hourly aggregates beside them.

``record_metric`` writes the point and updates its hour's aggregate in ONE ``TransactWriteItems``:

- put the point, on condition ``attribute_not_exists(PK)`` (a second reading of the same metric
  at the same microsecond is ``AlreadyExists``);
- update the aggregate: ``ADD Count 1, Sum :v``, and ``SET Min = :v`` only when ``v`` is below the
  ``Min`` read just before, on condition ``attribute_not_exists(Min) OR Min > :v`` (``Max`` alike).

Why no writer can lose an extreme: ``Min`` only ever goes down. If the read showed ``Min <= v``,
``Min`` stays ``<= v`` forever, and leaving it alone is right without a condition. If it showed
``Min > v`` (or none), the ``SET`` is guarded: when a concurrent writer went lower meanwhile, the
condition fails, the whole transaction is cancelled (no point, no count) and is retried after a
fresh read, which then leaves ``Min`` alone. A ``TransactionConflict`` (another transaction on the
aggregate at the same moment) is retried the same way, with backoff and full jitter. So the
aggregate always equals its points, and a crash cannot leave a point without its aggregate. (The
alternative, the transaction for count and sum followed by two conditional updates for min and
max, costs more writes and loses an extreme if the process dies between them.)

Values are ``int``, ``Decimal``, numeric ``str`` or ``float``: metrics are measurements, so a
float is accepted and converted as written, ``Decimal(repr(v))`` (``0.1`` is stored as ``0.1``,
not ``0.1000000000000000055...``). NaN and infinities are refused.

``get_metrics`` queries every day bucket of the range, concurrently (bounded thread pool), each
to its last page, and merges them in time order. The name is the sort key's last part
(``METRIC#{timestamp}#{name}``), after the timestamp, so it cannot narrow the key condition:
``name=`` is a filter (it saves transfer, not read capacity).

Write sharding is opt-in: ``shards=N`` (or ``configure_sharding(N)``) spreads a device's writes
over ``DEVICE#{device_id}#{day}#{shard}``, the shard ``crc32(timestamp#name) % N`` (so a
repeated reading still meets its duplicate). Aggregates are sharded alike, one per shard, so no
item stays hot; reads fan out over the N shards and the unsharded partition (points written
before sharding) and merge: points in time order, aggregates summed per hour and name. N may be
raised over time; after lowering it, read with the largest N ever used.

Caveat when N changes: the duplicate check (``AlreadyExists``) only sees the point's own shard.
A reading recorded under one N and sent again under another usually hashes to another shard
(or to the unsharded partition), so it is stored a second time and counted twice in the
aggregates. Change N only when no reading recorded before the change can be sent again (retries
and replays drained), or deduplicate upstream; a check across every shard would cost N reads per
write.
"""

from __future__ import annotations

import contextvars
import heapq
import math
import uuid
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any, TypeVar

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from core.errors import AlreadyExists, InvalidInput, RetriesExhausted
from core.retry import RetryPolicy
from models.attributes import to_decimal
from models.keys import KeyTemplate, format_part
from models.metric import Metric
from models.metric_aggregate import MetricAggregate
from models.table import TableModel, utcnow
from repositories._common import (
    CONDITION_FAILED,
    TRANSACTION_CONFLICT,
    TRANSACTION_CONFLICT_EXCEPTION,
    aware_utc,
    cancellation_codes,
    error_code,
    key_part,
    raise_unexpected,
)

T = TypeVar("T", bound=TableModel)

DEFAULT_RETENTION = timedelta(days=30)
MAX_RANGE = timedelta(days=366)
MAX_SHARDS = 100
MAX_WORKERS = 8
CONTENTION_RETRY = RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=1.0)
_PAGE_SIZE: int | None = None  # DynamoDB's 1 MB pages; tests shrink it to prove the paging
_TICK = timedelta(microseconds=1)  # timestamps in keys have microsecond resolution
_EXPONENTS = range(-130, 126)  # the magnitudes a DynamoDB number can hold: 1E-130 .. 9.99E+125
# Not TransactionInProgressException: botocore retries that one itself (core.retry); when it still
# reaches us the attempt's outcome is unknown, and a fresh attempt would store the point twice.
_CONTENDED_CODES = {TRANSACTION_CONFLICT_EXCEPTION}

_default_shards = 1


class _Contended(Exception):
    """A concurrent writer won this round; read again and retry."""


def configure_sharding(shards: int) -> None:
    """Set the shard count used when a call does not pass ``shards`` (1, the default: unsharded)."""
    global _default_shards
    _default_shards = _shard_count(shards)


def record_metric(
    device_id: str,
    name: str,
    value: int | Decimal | str | float,
    *,
    at: datetime | None = None,
    dimensions: Mapping[str, str] | None = None,
    retention: timedelta = DEFAULT_RETENTION,
    shards: int | None = None,
    retry: RetryPolicy | None = None,
) -> Metric:
    """Store one reading (expiring ``retention`` after ``at``) and fold it into its hour's aggregate.

    ``AlreadyExists`` if this metric has a reading at this exact timestamp; ``RetriesExhausted``
    if concurrent writers kept winning; nothing is written in either case.
    """
    device_id, name = key_part(device_id, "device_id"), key_part(name, "name")
    number = _number(value)
    when = utcnow() if at is None else aware_utc(at, "at")
    if not isinstance(retention, timedelta) or retention <= timedelta(0):
        raise InvalidInput("retention must be a positive timedelta")
    count = _shard_count(shards)
    shard = None if count == 1 else zlib.crc32(f"{format_part(when)}#{name}".encode()) % count
    try:
        expires = when + retention
    except OverflowError as exc:
        raise InvalidInput("at + retention is past the end of time") from exc
    point = Metric(device_id=device_id, metric_name=name, timestamp=when, value=number,
                   dimensions=_dimensions(dimensions), expires_at=expires, shard=shard)  # fmt: skip
    aggregate = MetricAggregate(device_id=device_id, metric_name=name, hour=_hour(when), shard=shard)
    point.fill_keys()  # every key part checked before any request
    aggregate.fill_keys()
    try:
        (retry or CONTENTION_RETRY).call(_Contended, _record_once, point, aggregate, number)
    except _Contended as exc:
        message = "concurrent writers kept winning; the reading was not recorded"
        raise RetriesExhausted(message, [point]) from exc.__cause__
    return point


def get_metrics(
    device_id: str, start: datetime, end: datetime, *, name: str | None = None, shards: int | None = None
) -> list[Metric]:
    """The device's readings with ``start <= timestamp <= end``, in time order, across day buckets."""
    device_id = key_part(device_id, "device_id")
    start, end = _range(start, end)
    template = Metric.key_template("sk")
    condition = Metric.sk.between(template.prefix(timestamp=start), template.prefix(timestamp=end + _TICK))
    flt = None if name is None else Metric.metric_name == key_part(name, "name")
    partitions = _partitions(Metric, device_id, start, end, _shard_count(shards))
    found = _fan_out(Metric, partitions, condition, flt)
    return list(heapq.merge(*found, key=lambda metric: metric.sk))


def get_hourly_aggregates(
    device_id: str, start: datetime, end: datetime, *, name: str | None = None, shards: int | None = None
) -> list[MetricAggregate]:
    """The hourly aggregates of every hour that overlaps ``[start, end]``, by hour then name.

    With sharding, the shards' aggregates of one hour and name are summed into one (not saved).
    """
    device_id = key_part(device_id, "device_id")
    start, end = _range(start, end)
    template = MetricAggregate.key_template("sk")
    last_hour = end.replace(minute=0, second=0, microsecond=0)
    condition = MetricAggregate.sk.between(
        template.prefix(hour=_hour(start)), template.prefix(hour=_hour(last_hour + timedelta(hours=1)))
    )
    flt = None if name is None else MetricAggregate.metric_name == key_part(name, "name")
    partitions = _partitions(MetricAggregate, device_id, start, end, _shard_count(shards))
    groups: dict[tuple[str, str], list[MetricAggregate]] = {}
    for aggregate in (a for part in _fan_out(MetricAggregate, partitions, condition, flt) for a in part):
        groups.setdefault((aggregate.hour, aggregate.metric_name), []).append(aggregate)
    return [_combine(groups[key]) for key in sorted(groups)]


def _record_once(point: Metric, aggregate: MetricAggregate, number: Decimal) -> None:
    low, high = _extremes(aggregate)
    now, agg = utcnow(), MetricAggregate
    actions: list[Action] = [
        agg.entity_type.set(MetricAggregate),
        agg.device_id.set(aggregate.device_id),
        agg.metric_name.set(aggregate.metric_name),
        agg.hour.set(aggregate.hour),
        agg.sample_count.add(1),
        agg.total.add(number),
        agg.created_at.set(agg.created_at | now),
        agg.updated_at.set(now),
    ]
    if aggregate.shard is not None:
        actions.append(agg.shard.set(aggregate.shard))
    conditions: list[Condition] = []
    if low is None or number < low:
        actions.append(agg.minimum.set(number))
        conditions.append(agg.minimum.does_not_exist() | (agg.minimum > number))
    if high is None or number > high:
        actions.append(agg.maximum.set(number))
        conditions.append(agg.maximum.does_not_exist() | (agg.maximum < number))
    # A known version makes PynamoDB add `ADD Version 1`; add_version_condition=False drops its
    # `Version = 0` check. The aggregate's Version then counts its updates.
    aggregate.version = 0
    try:
        # A fresh token per attempt: botocore's own retries of one attempt stay idempotent.
        with TransactWrite(connection=Metric._get_connection().connection,
                           client_request_token=uuid.uuid4().hex) as transaction:  # fmt: skip
            transaction.save(point, condition=Metric.pk.does_not_exist())
            transaction.update(aggregate, actions, condition=_all(conditions), add_version_condition=False)
    except TransactWriteError as exc:
        codes = [*cancellation_codes(exc), None, None]
        if codes[0] == CONDITION_FAILED:
            raise AlreadyExists("this metric has a reading at this timestamp already") from exc
        if TRANSACTION_CONFLICT in codes or codes[1] == CONDITION_FAILED:
            raise _Contended() from exc
        if error_code(exc) in _CONTENDED_CODES:
            raise _Contended() from exc
        raise_unexpected(exc, "record_metric")


def _extremes(aggregate: MetricAggregate) -> tuple[Decimal | None, Decimal | None]:
    agg = MetricAggregate
    names = [agg.minimum.attr_name, agg.maximum.attr_name]
    try:
        stored = agg.get(aggregate.pk, aggregate.sk, consistent_read=True, attributes_to_get=names)
    except MetricAggregate.DoesNotExist:
        return None, None
    except PynamoDBException as exc:
        raise_unexpected(exc, "record_metric (reading the aggregate)")
    return stored.minimum, stored.maximum


def _fan_out(
    model: type[T], partitions: Sequence[str], condition: Condition, flt: Condition | None
) -> list[list[T]]:
    """Query each partition to its last page, concurrently; one sorted list per partition."""

    def fetch(pk: str) -> list[T]:
        try:
            return list(model.query(pk, condition, filter_condition=flt, page_size=_PAGE_SIZE))
        except PynamoDBException as exc:
            raise_unexpected(exc, f"querying {model.__name__}")

    model._get_connection()  # build the cached connection here, not racing in the workers
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(partitions))) as pool:
        # Each task runs in a copy of this context, so log context bound by the caller follows it.
        futures = [pool.submit(contextvars.copy_context().run, fetch, pk) for pk in partitions]
        return [future.result() for future in futures]


def _partitions(
    model: type[Metric] | type[MetricAggregate], device_id: str, start: datetime, end: datetime, shards: int
) -> list[str]:
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    unsharded: KeyTemplate = model.key_template("pk")
    out = [unsharded.compose(device_id=device_id, day=day) for day in days]
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


def _all(conditions: list[Condition]) -> Condition | None:
    return reduce(lambda a, b: a & b, conditions) if conditions else None


def _hour(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H")


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
    return dict(dimensions)


def _shard_count(shards: Any) -> int:
    if shards is None:
        return _default_shards
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise InvalidInput(f"shards must be an int from 1 to {MAX_SHARDS}")
    return shards

