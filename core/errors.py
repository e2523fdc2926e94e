"""The data layer's exception tree (re-exported by ``repositories.errors``).

::

    DataLayerError                  every error this layer raises; ``__cause__`` keeps the
    |                               botocore/PynamoDB exception when there was one
    +-- NotFound                    get_* found nothing
    +-- AlreadyExists               a unique thing (an email, an id) is taken
    +-- ConflictError               optimistic lock: the entity changed since it was read
    +-- InsufficientFunds           a debit would take a balance below zero
    +-- RetriesExhausted            bounded retries ran out; ``unprocessed`` says what is left
    |                               (throttling: ``Throttled``, below)
    +-- IdempotencyKeyReused        an idempotency key came back with other arguments; nothing
    |                               was written
    +-- WriteOutcomeUnknown         no attempt got an answer: the write may or may not have been
    |   |                           applied; ``keys`` names what may have been written and
    |   |                           ``resolve()`` reads them to tell whether this write landed
    |   +-- TransferOutcomeUnknown  a transfer; ``transfer_id`` says which one to look up
    +-- UnreadableItem              a stored item does not build into its entity; ``keys`` names
    |                               it, and it must be repaired (rewritten or deleted)
    +-- ConfigurationError          a setting in the environment is missing or malformed (no
    |   |                           region, no credentials)
    |   +-- CursorSecretMissing     no usable cursor secret off a local endpoint (``repositories.paging``)
    +-- InfrastructureError         DynamoDB, or the way to it, cannot serve the call; the message
    |   |                           names the fix
    |   +-- EndpointUnreachable     no connection could be made (refused, connect timeout): nothing
    |   |                           was sent, so nothing was written; ``endpoint`` says where
    |   +-- TableMissing            the table (or the index a query used) does not exist: run the
    |   |                           migrations; ``table`` and ``index`` name them
    |   +-- AccessDenied            the credentials may not call ``action`` on ``resource``
    |   +-- CredentialsRejected     DynamoDB does not accept the credentials (unknown key, bad secret)
    |   |   +-- CredentialsExpired  a session token or login has expired: refresh it
    |   +-- Throttled               (also a RetriesExhausted) DynamoDB kept throttling after the
    |                               retries; ``throttling_reasons`` holds DynamoDB's reasons
    +-- InvalidInput (ValueError)   refused before any request was sent
        +-- InvalidKey              a key part is empty, holds the delimiter, or is too long
        +-- InvalidCursor           a cursor was tampered with or belongs to another query
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


class DataLayerError(Exception):
    """Base of every error raised by the data layer."""


class NotFound(DataLayerError):
    """The requested entity does not exist."""


class AlreadyExists(DataLayerError):
    """The entity (or the unique value it claims) exists already."""


class ConflictError(DataLayerError):
    """The entity changed since it was read (stale version) or a concurrent write won."""


class InsufficientFunds(DataLayerError):
    """The debited account's balance is lower than the amount."""


class RetriesExhausted(DataLayerError):
    """Bounded retries ran out; ``unprocessed`` holds what was not written or read."""

    def __init__(self, message: str, unprocessed: Sequence[Any] = (), *, written: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.unprocessed: list[Any] = list(unprocessed)
        self.written: list[Any] = list(written)  # a batch: what was written before retries ran out


class IdempotencyKeyReused(DataLayerError):
    """An ``idempotency_key`` was used before, within its retention, with other arguments: the
    call is refused and nothing is written. A key is scoped to its owner (the user of an order,
    the source account of a transfer, the device of a reading, the product; the function itself
    for ``create_user`` and ``open_account``), so another owner's use of the same key text is
    never this error. The same key with the same arguments returns the first call's result.
    """


class WriteOutcomeUnknown(DataLayerError):
    """No attempt of a write got an answer (a timeout, a reset connection, a 5xx after botocore's
    retries): it may or may not have been applied. ``keys`` holds the ``(PK, SK)`` of every item it
    may have written.

    ``resolve()`` finds out: it reads those items (strongly consistent) and recognises this
    write by the token every write stores. It returns the stored entity when this write landed
    (for a delete, the entity deleted, once its item is gone); raises the true refusal when
    another write holds the key (``AlreadyExists`` for a create whose key holds someone else's
    item, ``ConflictError`` when the item moved on without this write); and returns ``None``
    when nothing of this write is stored, so calling again is safe. A request still in flight
    may land after ``resolve()`` looked: with an ``idempotency_key``, calling again is safe
    either way (the first result is returned, nothing is applied twice).
    """

    def __init__(self, message: str, keys: Sequence[tuple[str, str]] = (), *,
                 written: Sequence[Any] = (), not_written: Sequence[Any] = (),
                 resolver: Callable[[], Any] | None = None) -> None:
        super().__init__(message)
        self.keys: list[tuple[str, str]] = list(keys)
        self.written: list[Any] = list(written)  # a batch: what certainly was written
        self.not_written: list[Any] = list(not_written)  # and what certainly was not
        # Attached by the write path (``models.sending``), which knows the write's token and model.
        self.resolver = resolver

    async def aresolve(self) -> Any:
        """``resolve()``, awaited (``core.engine.bridge``): for the async API."""
        from core.engine import bridge

        return await bridge.run(self.resolve)

    def resolve(self) -> Any:
        """The stored entity if this write landed, ``None`` if nothing of it is stored; raises the
        refusal (``AlreadyExists``, ``ConflictError``) when another write holds the key."""
        if self.resolver is None:
            raise DataLayerError(
                "this outcome names several entities: see `written` and `not_written`, and read "
                "the items named in `keys`"
            )
        return self.resolver()


class TransferOutcomeUnknown(WriteOutcomeUnknown):
    """A transfer's request failed in a way that does not say whether it committed.

    ``transfer_id`` names it: ``resolve()`` returns the ``Transfer`` if it committed and ``None``
    if not (unless a request still in flight commits later), as ``get_transfer(transfer_id)``
    tells; calling ``transfer_funds`` again with the same ``idempotency_key`` moves the money at
    most once.
    """

    def __init__(self, message: str, transfer_id: str, keys: Sequence[tuple[str, str]] = (), *,
                 resolver: Callable[[], Any] | None = None) -> None:
        super().__init__(f"{message} (transfer_id={transfer_id})", keys, resolver=resolver)
        self.transfer_id = transfer_id


class UnreadableItem(DataLayerError):
    """A stored item does not build into its entity: a value of another type than the entity
    declares (``Amount`` as a string), a ``Version`` that is not a non-negative integer, an
    ``EntityType`` no model declares or of another entity.

    ``keys`` is the item's ``(PK, SK)``, ``entity`` the name of the model it was read as and
    ``attribute`` the stored name of the attribute that failed (``None`` when no single one did).
    Reading it again gives the same error: the item must be repaired, rewritten by whoever wrote
    it or deleted. Pages skip such items and list their keys in ``Page.unreadable``.
    """

    def __init__(self, keys: tuple[str, str], entity: str, attribute: str | None = None) -> None:
        where = f", attribute {attribute}" if attribute is not None else ""
        super().__init__(
            f"the stored item PK={keys[0]!r}, SK={keys[1]!r} cannot be read as {entity}{where}: "
            "it must be repaired (rewritten by whoever wrote it, or deleted)"
        )
        self.keys = keys
        self.entity = entity
        self.attribute = attribute

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.keys, self.entity, self.attribute)


