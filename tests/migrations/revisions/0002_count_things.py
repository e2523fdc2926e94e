"""Count every THING item once: each processed item gets ``Processed`` ADD 1, so a count of 2
means it was processed twice.

For the crash test: with ``TEST_HANG_AFTER_ITEMS`` set, the transform stops for good (until the
process is killed) once it has seen that many items, after touching ``TEST_HUNG_FLAG``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from migrations.context import Item, ItemUpdate, MigrationContext

revision = "0002"
down_revision = "0001"

_HANG_AFTER = int(os.environ.get("TEST_HANG_AFTER_ITEMS") or 0)
_seen = 0
_mutex = threading.Lock()


def _hang_when_due() -> None:
    global _seen
    with _mutex:
        _seen += 1
        due = bool(_HANG_AFTER) and _seen > _HANG_AFTER
    if due:
        Path(os.environ["TEST_HUNG_FLAG"]).touch()
        threading.Event().wait()  # until SIGKILL


def upgrade(ctx: MigrationContext) -> None:
    def count(item: Item) -> ItemUpdate:
        _hang_when_due()
        return ItemUpdate(add={"Processed": {"N": "1"}})

    ctx.backfill("count-things", count, segments=4, page_size=25, where={"EntityType": {"S": "THING"}})


def downgrade(ctx: MigrationContext) -> None:
    ctx.note("nothing to undo")
