"""Batch writes and reads: 25 items / 100 keys a request, unprocessed ones retried with backoff.

DynamoDB may answer a batch with ``UnprocessedItems``/``UnprocessedKeys`` (throttling, or a read
response over 16 MB). Those are sent again with exponential backoff and full jitter, a bounded
number of times (``core.retry.RetryPolicy``); when the bound is reached
``RetriesExhausted.unprocessed`` holds what was not written (the entities) or not read (the
``(PK, SK)`` pairs).

What ``batch_write`` writes. Each entity's item is the put the write path plans for it
(``models.blind_puts.plan_batch_put``): keys derived, value rules, the TTL of an ``Expires`` rule,
the 400 KB limit, version and write token, as on every other path; one call stamps one time on
all its entities (``UpdatedAt``, and ``CreatedAt`` when new). ``BatchWriteItem`` carries no
condition and no companion item, so an entity that declares a rule only a conditioned write can
keep (``Rule.blind_put`` false: a unique value, an owner, a lifecycle, a derived item, a
``WrittenBy``) is refused with ``InvalidInput`` naming what to use instead, before anything is sent.

Versions. Before writing, ``batch_write`` reads the stored ``Version`` of every key
(``BatchGetItem``, strongly consistent: keys, ``Version``, timestamps and ``WriteToken`` only) and
never sets a stored version back (``BatchPut.base_on``):

- an entity never written (``version is None``) whose key holds nothing is written with
  ``Version`` 1, as ``save()`` would;
- one whose key holds an item already raises ``AlreadyExists``, unless ``overwrite=True``;
- one whose version differs from the stored one (someone updated it since it was read, or it was
  deleted) raises ``ConflictError``, unless ``overwrite=True``;
- everything else, and every overwrite, is written with the stored version + 1 (at least its own
  version + 1), keeping the stored ``CreatedAt`` when the entity has none; its local version
  becomes that;
- a stored ``Version`` that is not a non-negative integer (``1.5``, ``-1``: another writer's) is
  no entity's version, so it is refused as above unless ``overwrite=True``, which writes an
  integer version above it: ``batch_write(..., overwrite=True)`` repairs such an item.

Either error refuses the whole call: nothing is written. The read and the write are separate
requests, though, and that gap stays open: a writer that updates an item between them is
overwritten without a ``ConflictError`` (its update is lost, and the version may come out equal to
the one it stored). ``batch_write`` is for loading and bulk-replacing data; for items that other
writers update concurrently use the entity's own conditioned writes (``save()``/``update()``, or
the repository functions), which check the version in the same request.

Lost answers. Each entity's item carries a ``WriteToken`` that stays with the entity until its
write is acknowledged. When no answer comes back, ``WriteOutcomeUnknown`` lists what was written,
the keys whose outcome is unknown and what was not sent; calling ``batch_write`` again with the same
entities recognises the items that did land (their stored token is the entity's; the entity takes
their version and timestamps) and writes the rest once, without ``overwrite=True``.

Every write through ``batch_write`` invalidates the read-through cache of the entities it caches
(products). Every entity is checked before the first request (a ``TableModel`` entity of an
allowed type, its keys valid, no two with the same key, each at most 400 KB as DynamoDB counts
it): bad input sends nothing.

``batch_get`` takes keys as mappings of the model's key fields (``{"product_id": "p1"}``),
composed through its key templates, or ``(PK, SK)`` pairs only if they parse with those
templates: a hand-built key for another entity is ``InvalidKey``. A stored item that does not
build into its entity (``UnreadableItem``) is left out of the result and logged as a WARNING
event (``repositories.paging.report_unreadable``: the entity and attribute, never a key or value).

Flags are checked before anything is sent: ``overwrite`` and ``consistent_read`` must be ``bool``
(``"yes"`` is ``InvalidInput``), ``retry`` a ``RetryPolicy`` or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from core.error_codes import (
    configuration_problem,
    error_code,
    infrastructure_problem,
    is_throttling,
    raise_unexpected,
    throttled,
)
from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    InvalidInput,
    InvalidKey,
    RetriesExhausted,
    Throttled,
    WriteOutcomeUnknown,
)
from core.ids import uuid4_hexes
from core.retry import RetryPolicy, retried_by_botocore
from models.blind_puts import LANDED, STALE, STORED, TAKEN, BatchPut, plan_batch_put
from models.item_size import MAX_ITEM_BYTES, item_size
from models.keys import KeyTemplate
from models.product import Product
from models.table import PK, SK, TableModel
from repositories import cache
from repositories._common import check_bool, require_iterable, retry_policy
from repositories.paging import read_all

__all__ = ["MAX_ITEM_BYTES", "RetryPolicy", "batch_get", "batch_write", "item_size"]

M = TypeVar("M", bound=TableModel)
P = TypeVar("P")

MAX_WRITE_BATCH = 25  # DynamoDB's limit of items in one BatchWriteItem
MAX_GET_BATCH = 100  # and of keys in one BatchGetItem

Key = tuple[str, str]

DEFAULT_RETRY = RetryPolicy()

# The read-through cache key of each cached entity type, as its repository builds it.
_CACHE_KEYS: dict[type[TableModel], Callable[[Any], tuple[str, ...]]] = {
    Product: lambda product: ("product", product.product_id),
}


def batch_write(
    entities: Iterable[TableModel], *, overwrite: bool = False, retry: RetryPolicy | None = None
) -> None:
    """Put ``entities``, 25 a request; see the module docstring for refusals, versions and retries.

    Nothing is written when it raises ``InvalidInput`` (bad input, or an entity type it refuses),
    ``AlreadyExists`` (a new entity's key is taken) or ``ConflictError`` (an entity's version is not
    the stored one); ``overwrite=True`` replaces instead of the last two (``overwrite`` must be a
    ``bool``). ``RetriesExhausted`` holds the entities not written when unprocessed items remain
    after the last attempt.
    """
    check_bool(overwrite, "overwrite")
    policy = _policy(retry)
    puts = _prepare(_entities(entities))
    if not puts:
        return
    try:
        client = _client()
        try:
            stored = _stored_versions(client, [put.key for put in puts], policy)
        except RetriesExhausted as exc:
            message = f"the stored versions could not be read ({exc}); nothing written"
            batch = [put.entity for put in puts]
            if isinstance(exc, Throttled):
                raise Throttled(message, batch, throttling_reasons=exc.throttling_reasons) from exc
            raise RetriesExhausted(message, batch) from exc
        pending = _base_on_stored(puts, stored, overwrite=overwrite)
    except DataLayerError:
        for put in puts:  # nothing was written
            put.restore()
        raise
    try:
        _send(client, pending, policy)
    finally:  # also when the outcome is unknown
        cache.invalidate_each(_CACHE_KEYS[type(put.entity)](put.entity) for put in puts
                              if type(put.entity) in _CACHE_KEYS)


def _send(client: Any, pending: list[BatchPut], policy: RetryPolicy) -> None:
    """Send the items of ``pending``, 25 a request, unprocessed ones again with backoff."""
    table = TableModel.Meta.table_name
    done: list[TableModel] = []
    in_flight: list[BatchPut] = []

    def send(chunk: list[BatchPut]) -> list[BatchPut]:
        in_flight[:] = chunk
        request = {table: [{"PutRequest": {"Item": put.item}} for put in chunk]}
        response = client.batch_write_item(RequestItems=request)
        left = {_key_of(r["PutRequest"]["Item"]) for r in response.get("UnprocessedItems", {}).get(table, [])}
        for put in chunk:
            if put.key not in left:
                put.written()
                done.append(put.entity)
        return [put for put in chunk if put.key in left]

    for start in range(0, len(pending), MAX_WRITE_BATCH):
        try:
            left = policy.until_done(send, pending[start : start + MAX_WRITE_BATCH])
        except (BotoCoreError, ClientError) as exc:
            later = [put.entity for put in pending[start + MAX_WRITE_BATCH:]]
            if is_throttling(exc):  # refused, after botocore's retries: nothing of this chunk landed
                refused = [put.entity for put in in_flight] + later
                raise throttled(
                    exc, f"batch_write: DynamoDB throttled the request on every attempt; {len(done)} of "
                    f"{len(pending)} entities written, {len(refused)} not", refused, written=done,
                ) from exc
            if configuration_problem(exc) or not retried_by_botocore(error_code(exc)):
                raise_unexpected(exc, "BatchWriteItem")
            unreachable = None if done else infrastructure_problem(exc, "batch_write", write=True)
            if unreachable is not None:  # no connection, nothing sent, and no entity written before
                raise unreachable from exc
            raise WriteOutcomeUnknown(
                f"batch_write: {len(done)} of {len(pending)} entities written, {len(in_flight)} unknown "
                f"({error_code(exc) or type(exc).__name__}), {len(later)} not sent; calling batch_write "
                "again with the same entities writes each exactly once",
                [put.key for put in in_flight], written=done, not_written=later,
            ) from exc
        if left:
            not_written = [put.entity for put in (*left, *pending[start + MAX_WRITE_BATCH :])]
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

    A key is a mapping of the model's key fields (``{"product_id": "p1"}``), composed through its
    key templates, or a ``(PK, SK)`` pair that parses with them (``InvalidKey`` otherwise).
    Repeated keys are read once; missing items, and items of another entity type, are left out;
    so are items that do not build into a ``model`` (``UnreadableItem``), each logged as a WARNING.
    ``InvalidInput`` for a ``consistent_read`` that is not a ``bool`` or a ``retry`` that is not a
    ``RetryPolicy``, before anything is sent.
    ``RetriesExhausted.unprocessed`` lists the ``(PK, SK)`` pairs not read when the retries run out.
    """
    check_bool(consistent_read, "consistent_read")
    policy = _policy(retry)
    if not (isinstance(model, type) and issubclass(model, TableModel) and model.keys is not None):
        raise InvalidInput("model must be an entity class (a TableModel subclass with keys)")
    wanted = list(dict.fromkeys(_key(model, key) for key in require_iterable(keys, "keys")))
    if not wanted:
        return []
    found = _read(_client(), wanted, policy, consistent_read=consistent_read)
    items = [dict(found[k]) for k in wanted if k in found and _is_a(model, found[k])]
    return read_all(map(model.from_raw_data, items), f"batch_get({model.__name__})")


