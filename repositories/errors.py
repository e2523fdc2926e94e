"""The data layer's errors, for callers of the repositories: one tree, drawn in ``core/errors.py``.

Every error is a ``DataLayerError`` and keeps its botocore/PynamoDB cause as ``__cause__``. The
classes are defined in ``core.errors`` so that ``models`` (which must not import repositories)
raises the same ones; ``CursorSecretMissing`` lives with the cursors in ``repositories.paging``.
"""

from __future__ import annotations

from core.errors import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    ConflictError,
    CredentialsExpired,
    CredentialsRejected,
    DataLayerError,
    EndpointUnreachable,
    IdempotencyKeyReused,
    InfrastructureError,
    InsufficientFunds,
    InvalidCursor,
    InvalidInput,
    InvalidKey,
    NotFetched,
    NotFound,
    RetriesExhausted,
    TableMissing,
    Throttled,
    TransferOutcomeUnknown,
    UnreadableItem,
    WriteOutcomeUnknown,
)
from repositories.paging import CursorSecretMissing

__all__ = [
    "AccessDenied",
    "AlreadyExists",
    "ConfigurationError",
    "ConflictError",
    "CredentialsExpired",
    "CredentialsRejected",
    "CursorSecretMissing",
    "DataLayerError",
    "EndpointUnreachable",
    "IdempotencyKeyReused",
    "InfrastructureError",
    "InsufficientFunds",
    "InvalidCursor",
    "InvalidInput",
    "InvalidKey",
    "NotFetched",
    "NotFound",
    "RetriesExhausted",
    "TableMissing",
    "Throttled",
    "TransferOutcomeUnknown",
    "UnreadableItem",
    "WriteOutcomeUnknown",
]
