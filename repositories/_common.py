"""Small helpers the repository modules share (private): input checks and error mapping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from pynamodb.exceptions import PynamoDBException, TransactWriteError

from core.errors import DataLayerError, InvalidInput, InvalidKey, RetriesExhausted
from models.keys import MAX_PARTITION_KEY_BYTES, KeyTemplate

T = TypeVar("T")

# DynamoDB's error codes, in the two places they appear. A cancelled transaction's error code is
# TRANSACTION_CANCELED_EXCEPTION, and each item's reason carries a code without "Exception".
CONDITION_FAILED = "ConditionalCheckFailed"  # cancellation reason
TRANSACTION_CONFLICT = "TransactionConflict"  # cancellation reason
THROTTLING_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})  # reasons
CONDITIONAL_CHECK_FAILED_EXCEPTION = "ConditionalCheckFailedException"  # a single write's error
TRANSACTION_CANCELED_EXCEPTION = "TransactionCanceledException"
TRANSACTION_CONFLICT_EXCEPTION = "TransactionConflictException"
IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION = "IdempotentParameterMismatchException"
# The throttling and limit codes botocore already retried (botocore/retries/standard.py) before
# the error reached us.
THROTTLING_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "LimitExceededException", "Throttling", "TooManyRequestsException",
})


def error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code behind a PynamoDB or botocore exception, if any."""
    if isinstance(exc, PynamoDBException):
        # Not ``cause_response_code``: it raises AttributeError when the cause is a transport
        # error (a read timeout carries ``response=None``).
        source: BaseException | None = exc.cause
    else:
        source = exc
    response = getattr(source, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def cancellation_codes(exc: TransactWriteError) -> list[str | None]:
    """Per-item cancellation codes of a cancelled transaction (``None`` where the item was fine)."""
    return [reason.code if reason is not None else None for reason in exc.cancellation_reasons]


def require_text(value: Any, what: str, *, max_length: int = 1024) -> str:
    """A non-empty string, stripped of surrounding whitespace, or ``InvalidInput``."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    text: str = value.strip()
    if not text:
        raise InvalidInput(f"{what} must not be empty")
    if len(text) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    return text


def require_iterable(values: Iterable[T], what: str) -> list[T]:
    """The items of a collection, as a list; one ``str``, ``bytes`` or mapping (or no iterable at all)
    is ``InvalidInput``: ``get_products("abc")`` must not mean three ids."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidInput(f"{what} must be an iterable of items, got {type(values).__name__}")
    return list(values)


def key_part(value: Any, what: str) -> str:
    """An id usable as one key part, or ``InvalidKey`` (an ``InvalidInput``).

    Refused: anything but a string; empty or whitespace-only; surrounding whitespace (``" a"``
    and ``"a"`` would be two different entities that look the same); the delimiter ``#``; more
    bytes than any DynamoDB key holds. The template that composes the full key checks its own,
    possibly tighter, limit before any request.
    """
    if not isinstance(value, str):
        raise InvalidKey(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidKey(f"{what} must not be empty")
    if value != value.strip():
        raise InvalidKey(f"{what} must not start or end with whitespace")
    if len(value.encode("utf-8")) > MAX_PARTITION_KEY_BYTES:
        raise InvalidKey(f"{what} is longer than a DynamoDB key can be")
    return KeyTemplate.compose_part(what, value)


def aware_utc(value: Any, what: str) -> datetime:
    """A timezone-aware ``datetime``, converted to UTC; ``InvalidInput`` otherwise."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{what} must be timezone-aware")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # an aware datetime.min or .max that UTC cannot hold
        raise InvalidInput(f"{what} is out of range in UTC") from exc


def is_throttling(exc: BaseException) -> bool:
    """True if DynamoDB throttled the request (or an item of a cancelled transaction)."""
    if error_code(exc) in THROTTLING_CODES:
        return True
    return isinstance(exc, TransactWriteError) and any(
        code in THROTTLING_REASONS for code in cancellation_codes(exc)
    )


def raise_unexpected(exc: BaseException, what: str) -> NoReturn:
    """Map an error no access pattern expects into the error tree, keeping ``exc`` as the cause.

    Throttling (botocore retries it before we see it) becomes ``RetriesExhausted``, which a
    caller can meet by trying later; anything else becomes a plain ``DataLayerError``.
    """
    code = error_code(exc)
    if is_throttling(exc):
        raise RetriesExhausted(f"{what}: DynamoDB kept throttling the request") from exc
    raise DataLayerError(f"{what} failed: {code or type(exc).__name__}") from exc
