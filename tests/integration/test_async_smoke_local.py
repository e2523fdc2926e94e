from __future__ import annotations

import asyncio
from decimal import Decimal

from core.config import Settings
from repositories import asyncio as aio
from repositories.asyncio import accounts, orders, users, metrics
from tests.helpers import random_email
from datetime import UTC, datetime, timedelta


def test_smoke(local_table: Settings) -> None:
    async def main() -> None:
        try:
            user = await users.create_user(random_email(), "Ada")
            got = await users.get_user(user.user_id)
            assert got.user_id == user.user_id
            order = await orders.place_order(user.user_id, Decimal("10.00"))
            page = await orders.get_user_orders(user.user_id)
            assert [o.order_id for o in page.items] == [order.order_id]
            many = await asyncio.gather(*(orders.place_order(user.user_id, Decimal(i + 1)) for i in range(20)))
            assert len(many) == 20
            u, p = await users.get_user_with_orders(user.user_id, limit=5)
            assert len(p.items) == 5
            at = datetime.now(UTC)
            await metrics.record_metric("dev1", "temp", 3, at=at)
            ms = await metrics.get_metrics("dev1", at - timedelta(days=2), at + timedelta(seconds=1))
            assert len(ms) == 1
        finally:
            await aio.aclose()

    asyncio.run(main())
