"""``repositories.orders``, awaited (see ``repositories.asyncio``)."""

from __future__ import annotations

from core.engine.bridge import awaitable
from repositories import orders as _sync
from repositories.orders import check_status

__all__ = ["check_status", "get_order", "get_user_orders", "orders_by_status", "place_order",
           "set_order_status"]

place_order = awaitable(_sync.place_order)
get_order = awaitable(_sync.get_order)
get_user_orders = awaitable(_sync.get_user_orders)
orders_by_status = awaitable(_sync.orders_by_status)
set_order_status = awaitable(_sync.set_order_status)
