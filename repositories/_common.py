"""Small helpers the repository modules share (private): input checks (errors: ``core.error_codes``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from core.errors import InvalidInput, InvalidKey
from core.retry import RetryPolicy
from models.attributes import check_text
from models.keys import MAX_PARTITION_KEY_BYTES, KeyTemplate

T = TypeVar("T")

def require_text(value: Any, what: str, *, max_length: int = 1024) -> str:
    """A non-empty string, stripped of surrounding whitespace, with ``check_text``'s character rules."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > 2 * max_length + 1024:  # cheap bound before copying a huge string
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    return check_text(value.strip(), what, max_length=max_length)


def require_iterable(values: Iterable[T], what: str) -> list[T]:
    """The items of a collection, as a list; one ``str``, ``bytes`` or mapping (or no iterable at all)
    is ``InvalidInput``: ``get_products("abc")`` must not mean three ids."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidInput(f"{what} must be an iterable of items, got {type(values).__name__}")
    return list(values)


def key_part(value: Any, what: str) -> str:
    """An id usable as one key part, or ``InvalidKey`` (an ``InvalidInput``).

    Refused: anything but a string; control, bidirectional-formatting and lone surrogate
    characters (``check_text``); empty or whitespace-only; surrounding whitespace (``" a"``
    and ``"a"`` would be two different entities that look the same); the delimiter ``#``; more
    bytes than any DynamoDB key holds. The template that composes the full key checks its own,
    possibly tighter, limit before any request.
    """
    if not isinstance(value, str):
        raise InvalidKey(f"{what} must be a string, got {type(value).__name__}")
    try:
        check_text(value, what, max_length=MAX_PARTITION_KEY_BYTES)
    except InvalidInput as exc:
        raise InvalidKey(str(exc)) from None
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


def retry_policy(retry: Any, default: RetryPolicy) -> RetryPolicy:
    """``retry``, or ``default`` for ``None``; ``InvalidInput`` for anything but a ``RetryPolicy``."""
    if retry is None:
        return default
    if not isinstance(retry, RetryPolicy):
        raise InvalidInput(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
    return retry


def check_bool(value: Any, what: str) -> bool:
    """``value`` if it is a ``bool``; ``InvalidInput`` otherwise (``"yes"`` or ``1`` is not a flag)."""
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be a bool, got {type(value).__name__}")
    return value
