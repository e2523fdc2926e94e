"""The runner: one function per command. The command line (``python -m migrations``) is a thin
layer over these."""

from __future__ import annotations

import traceback
from typing import Any

from core.client import new_client
from core.config import Settings, get_settings
from migrations.context import MigrationContext, PlannedCall, Printer
from migrations.ledger import Ledger
from migrations.revisions import Revision, load_revisions, resolve


def _setup(settings: Settings | None, client: Any | None) -> tuple[Settings, Any, Ledger, list[Revision]]:
    settings = settings or get_settings()
    client = client or new_client(settings)
    return settings, client, Ledger(client, settings.ledger_table_name), load_revisions()


def current(chain: list[Revision], applied: set[str]) -> int:
    """Index of the last revision of the unbroken applied prefix of ``chain`` (-1 for none)."""
    index = -1
    for i, rev in enumerate(chain):
        if rev.revision not in applied:
            break
        index = i
    return index


def upgrade(target: str = "head", *, out: Printer = print, settings: Settings | None = None,
            client: Any | None = None, lock_wait_seconds: float = 60.0) -> list[str]:
    """Apply the pending revisions up to ``target``; return the ids applied (none: a no-op)."""
    settings, client, ledger, chain = _setup(settings, client)
    goal = resolve(chain, target)
    ledger.ensure()
    done: list[str] = []
    with ledger.lock(wait_seconds=lock_wait_seconds):
        position = current(chain, ledger.applied())
        if position >= goal:
            out(f"nothing to do: {settings.table_name} is at {_name(chain, position)}")
            return done
        ctx = MigrationContext(client, settings.table_name, out=out)
        for rev in chain[position + 1: goal + 1]:
            out(f"applying {rev.revision}: {rev.message}")
            try:
                rev.upgrade(ctx)
            except Exception as exc:
                ledger.record(rev.revision, "failed", rev.message, "".join(traceback.format_exception(exc)))
                out(f"FAILED {rev.revision}: {exc}")
                raise
            ledger.record(rev.revision, "applied", rev.message)
            done.append(rev.revision)
        out(f"{settings.table_name} is at {_name(chain, goal)}")
    return done


def downgrade(target: str, *, out: Printer = print, settings: Settings | None = None,
              client: Any | None = None, lock_wait_seconds: float = 60.0) -> list[str]:
    """Revert applied revisions, newest first, until ``target`` (a revision or ``base``) is current."""
    settings, client, ledger, chain = _setup(settings, client)
    goal = resolve(chain, target)
    if not ledger.exists():
        out("nothing to do: no revision was ever applied")
        return []
    reverted: list[str] = []
    with ledger.lock(wait_seconds=lock_wait_seconds):
        position = current(chain, ledger.applied())
        ctx = MigrationContext(client, settings.table_name, out=out)
        for rev in reversed(chain[goal + 1: position + 1]):
            out(f"reverting {rev.revision}: {rev.message}")
            rev.downgrade(ctx)
            ledger.forget(rev.revision)
            reverted.append(rev.revision)
        out(f"{settings.table_name} is at {_name(chain, goal)}")
    return reverted


def plan(
    target: str = "head", *, settings: Settings | None = None, client: Any | None = None
) -> list[PlannedCall]:
    """The calls ``upgrade(target)`` would make, in order, with its waits; makes none of them."""
    settings, client, ledger, chain = _setup(settings, client)
    position = current(chain, ledger.applied())
    ctx = MigrationContext(client, settings.table_name, out=lambda _: None, dry_run=True)
    for rev in chain[position + 1: resolve(chain, target) + 1]:
        ctx.calls.append(PlannedCall("wait", {"what": f"--- revision {rev.revision}: {rev.message}"}))
        rev.upgrade(ctx)
    return ctx.calls


def history() -> list[Revision]:
    """Every revision, base first."""
    return load_revisions()


def status(*, settings: Settings | None = None, client: Any | None = None) -> dict[str, Any]:
    """Current revision, pending revisions, failures, and the state of the table and its indexes."""
    settings, client, ledger, chain = _setup(settings, client)
    records = ledger.records()
    applied = {r for r, rec in records.items() if rec.get("Status") == "applied"}
    position = current(chain, applied)
    table = MigrationContext(client, settings.table_name).describe()
    return {
        "table": settings.table_name,
        "endpoint": client.meta.endpoint_url,
        "current": _name(chain, position),
        "pending": [r.revision for r in chain[position + 1:]],
        "failed": sorted(r for r, rec in records.items() if rec.get("Status") == "failed"),
        "table_status": table.get("TableStatus") if table else "absent",
        "indexes": {
            i["IndexName"]: i.get("IndexStatus", "?") + (" (backfilling)" if i.get("Backfilling") else "")
            for i in (table or {}).get("GlobalSecondaryIndexes", [])
        },
        "lock": ledger.holder() if ledger.exists() else None,
    }


def _name(chain: list[Revision], index: int) -> str:
    return "base" if index < 0 else f"{chain[index].revision} ({chain[index].message})"
