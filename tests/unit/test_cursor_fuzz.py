"""Cursor decoding refuses everything but a genuine cursor of the same query, and only with InvalidCursor."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InvalidCursor
from repositories.paging import MAX_CURSOR_LENGTH, RawKey, decode_cursor, encode_cursor

SECRET = b"fuzz-test-secret-0123456789abcdef"
BINDING = {"fn": "orders_by_status", "table": "ApplicationData", "index": "GSI1",
           "keys": {"status": "PAID"}, "forward": True, "limit": 20, "range": None}
KEY: RawKey = {"PK": {"S": "USER#5f0c"}, "SK": {"S": "ORDER#01ARZ3NDEKTSV4RRFFQ69G5FAV"},
               "GSI1PK": {"S": "STATUS#PAID"}}
GENUINE = encode_cursor(KEY, BINDING, SECRET)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
bindings = st.dictionaries(st.text(max_size=10), json_values, max_size=6)
typed_strings = st.fixed_dictionaries({"S": st.text(max_size=60)})
raw_keys = st.dictionaries(st.text(min_size=1, max_size=12), typed_strings, min_size=1, max_size=3)


def _refused(cursor: Any, binding: Any = BINDING, secret: bytes = SECRET) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, binding, secret)


@FUZZ
@given(st.text(max_size=MAX_CURSOR_LENGTH + 10))
def test_any_text_is_refused(text: str) -> None:
    _refused(text)


@FUZZ
@given(st.text(alphabet=ALPHABET, max_size=600))
def test_any_base64url_text_is_refused(text: str) -> None:
    _refused(text)


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_are_refused_raw_and_as_base64url_text(data: bytes) -> None:
    _refused(data)
    _refused(base64.urlsafe_b64encode(data).rstrip(b"=").decode())
    _refused(base64.urlsafe_b64encode(b"\x02" + data).rstrip(b"=").decode())  # the current version byte


@FUZZ
@given(st.none() | st.integers() | st.floats() | st.lists(st.text()) | st.dictionaries(st.text(), st.text()))
def test_any_other_object_is_refused(value: Any) -> None:
    _refused(value)


@FUZZ
@given(st.data())
def test_a_genuine_cursor_with_any_edit_is_refused(data: st.DataObject) -> None:
    cursor = GENUINE
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(cursor)))
        edit = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        text = data.draw(st.text(min_size=1, max_size=3))
        if edit == "replace":
            cursor = cursor[:position] + text + cursor[position + len(text):]
        elif edit == "insert":
            cursor = cursor[:position] + text + cursor[position:]
        elif edit == "delete":
            cursor = cursor[:position] + cursor[position + 1:]
        else:
            cursor = cursor[:position]
    if cursor == GENUINE:
        assert decode_cursor(cursor, BINDING, SECRET) == KEY
    else:
        _refused(cursor)


@FUZZ
@given(raw_keys, bindings, bindings)
def test_a_cursor_round_trips_and_is_bound_to_its_query(
    key: RawKey, binding: dict[str, Any], other: dict[str, Any]
) -> None:
    cursor = encode_cursor(key, binding, SECRET)
    assert decode_cursor(cursor, binding, SECRET) == key
    if other != binding:
        with pytest.raises(InvalidCursor, match="another query"):
            decode_cursor(cursor, other, SECRET)
    _refused(cursor, binding, SECRET + b"x")


@FUZZ
@given(st.text(alphabet=ALPHABET[:62], min_size=8, max_size=40), st.text(alphabet=ALPHABET[:62], min_size=8))
def test_a_cursor_shows_no_key_value_in_any_base64_slice(user_id: str, order_id: str) -> None:
    key = {"PK": {"S": f"USER#{user_id}"}, "SK": {"S": f"ORDER#{order_id}"}}
    cursor = encode_cursor(key, {**BINDING, "keys": {"user_id": user_id}}, SECRET)
    texts = [cursor.encode()]
    for start in range(4):
        chunk = cursor[start:]
        chunk = chunk[:-1] if len(chunk) % 4 == 1 else chunk
        texts.append(base64.urlsafe_b64decode(chunk + "=" * (-len(chunk) % 4)))
    for text in texts:
        assert user_id.encode() not in text and order_id.encode() not in text
