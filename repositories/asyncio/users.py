"""``repositories.users``, awaited (see ``repositories.asyncio``)."""

from __future__ import annotations

from core.engine.bridge import awaitable
from repositories import users as _sync
from repositories.users import normalize_email

__all__ = ["create_user", "delete_user", "find_user_by_email", "get_user", "get_user_with_orders",
           "normalize_email", "update_user"]

create_user = awaitable(_sync.create_user)
get_user = awaitable(_sync.get_user)
get_user_with_orders = awaitable(_sync.get_user_with_orders)
find_user_by_email = awaitable(_sync.find_user_by_email)
update_user = awaitable(_sync.update_user)
delete_user = awaitable(_sync.delete_user)
