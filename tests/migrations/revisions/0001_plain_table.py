"""A bare table for tests: PK/SK, on-demand, no stream and no index, so seeding it is fast."""

from __future__ import annotations

from migrations.context import Key, MigrationContext

revision = "0001"
down_revision = None


def upgrade(ctx: MigrationContext) -> None:
    ctx.create_table([Key("PK", "S", "HASH"), Key("SK", "S", "RANGE")])


def downgrade(ctx: MigrationContext) -> None:
    ctx.delete_table()
