"""Cursors are signed and bound to their query; pages say exactly whether more follow."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from core.errors import ConfigurationError, DataLayerError, InvalidCursor, InvalidInput
from models import Order, OrderStatus, new_order_id
from repositories.paging import (
    MAX_CURSOR_LENGTH,
    SECRET_ENV,
    CursorSecretMissing,
    Page,
    RawKey,
    check_limit,
    cursor_secret,
    decode_cursor,
    encode_cursor,
    item_key,
    paginate,
)

SECRET = b"unit-test-secret-0123456789abcdef"
BINDING = {"fn": "get_user_orders", "keys": {"user_id": "u1"}, "forward": False, "limit": 10, "range": None}
KEY: RawKey = {"PK": {"S": "USER#u1"}, "SK": {"S": "ORDER#01ARZ3NDEKTSV4RRFFQ69G5FAV"}}


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Set ``DATALAYER_CURSOR_SECRET`` to ``SECRET``."""
    monkeypatch.setenv(SECRET_ENV, SECRET.decode())
    return SECRET


def _orders(count: int) -> list[Order]:
    return [Order(user_id="u1", order_id=new_order_id(), amount=Decimal(1), status=OrderStatus.PAID)
            for _ in range(count)]


class _Runner:
    """A stand-in for a query: yields ``items`` after ``start_key``, records its calls."""

    def __init__(self, items: list[Order]) -> None:
        self.items = items
        self.calls: list[tuple[RawKey | None, int]] = []

    def __call__(self, start_key: RawKey | None, count: int) -> Iterator[Order]:
        self.calls.append((start_key, count))
        position = 0
        if start_key is not None:
            position = next(i for i, o in enumerate(self.items) if item_key(o) == start_key) + 1
        yield from self.items[position:position + count]


# --- encoding -------------------------------------------------------------------------------------


def test_a_cursor_decodes_to_the_key_it_was_made_from() -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    assert decode_cursor(cursor, dict(BINDING), SECRET) == KEY


def test_a_cursor_is_url_safe_text() -> None:
    cursor = encode_cursor({"PK": {"S": "USER#ü?&/+="}, "SK": {"S": "x" * 300}}, BINDING, SECRET)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_binding_key_order_does_not_matter() -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    reordered = dict(reversed(list(BINDING.items())))
    assert decode_cursor(cursor, reordered, SECRET) == KEY


def _tamper_payload(cursor: str, change: dict[str, Any]) -> str:
    payload, _, signature = cursor.partition(".")
    content = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    content.update(change)
    encoded = base64.urlsafe_b64encode(json.dumps(content).encode()).rstrip(b"=").decode()
    return f"{encoded}.{signature}"


def test_a_cursor_whose_key_was_edited_is_refused() -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    forged = _tamper_payload(cursor, {"k": {"PK": {"S": "USER#u2"}, "SK": {"S": "ORDER#x"}}})
    with pytest.raises(InvalidCursor, match="signature"):
        decode_cursor(forged, BINDING, SECRET)


def test_a_cursor_whose_binding_was_edited_to_match_another_query_is_refused() -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    other = {**BINDING, "keys": {"user_id": "u2"}}
    forged = _tamper_payload(cursor, {"q": other})
    with pytest.raises(InvalidCursor):
        decode_cursor(forged, other, SECRET)


@pytest.mark.parametrize("position", [0, 5, -1, -5])
def test_a_cursor_with_any_character_changed_is_refused(position: int) -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    index = position % len(cursor)
    changed = "A" if cursor[index] != "A" else "B"
    tampered = cursor[:index] + changed + cursor[index + 1:]
    with pytest.raises(InvalidCursor):
        decode_cursor(tampered, BINDING, SECRET)


@pytest.mark.parametrize("change", [
    {"keys": {"user_id": "u2"}},
    {"limit": 11},
    {"forward": True},
    {"fn": "orders_by_status"},
    {"range": ["ORDER#0", "ORDER#Z"]},
])
def test_a_cursor_from_another_query_is_refused(change: dict[str, Any]) -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    with pytest.raises(InvalidCursor, match="another query"):
        decode_cursor(cursor, {**BINDING, **change}, SECRET)


def test_a_cursor_signed_with_another_secret_is_refused() -> None:
    cursor = encode_cursor(KEY, BINDING, b"another-secret-of-sufficient-length")
    with pytest.raises(InvalidCursor, match="signature"):
        decode_cursor(cursor, BINDING, SECRET)


@pytest.mark.parametrize("garbage", [
    "", ".", "abc", "abc.", ".abc", "a.b.c", "not base64!.xyz", "YWJj.YWJj", "YWJj=.YWJj",
    "a" * (MAX_CURSOR_LENGTH + 1), "🙂.🙂", 42, b"bytes", None,
])
def test_garbage_is_refused_as_an_invalid_cursor(garbage: Any) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(garbage, BINDING, SECRET)


def test_a_non_canonical_encoding_of_a_genuine_cursor_is_refused() -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    payload, _, signature = cursor.partition(".")
    # 32 signature bytes = 43 characters; the last one carries 2 unused bits that decoders ignore.
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]
    same_bytes = base64.urlsafe_b64decode(signature[:-1] + sibling + "=")
    assert same_bytes == base64.urlsafe_b64decode(signature + "=")
    with pytest.raises(InvalidCursor):
        decode_cursor(f"{payload}.{signature[:-1]}{sibling}", BINDING, SECRET)


@pytest.mark.parametrize("bad_key", [{}, {"PK": {"N": "1"}}, {"PK": "USER#u1"}, {"PK": {"S": 1}}, ["PK"]])
def test_a_signed_cursor_with_a_malformed_key_is_refused(bad_key: Any) -> None:
    cursor = encode_cursor(bad_key, BINDING, SECRET)
    with pytest.raises(InvalidCursor, match="key"):
        decode_cursor(cursor, BINDING, SECRET)


