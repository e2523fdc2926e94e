"""Cursors are encrypted, authenticated and bound to their query; pages say exactly whether more follow."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigurationError, DataLayerError, InvalidCursor, InvalidInput, UnreadableItem
from models import Order, OrderStatus, new_order_id
from repositories import paging
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
BINDING = {"fn": "get_user_orders", "keys": {"user_id": "u1"}, "forward": False, "range": None}
KEY: RawKey = {"PK": {"S": "USER#u1"}, "SK": {"S": "ORDER#01ARZ3NDEKTSV4RRFFQ69G5FAV"}}
B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


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


def test_a_cursor_is_url_safe_base64_without_padding() -> None:
    cursor = encode_cursor({"PK": {"S": "USER#ü?&/+="}, "SK": {"S": "x" * 300}}, BINDING, SECRET)
    assert set(cursor) <= set(B64URL_ALPHABET)


def test_a_cursor_for_a_normal_key_is_well_under_the_length_limit() -> None:
    user_id, order_id = uuid.uuid4().hex, new_order_id()
    key = {"PK": {"S": f"USER#{user_id}"}, "SK": {"S": f"ORDER#{order_id}"}, "GSI1PK": {"S": "STATUS#PAID"}}
    assert len(encode_cursor(key, BINDING, SECRET)) < MAX_CURSOR_LENGTH // 8


def test_binding_key_order_does_not_matter() -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    reordered = dict(reversed(list(BINDING.items())))
    assert decode_cursor(cursor, reordered, SECRET) == KEY


def test_two_cursors_for_the_same_key_differ_and_both_decode() -> None:
    first, second = encode_cursor(KEY, BINDING, SECRET), encode_cursor(KEY, BINDING, SECRET)
    assert first != second
    assert decode_cursor(first, BINDING, SECRET) == decode_cursor(second, BINDING, SECRET) == KEY


def _decodings(cursor: str) -> list[bytes]:
    """The cursor's text, and base64 (URL-safe and standard) decodings of it from every offset."""
    found = [cursor.encode(), cursor.lower().encode()]
    for start in range(4):
        chunk = cursor[start:]
        chunk = chunk[:len(chunk) - len(chunk) % 4] if len(chunk) % 4 == 1 else chunk
        padded = chunk + "=" * (-len(chunk) % 4)
        found.append(base64.urlsafe_b64decode(padded))
        found.append(base64.b64decode(padded.replace("-", "+").replace("_", "/")))
    return found


def test_a_cursor_reveals_none_of_the_key_values() -> None:
    user_id, order_id = uuid.uuid4().hex, new_order_id()
    key = {"PK": {"S": f"USER#{user_id}"}, "SK": {"S": f"ORDER#{order_id}"}, "GSI1PK": {"S": "STATUS#PAID"}}
    binding = {"fn": "orders_by_status", "keys": {"status": "PAID"}, "forward": True, "limit": 3,
               "range": None}
    cursor = encode_cursor(key, binding, SECRET)
    secrets = [user_id, order_id, f"USER#{user_id}", f"ORDER#{order_id}", "STATUS#PAID", '"PK"',
               "orders_by_status"]
    for decoded in _decodings(cursor):
        for value in secrets:
            assert value.encode() not in decoded and value.lower().encode() not in decoded
    # The decodings are real: the same check finds a value that is there.
    assert any(b"USER#" in d for d in _decodings(base64.urlsafe_b64encode(b"xxUSER#u1").decode()))


