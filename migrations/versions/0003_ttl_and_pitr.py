"""Expire items by TTL on ExpiresAt; enable point-in-time recovery where supported."""

from __future__ import annotations

from migrations.context import MigrationContext

revision = "0003"
down_revision = "0002"


def upgrade(ctx: MigrationContext) -> None:
    ctx.set_ttl("ExpiresAt", enabled=True)
    ctx.enable_point_in_time_recovery()


def downgrade(ctx: MigrationContext) -> None:
    # TTL first: it is the change DynamoDB may refuse (once an hour), and set_ttl refuses it before
    # any call when the ledger knows it would be, so a refused downgrade leaves PITR as it was.
    ctx.set_ttl("ExpiresAt", enabled=False)
    ctx.enable_point_in_time_recovery(enabled=False)
