"""Reusable attribute types: value rules that every write path keeps.

The rules live in each attribute's ``serialize()``. PynamoDB calls it for ``Model.save()``, for the
values of update actions and conditions (``Order.amount.set(x)`` serializes ``x`` through
``MoneyAttribute.serialize`` when the action is built; ``models.actions`` checks what an action does
beyond its literal values) and for ``model.serialize()`` (``batch_write``). A value that breaks a
rule is refused there with ``InvalidInput``, before any request. Error messages say what is wrong,
never echo the value.

Reads stay lenient: ``deserialize()`` does not re-check, so an item written before a rule
tightened can still be loaded.

The same checks are plain functions (``to_decimal``, ``to_money``, ``check_text``,
``normalize_email``) for repositories that want to refuse bad input before building an entity.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar

from pynamodb.attributes import Attribute, UnicodeAttribute
from pynamodb.constants import NUMBER
from pynamodb_attributes import UnicodeDatetimeAttribute, UnicodeEnumAttribute

from core.emails import MAX_EMAIL_INPUT_LENGTH, MAX_EMAIL_LENGTH, canonical_email
from core.errors import InvalidInput

_E = TypeVar("_E", bound=enum.Enum)
_F = TypeVar("_F", bound=Callable[..., Any])

# DynamoDB numbers: up to 38 significant digits; a non-zero magnitude from 1E-130 to
# 9.9999999999999999999999999999999999999E+125.
MAX_SIGNIFICANT_DIGITS = 38
MIN_ADJUSTED_EXPONENT = -130  # Decimal.adjusted() of 1E-130
MAX_ADJUSTED_EXPONENT = 125  # Decimal.adjusted() of 9.99...E+125
# A numeric string longer than this is refused before it is parsed. 38 digits, a sign, a point
# and an exponent such as "E-130" need far less; the bound only keeps parsing cheap.
MAX_NUMBER_STRING_LENGTH = 100
# 2**128 > 10**38: an int with more bits has more than 38 digits; refused before conversion.
_MAX_INT_BITS = 128
# Plain ASCII decimal notation only: no whitespace, underscores, non-ASCII digits, NaN or Infinity
# (all of which ``Decimal()`` would accept).
_NUMBER_STRING = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z", re.ASCII)

MAX_MONEY_DECIMAL_PLACES = 2
# An amount above zero in plain notation with at most MAX_MONEY_DECIMAL_PLACES decimal places and no
# leading zero: a Decimal written so passes every check of to_money, which gives it back unchanged.
_PLAIN_AMOUNT = re.compile(rf"[1-9]\d*(?:\.\d{{1,{MAX_MONEY_DECIMAL_PLACES}}})?"
                           rf"|0\.(?=\d{{1,{MAX_MONEY_DECIMAL_PLACES}}}\Z)0*[1-9]\d*", re.ASCII)
_CENT = Decimal(1).scaleb(-MAX_MONEY_DECIMAL_PLACES)
# Enough digits to give any DynamoDB number (below 1E+126) its two places; nothing trapped, so a
# value that cannot be given them (1E+999999 in a hand-made stream image) quantizes to NaN quietly.
_SCALE = Context(prec=MAX_ADJUSTED_EXPONENT + 1 + MAX_MONEY_DECIMAL_PLACES, traps=[])

DEFAULT_TEXT_MAX_LENGTH = 256

# Refused in every text: C0 and C1 controls (NUL included) and DEL, lone surrogates (not
# encodable as UTF-8), and the bidirectional formatting characters that can make text display
# differently from what it is ("Trojan Source"): ALM, LRM/RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI.
_FORBIDDEN_ALWAYS = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
)
# Also refused in single-line text: tab, line feed, carriage return, LINE and PARAGRAPH SEPARATOR.
_LINE_BREAKS = "\t\n\r\u2028\u2029"
_FORBIDDEN_SINGLE_LINE = re.compile(f"[{_FORBIDDEN_ALWAYS}{_LINE_BREAKS}]")
_FORBIDDEN_MULTILINE = re.compile(f"[{_FORBIDDEN_ALWAYS}\u2028\u2029]")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# Numbers


def to_decimal(value: Any, *, what: str = "amount") -> Decimal:
    """A number DynamoDB stores exactly, as a ``Decimal``; ``InvalidInput`` otherwise.

    Accepts a ``Decimal``, an ``int`` or a numeric string in plain ASCII notation (``"19.90"``,
    ``"-1.5E+3"``); refuses ``float`` (inexact) and ``bool``, NaN and infinities, more than
    ``MAX_SIGNIFICANT_DIGITS`` digits, and a non-zero magnitude outside 1E-130 .. <1E+126.
    Every bound is checked before anything expands the value, so hostile input such as
    ``Decimal("1E100000000")`` or a 5,000-character string is refused at once. Zero of any
    sign or exponent comes back as ``Decimal(0)``.
    """
    number = _parse_number(value, what)
    if not number.is_finite():
        raise InvalidInput(f"{what} must be finite")
    if number.is_zero():
        return Decimal(0)  # -0 and 0E-1000000 are zero; DynamoDB has one zero
    # as_tuple() only copies the digits the value already holds; nothing is expanded.
    if len(number.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        raise InvalidInput(f"{what} has more than {MAX_SIGNIFICANT_DIGITS} significant digits")
    magnitude = number.adjusted()  # exponent of the leading digit, read from the representation
    if magnitude > MAX_ADJUSTED_EXPONENT:
        raise InvalidInput(f"{what} is too large for a DynamoDB number (1E+126 or more)")
    if magnitude < MIN_ADJUSTED_EXPONENT:
        raise InvalidInput(f"{what} is too close to zero for a DynamoDB number (below 1E-130)")
    return number


def _parse_number(value: Any, what: str) -> Decimal:
    if isinstance(value, (bool, float)):
        raise InvalidInput(f"{what} must be a Decimal, not {type(value).__name__} (floats are inexact)")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise InvalidInput(f"{what} has more than {MAX_SIGNIFICANT_DIGITS} significant digits")
        return Decimal(int(value))  # int(): an IntEnum member converts as its plain value
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_STRING_LENGTH:
            raise InvalidInput(f"{what} is longer than {MAX_NUMBER_STRING_LENGTH} characters")
        if not _NUMBER_STRING.match(value):
            raise InvalidInput(f"{what} is not a number in plain decimal notation")
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
            raise InvalidInput(f"{what} is not a number") from None
    raise InvalidInput(f"{what} must be a Decimal, got {type(value).__name__}")


def to_money(
    value: Any, what: str, *, positive: bool, max_digits: int = MAX_SIGNIFICANT_DIGITS
) -> Decimal:
    """An exact amount of money: at most two decimal places, ``> 0`` (``positive``) or ``>= 0``.

    Accepts what ``to_decimal`` accepts (floats refused) and returns it in plain notation
    (``1E+2`` -> ``100``, ``-0`` -> ``0``), which every reader of the table parses; at most
    ``max_digits`` digits in that notation. ``InvalidInput`` otherwise.
    """
    if type(value) is Decimal and _plain_amount(value, max_digits) is not None:  # the usual amount
        return value
    amount = to_decimal(value, what=what)
    if positive and amount <= 0:
        raise InvalidInput(f"{what} must be greater than zero")
    if amount < 0:
        raise InvalidInput(f"{what} must not be negative")
    if amount.is_zero():
        return Decimal(0)
    if _decimal_places(amount) > MAX_MONEY_DECIMAL_PLACES:
        raise InvalidInput(f"{what} has more than {MAX_MONEY_DECIMAL_PLACES} decimal places")
    # Cheap: to_decimal bounded the value (at most 38 digits, below 1E+126), so the plain form
    # has at most a couple of hundred characters.
    plain = Decimal(format(amount, "f"))
    if len(plain.as_tuple().digits) > max_digits:
        raise InvalidInput(f"{what} has more than {max_digits} digits")
    return plain


def _plain_amount(value: Decimal, max_digits: int) -> str | None:
    """The text of ``value`` when it passes every check of ``to_money`` as it is (12.50, 3, 0.05:
    above zero, in plain notation, at most two decimal places, no leading zero, at most
    ``max_digits`` characters), which ``to_money`` then gives back unchanged; else None."""
    text = str(value)
    return text if len(text) <= max_digits and _PLAIN_AMOUNT.fullmatch(text) else None


def _decimal_places(amount: Decimal) -> int:
    """Significant digits after the point (``1.500`` has one), without rounding."""
    if amount.is_zero():
        return 0  # 0E-10 is zero
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by to_decimal
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


class DecimalAttribute(Attribute[Decimal]):
    """An exact number: ``Decimal`` in Python, a DynamoDB number on the wire (``to_decimal``'s rules)."""

    attr_type = NUMBER

    def serialize(self, value: Any) -> str:
        """Check the number with ``to_decimal`` and render it as DynamoDB's number string."""
        return str(to_decimal(value, what=self.attr_name or "number"))

    def deserialize(self, value: Any) -> Decimal:
        """Parse DynamoDB's number string without going through float."""
        return Decimal(value)


class MoneyAttribute(DecimalAttribute):
    """Money (``to_money``'s rules): a ``Decimal``, ``int`` or numeric string, never a float;
    ``>= 0`` (``> 0`` with ``positive=True``); at most two decimal places; at most ``max_digits``
    digits in plain notation, which is what is written (``1E+2`` is stored as ``100``).

    ``max_digits`` defaults to ``MAX_SIGNIFICANT_DIGITS`` (38), the most a DynamoDB number holds
    exactly, so any amount the table can store round-trips. Declare a lower bound where a reader
    needs one, for example ``max_digits=18`` when another service reads the amount as a 64-bit
    count of cents. Other keyword arguments (``attr_name``, ``null``, ``default``) go to PynamoDB.
    """

    def __init__(
        self, *, positive: bool = False, max_digits: int = MAX_SIGNIFICANT_DIGITS, **kwargs: Any
    ) -> None:
        if not MAX_MONEY_DECIMAL_PLACES < max_digits <= MAX_SIGNIFICANT_DIGITS:
            raise ValueError(
                f"max_digits must be between {MAX_MONEY_DECIMAL_PLACES + 1} and {MAX_SIGNIFICANT_DIGITS}"
            )
        super().__init__(**kwargs)
        self.positive = positive
        self.max_digits = max_digits

    def serialize(self, value: Any) -> str:
        """Check the amount with ``to_money`` and write it in plain notation."""
        text = _plain_amount(value, self.max_digits) if type(value) is Decimal else None
        if text is not None:  # the usual amount: its text is what to_money would write
            return text
        what = self.attr_name or "amount"
        return str(to_money(value, what, positive=self.positive, max_digits=self.max_digits))

    def deserialize(self, value: Any) -> Decimal:
        """The stored amount at its two decimal places: DynamoDB gives ``10.00`` back as ``10``,
        this reads ``Decimal("10.00")`` (``money_at_scale``)."""
        return money_at_scale(Decimal(value))


def money_at_scale(amount: Decimal) -> Decimal:
    """``amount`` with exactly two decimal places (``10`` -> ``10.00``, ``12.5`` -> ``12.50``), never
    rounded.

    An amount that two places cannot hold exactly (``12.345`` written by another writer, NaN,
    infinity) is returned as it is: reading it changes nothing, and writing it back is refused
    by ``to_money``'s rule, with its error, instead of saving a silently rounded amount. (A
    signalling NaN, which no DynamoDB number is, raises ``InvalidOperation``.)
    """
    scaled = amount.quantize(_CENT, ROUND_DOWN, _SCALE)
    return scaled if scaled == amount else amount


# Text


def check_text(
    value: Any,
    what: str,
    *,
    max_length: int = DEFAULT_TEXT_MAX_LENGTH,
    min_length: int = 1,
    multiline: bool = False,
) -> str:
    """``value`` unchanged if it is acceptable text; ``InvalidInput`` otherwise.

    Refused: anything but a ``str``; fewer than ``min_length`` or more than ``max_length``
    characters (code points); only whitespace when ``min_length >= 1``; lone surrogates; C0/C1
    control characters and DEL (NUL included); bidirectional formatting characters (ALM, LRM,
    RLM, U+202A..U+202E, U+2066..U+2069). Line breaks and tabs (``\\t \\n \\r`` U+2028 U+2029) are
    refused too unless ``multiline``, which then allows ``\\t``, ``\\n`` and ``\\r``. The length
    is checked before the characters, so a huge string costs no scan.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    if len(value) < min_length:
        raise InvalidInput(
            f"{what} must not be empty" if min_length == 1
            else f"{what} is shorter than {min_length} characters"
        )
    if min_length >= 1 and value.isspace():
        raise InvalidInput(f"{what} must not be blank")
    found = (_FORBIDDEN_MULTILINE if multiline else _FORBIDDEN_SINGLE_LINE).search(value)
    if found is not None:
        raise InvalidInput(f"{what} contains {_describe(found.group())} at position {found.start()}")
    return value


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate ({code})"
    if char in _BIDI:
        return f"a bidirectional formatting character ({code})"
    if char in "\u2028\u2029":
        return f"a line separator ({code})"
    return f"a control character ({code})"


class TextAttribute(UnicodeAttribute):
    """A string kept to ``check_text``'s rules on every write.

    ``TextAttribute(attr_name="Name", max_length=256, min_length=1, strip=False, multiline=False)``.
    With ``strip=True`` surrounding whitespace is removed before the check and not stored; the
    default keeps the value as given (but refuses one that is only whitespace). Single-line by
    default: tabs and line breaks are refused unless ``multiline=True``. Other keyword arguments
    (``attr_name``, ``null``, ``default``) go to PynamoDB.
    """

    def __init__(
        self,
        *,
        max_length: int = DEFAULT_TEXT_MAX_LENGTH,
        min_length: int = 1,
        strip: bool = False,
        multiline: bool = False,
        **kwargs: Any,
    ) -> None:
        if not 0 <= min_length <= max_length:
            raise ValueError("need 0 <= min_length <= max_length")
        super().__init__(**kwargs)
        self.max_length = max_length
        self.min_length = min_length
        self.strip = strip
        self.multiline = multiline

    def serialize(self, value: Any) -> str:
        """Check the text (stripped first with ``strip=True``) and write it."""
        what = self.attr_name or "text"
        if self.strip and isinstance(value, str):
            if len(value) > 2 * self.max_length + 1024:  # cheap bound before copying a huge string
                raise InvalidInput(f"{what} is longer than {self.max_length} characters")
            value = value.strip()
        return check_text(
            value, what, max_length=self.max_length, min_length=self.min_length, multiline=self.multiline
        )


def normalize_email(value: Any, what: str = "email") -> str:
    """The canonical form of an email address (``core.emails.canonical_email``); ``InvalidInput`` if
    it is refused.

    One form for the stored ``Email``, the ``EMAIL#{email}`` claim and Email-Index lookups:
    surrounding whitespace stripped; NFC, IDNA and unsafe characters as ``email-validator`` has
    them; the local part NFKC-normalized and case-folded (``ß`` -> ``ss``, fullwidth -> ASCII,
    ``İ`` -> ``i``); the domain in Unicode, lower-case (``xn--mnchen-3ya.de`` -> ``münchen.de``).
    Refused besides: ``check_text``'s characters, more than 254 characters or a local part of more
    than 64 (counted on the canonical form), whitespace, a domain without a dot, letters of mixed
    scripts in a local part or domain label, and a part written only in Cyrillic or Greek
    look-alikes of Latin letters. ``#`` (the key delimiter, as the address is part of the claim's
    key) raises ``InvalidKey``, an ``InvalidInput``. Messages never echo the address.
    """
    if isinstance(value, str):
        return _normalized_email(value, what)
    return check_text(canonical_email(value, what), what, max_length=MAX_EMAIL_LENGTH)


@lru_cache(maxsize=1024)
def _normalized_email(value: str, what: str) -> str:
    # A user's write normalizes its address several times (the repository, the attribute, the
    # claim): about 0.1 ms each, so the answers for recent addresses are kept (refusals are not).
    if len(value) <= MAX_EMAIL_INPUT_LENGTH:
        # The text rules first, with their own messages (email-validator refuses these too).
        check_text(value.strip(), what, max_length=MAX_EMAIL_INPUT_LENGTH)
    return check_text(canonical_email(value, what), what, max_length=MAX_EMAIL_LENGTH)


class EmailAttribute(TextAttribute):
    """An email address, written as ``normalize_email`` returns it (its canonical form, checked).

    The object in memory keeps what was assigned; what is stored (and what a condition such as
    ``User.email == "Ada@Example.com"`` compares with) is the canonical form.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=MAX_EMAIL_LENGTH, **kwargs)

    def serialize(self, value: Any) -> str:
        """Canonicalize and check the address with ``normalize_email``."""
        return normalize_email(value, self.attr_name or "email")


