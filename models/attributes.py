"""Reusable attribute types."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.constants import NUMBER

from core.errors import InvalidInput

# DynamoDB numbers hold up to 38 significant digits.
MAX_SIGNIFICANT_DIGITS = 38


def to_decimal(value: Any, *, what: str = "amount") -> Decimal:
    """Accept a ``Decimal``, an ``int`` or a numeric string; refuse floats, NaN and infinities."""
    if isinstance(value, (bool, float)):
        raise InvalidInput(f"{what} must be a Decimal, not {type(value).__name__} (floats are inexact)")
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise InvalidInput(f"{what} is not a number") from None
    if not isinstance(value, Decimal):
        raise InvalidInput(f"{what} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise InvalidInput(f"{what} must be finite")
    if len(value.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        raise InvalidInput(f"{what} has more than {MAX_SIGNIFICANT_DIGITS} significant digits")
    return value


class DecimalAttribute(Attribute[Decimal]):
    """An exact number: ``Decimal`` in Python, a DynamoDB number on the wire, floats refused."""

    attr_type = NUMBER

    def serialize(self, value: Any) -> str:
        """Render the exact decimal as DynamoDB's number string."""
        return str(to_decimal(value, what=self.attr_name or "number"))

    def deserialize(self, value: Any) -> Decimal:
        """Parse DynamoDB's number string without going through float."""
        return Decimal(value)


class MoneyAttribute(DecimalAttribute):
    """Money: a ``DecimalAttribute``; named apart so declarations say what they hold."""
