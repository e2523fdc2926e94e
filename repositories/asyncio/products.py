"""``repositories.products``, awaited (see ``repositories.asyncio``)."""

from __future__ import annotations

from core.engine.bridge import awaitable
from repositories import products as _sync

__all__ = ["get_product", "get_products", "put_product"]

put_product = awaitable(_sync.put_product)
get_product = awaitable(_sync.get_product)
get_products = awaitable(_sync.get_products)