# Enums


class EnumAttribute(UnicodeEnumAttribute[_E]):
    """A string enum stored as its value; accepts a member or its string value.

    ``pynamodb_attributes.UnicodeEnumAttribute`` raises ``TypeError`` for anything but a member,
    its value string included; this one raises ``InvalidInput`` for a value outside the enum,
    a member of another enum (even a ``StrEnum`` member with the same text) or a non-string.
    """

    def __init__(self, enum_type: type[_E], **kwargs: Any) -> None:
        super().__init__(enum_type, **kwargs)
        self._members: dict[str, _E] = {member.value: member for member in enum_type}

    def deserialize(self, value: str) -> _E | None:
        """The member whose value is stored (looked up in a dict: every item read has one); an
        unknown value as ``UnicodeEnumAttribute`` treats it."""
        member = self._members.get(value) if type(value) is str else None
        return member if member is not None else super().deserialize(value)

    def serialize(self, value: Any) -> str:
        """The member's string value; ``InvalidInput`` for anything else."""
        what = self.attr_name or "value"
        if isinstance(value, self.enum_type):
            member = value
        elif isinstance(value, enum.Enum):
            raise InvalidInput(f"{what} must be a {self.enum_type.__name__}, not a {type(value).__name__}")
        elif isinstance(value, str):
            try:
                member = self.enum_type(value)
            except ValueError:
                allowed = ", ".join(str(m.value) for m in self.enum_type)
                raise InvalidInput(f"{what} must be one of {allowed}") from None
        else:
            raise InvalidInput(f"{what} must be a {self.enum_type.__name__}, got {type(value).__name__}")
        text: str = member.value
        return text


