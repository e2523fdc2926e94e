"""An optional read-through cache with a TTL, invalidated by writes made through this layer.

Off by default. ``configure(ttl_seconds=30, maxsize=10_000)`` (or the environment variable
``DATALAYER_CACHE_TTL_SECONDS``, read by ``core.config.cache_ttl_seconds``) turns it on. Only
point reads of whole entities go through it (``get_user``, ``get_product``), and their loaders
read strongly consistent: a load right after an invalidation must not cache an old replica's copy
for a whole TTL. Every write of those entities through the repositories invalidates the key.
Writes made elsewhere (another service, the console) are seen after the TTL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from core.config import cache_ttl_seconds
from core.errors import InvalidInput

if TYPE_CHECKING:  # cachetools is imported when the cache is switched on
    from cachetools import TTLCache

T = TypeVar("T")

_lock = threading.Lock()
_cache: TTLCache[tuple[str, ...], Any] | None = None
_configured_from_env = False
# Bumped by every invalidation, so a load that raced with any write is not cached (a global
# counter rather than one per key keeps memory bounded).
_generation = 0


def configure(*, ttl_seconds: float | None, maxsize: int = 10_000) -> None:
    """Enable the cache with this TTL, or disable it with ``ttl_seconds=None`` (clears it)."""
    global _cache, _configured_from_env
    from cachetools import TTLCache

    if ttl_seconds is not None and (isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, (int, float))
                                    or not ttl_seconds >= 0):
        raise InvalidInput("ttl_seconds must be a number of seconds >= 0, or None")
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
        raise InvalidInput("maxsize must be an int >= 1")

    with _lock:
        _configured_from_env = True
        _cache = None if not ttl_seconds else TTLCache(maxsize=maxsize, ttl=ttl_seconds)


def _active() -> TTLCache[tuple[str, ...], Any] | None:
    if not _configured_from_env:
        configure(ttl_seconds=cache_ttl_seconds())
    return _cache


def reset() -> None:
    """Drop the cache and read ``DATALAYER_CACHE_TTL_SECONDS`` again at next use (for tests)."""
    global _cache, _configured_from_env
    with _lock:
        _cache = None
        _configured_from_env = False


def read_through(key: tuple[str, ...], load: Callable[[], T]) -> T:
    """Return the cached value for ``key``, or ``load()`` it and cache it."""
    cache = _active()
    if cache is None:
        return load()
    with _lock:
        if key in cache:
            return cache[key]  # type: ignore[no-any-return]
        generation = _generation
    value = load()
    with _lock:
        if _generation == generation:
            cache[key] = value
    return value


def invalidate(key: tuple[str, ...]) -> None:
    """Forget ``key`` (call after every write of the entity)."""
    invalidate_each((key,))


def invalidate_each(keys: Iterable[tuple[str, ...]]) -> None:
    """Forget every key of ``keys`` (after a write of many entities); ``keys`` is not read when
    nothing is cached."""
    global _generation
    cache = _active()
    if cache is not None:
        with _lock:
            for key in keys:
                cache.pop(key, None)
            _generation += 1


def clear() -> None:
    """Forget everything (tests, or after bulk changes made elsewhere)."""
    global _generation
    cache = _active()
    if cache is not None:
        with _lock:
            cache.clear()
            _generation += 1
