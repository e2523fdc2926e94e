"""Key templates: compose and parse round-trip; every bad part is refused before any request."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynamodb.attributes import UnicodeAttribute

from core.errors import InvalidInput, InvalidKey
from models import Metric, Order, OrderStatus, User
from models.keys import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, EntityKeys, KeyTemplate
from models.table import TableModel

key_parts = st.text(min_size=1, max_size=200).filter(lambda s: "#" not in s)


@given(user_id=key_parts)
def test_user_key_round_trips(user_id: str) -> None:
    template = KeyTemplate("USER#{user_id}")
    key = template.compose(user_id=user_id)
    assert key == f"USER#{user_id}"
    assert template.parse(key) == {"user_id": user_id}


@given(device_id=key_parts, day=st.dates().map(lambda d: d.isoformat()))
def test_two_field_key_round_trips(device_id: str, day: str) -> None:
    template = KeyTemplate("DEVICE#{device_id}#{day}")
    key = template.compose(device_id=device_id, day=day)
    assert template.parse(key) == {"device_id": device_id, "day": day}


def test_enum_and_datetime_parts_render_by_value_and_as_utc() -> None:
    class Colour(enum.Enum):
        RED = "red"

    at = datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert KeyTemplate("C#{c}").compose(c=Colour.RED) == "C#red"
    assert KeyTemplate("T#{t}").compose(t=at) == "T#2026-01-02T03:04:05.123456Z"


@pytest.mark.parametrize("bad", ["", "a#b", "#", "USER#other"])
def test_empty_or_delimited_part_is_refused(bad: str) -> None:
    with pytest.raises(InvalidKey):
        KeyTemplate("USER#{user_id}").compose(user_id=bad)


def test_missing_part_is_refused() -> None:
    with pytest.raises(InvalidKey, match="missing"):
        KeyTemplate("USER#{user_id}").compose()


def test_naive_datetime_part_is_refused() -> None:
    with pytest.raises(InvalidKey, match="timezone"):
        KeyTemplate("T#{t}").compose(t=datetime(2026, 1, 1))


def test_partition_key_longer_than_dynamodb_allows_is_refused() -> None:
    template = KeyTemplate("USER#{user_id}", MAX_PARTITION_KEY_BYTES)
    fits = "x" * (MAX_PARTITION_KEY_BYTES - len("USER#"))
    assert len(template.compose(user_id=fits)) == MAX_PARTITION_KEY_BYTES
    with pytest.raises(InvalidKey, match="2048"):
        template.compose(user_id=fits + "x")


def test_sort_key_limit_counts_utf8_bytes() -> None:
    template = KeyTemplate("ORDER#{order_id}", MAX_SORT_KEY_BYTES)
    with pytest.raises(InvalidKey, match="1024"):
        template.compose(order_id="é" * 510)  # 1020 bytes of part + 6 of prefix


def test_invalid_key_is_an_invalid_input_and_a_value_error() -> None:
    assert issubclass(InvalidKey, InvalidInput)
    assert issubclass(InvalidKey, ValueError)


def test_parse_refuses_a_key_of_another_shape() -> None:
    with pytest.raises(InvalidKey):
        KeyTemplate("USER#{user_id}").parse("ORDER#1")
    with pytest.raises(InvalidKey):
        KeyTemplate("USER#{user_id}").parse("USER#a#b")


def test_entity_keys_are_filled_in_on_creation() -> None:
    order = Order(user_id="u1", order_id="o1", amount=1, status=OrderStatus.PAID)
    assert (order.pk, order.sk, order.gsi1pk) == ("USER#u1", "ORDER#o1", "STATUS#PAID")


def test_entity_with_a_delimiter_in_its_id_is_refused_at_construction() -> None:
    with pytest.raises(InvalidKey):
        User(user_id="victim#PROFILE", email="a@example.com", name="A")


def test_metric_key_uses_its_day_bucket_and_utc_timestamp() -> None:
    at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    metric = Metric(device_id="d1", metric_name="temp", timestamp=at, value=1)
    assert metric.pk == "DEVICE#d1#2026-03-01"
    assert metric.sk == "METRIC#2026-03-01T23:30:00.000000Z#temp#-"
    assert Metric.key_template("sk").parse(metric.sk) == {
        "timestamp": "2026-03-01T23:30:00.000000Z", "metric_name": "temp", "series": "-",
    }


def test_template_naming_a_missing_attribute_fails_when_the_class_is_created() -> None:
    with pytest.raises(TypeError, match="nickname"):
        class Broken(TableModel, discriminator="BROKEN_TEST"):
            keys = EntityKeys(pk="BROKEN#{nickname}", sk="X")
            name = UnicodeAttribute(attr_name="Name")


def test_template_with_a_repeated_field_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        KeyTemplate("A#{x}#{x}")


def test_keys_are_derived_again_whenever_a_part_or_a_key_changed() -> None:
    order = Order(user_id="u1", order_id="o1", amount=Decimal("1"), status=OrderStatus.PENDING)
    assert (order.pk, order.sk, order.gsi1pk) == ("USER#u1", "ORDER#o1", "STATUS#PENDING")
    order.status = OrderStatus.PAID
    assert order.serialize()["GSI1PK"] == {"S": "STATUS#PAID"}  # a part changed
    order.pk = "USER#someone-else"
    order.gsi1pk = None
    item = order.serialize()  # nothing they are made of changed, but the keys were replaced
    assert (item["PK"], item["GSI1PK"]) == ({"S": "USER#u1"}, {"S": "STATUS#PAID"})
    order.status = None
    assert "GSI1PK" not in order.serialize(null_check=False)  # a part unset: out of the sparse index


def test_a_key_skipped_for_a_missing_part_is_still_refused_or_derived_at_the_write() -> None:
    order = Order(user_id="u1", amount=Decimal("1"), status=OrderStatus.PENDING)  # no order_id yet
    assert order.sk is None
    with pytest.raises(InvalidKey, match="order_id"):
        order.serialize()
    order.order_id = "o2"
    assert order.serialize()["SK"] == {"S": "ORDER#o2"}


@pytest.mark.parametrize("part", [1.5, Decimal("1"), None.__class__, b"bytes", True, ["a"]])
def test_a_key_part_that_is_no_string_int_date_or_enum_is_refused(part: object) -> None:
    with pytest.raises(InvalidKey, match="a key part must be a string, got"):
        KeyTemplate("USER#{user_id}").compose(user_id=part)


def test_a_naive_datetime_in_a_key_is_refused_and_a_template_cannot_be_changed() -> None:
    template = KeyTemplate("METRIC#{timestamp}")
    with pytest.raises(InvalidKey, match="a datetime in a key must be timezone-aware"):
        template.compose(timestamp=datetime(2026, 1, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.pattern = "OTHER#{timestamp}"  # type: ignore[misc]


_literal = st.text(st.sampled_from("AB#_{}-"), max_size=4).map(
    lambda text: text.replace("{", "{{").replace("}", "}}"))


@settings(max_examples=200, deadline=None)
@given(literals=st.lists(_literal, min_size=1, max_size=4),
       values=st.lists(st.text(st.characters(blacklist_characters="#", blacklist_categories=["Cs"]),
                               min_size=1, max_size=6), min_size=3, max_size=3))
def test_a_key_is_composed_as_str_format_fills_its_pattern(literals: list[str], values: list[str]) -> None:
    names = [f"f{n}" for n in range(len(literals) - 1)]
    pattern = literals[0] + "".join(f"{{{name}}}{literal}"
                                    for name, literal in zip(names, literals[1:], strict=True))
    parts = dict(zip(names, values[:len(names)], strict=True))
    assert KeyTemplate(pattern).compose(**parts) == pattern.format(**parts)
