"""The value rules kept by the attribute types themselves (models.attributes).

Each rule is checked in ``serialize()``, so the tests try it there and through every write path
PynamoDB builds from it: an update action's value, a condition's value, ``Model.save()``,
``model.serialize()`` (what ``batch_write`` sends) and a ``TransactWrite``. The throwaway model
points at a closed port: a write that got as far as a request would fail with a connection
error, not ``InvalidInput``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynamodb.attributes import UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite
from pynamodb_attributes import UnicodeDatetimeAttribute

from core.errors import InvalidInput, InvalidKey
from models.attributes import (
    MAX_SIGNIFICANT_DIGITS,
    DecimalAttribute,
    EmailAttribute,
    EnumAttribute,
    MoneyAttribute,
    TextAttribute,
    TimestampAttribute,
    check_text,
    money_at_scale,
    normalize_email,
    to_decimal,
    to_money,
)

CLOSED_PORT = "http://127.0.0.1:1"


def short_id(value: object) -> str:
    """A readable test id for huge or unprintable parameters."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        return f"int-of-{value.bit_length()}-bits"
    text = ascii(value)
    return text if len(text) <= 30 else f"{text[:20]}...({len(text)} chars)"


class Colour(enum.StrEnum):
    RED = "RED"
    GREEN = "GREEN"


class OtherColour(enum.StrEnum):
    RED = "RED"


class Thing(Model):
    """A throwaway model with one attribute of each type."""

    class Meta:
        table_name = "t"
        host = CLOSED_PORT
        region = "us-east-1"
        max_retry_attempts = 0
        connect_timeout_seconds = 1

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    amount = MoneyAttribute(attr_name="Amount", positive=True)
    balance = MoneyAttribute(attr_name="Balance", null=True)
    small = MoneyAttribute(attr_name="Small", max_digits=5, null=True)
    number = DecimalAttribute(attr_name="Number", null=True)
    name = TextAttribute(attr_name="Name", max_length=10)
    note = TextAttribute(attr_name="Note", max_length=50, min_length=0, multiline=True, null=True)
    title = TextAttribute(attr_name="Title", strip=True, null=True)
    email = EmailAttribute(attr_name="Email", null=True)
    colour = EnumAttribute(Colour, attr_name="Colour", null=True)


def attribute(name: str) -> Any:
    """The declared attribute object (not the instance value)."""
    return Thing.get_attributes()[name]


def good_thing(**overrides: Any) -> Thing:
    values: dict[str, Any] = {"pk": "p1", "amount": Decimal("19.90"), "name": "Ada"}
    return Thing(**{**values, **overrides})


# Numbers

HOSTILE_NUMBERS: list[Any] = [
    Decimal("1E100000000"), "1E100000000", "9" * 5000, Decimal("9" * 5000), Decimal("1E-100000000"),
    "-1E100000000", 10**5000, Decimal("1E+126"), Decimal("-1E+126"), Decimal("1E-131"),
]


