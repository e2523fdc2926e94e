"""Expire items by TTL on ExpiresAt; enable point-in-time recovery where supported."""

from __future__ import annotations

from typing import Any

revision = "0003"
down_revision = "0002"


def upgrade(ctx: Any) -> None:
    ctx.set_ttl("ExpiresAt", enabled=True)
    ctx.enable_point_in_time_recovery()


def downgrade(ctx: Any) -> None:
    ctx.set_ttl("ExpiresAt", enabled=False)
