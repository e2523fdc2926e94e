"""Add Email-Index: a sparse GSI on Email (projection ALL), for finding users by email."""

from __future__ import annotations

from typing import Any

from migrations.context import Key

revision = "0002"
down_revision = "0001"


def upgrade(ctx: Any) -> None:
    ctx.create_global_index("Email-Index", [Key("Email", "S", "HASH")])


def downgrade(ctx: Any) -> None:
    ctx.delete_global_index("Email-Index")
