"""Pages of query results and the encrypted, query-bound cursors that continue them.

A cursor is opaque: URL-safe base64 (no padding) of ``version || nonce || AES-256-GCM ciphertext``.

- ``version`` (1 byte, ``2``) names the format; it is authenticated as associated data.
- ``nonce`` (16 random bytes) makes every cursor's key its own: the AES-GCM key is
  HKDF-SHA256(secret, salt = a fixed label, info = a fixed label + nonce). A key encrypts one
  cursor only, so its GCM nonce can be fixed and no number of cursors under one secret ever
  repeats a (key, nonce) pair (a random 96-bit GCM nonce under one key would, after about 2**32).
- The plaintext is the SHA-256 of the query's *binding* (function, table, index, key values,
  direction, range bounds), then the ``LastEvaluatedKey`` to resume from as JSON. The page size is
  not bound: the next page may ask for more or fewer items.

The secret is ``DATALAYER_CURSOR_SECRET`` (``core.config``). ``decode_cursor`` raises
``InvalidCursor``, and nothing else, unless the cursor decrypts and authenticates under this
secret and the binding inside equals the binding of the query it is handed to: a cursor cannot be
read, edited, truncated, forged without the secret, or replayed against another user, status,
direction or date range. Nothing in a cursor is readable without the secret (a user id, an
order id); only its length says roughly how long the key is. Cursors carry no expiry.

Without ``DATALAYER_CURSOR_SECRET`` a fixed development secret is used, but only when the endpoint
is this machine's loopback (``Settings.is_local``); anywhere else paged queries raise
``CursorSecretMissing`` before sending anything, rather than hand out cursors anyone could read
and forge.

``has_more`` is exact: a page of ``limit`` asks DynamoDB for ``limit + 1`` items. Only when the
extra item exists is there a next page; its cursor points at the page's last item (the extra one
is read again as the first item of the next page). DynamoDB's own ``LastEvaluatedKey`` is not
trusted for this, because it is also returned when a page is exactly full and nothing follows.

An item that does not build into its entity (``UnreadableItem``: written by another service or by
hand) is skipped, not fatal to the page: the page holds the good ones, ``Page.unreadable`` lists
the skipped items' ``(PK, SK)``, and one WARNING event per skipped item (``dynamodb.unreadable_item``,
with the entity and attribute names, never a key or value) is logged on the ``"dynamodb"`` logger.
A skipped item does not count towards ``limit``: the page reads on until it has ``limit + 1`` good
items or the query ends, so ``has_more`` stays exact and the page is short only at the end. Each
skipped item is listed by the one page whose range holds it (the cursor may then point at a skipped
item). A page skips at most ``MAX_UNREADABLE`` items; when more follow, it ends there with
``has_more`` true, and the next page goes on after them.

A query may declare a cost budget (``core.budgets.Budget``): ``paginate(..., pattern=, budget=)``
measures the page's requests (read units, items read, requests) and checks them against it; a page
over budget is served and logs one ``dynamodb.budget_exceeded`` WARNING per exceeded bound. With no
budget declared and no ``repositories.testing.assert_within_budget`` block around, a page is not
measured at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Generic, TypeVar

from pynamodb.indexes import Index
from pynamodb.models import Model

from core.budgets import Budget, PageCost, checks_for
from core.config import CURSOR_SECRET_ENV, get_settings
from core.config import cursor_secret as configured_cursor_secret
from core.errors import ConfigurationError, InvalidCursor, InvalidInput, UnreadableItem
from core.logs import get_logger, metering
from models.table import PK, SK

T = TypeVar("T")
M = TypeVar("M", bound=Model)

SECRET_ENV = CURSOR_SECRET_ENV
MIN_SECRET_LENGTH = 16
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 4096
MAX_UNREADABLE = 100  # unreadable items one page skips before it ends (a page reads a bounded amount)
_DEVELOPMENT_SECRET = b"datalayer-development-cursor-secret (local endpoints only)"
_FORMAT_VERSION = 2
_VERSION_BYTE = _FORMAT_VERSION.to_bytes(1, "big")
_NONCE_LENGTH = 16
_TAG_LENGTH = 16
_DIGEST_LENGTH = 32
_KDF_SALT = b"datalayer/paging/cursor"
_KDF_INFO = b"datalayer cursor v2: AES-256-GCM key for one cursor\x00"
_AAD = b"datalayer-cursor\x00" + _VERSION_BYTE
_GCM_NONCE = bytes(12)  # every key encrypts one cursor only
_B64 = re.compile(r"[A-Za-z0-9_-]+\Z")

# A raw DynamoDB key: attribute name -> {"S": value}. Every key attribute of the table is a string.
RawKey = dict[str, dict[str, str]]


class CursorSecretMissing(ConfigurationError):
    """``DATALAYER_CURSOR_SECRET`` is too short, or unset while the endpoint is not local."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results; pass ``next_cursor`` to the same query for the next page.

    ``unreadable``: the ``(PK, SK)`` of the stored items in this page's range that were skipped
    because they do not build into their entity (see ``UnreadableItem``); they need repair.
    """

    items: list[T]
    next_cursor: str | None
    has_more: bool
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def cursor_secret() -> bytes:
    """The cursor secret: ``DATALAYER_CURSOR_SECRET``, or the development secret on a local endpoint."""
    raw = configured_cursor_secret()
    if raw is not None:
        if len(raw) < MIN_SECRET_LENGTH:
            raise CursorSecretMissing(f"{SECRET_ENV} must be at least {MIN_SECRET_LENGTH} characters long")
        return raw.encode("utf-8")
    if get_settings().is_local:
        return _DEVELOPMENT_SECRET
    raise CursorSecretMissing(
        f"{SECRET_ENV} is not set; a development secret is only allowed against a local endpoint"
    )


def check_limit(limit: Any) -> int:
    """A page size: an ``int`` from 1 to ``MAX_LIMIT``, or ``InvalidInput``."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput(f"limit must be an integer, got {type(limit).__name__}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def encode_cursor(last_key: RawKey, binding: Mapping[str, Any], secret: bytes) -> str:
    """Encrypt ``last_key`` under ``secret``, bound to the query ``binding``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # imported at the first cursor

    nonce = os.urandom(_NONCE_LENGTH)
    plaintext = _binding_digest(binding) + _canonical(last_key)
    sealed = AESGCM(_cursor_key(secret, nonce)).encrypt(_GCM_NONCE, plaintext, _AAD)
    return _b64encode(_VERSION_BYTE + nonce + sealed)


def decode_cursor(cursor: Any, binding: Mapping[str, Any], secret: bytes) -> RawKey:
    """The ``LastEvaluatedKey`` inside ``cursor``; ``InvalidCursor`` unless it is genuine and this query's."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(cursor, str):
        raise InvalidCursor(f"a cursor must be a string, got {type(cursor).__name__}")
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("cursor is too long")
    raw = _b64decode(cursor)
    if len(raw) < 1 + _NONCE_LENGTH + _TAG_LENGTH + _DIGEST_LENGTH:
        raise InvalidCursor("malformed cursor")
    if raw[:1] != _VERSION_BYTE:
        raise InvalidCursor("unsupported cursor format")
    nonce, sealed = raw[1:1 + _NONCE_LENGTH], raw[1 + _NONCE_LENGTH:]
    try:
        plaintext = AESGCM(_cursor_key(secret, nonce)).decrypt(_GCM_NONCE, sealed, _AAD)
    except InvalidTag:
        raise InvalidCursor("cursor does not authenticate (tampered, or another secret's)") from None
    digest, encoded_key = plaintext[:_DIGEST_LENGTH], plaintext[_DIGEST_LENGTH:]
    if not hmac.compare_digest(digest, _binding_digest(binding)):
        raise InvalidCursor("cursor belongs to another query")
    try:
        last_key = json.loads(encoded_key)
    except (ValueError, RecursionError) as exc:  # encrypted by us, so only a change of format gets here
        raise InvalidCursor("malformed cursor payload") from exc
    return _check_raw_key(last_key)


