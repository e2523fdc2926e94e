"""Idempotency keys: a creating function called again with the same key returns its first result.

Every creating function of ``repositories`` takes ``idempotency_key=``. A key is scoped to its
owner, as Stripe scopes keys to an account: the user for ``place_order``, the device for
``record_metric``, the product for ``put_product``; ``create_user`` and ``open_account`` have no
owner, so their scope is the function itself. One owner's key never blocks another's, however
guessable the key text is.

How: the creating write carries, in the SAME transaction, the put of an ``IdempotencyRecord``
keyed ``IDEMPOTENCY#{function}#{scope}`` / ``KEY#{sha256 of the key}`` (any key text is a valid
key part) on ``attribute_not_exists(PK)``. The record holds a fingerprint of the validated
arguments (sha256 of their canonical JSON) and the table key of the entity the call created, so it
exists if and only if the write committed. When its condition fails (the write path reports that
before the entity's own ``AlreadyExists``), the record is read strongly consistent: the same
fingerprint returns the stored entity, nothing written twice, also when the first call ended in
``WriteOutcomeUnknown``; another fingerprint is ``IdempotencyKeyReused``. Ids a function
generates are derived from the scoped key (``derived_id``), so even a call made after the record
expired cannot create a second entity: it meets the first one's ``AlreadyExists``.

Records expire by TTL ``RETENTION`` (7 days) after the first call; until then the same key with
other arguments is refused, and after it the key is forgotten. A record whose time has passed but
which DynamoDB has not deleted yet (TTL deletes lazily) counts as expired. Without a key nothing of
this is sent: a creating write costs what it did. ``transfer_funds`` needs no record: its transfer
id is derived from the source account and the key, and the transfer item, kept forever, is its
own record (``repositories.accounts``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PynamoDBException

from core.error_codes import raise_unexpected
from core.errors import ConflictError, IdempotencyKeyReused
from core.retry import RetryPolicy
from models import planning, sending
from models.attributes import check_text
from models.keys import EntityKeys
from models.rules import Expires, WrittenBy
from models.table import TableModel

M = TypeVar("M", bound=TableModel)

RETENTION = timedelta(days=7)
MAX_KEY_LENGTH = 255
# Fixed forever: changing it would give every key another derived id.
NAMESPACE = uuid.UUID("0c0f5ae4-3c0b-4d55-9a51-7f3f8f0c6a11")


class IdempotencyRecord(TableModel, discriminator="IDEMPOTENCY"):
    """``IDEMPOTENCY#{function}#{scope}`` / ``KEY#{key_digest}``: one use of an idempotency key.

    ``scope`` is the owner's id, or for a function without owner two hex digits of the digest
    (so that one function's records do not all share one partition). ``result_pk`` and
    ``result_sk`` are the table key of the entity the first call created.

    Rules: written only by the creating functions, in the transaction of the write they guard;
    never changed; expires ``RETENTION`` after it was written.
    """

    keys = EntityKeys(pk="IDEMPOTENCY#{function}#{scope}", sk="KEY#{key_digest}")

    function = UnicodeAttribute(attr_name="Function")
    scope = UnicodeAttribute(attr_name="Scope")
    key_digest = UnicodeAttribute(attr_name="KeyDigest")
    fingerprint = UnicodeAttribute(attr_name="Fingerprint")
    result_pk = UnicodeAttribute(attr_name="ResultPK")
    result_sk = UnicodeAttribute(attr_name="ResultSK")

    rules = (
        WrittenBy("the creating functions of repositories (their idempotency_key=)"),
        Expires(RETENTION, start="created_at"),
    )


def check_key(value: Any) -> str:
    """An idempotency key: a string, not blank, at most ``MAX_KEY_LENGTH`` characters, without
    control, bidirectional-formatting or lone surrogate characters; ``InvalidInput`` otherwise."""
    return check_text(value, "idempotency_key", max_length=MAX_KEY_LENGTH)


def fingerprint(function: str, arguments: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a call's validated arguments: sorted keys, numbers in
    their shortest exact form (``3`` and ``3.00`` alike), times in ISO-8601."""
    canonical = json.dumps({"function": function, "arguments": arguments}, sort_keys=True,
                           separators=(",", ":"), allow_nan=False, default=_plain)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} has no canonical form")