def same_as(function: Callable[[Any], Any]) -> Callable[[_F], _F]:
    """Mark a ``deserialize`` that only calls ``function`` (with the stored value): ``models.reading``
    calls ``function`` itself for every item it reads."""

    def mark(method: _F) -> _F:
        setattr(method, "same_as", function)  # noqa: B010  # a function's attribute, read by getattr
        return method

    return mark


class TimestampAttribute(UnicodeDatetimeAttribute):
    """A UTC timestamp stored as ISO-8601 text (``UnicodeDatetimeAttribute(force_utc=True)``). A write
    stamps one time on several attributes and items (``CreatedAt``, ``UpdatedAt``, a transfer's
    accounts): the text of the last time serialized by any of them is kept, and the same
    ``datetime`` object is not formatted again."""

    _last: tuple[datetime | None, str] = (None, "")  # shared: one write's time, on every attribute

    def __init__(self, **kwargs: Any) -> None:
        if {"fmt", "force_tz", "force_utc"} & kwargs.keys():  # the text kept is for this one format
            raise TypeError("TimestampAttribute writes UTC ISO-8601 only: no fmt, force_tz or force_utc")
        super().__init__(force_utc=True, **kwargs)

    @same_as(datetime.fromisoformat)
    def deserialize(self, value: str) -> datetime:
        """The stored text as a ``datetime`` (``datetime.fromisoformat``, as the base class reads it)."""
        return datetime.fromisoformat(value)

    def serialize(self, value: datetime) -> str:
        """``value`` in UTC, as ``datetime.isoformat`` writes it."""
        last, text = TimestampAttribute._last
        if value is last:
            return text
        text = super().serialize(value)
        TimestampAttribute._last = (value, text)
        return text