def item_key(item: Model, index: Index[Any] | None = None) -> RawKey:
    """The ``ExclusiveStartKey`` that resumes a query just after ``item`` (table keys + index keys)."""
    attributes = type(item).get_attributes()
    by_stored_name = {attribute.attr_name: name for name, attribute in attributes.items()}
    key_names = [a.attr_name for a in attributes.values() if a.is_hash_key or a.is_range_key]
    if index is not None:
        key_names += [a.attr_name for a in index.Meta.attributes.values() if a.is_hash_key or a.is_range_key]
    key: RawKey = {}
    for stored_name in key_names:
        name = by_stored_name[stored_name]
        key[stored_name] = {"S": attributes[name].serialize(getattr(item, name))}
    return key


def paginate(
    run: Callable[[RawKey | None, int], Iterable[M]],
    *,
    binding: Mapping[str, Any],
    limit: int,
    cursor: str | None,
    index: Index[Any] | None = None,
    pattern: str | None = None,
    budget: Budget | None = None,
) -> Page[M]:
    """Run one page of a query: ``run(exclusive_start_key, limit + 1)`` must yield items in order.

    ``limit + 1`` is the page size to ask DynamoDB for; the iterator must go on past it while the
    query has items (only ``limit + 1`` good ones are taken). It may raise ``UnreadableItem`` for
    an item and go on with the next one, as PynamoDB's ``ResultIterator`` does: the item is skipped
    (see the module docstring), and the page resumes after it at the iterator's
    ``last_evaluated_key`` when it has one, else at the item's table key.

    ``pattern`` names the access pattern (default: the binding's ``"fn"``) for its cost ``budget``
    (``core.budgets``): when a budget applies, the page's requests are measured and an overrun is
    logged (and reported to ``repositories.testing.assert_within_budget``), never raised.

    The secret is resolved and the cursor checked before ``run`` is called, so a bad cursor or a
    missing secret sends nothing.
    """
    secret = cursor_secret()
    start_key = decode_cursor(cursor, binding, secret) if cursor is not None else None
    name = pattern if pattern is not None else binding.get("fn")
    check = checks_for(name if isinstance(name, str) else None, budget)
    if check is None:
        return _read_page(run, start_key, binding=binding, limit=limit, index=index, secret=secret)[0]
    with metering() as meter:
        page, used = _read_page(run, start_key, binding=binding, limit=limit, index=index, secret=secret)
    check.check(PageCost(requests=meter.requests, read_units=meter.read_units,
                         items_read=meter.items_read, items_returned=used))
    return page


