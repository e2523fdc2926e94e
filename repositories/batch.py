"""Batch writes and reads: 25 items / 100 keys a request, unprocessed ones retried with backoff.

DynamoDB may answer a batch with ``UnprocessedItems``/``UnprocessedKeys`` (throttling, or a read
response over 16 MB). Those are sent again with exponential backoff and full jitter, a bounded
number of times (``RetryPolicy``); when the bound is reached ``RetriesExhausted.unprocessed`` holds
what was not written (the entities) or not read (the ``(PK, SK)`` pairs).

Versions. ``BatchWriteItem`` cannot carry a condition, so a batch cannot check a version, and
PynamoDB's own ``BatchWrite`` stores an entity's version without the increment ``save()`` makes.
``batch_write`` therefore:

- writes an entity that was never written (``version is None``) with ``Version`` 1, as ``save()``
  would, and sets its local version to 1;
- refuses an entity that has a version (it was read from, or written to, the table) with
  ``InvalidInput``, unless ``overwrite=True``: the batch could not notice that someone updated
  the stored item since, and their update would be lost without a ``ConflictError``. With
  ``overwrite=True`` it is written with its version + 1 (last writer wins) and its local version
  goes up by one, so an older copy held elsewhere still gets ``ConflictError`` on ``save()``.
  (If the stored version had moved further on, it goes back to this one: that is what
  overwriting means here.)

Every entity is checked before the first request (a ``TableModel`` entity, its keys valid, no two
with the same key, each at most 400 KB as DynamoDB counts it): bad input writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from core.errors import DataLayerError, InvalidInput, InvalidKey, RetriesExhausted
from models.keys import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES
from models.table import PK, SK, TableModel

M = TypeVar("M", bound=TableModel)
P = TypeVar("P")

MAX_WRITE_BATCH = 25  # DynamoDB's limit of items in one BatchWriteItem
MAX_GET_BATCH = 100  # and of keys in one BatchGetItem
MAX_ITEM_BYTES = 400 * 1024
_VERSION = TableModel.version.attr_name

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries, exponential backoff with full jitter (AWS's recommended policy).

    After attempt ``n`` the wait is uniform in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``
    seconds. ``sleep`` is injectable so tests need not wait.
    """

    max_attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidInput("max_attempts must be an int")
        if self.max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1")
        if not (self.base_delay >= 0 and self.max_delay >= 0):
            raise InvalidInput("delays must be >= 0")

    def retrying(self, **kwargs: Any) -> Retrying:
        """A ``tenacity.Retrying`` with this policy's stop, wait and sleep (``kwargs`` add the rest)."""
        return Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=self.base_delay, max=self.max_delay),
            sleep=self.sleep,
            **kwargs,
        )

    def until_done(self, step: Callable[[list[P]], list[P]], pending: list[P]) -> list[P]:
        """Call ``step`` with what is pending until nothing is, or attempts run out; return what is left.

        An exception from ``step`` is not retried here (botocore retries throttling and 5xx itself).
        """
        left = pending

        def attempt() -> list[P]:
            nonlocal left
            left = step(left)
            return left

        def give_up(_: RetryCallState) -> list[P]:
            return left

        result: list[P] = self.retrying(retry=retry_if_result(bool), retry_error_callback=give_up)(attempt)
        return result


DEFAULT_RETRY = RetryPolicy()


