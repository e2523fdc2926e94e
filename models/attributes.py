"""Reusable attribute types."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.constants import NUMBER

from core.errors import InvalidInput

# DynamoDB numbers hold up to 38 significant digits.
MAX_SIGNIFICANT_DIGITS = 38
MAX_MONEY_DECIMAL_PLACES = 2


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


def to_money(value: Any, what: str, *, positive: bool) -> Decimal:
    """An exact amount of money: at most two decimal places, ``> 0`` (``positive``) or ``>= 0``.

    Accepts what ``to_decimal`` accepts (floats refused) and returns it in plain notation
    (``1E+2`` -> ``100``, ``-0`` -> ``0``), which every reader of the table parses; at most
    ``MAX_SIGNIFICANT_DIGITS`` digits in that notation. ``InvalidInput`` otherwise.
    """
    amount = to_decimal(value, what=what)
    if positive and amount <= 0:
        raise InvalidInput(f"{what} must be greater than zero")
    if amount < 0:
        raise InvalidInput(f"{what} must not be negative")
    if _decimal_places(amount) > MAX_MONEY_DECIMAL_PLACES:
        raise InvalidInput(f"{what} has more than {MAX_MONEY_DECIMAL_PLACES} decimal places")
    if amount.is_zero():
        return Decimal(0)  # -0 and 0E-10 print as such even in "f" form
    plain = Decimal(format(amount, "f"))
    if len(plain.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        raise InvalidInput(f"{what} has more than {MAX_SIGNIFICANT_DIGITS} digits")
    return plain


def _decimal_places(amount: Decimal) -> int:
    """Significant digits after the point (``1.500`` has one), without rounding."""
    if amount.is_zero():
        return 0  # 0E-10 is zero
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by to_decimal
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


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
