"""``repositories.batch``, awaited (see ``repositories.asyncio``)."""

from __future__ import annotations

from core.engine.bridge import awaitable
from repositories import batch as _sync
from repositories.batch import MAX_ITEM_BYTES, RetryPolicy, item_size

__all__ = ["MAX_ITEM_BYTES", "RetryPolicy", "batch_get", "batch_write", "item_size"]

batch_write = awaitable(_sync.batch_write)
batch_get = awaitable(_sync.batch_get)