def _raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_the_cursor_format_is_the_documented_one() -> None:
    # version 2 || 16-byte nonce || AES-256-GCM(key = HKDF-SHA256(secret, fixed salt, fixed info + nonce),
    # nonce 0, aad fixed) of sha256(binding) || JSON key. Spelled out here so a change of format is seen.
    raw = _raw(encode_cursor(KEY, BINDING, SECRET))
    assert raw[0] == 2
    nonce, sealed = raw[1:17], raw[17:]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"datalayer/paging/cursor",
               info=b"datalayer cursor v2: AES-256-GCM key for one cursor\x00" + nonce).derive(SECRET)
    plaintext = AESGCM(key).decrypt(bytes(12), sealed, b"datalayer-cursor\x00\x02")
    canonical = json.dumps(BINDING, sort_keys=True, separators=(",", ":")).encode()
    assert plaintext[:32] == hashlib.sha256(b"datalayer-cursor-binding\x00" + canonical).digest()
    assert json.loads(plaintext[32:]) == KEY


def _forge(key: Any, binding: Any, secret: bytes, *, version: int = 2) -> str:
    """A cursor built by hand with the documented format (so with whatever secret a forger has)."""
    nonce = os.urandom(16)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"datalayer/paging/cursor",
                   info=b"datalayer cursor v2: AES-256-GCM key for one cursor\x00" + nonce).derive(secret)
    canonical = json.dumps(binding, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(b"datalayer-cursor-binding\x00" + canonical).digest()
    plaintext = digest + json.dumps(key).encode()
    aad = b"datalayer-cursor\x00" + bytes([version])
    return _text(bytes([version]) + nonce + AESGCM(derived).encrypt(bytes(12), plaintext, aad))


def test_a_hand_built_cursor_is_accepted_only_under_the_real_secret() -> None:
    assert decode_cursor(_forge(KEY, BINDING, SECRET), BINDING, SECRET) == KEY
    with pytest.raises(InvalidCursor, match="authenticate"):
        decode_cursor(_forge(KEY, BINDING, b"a-guessed-secret-of-some-length"), BINDING, SECRET)


def test_a_cursor_of_another_format_version_is_refused() -> None:
    with pytest.raises(InvalidCursor, match="format"):
        decode_cursor(_forge(KEY, BINDING, SECRET, version=1), BINDING, SECRET)
    with pytest.raises(InvalidCursor, match="format"):
        decode_cursor(_forge(KEY, BINDING, SECRET, version=3), BINDING, SECRET)


def test_a_cursor_with_any_byte_changed_is_refused() -> None:
    raw = _raw(encode_cursor(KEY, BINDING, SECRET))
    for position in range(len(raw)):
        for flip in (0x01, 0x80):
            tampered = raw[:position] + bytes([raw[position] ^ flip]) + raw[position + 1:]
            with pytest.raises(InvalidCursor):
                decode_cursor(_text(tampered), BINDING, SECRET)


def test_a_cursor_with_a_byte_added_or_removed_is_refused() -> None:
    raw = _raw(encode_cursor(KEY, BINDING, SECRET))
    for position in range(len(raw) + 1):
        changes = [raw[:position] + b"\x00" + raw[position:]]
        changes += [raw[:position] + raw[position + 1:]] if position < len(raw) else []
        for changed in changes:
            with pytest.raises(InvalidCursor):
                decode_cursor(_text(changed), BINDING, SECRET)


def test_every_truncation_of_a_cursor_is_refused() -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    for length in range(len(cursor)):
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor[:length], BINDING, SECRET)


@pytest.mark.parametrize("position", [0, 5, -1, -5])
def test_a_cursor_with_any_character_changed_is_refused(position: int) -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    index = position % len(cursor)
    changed = "A" if cursor[index] != "A" else "B"
    tampered = cursor[:index] + changed + cursor[index + 1:]
    with pytest.raises(InvalidCursor):
        decode_cursor(tampered, BINDING, SECRET)


def test_two_genuine_cursors_spliced_together_are_refused() -> None:
    first = _raw(encode_cursor(KEY, BINDING, SECRET))
    other = {"PK": {"S": "USER#u2"}, "SK": {"S": "ORDER#01ARZ3NDEKTSV4RRFFQ69G5FAW"}}
    second = _raw(encode_cursor(other, BINDING, SECRET))
    for cut in (8, 17, 40, len(first) - 16):  # inside the nonce, the ciphertext and the tag
        with pytest.raises(InvalidCursor):
            decode_cursor(_text(first[:cut] + second[cut:]), BINDING, SECRET)


