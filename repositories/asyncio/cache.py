"""``repositories.cache``: the same cache for both APIs (its loads run inside the awaited code);
its settings send nothing, so they are the synchronous functions."""

from __future__ import annotations

from repositories.cache import clear, configure, invalidate, invalidate_each, read_through, reset

__all__ = ["clear", "configure", "invalidate", "invalidate_each", "read_through", "reset"]