def _read(
    client: Any, wanted: list[Key], policy: RetryPolicy, *, consistent_read: bool, **options: Any
) -> dict[Key, Mapping[str, Any]]:
    """The items at ``wanted`` (``BatchGetItem``, 100 a request, unprocessed keys retried)."""
    table = TableModel.Meta.table_name
    found: dict[Key, Mapping[str, Any]] = {}

    def send(chunk: list[Key]) -> list[Key]:
        keys = [{PK: {"S": pk}, SK: {"S": sk}} for pk, sk in chunk]
        request = {table: {"Keys": keys, "ConsistentRead": consistent_read, **options}}
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
    return found


def _policy(retry: Any) -> RetryPolicy:
    return retry_policy(retry, DEFAULT_RETRY)


def _client() -> Any:
    """The botocore client of the models' connection (same endpoint, retries and logging)."""
    return TableModel._get_connection().connection.client


def _call(operation: Callable[..., dict[str, Any]], name: str, **params: Any) -> dict[str, Any]:
    try:
        return operation(**params)
    except (BotoCoreError, ClientError) as exc:
        raise_unexpected(exc, name)


def _entities(entities: Iterable[TableModel]) -> list[TableModel]:
    batch = require_iterable(entities, "entities")
    for entity in batch:
        if not isinstance(entity, TableModel) or type(entity).keys is None:
            raise InvalidInput(f"batch_write takes entities (TableModel), got {type(entity).__name__}")
    return batch