def test_invalid_cursor_is_an_invalid_input_and_a_value_error() -> None:
    with pytest.raises(InvalidInput):
        decode_cursor("junk", BINDING, SECRET)
    with pytest.raises(ValueError):
        decode_cursor("junk", BINDING, SECRET)


# --- the secret ------------------------------------------------------------------------------------


def test_the_secret_comes_from_the_environment(secret_env: bytes) -> None:
    assert cursor_secret() == secret_env


def test_without_a_secret_a_remote_endpoint_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.eu-west-1.amazonaws.com")
    with pytest.raises(CursorSecretMissing, match=SECRET_ENV) as raised:
        cursor_secret()
    assert isinstance(raised.value, ConfigurationError) and isinstance(raised.value, DataLayerError)
    assert not isinstance(raised.value, InvalidInput)


@pytest.mark.parametrize("endpoint", [
    "https://localhost.attacker.example",
    "https://127.0.0.1.attacker.example:443",
    "http://localhost@attacker.example:8000",
    "http://[::1].attacker.example",
])
def test_without_a_secret_an_endpoint_that_only_looks_local_is_refused(
    monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    # The development secret is public: handing it to a remote endpoint lets anyone forge cursors.
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    with pytest.raises(CursorSecretMissing):
        cursor_secret()


def test_without_a_secret_or_an_endpoint_the_default_aws_endpoint_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(CursorSecretMissing):
        cursor_secret()


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8000", "http://localhost:8123", "http://[::1]:8000"])
def test_without_a_secret_a_local_endpoint_uses_the_development_secret(
    monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    development = cursor_secret()
    monkeypatch.setenv(SECRET_ENV, SECRET.decode())
    assert development != cursor_secret()
    cursor = encode_cursor(KEY, BINDING, development)
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, BINDING, cursor_secret())


def test_a_too_short_secret_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(CursorSecretMissing, match="at least"):
        cursor_secret()


# --- limits ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 20, 100])
def test_limits_from_1_to_100_are_accepted(limit: int) -> None:
    assert check_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, -1, 101, True, 10.0, "10", None])
def test_other_limits_are_refused(limit: Any) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        check_limit(limit)


# --- pages -----------------------------------------------------------------------------------------


def test_page_is_a_generic_dataclass() -> None:
    page = Page[int](items=[1, 2], next_cursor=None, has_more=False)
    assert page.items == [1, 2] and page.next_cursor is None and page.has_more is False
    assert page == Page(items=[1, 2], next_cursor=None, has_more=False)


def test_a_page_asks_for_one_item_more_than_it_returns(secret_env: bytes) -> None:
    runner = _Runner(_orders(30))
    paginate(runner, binding=BINDING, limit=10, cursor=None)
    assert runner.calls == [(None, 11)]


def test_an_exactly_full_last_page_has_no_more_and_no_cursor(secret_env: bytes) -> None:
    orders = _orders(20)
    runner = _Runner(orders)
    first = paginate(runner, binding=BINDING, limit=10, cursor=None)
    assert first.items == orders[:10] and first.has_more and first.next_cursor
    second = paginate(runner, binding=BINDING, limit=10, cursor=first.next_cursor)
    assert second.items == orders[10:]
    assert second.has_more is False and second.next_cursor is None


def test_a_short_page_has_no_more(secret_env: bytes) -> None:
    page = paginate(_Runner(_orders(3)), binding=BINDING, limit=10, cursor=None)
    assert len(page.items) == 3 and page == Page(items=page.items, next_cursor=None, has_more=False)


def test_an_empty_result_is_an_empty_last_page(secret_env: bytes) -> None:
    assert paginate(_Runner([]), binding=BINDING, limit=10, cursor=None) == Page([], None, False)


def test_the_next_cursor_resumes_after_the_last_item_of_the_page(secret_env: bytes) -> None:
    orders = _orders(7)
    page = paginate(_Runner(orders), binding=BINDING, limit=3, cursor=None)
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor, BINDING, secret_env) == item_key(orders[2])


def test_a_bad_cursor_or_a_missing_secret_runs_no_query(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _Runner(_orders(3))
    monkeypatch.setenv(SECRET_ENV, SECRET.decode())
    with pytest.raises(InvalidCursor):
        paginate(runner, binding=BINDING, limit=2, cursor="tampered.cursor")
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(CursorSecretMissing):
        paginate(runner, binding=BINDING, limit=2, cursor=None)
    assert runner.calls == []


def test_item_key_of_a_table_query_is_the_table_key() -> None:
    order = Order(user_id="u1", order_id="01ARZ3NDEKTSV4RRFFQ69G5FAV", amount=Decimal(1),
                  status=OrderStatus.PAID)
    assert item_key(order) == {"PK": {"S": "USER#u1"}, "SK": {"S": "ORDER#01ARZ3NDEKTSV4RRFFQ69G5FAV"}}


def test_item_key_of_an_index_query_adds_the_index_key() -> None:
    user_id = uuid.uuid4().hex
    order = Order(user_id=user_id, order_id="01ARZ3NDEKTSV4RRFFQ69G5FAV", amount=Decimal(1),
                  status=OrderStatus.SHIPPED)
    assert item_key(order, Order.by_status) == {
        "PK": {"S": f"USER#{user_id}"},
        "SK": {"S": "ORDER#01ARZ3NDEKTSV4RRFFQ69G5FAV"},
        "GSI1PK": {"S": "STATUS#SHIPPED"},
    }
