"""Add Email-Index to the bare table (a GSI added to a table that holds data)."""

from __future__ import annotations

from migrations.context import Key, MigrationContext

revision = "0002"
down_revision = "0001"


def upgrade(ctx: MigrationContext) -> None:
    ctx.create_global_index("Email-Index", [Key("Email", "S", "HASH")])


def downgrade(ctx: MigrationContext) -> None:
    ctx.delete_global_index("Email-Index")