def _read_page(
    run: Callable[[RawKey | None, int], Iterable[M]],
    start_key: RawKey | None,
    *,
    binding: Mapping[str, Any],
    limit: int,
    index: Index[Any] | None,
    secret: bytes,
) -> tuple[Page[M], int]:
    """One page (see ``paginate``), and how many items it used (with the one read ahead)."""
    iterator = iter(run(start_key, limit + 1))
    items: list[M] = []
    skipped: list[UnreadableItem] = []
    skipped_key: RawKey | None = None  # where the last skipped item ends
    skipped_after = 0  # how many items came before it
    more = False
    read_ahead = 0  # the extra item, when there was one
    while True:
        try:
            _take(iterator, limit + 1 - len(items), items)
        except UnreadableItem as exc:
            if len(skipped) == MAX_UNREADABLE:  # one item more than the page skips: the next page's
                more = True
                break
            skipped.append(exc)
            skipped_key, skipped_after = _resume_key(iterator, exc), len(items)
            report_unreadable(exc, str(binding.get("fn")))
            continue
        if len(items) > limit:  # the extra item: read again as the first of the next page
            items.pop()
            more, read_ahead = True, 1
        break
    used = len(items) + read_ahead
    unreadable = [exc.keys for exc in skipped]
    if not more:
        return Page(items=items, next_cursor=None, has_more=False, unreadable=unreadable), used
    last = (skipped_key if skipped_key is not None and skipped_after == len(items)
            else item_key(items[-1], index))
    return Page(items=items, next_cursor=encode_cursor(last, binding, secret), has_more=True,
                unreadable=unreadable), used


def read_all(iterator: Iterable[M], what: str, *, budget: Budget | None = None) -> list[M]:
    """Every item of ``iterator`` (a query's every page), skipping and reporting unreadable ones.

    ``what`` names the access pattern; with a ``budget`` (``core.budgets``), or inside
    ``assert_within_budget``, each DynamoDB response is checked as one page (one request; the items
    it returned as the items used).
    """
    check = checks_for(what, budget)
    if check is None:
        return _read_all(iterator, what)
    with metering() as meter:
        items = _read_all(iterator, what)
    for call in meter.calls:
        check.check(PageCost(requests=1, read_units=call.read_units, items_read=call.items_read,
                             items_returned=call.items_returned or 0))
    return items


def _read_all(iterator: Iterable[M], what: str) -> list[M]:
    items: list[M] = []
    source = iter(iterator)
    while True:
        try:
            _take(source, None, items)
        except UnreadableItem as exc:
            report_unreadable(exc, what)
            continue
        return items


def report_unreadable(exc: UnreadableItem, what: str) -> None:
    """Log one WARNING event for a skipped unreadable item: the entity and attribute, no key or value
    (keys hold ids and emails, which are personal data; the caller gets the keys themselves)."""
    get_logger().warning("dynamodb.unreadable_item", entity=exc.entity, attribute=exc.attribute,
                         access_pattern=what, outcome="skipped")


def _take(iterator: Iterator[T], count: int | None, into: list[T]) -> None:
    """Append up to ``count`` items of ``iterator`` (all of them with ``None``) to ``into``: a loop in
    C, as ``list(islice(...))``. CPython's ``list.extend`` appends one item at a time, so what it
    appended stays when the iterator raises (tests/unit/test_paging.py holds it to that)."""
    into.extend(islice(iterator, count))


def _resume_key(iterator: Iterator[Any], exc: UnreadableItem) -> RawKey:
    """Where a query resumes after the item it just failed to build."""
    key = getattr(iterator, "last_evaluated_key", None)  # PynamoDB's ResultIterator: that item's key
    if isinstance(key, dict) and key:
        return key
    return {PK: {"S": exc.keys[0]}, SK: {"S": exc.keys[1]}}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _binding_digest(binding: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(b"datalayer-cursor-binding\x00" + _canonical(binding)).digest()


def _cursor_key(secret: bytes, nonce: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_KDF_SALT, info=_KDF_INFO + nonce)
    return kdf.derive(secret)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # Strict: only the URL-safe alphabet, and only the canonical encoding of the bytes (so no two
    # different strings are the same cursor).
    if not _B64.match(text):
        raise InvalidCursor("malformed cursor")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if _b64encode(data) != text:
        raise InvalidCursor("malformed cursor")
    return data


def _check_raw_key(value: Any) -> RawKey:
    if not isinstance(value, dict) or not value:
        raise InvalidCursor("malformed cursor key")
    for name, typed in value.items():
        if not (isinstance(name, str) and isinstance(typed, dict) and list(typed) == ["S"]
                and isinstance(typed["S"], str)):
            raise InvalidCursor("malformed cursor key")
    return value
