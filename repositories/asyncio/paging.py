"""``repositories.paging``: the same ``Page`` and cursors for both APIs (a cursor from one continues
in the other). ``paginate`` and ``read_all`` run a query's requests, so they are awaited; the
cursor functions send nothing and are the synchronous ones."""

from __future__ import annotations

from core.engine.bridge import awaitable
from repositories import paging as _sync
from repositories.paging import (
    CursorSecretMissing,
    Page,
    check_limit,
    cursor_secret,
    decode_cursor,
    encode_cursor,
    item_key,
    report_unreadable,
)

__all__ = ["CursorSecretMissing", "Page", "check_limit", "cursor_secret", "decode_cursor", "encode_cursor",
           "item_key", "paginate", "read_all", "report_unreadable"]

paginate = awaitable(_sync.paginate)
read_all = awaitable(_sync.read_all)
