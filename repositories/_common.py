"""Small helpers the repository modules share (private)."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError

from core.errors import InvalidInput


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