def batch_write(
    entities: Iterable[TableModel], *, overwrite: bool = False, retry: RetryPolicy | None = None
) -> None:
    """Put ``entities``, 25 a request; see the module docstring for versions and retries.

    Raises ``InvalidInput`` (nothing written) for bad input and ``RetriesExhausted`` (with the
    entities not written) when unprocessed items remain after the last attempt.
    """
    policy = retry or DEFAULT_RETRY
    batch = _entities(entities)
    items = _prepare(batch, overwrite=overwrite)
    table = TableModel.Meta.table_name
    pending = list(zip(batch, items, strict=True))
    if not pending:
        return
    client = _client()

    def send(chunk: list[tuple[TableModel, dict[str, Any]]]) -> list[tuple[TableModel, dict[str, Any]]]:
        request = {table: [{"PutRequest": {"Item": item}} for _, item in chunk]}
        response = _call(client.batch_write_item, "BatchWriteItem", RequestItems=request)
        left = {_key_of(r["PutRequest"]["Item"]) for r in response.get("UnprocessedItems", {}).get(table, [])}
        for entity, item in chunk:
            if _key_of(item) not in left:
                _written(entity, item)
        return [(entity, item) for entity, item in chunk if _key_of(item) in left]

    for start in range(0, len(pending), MAX_WRITE_BATCH):
        left = policy.until_done(send, pending[start : start + MAX_WRITE_BATCH])
        if left:
            not_written = [entity for entity, _ in left] + [e for e, _ in pending[start + MAX_WRITE_BATCH :]]
            raise RetriesExhausted(
                f"{len(not_written)} of {len(pending)} entities not written after "
                f"{policy.max_attempts} attempts",
                not_written,
            )


def batch_get(
    model: type[M],
    keys: Iterable[Key | Mapping[str, Any]],
    *,
    consistent_read: bool = False,
    retry: RetryPolicy | None = None,
) -> list[M]:
    """Read the ``model`` entities at ``keys``, 100 a request; found ones in the order of ``keys``.

    A key is a ``(PK, SK)`` pair or a mapping of the model's key fields (``{"product_id": "p1"}``),
    composed through its key templates. Repeated keys are read once; missing items, and items of
    another entity type, are left out. ``RetriesExhausted.unprocessed`` lists the ``(PK, SK)``
    pairs not read when the retries run out.
    """
    policy = retry or DEFAULT_RETRY
    if not (isinstance(model, type) and issubclass(model, TableModel) and model.keys is not None):
        raise InvalidInput("model must be an entity class (a TableModel subclass with keys)")
    wanted = list(dict.fromkeys(_key(model, key) for key in _iterable(keys, "keys")))
    table = TableModel.Meta.table_name
    found: dict[Key, dict[str, Any]] = {}
    if not wanted:
        return []
    client = _client()

    def send(chunk: list[Key]) -> list[Key]:
        request = {
            table: {
                "Keys": [{PK: {"S": pk}, SK: {"S": sk}} for pk, sk in chunk],
                "ConsistentRead": consistent_read,
            }
        }
        response = _call(client.batch_get_item, "BatchGetItem", RequestItems=request)
        for item in response.get("Responses", {}).get(table, []):
            found[_key_of(item)] = item
        return [_key_of(k) for k in response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])]

    for start in range(0, len(wanted), MAX_GET_BATCH):
        left = policy.until_done(send, wanted[start : start + MAX_GET_BATCH])
        if left:
            not_read = left + wanted[start + MAX_GET_BATCH :]
            raise RetriesExhausted(
                f"{len(not_read)} of {len(wanted)} keys not read after {policy.max_attempts} attempts",
                not_read,
            )
    return [model.from_raw_data(found[key]) for key in wanted if key in found and _is_a(model, found[key])]


def item_size(item: Mapping[str, Any]) -> int:
    """The size of a wire-format item as DynamoDB counts it against its 400 KB limit."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + _text_size(k) + _value_size(v) for k, v in inner.items())
    if kind not in _SCALAR_SIZES:
        raise InvalidInput(f"unknown DynamoDB type {kind!r}")
    return _SCALAR_SIZES[kind](inner)


def _text_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _number_size(text: str) -> int:
    # 1 byte per two significant digits, plus 1 (AWS's documented approximation, up to 21 bytes).
    digits = Decimal(text).normalize().as_tuple().digits
    return min(21, (len(digits) + 1) // 2 + 1)


_SCALAR_SIZES: dict[str, Callable[[Any], int]] = {
    "S": _text_size,
    "N": _number_size,
    "B": len,
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "SS": lambda values: sum(map(_text_size, values)),
    "NS": lambda values: sum(map(_number_size, values)),
    "BS": lambda values: sum(map(len, values)),
}


def _client() -> Any:
    """The botocore client of the models' connection (same endpoint, retries and logging)."""
    return TableModel._get_connection().connection.client