@pytest.mark.parametrize("bad", HOSTILE_NUMBERS, ids=short_id)
def test_to_decimal_refuses_hostile_numbers_before_expanding_them(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        to_decimal(bad)


@pytest.mark.parametrize("bad", [
    0.1, 1.0, float("nan"), True, None, [1], Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"),
    "abc", "NaN", "Infinity", " 1", "1 ", "1_000", "\u0661\u0662", "", "1e", ".", "+", "1." + "1" * 38,
    "9" * 39, 10**39,
], ids=short_id)  # fmt: skip
def test_to_decimal_refuses_what_dynamodb_cannot_hold_exactly(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        to_decimal(bad)


@pytest.mark.parametrize(("value", "expected"), [
    ("19.90", Decimal("19.90")), ("-1.5E+3", Decimal(-1500)), (".5", Decimal("0.5")), (7, Decimal(7)),
    (Decimal("1E-130"), Decimal("1E-130")), (Decimal("9" * 38 + "E+88"), Decimal("9" * 38 + "E+88")),
    (Decimal("-0"), Decimal(0)), (Decimal("0E-1000000"), Decimal(0)), ("9" * 38, Decimal("9" * 38)),
])  # fmt: skip
def test_to_decimal_accepts_every_number_dynamodb_holds(value: Any, expected: Decimal) -> None:
    result = to_decimal(value)
    assert result == expected and not (result.is_zero() and result.is_signed())


def test_zero_is_written_as_plain_zero() -> None:
    assert attribute("number").serialize(Decimal("-0E-1000000")) == "0"


@pytest.mark.parametrize(
    "bad", [*HOSTILE_NUMBERS, Decimal("-0.01"), Decimal("0.001"), 0.5, "1.005"], ids=short_id
)
def test_to_money_refuses_hostile_and_invalid_amounts(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        to_money(bad, "amount", positive=False)


def test_to_money_keeps_its_positional_signature_and_checks_max_digits() -> None:
    assert to_money("12345.67", "amount", positive=True) == Decimal("12345.67")
    with pytest.raises(InvalidInput, match="more than 5 digits"):
        to_money("12345.67", "amount", positive=True, max_digits=5)


_EDGE_AMOUNTS = ["0", "0.00", "-0", "0.01", "0.10", "0.001", "1E+2", "1.0E-7", "12.345", "99999.99",
                 "999999.99", "-1", "5E-2", "0E-2"]


def _written(write: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    try:
        return str(write(*args, **kwargs))
    except InvalidInput as exc:
        return f"refused: {exc}"


@settings(max_examples=500, deadline=None)
@given(amount=st.decimals(allow_nan=False, allow_infinity=False)
       | st.sampled_from([Decimal(text) for text in _EDGE_AMOUNTS]))
def test_a_money_attribute_writes_any_decimal_as_to_money_writes_it(amount: Decimal) -> None:
    for attribute in (MoneyAttribute(attr_name="Amount"), MoneyAttribute(attr_name="Amount", positive=True),
                      MoneyAttribute(attr_name="Amount", max_digits=7)):
        expected = _written(to_money, amount, "Amount", positive=attribute.positive,
                            max_digits=attribute.max_digits)
        assert _written(attribute.serialize, amount) == expected


@settings(max_examples=500, deadline=None)
@given(amount=st.decimals(allow_nan=False, allow_infinity=False)
       | st.sampled_from([Decimal(text) for text in _EDGE_AMOUNTS]),
       positive=st.booleans(), max_digits=st.sampled_from([3, 7, 38]))
def test_to_money_takes_a_decimal_as_it_takes_its_text(amount: Decimal, positive: bool,
                                                        max_digits: int) -> None:
    # A Decimal may be given back as it is (the usual amount); its text always takes every step.
    as_decimal = _written(to_money, amount, "Amount", positive=positive, max_digits=max_digits)
    as_text = _written(to_money, str(amount), "Amount", positive=positive, max_digits=max_digits)
    assert as_decimal == as_text


@pytest.mark.parametrize(("name", "bad"), [
    ("amount", Decimal(0)), ("amount", "0.00"), ("amount", Decimal("-5")), ("balance", Decimal("-0.01")),
    ("amount", Decimal("0.001")), ("amount", Decimal("1.005")), ("amount", 1.5), ("amount", True),
    ("amount", "ten"), ("amount", Decimal("NaN")), ("balance", Decimal("Infinity")), ("amount", None),
    ("amount", "1" * 39), ("amount", Decimal("1E+38")), ("small", Decimal("1000.00")),
    ("small", Decimal("123456")), ("amount", Decimal("1E100000000")), ("amount", "9" * 5000),
], ids=short_id)  # fmt: skip
def test_money_attribute_refuses_what_is_not_money(name: str, bad: Any) -> None:
    with pytest.raises(InvalidInput):
        attribute(name).serialize(bad)


@pytest.mark.parametrize(("name", "value", "written"), [
    ("amount", Decimal("19.90"), "19.90"), ("amount", 5, "5"), ("amount", "0.01", "0.01"),
    ("amount", Decimal("1E+3"), "1000"), ("amount", Decimal("1.500"), "1.500"),
    ("balance", Decimal(0), "0"), ("balance", Decimal("-0"), "0"), ("balance", Decimal("0E-10"), "0"),
    ("balance", "9" * 36 + ".99", "9" * 36 + ".99"), ("small", Decimal("999.99"), "999.99"),
], ids=short_id)  # fmt: skip
def test_money_attribute_writes_plain_notation_and_reads_back_a_decimal(
    name: str, value: Any, written: str
) -> None:
    attr = attribute(name)
    assert attr.serialize(value) == written
    read = attr.deserialize(written)
    assert isinstance(read, Decimal) and read == Decimal(str(value))


@given(st.decimals(min_value=0, max_value=Decimal("9" * 16 + ".99"), places=2, allow_nan=False))
def test_every_amount_with_two_places_round_trips(amount: Decimal) -> None:
    attr = attribute("balance")
    written = attr.serialize(amount)
    assert "E" not in written and attr.deserialize(written) == amount


def test_money_attribute_rejects_a_max_digits_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="max_digits"):
        MoneyAttribute(max_digits=MAX_SIGNIFICANT_DIGITS + 1)


# Text

BAD_TEXT: list[Any] = [
    "", "   ", "x" * 11, 42, None, b"Ada", "A\x00a", "A\x07a", "A\x1ba", "A\x7fa", "A\x85a", "A\x9fa",
    "A\ta", "A\na", "A\ra", "A\u2028a", "A\u2029a", "A\ud800a", "A\udfffa", "\u202eAda", "A\u202ad",
    "A\u202bd", "A\u202cd", "A\u202dd", "A\u2066d", "A\u2067d", "A\u2068d", "A\u2069d", "A\u200ed",
    "A\u200fd", "A\u061cd", "x" * 100_000,
]


@pytest.mark.parametrize("bad", BAD_TEXT, ids=short_id)
def test_text_attribute_refuses_bad_text(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        attribute("name").serialize(bad)


@pytest.mark.parametrize("bad", BAD_TEXT, ids=short_id)
def test_check_text_refuses_the_same_text(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        check_text(bad, "name", max_length=10)


def test_text_errors_name_the_problem_without_echoing_the_text() -> None:
    secret = "Ada\u202eLovelace"
    with pytest.raises(InvalidInput) as raised:
        check_text(secret, "name", max_length=100)
    message = str(raised.value)
    assert "U+202E" in message and "bidirectional" in message and "Ada" not in message


@pytest.mark.parametrize("good", [
    "Ada", "Ada Byron", "x" * 10, "Zoë", "名前", "\u05e9\u05dc\u05d5\u05dd", "👩\u200d💻", " Ada ",
], ids=short_id)  # fmt: skip
def test_text_attribute_round_trips_good_text_unchanged(good: str) -> None:
    attr = attribute("name")
    assert attr.deserialize(attr.serialize(good)) == good


def test_multiline_text_allows_tabs_and_line_breaks_but_still_refuses_other_controls() -> None:
    attr = attribute("note")
    assert attr.serialize("line one\r\n\tline two") == "line one\r\n\tline two"
    assert attr.serialize("") == ""
    for bad in ("a\x00b", "a\u2028b", "a\u202eb", "a\ud800b", "x" * 51):
        with pytest.raises(InvalidInput):
            attr.serialize(bad)


def test_strip_removes_surrounding_whitespace_before_the_check() -> None:
    attr = attribute("title")
    assert attr.serialize("  Hello  ") == "Hello"
    with pytest.raises(InvalidInput):
        attr.serialize("   ")
    with pytest.raises(InvalidInput):
        attr.serialize(" " * 10_000_000)


# Email


@pytest.mark.parametrize(("given_email", "stored"), [
    ("  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"), ("a@b.co", "a@b.co"),
    ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
    ("first+tag@mail.example.org", "first+tag@mail.example.org"),
], ids=short_id)  # fmt: skip
def test_email_is_stripped_and_lower_cased(given_email: str, stored: str) -> None:
    attr = attribute("email")
    assert normalize_email(given_email) == stored
    assert attr.serialize(given_email) == stored and attr.deserialize(stored) == stored


@pytest.mark.parametrize("bad", [
    "two@@example.com", "a@b@example.com", "spa ce@example.com", "tab\t@example.com", "nodot@localhost",
    "dots@example..com", "@example.com", "ada@", "ada@.example.com", "ada@example.com.", "ada.example.com",
    "x" * 250 + "@example.com", "x" * 65 + "@example.com", "", "   ", None, 42, "ada\x00@example.com",
    "ada\u202e@example.com", "ada@exam\nple.com", "a@b.c" + "m" * 10_000_000,
], ids=short_id)  # fmt: skip
def test_email_refuses_a_bad_shape(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(bad)
    with pytest.raises(InvalidInput):
        attribute("email").serialize(bad)


def test_email_with_the_key_delimiter_is_an_invalid_key() -> None:
    with pytest.raises(InvalidKey):
        normalize_email("hash#tag@example.com")


def test_email_errors_do_not_echo_the_address() -> None:
    with pytest.raises(InvalidInput) as raised:
        normalize_email("ada.lovelace@localhost")
    assert "lovelace" not in str(raised.value)


# Enums


@pytest.mark.parametrize("good", [Colour.RED, "RED", "GREEN"])
def test_enum_attribute_accepts_a_member_or_its_value(good: Any) -> None:
    attr = attribute("colour")
    written = attr.serialize(good)
    assert written == str(good) and attr.deserialize(written) is Colour(good)


@pytest.mark.parametrize("bad", ["BLUE", "red", "", OtherColour.RED, 1, None, b"RED"])
def test_enum_attribute_refuses_anything_else(bad: Any) -> None:
    with pytest.raises(InvalidInput):
        attribute("colour").serialize(bad)


# Every write path


BAD_VALUES: list[tuple[str, Any]] = [
    ("amount", Decimal("-5")), ("amount", 0.1), ("amount", Decimal("1E100000000")), ("name", "A\x00"),
    ("name", "x" * 11), ("name", "\u202eAda"), ("email", "nodot@localhost"), ("colour", "BLUE"),
    ("number", float("nan")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "bad"), BAD_VALUES, ids=short_id)
def test_an_update_action_with_a_bad_value_is_refused(name: str, bad: Any) -> None:
    path = getattr(Thing, name)
    # PynamoDB serializes the value through the attribute when it builds the action's Value; the
    # serialize call below is where it would be rendered into the request otherwise.
    with pytest.raises(InvalidInput):
        path.set(bad).serialize({}, {})


def test_a_condition_value_goes_through_the_same_rules() -> None:
    with pytest.raises(InvalidInput):
        Thing.amount >= Decimal("-1")  # noqa: B015


def test_update_actions_with_good_values_serialize_what_the_attribute_writes() -> None:
    values: dict[str, Any] = {}
    Thing.amount.set(Decimal("1E+2")).serialize({}, values)
    Thing.email.set(" Ada@Example.com").serialize({}, values)
    assert {"N": "100"} in values.values() and {"S": "ada@example.com"} in values.values()


def test_model_arithmetic_in_an_update_checks_the_operand() -> None:
    Thing.balance.set(Thing.balance + Decimal("5.00"))
    with pytest.raises(InvalidInput):
        Thing.balance.set(Thing.balance - Decimal("0.001"))


WRITE_PATHS: dict[str, Callable[[Thing], object]] = {
    "save": lambda thing: thing.save(),
    "model.serialize (batch_write)": lambda thing: thing.serialize(),
    "TransactWrite.save": lambda thing: TransactWrite(
        connection=Connection(region="us-east-1", host=CLOSED_PORT)
    ).save(thing),
}


def _batch_save(thing: Thing) -> None:
    with Thing.batch_write() as batch:
        batch.save(thing)


WRITE_PATHS["batch_write"] = _batch_save


@pytest.mark.parametrize("path", list(WRITE_PATHS))
@pytest.mark.parametrize(("name", "bad"), BAD_VALUES, ids=short_id)
def test_every_write_path_refuses_a_bad_value_before_any_request(path: str, name: str, bad: Any) -> None:
    thing = good_thing(**{name: bad})
    with pytest.raises(InvalidInput):
        WRITE_PATHS[path](thing)


def test_a_good_model_serializes_what_the_attributes_write() -> None:
    thing = good_thing(
        amount=Decimal("1E+1"), balance="0", email="Ada@Example.COM", colour="GREEN", title="  T  "
    )
    item = thing.serialize()
    assert item["Amount"] == {"N": "10"} and item["Balance"] == {"N": "0"}
    assert item["Email"] == {"S": "ada@example.com"} and item["Colour"] == {"S": "GREEN"}
    assert item["Title"] == {"S": "T"} and item["Name"] == {"S": "Ada"}
    back = Thing.from_raw_data(item)
    assert back.amount == Decimal(10) and back.colour is Colour.GREEN and back.email == "ada@example.com"


@pytest.mark.parametrize(("stored", "read"), [
    ("10", "10.00"), ("12.5", "12.50"), ("0.05", "0.05"), ("0", "0.00"), ("1E+2", "100.00"),
    ("9" * 38, "9" * 38 + ".00"), ("1" + "0" * 125, "1" + "0" * 125 + ".00"),
])
def test_money_reads_back_with_its_two_places(stored: str, read: str) -> None:
    assert str(MoneyAttribute().deserialize(stored)) == read


@pytest.mark.parametrize("stored", ["12.345", "0.001", "1E-130", "1E+999999", "NaN", "Infinity"])
def test_money_that_two_places_cannot_hold_is_read_as_stored_never_rounded(stored: str) -> None:
    assert str(money_at_scale(Decimal(stored))) == str(Decimal(stored))
    with pytest.raises(InvalidInput):  # and writing it back is refused, not rounded
        MoneyAttribute().serialize(MoneyAttribute().deserialize(stored))


class _Amount(Decimal):
    """A Decimal that is not exactly ``Decimal``: to_money takes its general path for it."""


@settings(max_examples=400, deadline=None)
@given(st.decimals(allow_nan=True, allow_infinity=True)
       | st.decimals(places=2, min_value=-10**6, max_value=10**6)
       | st.decimals(places=3, min_value=0, max_value=10), st.booleans(), st.integers(1, 38))
def test_to_money_of_a_decimal_answers_as_its_general_path(
    value: Decimal, positive: bool, digits: int
) -> None:
    """The shortcut for plain Decimals answers exactly as the checks it skips."""
    def outcome(given: Decimal) -> str:
        try:
            return repr(to_money(given, "amount", positive=positive, max_digits=digits))
        except InvalidInput as exc:
            return f"refused: {exc}"

    assert outcome(value) == outcome(_Amount(value))


@settings(max_examples=200, deadline=None)
@given(moments=st.lists(st.datetimes(timezones=st.none() | st.timezones()), min_size=1, max_size=5))
def test_a_timestamp_is_written_as_pynamodbs_utc_datetime_writes_it(moments: list[datetime]) -> None:
    """The text of the last time is kept: the same object again, or another, is written as PynamoDB
    writes it (UTC, ISO-8601)."""
    ours, theirs = TimestampAttribute(attr_name="T"), UnicodeDatetimeAttribute(attr_name="T", force_utc=True)
    for moment in [*moments, *moments[::-1], moments[0]]:
        assert ours.serialize(moment) == theirs.serialize(moment)


def test_a_stored_enum_value_reads_as_the_member_the_enum_gives_and_an_unknown_one_is_refused() -> None:
    attribute = EnumAttribute(Colour, attr_name="Colour")
    for member in Colour:
        assert attribute.deserialize(member.value) is Colour(member.value)
    with pytest.raises(ValueError):
        attribute.deserialize("MAUVE")
    lenient = EnumAttribute(Colour, attr_name="Colour", unknown_value=None)
    assert lenient.deserialize("MAUVE") is None


def test_a_timestamp_attribute_takes_no_other_format() -> None:
    """Its kept text is shared by every TimestampAttribute: one format only."""
    for option in ({"fmt": "%Y"}, {"force_tz": False}, {"force_utc": False}):
        with pytest.raises(TypeError):
            TimestampAttribute(attr_name="T", **option)
