"""``repositories.errors``: the same error classes for both APIs."""

from __future__ import annotations

from repositories.errors import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    ConflictError,
    CredentialsExpired,
    CredentialsRejected,
    CursorSecretMissing,
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

__all__ = ["AccessDenied", "AlreadyExists", "ConfigurationError", "ConflictError", "CredentialsExpired",
    "CredentialsRejected", "CursorSecretMissing", "DataLayerError", "EndpointUnreachable",
    "IdempotencyKeyReused", "InfrastructureError", "InsufficientFunds", "InvalidCursor", "InvalidInput",
    "InvalidKey", "NotFetched", "NotFound", "RetriesExhausted", "TableMissing", "Throttled",
    "TransferOutcomeUnknown", "UnreadableItem", "WriteOutcomeUnknown"]