class NotFetched(DataLayerError, AttributeError):
    """An attribute of a partial entity (read with ``attributes=``) that was not fetched.

    ``entity`` and ``attribute`` name it. Read the entity without ``attributes=`` to have it.
    """

    def __init__(self, entity: str, attribute: str) -> None:
        super().__init__(f"{entity}.{attribute} was not fetched (the entity was read with attributes=); "
                         "read it without attributes= to have every attribute")
        self.entity = entity
        self.attribute = attribute

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.entity, self.attribute)


class ConfigurationError(DataLayerError):
    """A setting read from the environment is missing or malformed (see ``core.config``)."""


class InfrastructureError(DataLayerError):
    """DynamoDB, or the way to it, cannot serve the call: the endpoint, the table, the credentials or
    the capacity, not the call's arguments. The message names the fix; ``__cause__`` keeps
    botocore's or PynamoDB's exception (``core.error_codes.infrastructure_problem`` maps them)."""


class EndpointUnreachable(InfrastructureError):
    """No connection to the endpoint could be made (refused, or the connect timed out) on any
    attempt: nothing was sent, so a write was not applied and calling again is safe.

    ``endpoint`` is the URL botocore tried. (A read timeout or a reset connection after the request
    was sent is not this error: a write then ends in ``WriteOutcomeUnknown``.)
    """

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class TableMissing(InfrastructureError):
    """The table, or the index a query used, does not exist there (or is not ACTIVE yet): the
    migrations were not applied to this endpoint and table name. ``table`` and ``index`` name them."""

    def __init__(self, message: str, *, table: str | None = None, index: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.index = index


class AccessDenied(InfrastructureError):
    """The credentials are valid but may not call ``action`` (``dynamodb:PutItem``) on ``resource``
    (the table, or the table's index)."""

    def __init__(self, message: str, *, action: str | None = None, resource: str | None = None) -> None:
        super().__init__(message)
        self.action = action
        self.resource = resource


class CredentialsRejected(InfrastructureError):
    """DynamoDB does not accept the credentials: an unknown access key, a secret that does not
    match it, or a token from another partition. (No credentials at all is a ``ConfigurationError``.)"""


class CredentialsExpired(CredentialsRejected):
    """The credentials have expired (a session token, an SSO login): refresh them and call again."""


class Throttled(InfrastructureError, RetriesExhausted):
    """DynamoDB throttled the request on every attempt botocore made (or an item of a transaction,
    on every attempt of the write path). Also a ``RetriesExhausted``, which is what callers caught
    before this error existed.

    ``throttling_reasons`` lists DynamoDB's reasons when the response had them: each a mapping with
    ``reason`` (``TableWriteProvisionedThroughputExceeded``, ...) and ``resource`` (an ARN), or, for a
    cancelled transaction, the throttled item's ``item`` index, its ``reason`` code and ``message``.
    """

    def __init__(self, message: str, unprocessed: Sequence[Any] = (), *, written: Sequence[Any] = (),
                 throttling_reasons: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message, unprocessed, written=written)
        self.throttling_reasons: list[dict[str, Any]] = [dict(reason) for reason in throttling_reasons]


class InvalidInput(DataLayerError, ValueError):
    """Bad input, refused before any request was sent."""


class InvalidKey(InvalidInput):
    """A key part is empty, contains the delimiter ``#``, or makes a key too long."""


class InvalidCursor(InvalidInput):
    """A paging cursor was tampered with, or was made by another query."""
