"""Add Email-Index: a sparse GSI on Email (projection ALL), for finding users by email."""

from __future__ import annotations

from migrations.context import Key, MigrationContext

revision = "0002"
down_revision = "0001"


def upgrade(ctx: MigrationContext) -> None:
    ctx.create_global_index("Email-Index", [Key("Email", "S", "HASH")])


def downgrade(ctx: MigrationContext) -> None:
    ctx.delete_global_index("Email-Index")