def _prepare(batch: Sequence[TableModel]) -> list[BatchPut]:
    """Plan every entity's put (rules, keys, values, size: ``plan_batch_put``); no two with one key.
    On a refusal every entity's timestamps are as before."""
    puts: list[BatchPut] = []
    now = datetime.now(UTC)  # one time for the whole batch
    tokens = uuid4_hexes(len(batch))
    try:
        seen: set[Key] = set()
        for entity, token in zip(batch, tokens, strict=True):
            put = plan_batch_put(entity, now, token)
            puts.append(put)
            if put.key in seen:
                raise InvalidInput("two entities in one batch have the same key")
            seen.add(put.key)
    except DataLayerError:
        for put in puts:
            put.restore()
        raise
    return puts


def _stored_versions(client: Any, keys: list[Key], policy: RetryPolicy) -> dict[Key, Mapping[str, Any]]:
    """What is stored at ``keys``: what a batch put is built on (``STORED``) of each existing item."""
    names = {f"#a{i}": name for i, name in enumerate(STORED)}
    projection = {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    return _read(client, keys, policy, consistent_read=True, **projection)


def _base_on_stored(puts: Sequence[BatchPut], stored: Mapping[Key, Mapping[str, Any]], *,
                    overwrite: bool) -> list[BatchPut]:
    """Build each put on the item stored at its key, or refuse; return the puts to send (those an
    earlier attempt wrote already are acknowledged instead)."""
    taken, conflicts = 0, 0
    pending: list[BatchPut] = []
    for put in puts:
        old = stored.get(put.key)
        outcome = put.base_on(old)
        if outcome == LANDED:
            put.written(old)
            continue
        taken += outcome == TAKEN
        conflicts += outcome == STALE
        pending.append(put)
    if taken and not overwrite:
        raise AlreadyExists(
            f"{taken} new entities have keys that hold an item already; pass overwrite=True to replace them"
        )
    if conflicts and not overwrite:
        raise ConflictError(
            f"{conflicts} entities have a version other than the stored one (changed or deleted since "
            "read); pass overwrite=True to replace them anyway"
        )
    return pending


def _key_of(item: Mapping[str, Any]) -> Key:
    return item[PK]["S"], item[SK]["S"]


def _key(model: type[TableModel], key: Key | Mapping[str, Any]) -> Key:
    """``(PK, SK)`` composed by ``model``'s templates from key fields, or a pair that parses with them."""
    pk_templates = [model.key_template("pk"), *_sharded_pk(model)]
    sk_template = model.key_template("sk")
    if isinstance(key, Mapping):
        known = {name for template in (*pk_templates, sk_template) for name in template.fields}
        unknown = sorted(str(name) for name in key if name not in known)
        if unknown:
            raise InvalidKey(f"{model.__name__} has no key fields {unknown}")
        fields = dict(key)
    elif isinstance(key, tuple) and len(key) == 2 and all(isinstance(part, str) for part in key):
        fields = _parse_pk(pk_templates, key[0])
        for name, value in sk_template.parse(key[1]).items():
            if fields.setdefault(name, value) != value:
                raise InvalidKey(f"PK and SK give {name!r} different values")
    else:
        raise InvalidInput("a key is a mapping of the model's key fields or a (PK, SK) pair of strings")
    sharded = len(pk_templates) > 1 and fields.get("shard") is not None
    pk_template = pk_templates[-1] if sharded else pk_templates[0]
    composed = pk_template.compose(**fields), sk_template.compose(**fields)
    if not isinstance(key, Mapping) and composed != key:
        raise InvalidKey(f"key does not match {model.__name__}'s key templates")
    return composed


def _sharded_pk(model: type[TableModel]) -> list[KeyTemplate]:
    sharded = getattr(model, "sharded_pk", None)  # write-sharded entities (metrics)
    return [sharded] if isinstance(sharded, KeyTemplate) else []


def _parse_pk(templates: list[KeyTemplate], pk: str) -> dict[str, Any]:
    for template in templates[:-1]:
        try:
            return dict(template.parse(pk))
        except InvalidKey:
            continue
    return dict(templates[-1].parse(pk))


def _is_a(model: type[TableModel], item: Mapping[str, Any]) -> bool:
    """False for an item of another declared entity type (or of none); true when the item is a
    ``model``, or its ``EntityType`` does not decode: ``from_raw_data`` then reports it unreadable."""
    try:
        stored = TableModel._get_discriminator_class(dict(item))
    except (ValueError, TypeError):  # an EntityType no model declares, or not a string
        return True
    return isinstance(stored, type) and issubclass(stored, model)
