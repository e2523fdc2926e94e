"""For the fencing tests: while it runs, another runner takes the migrations lock over; with
``USURP_THEN_RAISE`` set, the revision then fails as well."""

from __future__ import annotations

import os

from migrations.context import MigrationContext

revision = "0002"
down_revision = "0001"


def upgrade(ctx: MigrationContext) -> None:
    if ctx.dry_run:  # plan, and the runner's check before it runs: act only for real
        return
    assert ctx.ledger is not None
    ctx.client.put_item(
        TableName=ctx.ledger.table_name,
        Item={"PK": {"S": "LOCK"}, "Owner": {"S": "usurper"}, "ExpiresAt": {"N": "9999999999"}},
    )
    if os.environ.get("USURP_THEN_RAISE"):
        raise RuntimeError("the revision failed after the lock was taken over")


def downgrade(ctx: MigrationContext) -> None:
    """Nothing to undo."""
