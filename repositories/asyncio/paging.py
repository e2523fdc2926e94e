"""``repositories.paging``: the same ``Page`` and cursors for both APIs (a cursor from one continues
in the other)."""

from __future__ import annotations

from repositories.paging import CursorSecretMissing, Page

__all__ = ["CursorSecretMissing", "Page"]
