"""``repositories.accounts``, awaited (see ``repositories.asyncio``)."""

from __future__ import annotations

from core.engine.bridge import awaitable
from repositories import accounts as _sync
from repositories.accounts import transfer_id_for_key

__all__ = ["get_account", "get_transfer", "open_account", "transfer_funds", "transfer_id_for_key"]

open_account = awaitable(_sync.open_account)
get_account = awaitable(_sync.get_account)
get_transfer = awaitable(_sync.get_transfer)
transfer_funds = awaitable(_sync.transfer_funds)
