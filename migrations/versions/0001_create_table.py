"""Create the table: PK/SK, GSI1 (GSI1PK, SK), on-demand billing, stream NEW_AND_OLD_IMAGES."""

from __future__ import annotations

from migrations.context import Key, MigrationContext

revision = "0001"
down_revision = None


def upgrade(ctx: MigrationContext) -> None:
    ctx.create_table(
        [Key("PK", "S", "HASH"), Key("SK", "S", "RANGE")],
        global_indexes=[("GSI1", [Key("GSI1PK", "S", "HASH"), Key("SK", "S", "RANGE")])],
        billing_mode="PAY_PER_REQUEST",
        stream_view_type="NEW_AND_OLD_IMAGES",
    )


def downgrade(ctx: MigrationContext) -> None:
    ctx.delete_table()