@pytest.mark.parametrize("change", [
    {"keys": {"user_id": "u2"}},
    {"limit": 11},
    {"forward": True},
    {"fn": "orders_by_status"},
    {"range": ["ORDER#0", "ORDER#Z"]},
    {"table": "OtherTable"},
    {"index": "GSI1"},
])
def test_a_cursor_from_another_query_is_refused(change: dict[str, Any]) -> None:
    cursor = encode_cursor(KEY, BINDING, SECRET)
    with pytest.raises(InvalidCursor, match="another query"):
        decode_cursor(cursor, {**BINDING, **change}, SECRET)


def test_a_cursor_encrypted_with_another_secret_is_refused() -> None:
    cursor = encode_cursor(KEY, BINDING, b"another-secret-of-sufficient-length")
    with pytest.raises(InvalidCursor, match="authenticate"):
        decode_cursor(cursor, BINDING, SECRET)


# Fixed noise: every pytest-xdist worker must collect the same test ids.
_NOISE = random.Random(20250601)


@pytest.mark.parametrize("garbage", [
    "", ".", "abc", "abc.", ".abc", "a.b.c", "not base64!.xyz", "YWJj.YWJj", "YWJj=.YWJj", "YWJj=",
    "a" * (MAX_CURSOR_LENGTH + 1), "A" * MAX_CURSOR_LENGTH, "🙂.🙂", "🙂", "AAAA\n", " AAAA", "AA+/",
    "Ag" + "A" * 80, "AQ" + "A" * 80, _text(_NOISE.randbytes(120)), _text(b"\x02" + _NOISE.randbytes(64)),
    42, b"bytes", None, ["AAAA"], 1.5,
])
def test_garbage_is_refused_as_an_invalid_cursor(garbage: Any) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(garbage, BINDING, SECRET)


def test_an_old_signed_cursor_is_refused() -> None:
    payload = _text(json.dumps({"k": KEY, "q": BINDING, "v": 1}).encode())
    with pytest.raises(InvalidCursor):
        decode_cursor(f"{payload}.{_text(os.urandom(32))}", BINDING, SECRET)


def test_a_non_canonical_encoding_of_a_genuine_cursor_is_refused() -> None:
    # The last character of a base64 text whose byte count is not a multiple of 3 carries unused
    # bits that lenient decoders ignore; a key of the right length makes such a cursor.
    cursor = next(c for n in range(3)
                  if len(c := encode_cursor({"PK": {"S": "USER#u1" + "x" * n}}, BINDING, SECRET)) % 4)
    sibling = B64URL_ALPHABET[B64URL_ALPHABET.index(cursor[-1]) ^ 1]
    assert _raw(cursor[:-1] + sibling) == _raw(cursor)
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor[:-1] + sibling, BINDING, SECRET)


@pytest.mark.parametrize("bad_key", [{}, {"PK": {"N": "1"}}, {"PK": "USER#u1"}, {"PK": {"S": 1}}, ["PK"]])
def test_a_genuine_cursor_with_a_malformed_key_is_refused(bad_key: Any) -> None:
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
    assert item_key(order, Order.in_status.source()) == {
        "PK": {"S": f"USER#{user_id}"},
        "SK": {"S": "ORDER#01ARZ3NDEKTSV4RRFFQ69G5FAV"},
        "GSI1PK": {"S": "STATUS#SHIPPED"},
    }


# --- unreadable items ------------------------------------------------------------------------------


def _bad(name: str) -> UnreadableItem:
    return UnreadableItem(("USER#u1", f"ORDER#{name}"), "Order", "Amount")


