"""The data layer's exception tree (re-exported by ``repositories.errors``).

::

    DataLayerError                  every error this layer raises; ``__cause__`` keeps the
    |                               botocore/PynamoDB exception when there was one
    +-- NotFound                    get_* found nothing
    +-- AlreadyExists               a unique thing (an email, an id) is taken
    +-- ConflictError               optimistic lock: the entity changed since it was read
    +-- InsufficientFunds           a debit would take a balance below zero
    +-- RetriesExhausted            bounded retries ran out; ``unprocessed`` says what is left
    +-- WriteOutcomeUnknown         no attempt got an answer: the write may or may not have been
    |   |                           applied; ``keys`` names what may have been written
    |   +-- TransferOutcomeUnknown  a transfer; ``transfer_id`` says which one to look up
    +-- ConfigurationError          a setting in the environment is missing or malformed
    |   +-- CursorSecretMissing     no usable cursor secret off a local endpoint (``repositories.paging``)
    +-- InvalidInput (ValueError)   refused before any request was sent
        +-- InvalidKey              a key part is empty, holds the delimiter, or is too long
        +-- InvalidCursor           a cursor was tampered with or belongs to another query
"""

from __future__ import annotations

from collections.abc import Sequence
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


class WriteOutcomeUnknown(DataLayerError):
    """No attempt of a write got an answer (a timeout, a reset connection, a 5xx after botocore's
    retries): it may or may not have been applied. ``keys`` holds the ``(PK, SK)`` of every item it
    may have written. Read them to find out, or call the same function again with the same ids:
    a write that recognises its own effect (same ids, same idempotency key) is then applied once.
    """

    def __init__(self, message: str, keys: Sequence[tuple[str, str]] = (), *,
                 written: Sequence[Any] = (), not_written: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.keys: list[tuple[str, str]] = list(keys)
        self.written: list[Any] = list(written)  # a batch: what certainly was written
        self.not_written: list[Any] = list(not_written)  # and what certainly was not


class TransferOutcomeUnknown(WriteOutcomeUnknown):
    """A transfer's request failed in a way that does not say whether it committed.

    ``transfer_id`` names it: ``get_transfer(transfer_id)`` tells (``NotFound``: not committed,
    unless a request still in flight commits later); calling ``transfer_funds`` again with the same
    ``idempotency_key`` moves the money at most once.
    """

    def __init__(self, message: str, transfer_id: str, keys: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(f"{message} (transfer_id={transfer_id})", keys)
        self.transfer_id = transfer_id


class ConfigurationError(DataLayerError):
    """A setting read from the environment is missing or malformed (see ``core.config``)."""


class InvalidInput(DataLayerError, ValueError):
    """Bad input, refused before any request was sent."""


class InvalidKey(InvalidInput):
    """A key part is empty, contains the delimiter ``#``, or makes a key too long."""


class InvalidCursor(InvalidInput):
    """A paging cursor was tampered with, or was made by another query."""
