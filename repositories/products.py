"""Products: put (create or replace), read one through the cache, read many in batches.

``put_product`` is the write path's upsert (``models.blind_puts.plan_upsert``): one ``UpdateItem`` that
replaces every declared attribute (``Name``, ``Price``, ``Attributes``) but keeps ``CreatedAt`` and
moves ``Version`` on by one, so a copy read before the put is stale (``ConflictError`` on its next
conditional write) instead of matching a version reset to 1.

``Attributes`` holds JSON-like extras: ``str``, ``int``, finite ``float``, ``bool``, ``None``, and
lists and ``str``-keyed dicts of those, at most 32 levels deep (DynamoDB's nesting limit). A
``Decimal`` is refused there: PynamoDB's free-form maps cannot give it back as a ``Decimal``
(money belongs in a declared ``MoneyAttribute``, such as ``price``).

``put_product(..., idempotency_key=)``: the key is scoped to the product; its ``IdempotencyRecord``
is written in the same transaction as the upsert, so the same key with the same arguments returns
the product without writing (or moving ``Version``) again, and other arguments raise
``IdempotencyKeyReused`` (``models.idempotency``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import PynamoDBException

from core.error_codes import raise_unexpected
from core.errors import InvalidInput, NotFound
from models import idempotency
from models.attributes import to_money
from models.blind_puts import plan_upsert
from models.idempotency import IdempotencyKey
from models.product import Product
from repositories import cache, query
from repositories._common import key_part, require_iterable, require_text
from repositories.batch import batch_get

MAX_NESTING = 32


def put_product(product_id: str, name: str, price: Decimal, *, idempotency_key: str | None = None,
                **attrs: Any) -> Product:
    """Create or replace the product; ``attrs`` become its ``Attributes`` map (replacing the old one).

    ``price`` is exact money, ``>= 0``, at most two decimal places: a ``Decimal`` (or ``int``, or
    a numeric string), never a float.

    ``idempotency_key`` (scoped to the product, kept 7 days): called again with the same key and the
    same arguments, the product is returned as stored and nothing is written, also when the first
    call ended in ``WriteOutcomeUnknown``; with other arguments, ``IdempotencyKeyReused``. With a
    key the put and the key's record are one transaction, and the product is read back (strongly
    consistent) for its version.
    """
    product_id = key_part(product_id, "product_id")
    name = require_text(name, "name")
    money = to_money(price, "price", positive=False)
    if any(not key for key in attrs):
        raise InvalidInput("an attribute name must not be empty")
    extras = {key: _json_like(value, key, 1) for key, value in attrs.items()}
    arguments = {"product_id": product_id, "name": name, "price": money, "attributes": extras}
    key = IdempotencyKey.of("put_product", idempotency_key, owner=product_id, arguments=arguments)
    product = Product(product_id=product_id, name=name, price=money, attributes=extras or None)
    try:
        first = idempotency.execute(lambda: plan_upsert(product), key, Product, what="put_product")
        if first is None and key is not None:  # a transaction returns no item: read the version back
            first = query.find_one(Product, product_id=product_id)
    finally:
        cache.invalidate(_cache_key(product_id))  # also when the outcome is unknown
    return product if first is None else first


def get_product(product_id: str) -> Product:
    """The product, through the read-through cache when it is on; ``NotFound`` if there is none."""
    product_id = key_part(product_id, "product_id")
    probe = Product(product_id=product_id)
    probe.fill_keys()

    def load() -> dict[str, Any]:
        # Strongly consistent: what a loader returns may be cached for a whole TTL, so it must
        # not be an old replica's copy read just after a write invalidated the entry.
        try:
            data = Product._get_connection().get_item(probe.pk, range_key=probe.sk, consistent_read=True)
        except PynamoDBException as exc:
            raise_unexpected(exc, "get_product")
        item: dict[str, Any] | None = data.get("Item")
        if item is None:
            raise NotFound("no such product")
        return item

    # The cache holds the stored item, not an entity: every caller gets an entity of its own.
    return Product.from_raw_data(cache.read_through(_cache_key(product_id), load))


def get_products(product_ids: Iterable[str]) -> list[Product]:
    """The products with these ids, in the order of the ids; repeated ids once, missing ones left out.

    Read with ``BatchGetItem``, 100 a request (not through the cache).
    """
    ids = list(dict.fromkeys(key_part(product_id, "product_id")
                             for product_id in require_iterable(product_ids, "product_ids")))
    if not ids:
        return []
    return batch_get(Product, [{"product_id": product_id} for product_id in ids])


def _cache_key(product_id: str) -> tuple[str, str]:
    return ("product", product_id)


def _json_like(value: Any, where: str, depth: int) -> Any:
    """Check one value of ``Attributes``; return it (containers copied)."""
    if depth > MAX_NESTING:
        raise InvalidInput(f"attribute {where!r} is nested deeper than {MAX_NESTING} levels")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"attribute {where!r} must be finite")
        return value
    if isinstance(value, (list, tuple)):
        return [_json_like(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, inner in value.items():
            if not isinstance(key, str) or not key:
                raise InvalidInput(f"attribute {where!r} has a key that is not a non-empty string")
            out[key] = _json_like(inner, f"{where}.{key}", depth + 1)
        return out
    hint = " (use int, or a declared attribute for exact numbers)" if isinstance(value, Decimal) else ""
    raise InvalidInput(f"attribute {where!r} is a {type(value).__name__}, not JSON-like{hint}")
