"""The data layer's errors: one tree; each keeps its botocore/PynamoDB cause as ``__cause__``.

::

    DataLayerError
    +-- NotFound                    get_* found nothing
    +-- AlreadyExists               a unique thing (an email, an id) is taken
    +-- ConflictError               stale version, or a concurrent write won
    +-- InsufficientFunds           a debit would take a balance below zero
    +-- RetriesExhausted            bounded retries ran out; ``unprocessed`` says what is left
    +-- InvalidInput (ValueError)   refused before any request was sent
        +-- InvalidKey              a key part is empty, holds ``#``, or makes a key too long
        +-- InvalidCursor           a cursor was tampered with or belongs to another query

They are defined in ``core.errors`` so that ``models`` (which must not import repositories) raises
the same classes.
"""

from __future__ import annotations

from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    InsufficientFunds,
    InvalidCursor,
    InvalidInput,
    InvalidKey,
    NotFound,
    RetriesExhausted,
)

__all__ = [
    "AlreadyExists",
    "ConflictError",
    "DataLayerError",
    "InsufficientFunds",
    "InvalidCursor",
    "InvalidInput",
    "InvalidKey",
    "NotFound",
    "RetriesExhausted",
]