@dataclass(frozen=True)
class IdempotencyKey:
    """A caller's key for one call of ``function``, scoped, with the fingerprint of its arguments."""

    function: str
    scope: str
    key: str
    digest: str
    fingerprint: str

    @classmethod
    def of(cls, function: str, key: str | None, *, owner: str | None,
           arguments: Mapping[str, Any]) -> IdempotencyKey | None:
        """The scoped key, or ``None`` without one; ``InvalidInput`` for a bad key (nothing sent).
        ``owner``: the id the key is scoped to (already checked as a key part), ``None`` when the
        function has none."""
        if key is None:
            return None
        key = check_key(key)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        scope = owner if owner is not None else digest[:2]
        return cls(function, scope, key, digest, fingerprint(function, arguments))

    def derived_id(self) -> uuid.UUID:
        """The id of the entity this key creates, when the function generates it: the same for
        every call with this key in this scope, and another in any other scope."""
        return uuid.uuid5(NAMESPACE, f"{self.function}#{self.scope}#{self.key}")

    def record(self, entity: TableModel) -> IdempotencyRecord:
        """The record of this key for a call that creates ``entity``."""
        entity.fill_keys()
        return IdempotencyRecord(function=self.function, scope=self.scope, key_digest=self.digest,
                                 fingerprint=self.fingerprint, result_pk=entity.pk, result_sk=entity.sk)

    def step(self, entity: TableModel, now: datetime) -> planning.Step:
        """The put of the record, for the transaction of the write that creates ``entity``: on
        ``attribute_not_exists(PK)`` (or a record whose time has passed), else
        ``IdempotencyKeyReused``."""
        record = self.record(entity)
        record.stamp(now)
        record.expires_at = now + RETENTION  # the record's declared Expires
        free = IdempotencyRecord.pk.does_not_exist() | (IdempotencyRecord.expires_at < now)
        kwargs = planning.put_kwargs(record, free, add_version_condition=False)
        used = f"{self.function}: this idempotency key was used before"
        return planning.Step("put", kwargs, lambda _: IdempotencyKeyReused(used))

    def with_record(self, build: Callable[[], planning.Plan]) -> Callable[[], planning.Plan]:
        """``build``, its plan carrying this key's record (built again with every plan)."""
        def plan() -> planning.Plan:
            made = build()
            made.add(self.step(made.entity, made.now))
            return made

        return plan

    def first_result(self, model: type[M], cause: IdempotencyKeyReused) -> M:
        """What the key's first call created, read strongly consistent; ``IdempotencyKeyReused``
        when that call had other arguments."""
        probe = IdempotencyRecord(function=self.function, scope=self.scope, key_digest=self.digest)
        probe.fill_keys()
        stored = _read(IdempotencyRecord, probe.pk, probe.sk)
        if stored is None:  # expired and deleted since its condition failed
            raise ConflictError(f"{self.function}: this idempotency key's record expired just now; "
                                "call again") from cause
        if stored.fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(
                f"{self.function}: this idempotency key was used within {RETENTION.days} days for a call "
                "with other arguments; nothing was written"
            ) from cause
        entity = _read(model, stored.result_pk, stored.result_sk)
        if entity is None:
            raise ConflictError(
                f"{self.function}: the {model.__name__} this idempotency key created was deleted since"
            ) from cause
        return entity


def execute(build: Callable[[], planning.Plan], key: IdempotencyKey | None, model: type[M], *,
            what: str, retry: RetryPolicy | None = None) -> M | None:
    """Send the plan ``build`` makes, with ``key``'s record when there is a key.

    ``None`` when this call wrote; the entity the key's first call created when the key was used
    before with the same arguments (nothing written now). ``retry``: the write path's contention
    retry policy (``sending.execute``).
    """
    if key is None:
        sending.execute(build, what=what, retry=retry)
        return None
    try:
        sending.execute(key.with_record(build), what=what, retry=retry)
    except IdempotencyKeyReused as exc:
        return key.first_result(model, exc)
    return None


def _read(model: type[M], pk: str, sk: str) -> M | None:
    try:
        return model.get(pk, sk, consistent_read=True)
    except model.DoesNotExist:
        return None
    except PynamoDBException as exc:
        raise_unexpected(exc, f"reading a {model.__name__}")