class _Results:
    """A stand-in for PynamoDB's ResultIterator: raises ``UnreadableItem`` for a bad entry and goes
    on with the next one; it has no ``last_evaluated_key``, so pages resume at table keys."""

    def __init__(self, entries: list[Order | UnreadableItem]) -> None:
        self.entries = entries
        self.position = 0

    def __iter__(self) -> _Results:
        return self

    def __next__(self) -> Order:
        if self.position == len(self.entries):
            raise StopIteration
        entry = self.entries[self.position]
        self.position += 1
        if isinstance(entry, UnreadableItem):
            raise entry
        return entry


def _key(entry: Order | UnreadableItem) -> RawKey:
    if isinstance(entry, UnreadableItem):
        return {"PK": {"S": entry.keys[0]}, "SK": {"S": entry.keys[1]}}
    return item_key(entry)


def _pages(entries: list[Order | UnreadableItem], limit: int) -> list[Page[Order]]:
    def run(start_key: RawKey | None, count: int) -> _Results:
        position = 0 if start_key is None else [_key(e) for e in entries].index(start_key) + 1
        return _Results(entries[position:])

    pages = [paginate(run, binding=BINDING, limit=limit, cursor=None)]
    while pages[-1].next_cursor is not None:
        pages.append(paginate(run, binding=BINDING, limit=limit, cursor=pages[-1].next_cursor))
    return pages


def _shape(pages: list[Page[Order]], entries: list[Order | UnreadableItem]) -> list[tuple[Any, ...]]:
    names = {id(e): i for i, e in enumerate(entries)}
    return [([names[id(o)] for o in p.items], [k[1] for k in p.unreadable], p.has_more) for p in pages]


def test_a_skipped_item_neither_shortens_a_page_nor_hides_what_follows(secret_env: bytes) -> None:
    g = _orders(3)
    entries: list[Order | UnreadableItem] = [g[0], _bad("b"), g[1], g[2]]
    assert _shape(_pages(entries, 2), entries) == [([0, 2], ["ORDER#b"], True), ([3], [], False)]


def test_items_skipped_after_a_full_page_are_its_own_and_its_cursor_passes_them(secret_env: bytes) -> None:
    g = _orders(3)
    entries: list[Order | UnreadableItem] = [g[0], g[1], _bad("b1"), _bad("b2"), g[2]]
    pages = _pages(entries, 2)
    assert _shape(pages, entries) == [([0, 1], ["ORDER#b1", "ORDER#b2"], True), ([4], [], False)]
    assert pages[0].next_cursor is not None
    assert decode_cursor(pages[0].next_cursor, BINDING, secret_env) == _key(entries[3])


def test_items_skipped_at_the_end_are_listed_by_the_last_page(secret_env: bytes) -> None:
    g = _orders(2)
    entries: list[Order | UnreadableItem] = [g[0], g[1], _bad("b")]
    assert _shape(_pages(entries, 2), entries) == [([0, 1], ["ORDER#b"], False)]
    only_bad: list[Order | UnreadableItem] = [_bad("x"), _bad("y")]
    assert _shape(_pages(only_bad, 2), only_bad) == [([], ["ORDER#x", "ORDER#y"], False)]


def test_a_page_ends_after_max_unreadable_skipped_items(
    secret_env: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "MAX_UNREADABLE", 1)
    g = _orders(2)
    entries: list[Order | UnreadableItem] = [g[0], _bad("b1"), _bad("b2"), g[1]]
    assert _shape(_pages(entries, 5), entries) == [([0], ["ORDER#b1"], True), ([3], ["ORDER#b2"], False)]


def test_read_all_skips_unreadable_items_and_keeps_every_good_one() -> None:
    g = _orders(3)
    entries: list[Order | UnreadableItem] = [_bad("a"), g[0], g[1], _bad("b"), _bad("c"), g[2], _bad("d")]
    assert paging.read_all(_Results(entries), "test") == g
