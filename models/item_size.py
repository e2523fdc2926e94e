"""The size of a wire-format item as DynamoDB counts it against its 400 KB limit; every put is
measured before it is sent (``models.planning``), so an over-size item is ``InvalidInput``, not a
``ValidationException`` from DynamoDB."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from core.errors import InvalidInput

MAX_ITEM_BYTES = 400 * 1024
NUMBER_BOUND = 21  # the most bytes a number takes
UNBOUNDED = MAX_ITEM_BYTES + 1  # a bound that says nothing: the item is measured


def check_item_size(item: Mapping[str, Any], what: str, bound: int | None = None) -> None:
    """``InvalidInput`` if the item is larger than DynamoDB's 400 KB limit (nothing is sent then).
    ``bound``: at least the item's size, if known (else ``upper_bound`` of it)."""
    if too_large(item, bound):
        raise InvalidInput(f"{what}: the item is larger than DynamoDB's {MAX_ITEM_BYTES}-byte item limit")


def too_large(item: Mapping[str, Any], bound: int | None = None) -> bool:
    """Whether the item is over DynamoDB's 400 KB limit (most items are known to be under unmeasured)."""
    if bound is None:
        bound = upper_bound(item)
    return bound > MAX_ITEM_BYTES and item_size(item) > MAX_ITEM_BYTES


def item_size(item: Mapping[str, Any]) -> int:
    """The size of a wire-format item as DynamoDB counts it against its 400 KB limit."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def upper_bound(item: Mapping[str, Any]) -> int:
    """At least the item's size, cheaply: 4 bytes a character (UTF-8's most) for names and strings,
    ``NUMBER_BOUND`` for a number; anything else is not bounded here (``UNBOUNDED``: past the
    limit, so it is measured exactly)."""
    total = 0
    for name, value in item.items():
        text = value.get("S")
        if text is not None:
            total += 4 * (len(name) + len(text))
        elif "N" in value:
            total += 4 * len(name) + NUMBER_BOUND
        else:
            return UNBOUNDED
    return total


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + _text_size(k) + _value_size(v) for k, v in inner.items())
    if kind not in _SCALAR_SIZES:
        raise InvalidInput(f"unknown DynamoDB type {kind!r}")
    return _SCALAR_SIZES[kind](inner)


def _text_size(text: str) -> int:
    return len(text.encode("utf-8"))


def _number_size(text: str) -> int:
    # 1 byte per two significant digits, plus 1 (AWS's documented approximation, up to 21 bytes).
    digits = Decimal(text).normalize().as_tuple().digits
    return min(21, (len(digits) + 1) // 2 + 1)


_SCALAR_SIZES: dict[str, Callable[[Any], int]] = {
    "S": _text_size,
    "N": _number_size,
    "B": len,
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "SS": lambda values: sum(map(_text_size, values)),
    "NS": lambda values: sum(map(_number_size, values)),
    "BS": lambda values: sum(map(len, values)),
}