def _call(operation: Callable[..., dict[str, Any]], name: str, **params: Any) -> dict[str, Any]:
    try:
        return operation(**params)
    except (BotoCoreError, ClientError) as exc:
        raise DataLayerError(f"{name} failed: {type(exc).__name__}") from exc


def _iterable(values: Iterable[P], what: str) -> list[P]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidInput(f"{what} must be an iterable of items, got {type(values).__name__}")
    return list(values)


def _entities(entities: Iterable[TableModel]) -> list[TableModel]:
    batch = _iterable(entities, "entities")
    for entity in batch:
        if not isinstance(entity, TableModel) or type(entity).keys is None:
            raise InvalidInput(f"batch_write takes entities (TableModel), got {type(entity).__name__}")
    return batch


def _prepare(batch: Sequence[TableModel], *, overwrite: bool) -> list[dict[str, Any]]:
    """Serialize every entity with its next version; check keys, duplicates and sizes first."""
    stale = [e for e in batch if e.version is not None]
    if stale and not overwrite:
        raise InvalidInput(
            f"{len(stale)} entities already have a Version; a batch cannot check it, so it would "
            "overwrite concurrent updates silently. Pass overwrite=True to replace them anyway."
        )
    stamps = [(e.created_at, e.updated_at) for e in batch]
    try:
        items = [_serialize(entity) for entity in batch]
        seen: set[Key] = set()
        for item in items:
            key = _key_of(item)
            if key in seen:
                raise InvalidInput("two entities in one batch have the same key")
            seen.add(key)
            if item_size(item) > MAX_ITEM_BYTES:
                raise InvalidInput(f"an entity is larger than DynamoDB's {MAX_ITEM_BYTES}-byte item limit")
    except InvalidInput:
        for entity, (created, updated) in zip(batch, stamps, strict=True):  # nothing was written
            entity.created_at, entity.updated_at = created, updated
        raise
    return items


def _serialize(entity: TableModel) -> dict[str, Any]:
    try:
        item = entity.serialize()
    except InvalidInput:
        raise
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{type(entity).__name__} cannot be serialized: {exc}") from exc
    item[_VERSION] = {"N": str((entity.version or 0) + 1)}
    return item


def _written(entity: TableModel, item: Mapping[str, Any]) -> None:
    entity.version = int(item[_VERSION]["N"])


def _key_of(item: Mapping[str, Any]) -> Key:
    return item[PK]["S"], item[SK]["S"]


def _key(model: type[TableModel], key: Key | Mapping[str, Any]) -> Key:
    if isinstance(key, Mapping):
        return model.key_template("pk").compose(**key), model.key_template("sk").compose(**key)
    if not (isinstance(key, tuple) and len(key) == 2):
        raise InvalidInput("a key is a (PK, SK) pair or a mapping of key fields")
    for part, limit in zip(key, (MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES), strict=True):
        if not isinstance(part, str) or not part:
            raise InvalidKey("PK and SK must be non-empty strings")
        if len(part.encode("utf-8")) > limit:
            raise InvalidKey(f"a key is longer than DynamoDB's {limit}-byte limit")
    return key


def _is_a(model: type[TableModel], item: Mapping[str, Any]) -> bool:
    try:
        stored = TableModel._get_discriminator_class(dict(item))
    except ValueError:  # an EntityType no model declares
        return False
    return isinstance(stored, type) and issubclass(stored, model)
