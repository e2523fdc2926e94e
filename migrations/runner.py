"""The runner: one function per command. The command line (``python -m migrations``) is a thin
layer over these.

``upgrade`` and ``downgrade`` hold the lock for their whole run and record every revision in the
ledger: ``running`` when it starts, ``applied`` or ``failed`` when it ends. The current revision
is the last of the unbroken run of applied revisions from base, so it never moves past a failed
one, and applying twice is a no-op.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.client import new_client
from core.config import Settings, get_settings
from migrations import autogenerate
from migrations.calls import Caller, MigrationError, PlannedCall, Printer
from migrations.context import MigrationContext
from migrations.ledger import Ledger
from migrations.revisions import VERSIONS_DIR, Revision, load_revisions, resolve, write_revision
from migrations.schema import Difference, TableSpec, diff, live_spec


class RevisionFailed(MigrationError):
    """A revision raised; it is recorded as failed and the current revision stays before it."""

    def __init__(self, revision: str, message: str) -> None:
        super().__init__(message)
        self.revision = revision


@dataclass(frozen=True)
class Options:
    """How ``upgrade`` and ``downgrade`` behave (defaults suit the command line)."""

    lock_wait_seconds: float = 60.0
    lease_seconds: float = 30.0
    wait_timeout: float = 900.0
    progress: bool = False


def _setup(
    settings: Settings | None, client: Any | None, versions_dir: Path | None
) -> tuple[Settings, Any, Ledger, list[Revision]]:
    settings = settings or get_settings()
    client = client or new_client(settings)
    return settings, client, Ledger(client, settings.ledger_table_name), load_revisions(versions_dir)


def current(chain: list[Revision], applied: set[str]) -> int:
    """Index of the last revision of the unbroken applied prefix of ``chain`` (-1 for none)."""
    index = -1
    for i, rev in enumerate(chain):
        if rev.revision not in applied:
            break
        index = i
    return index


def upgrade(
    target: str = "head",
    *,
    out: Printer = print,
    settings: Settings | None = None,
    client: Any | None = None,
    lock_wait_seconds: float = 60.0,
    versions_dir: Path | None = None,
    options: Options | None = None,
) -> list[str]:
    """Apply the pending revisions up to ``target``; return the ids applied (none: a no-op)."""
    options = options or Options(lock_wait_seconds=lock_wait_seconds)
    settings, client, ledger, chain = _setup(settings, client, versions_dir)
    goal = resolve(chain, target)
    ledger.ensure()
    done: list[str] = []
    with ledger.lock.hold(
        lease_seconds=options.lease_seconds, wait_seconds=options.lock_wait_seconds, out=out
    ) as lease:
        records = ledger.records()
        position = current(chain, {r for r, rec in records.items() if rec.get("Status") == "applied"})
        if position >= goal:
            out(f"nothing to do: {settings.table_name} is at {_name(chain, position)}")
            return done
        ctx = MigrationContext(
            client,
            settings.table_name,
            out=out,
            wait_timeout=options.wait_timeout,
            ledger=ledger,
            lease=lease,
            progress=options.progress,
        )
        for rev in chain[position + 1 : goal + 1]:
            lease.check()
            out(f"applying {rev.revision}: {rev.message}")
            previous = records.get(rev.revision, {})
            if previous.get("Status") in ("running", "failed"):
                out(
                    f"  its last run ({previous['Status']}, {previous.get('At')}) did not finish: "
                    "resuming (its operations skip what is done already)"
                )
            _run(ledger, ctx, rev, "upgrade", lease.owner)
            done.append(rev.revision)
        out(f"{settings.table_name} is at {_name(chain, goal)}")
    return done


def downgrade(
    target: str,
    *,
    out: Printer = print,
    settings: Settings | None = None,
    client: Any | None = None,
    lock_wait_seconds: float = 60.0,
    versions_dir: Path | None = None,
    options: Options | None = None,
) -> list[str]:
    """Revert applied revisions, newest first, until ``target`` (a revision or ``base``) is current."""
    options = options or Options(lock_wait_seconds=lock_wait_seconds)
    settings, client, ledger, chain = _setup(settings, client, versions_dir)
    goal = resolve(chain, target)
    if not ledger.exists():
        out("nothing to do: no revision was ever applied")
        return []
    reverted: list[str] = []
    with ledger.lock.hold(
        lease_seconds=options.lease_seconds, wait_seconds=options.lock_wait_seconds, out=out
    ) as lease:
        records = ledger.records()
        position = current(chain, {r for r, rec in records.items() if rec.get("Status") == "applied"})
        if goal > position:
            raise MigrationError(
                f"{target} is ahead of the current revision {_name(chain, position)}: use upgrade"
            )
        for rev in chain[goal + 1 :]:  # unfinished runs above the target: their checkpoints start over
            if rev.revision in records and records[rev.revision].get("Status") != "applied":
                ledger.forget(rev.revision, by=lease.owner, outcome="abandoned")
        ctx = MigrationContext(
            client,
            settings.table_name,
            out=out,
            wait_timeout=options.wait_timeout,
            ledger=ledger,
            lease=lease,
            progress=options.progress,
        )
        for rev in reversed(chain[goal + 1 : position + 1]):
            lease.check()
            out(f"reverting {rev.revision}: {rev.message}")
            _run(ledger, ctx, rev, "downgrade", lease.owner)
            reverted.append(rev.revision)
        out(f"{settings.table_name} is at {_name(chain, goal)}")
    return reverted


def _run(ledger: Ledger, ctx: MigrationContext, rev: Revision, action: str, owner: str) -> None:
    ctx.revision = rev.revision
    if action == "upgrade":
        ledger.record(rev.revision, "running", rev.message, by=owner)
    try:
        (rev.upgrade if action == "upgrade" else rev.downgrade)(ctx)
    except BaseException as exc:
        error = "".join(traceback.format_exception(exc))
        if action == "upgrade":
            ledger.record(rev.revision, "failed", rev.message, by=owner, error=error)
        else:
            ledger.log(rev.revision, action, "failed", by=owner, error=error)
        ctx.out(f"FAILED {rev.revision}: {exc}")
        if isinstance(exc, Exception):
            raise RevisionFailed(rev.revision, f"{action} of {rev.revision} failed: {exc}") from exc
        raise
    if action == "upgrade":
        ledger.record(rev.revision, "applied", rev.message, by=owner)
    else:
        ledger.forget(rev.revision, by=owner)


def plan(
    target: str = "head",
    *,
    settings: Settings | None = None,
    client: Any | None = None,
    versions_dir: Path | None = None,
) -> list[PlannedCall]:
    """The calls ``upgrade(target)`` (or ``downgrade``, for a target behind) would make, in order,
    with its waits; makes none of them."""
    settings, client, ledger, chain = _setup(settings, client, versions_dir)
    position = current(chain, ledger.applied())
    goal = resolve(chain, target)
    ctx = MigrationContext(client, settings.table_name, out=lambda _: None, dry_run=True, ledger=ledger)
    if goal >= position:
        steps = [(rev, "upgrade") for rev in chain[position + 1 : goal + 1]]
    else:
        steps = [(rev, "downgrade") for rev in reversed(chain[goal + 1 : position + 1])]
    if not steps:
        ctx.calls.append(PlannedCall("revision", {"what": f"nothing to do: at {_name(chain, position)}"}))
    for rev, action in steps:
        ctx.revision = rev.revision
        ctx.calls.append(PlannedCall("revision", {"what": f"{action} {rev.revision}: {rev.message}"}))
        (rev.upgrade if action == "upgrade" else rev.downgrade)(ctx)
    return ctx.calls


def history(versions_dir: Path | None = None) -> list[Revision]:
    """Every revision, base first."""
    return load_revisions(versions_dir)


def status(
    *, settings: Settings | None = None, client: Any | None = None, versions_dir: Path | None = None
) -> dict[str, Any]:
    """Current revision, pending and failed revisions, backfills, the lock, and the state of the
    table, its indexes, TTL, stream and billing."""
    settings, client, ledger, chain = _setup(settings, client, versions_dir)
    records = ledger.records()
    position = current(chain, {r for r, rec in records.items() if rec.get("Status") == "applied"})
    caller = Caller(client, settings.table_name)
    table = caller.describe()
    live = live_spec(client, settings.table_name) if table else None
    return {
        "table": settings.table_name,
        "endpoint": client.meta.endpoint_url,
        "current": _name(chain, position),
        "pending": [r.revision for r in chain[position + 1 :]],
        "failed": sorted(r for r, rec in records.items() if rec.get("Status") == "failed"),
        "running": sorted(r for r, rec in records.items() if rec.get("Status") == "running"),
        "table_status": table.get("TableStatus") if table else "absent",
        "indexes": {
            i["IndexName"]: i.get("IndexStatus", "?") + (" (backfilling)" if i.get("Backfilling") else "")
            for i in (table or {}).get("GlobalSecondaryIndexes", [])
        },
        "ttl": (f"on {live.ttl_attribute}" if live.ttl_attribute else "disabled") if live else None,
        "stream": (live.stream_view_type or "disabled") if live else None,
        "billing": live.billing_mode if live else None,
        "backfills": {
            f"{b['Revision']} {b['Name']}" + (f" segment {b['Segment']}" if "Segment" in b else ""): b.get(
                "Status"
            )
            or f"{'done' if b.get('Done') else 'in progress'}, {b.get('Scanned')} scanned, "
            f"{b.get('Updated')} updated, {b.get('Failed')} failed"
            for b in ledger.backfills()
        },
        "lock": ledger.lock.describe_holder() if ledger.exists() else "nobody",
    }


def check(
    *, declared: TableSpec | None = None, settings: Settings | None = None, client: Any | None = None
) -> list[Difference]:
    """Every difference between what ``models/`` declares and the live table (empty: in sync)."""
    settings = settings or get_settings()
    client = client or new_client(settings)
    if declared is None:
        from migrations.declared import declared_spec

        declared = declared_spec()
    return diff(declared, live_spec(client, settings.table_name), settings.table_name)


def new(
    message: str,
    *,
    autogenerate_ops: bool = False,
    out: Printer = print,
    versions_dir: Path | None = None,
    declared: TableSpec | None = None,
    settings: Settings | None = None,
    client: Any | None = None,
) -> list[Path]:
    """Write the next numbered revision; with ``autogenerate_ops``, the ones that bring the live
    table to what ``models/`` declares (several files when more than one index changes)."""
    directory = versions_dir or VERSIONS_DIR
    chain = load_revisions(directory)
    if not autogenerate_ops:
        path = write_revision(directory, chain, message, [], [])
        out(f"wrote {path}")
        return [path]
    settings, client, ledger, chain = _setup(settings, client, directory)
    position = current(chain, ledger.applied())
    if position != len(chain) - 1:
        raise MigrationError(
            f"{settings.table_name} is at {_name(chain, position)}, not at head: run upgrade "
            "first (autogenerate compares the models with the live table at head)"
        )
    if declared is None:
        from migrations.declared import declared_spec

        declared = declared_spec()
    live = live_spec(client, settings.table_name)
    if live is None:
        raise MigrationError(f"table {settings.table_name} does not exist: run upgrade first")
    differences = diff(declared, live, settings.table_name)
    if not differences:
        out("no difference between models/ and the live table: no revision written")
        return []
    groups = autogenerate.group(autogenerate.steps(differences, declared, live))
    paths = []
    for number, steps in enumerate(groups, start=1):
        text = message if len(groups) == 1 else f"{message} ({number} of {len(groups)})"
        up, down = autogenerate.bodies(steps)
        paths.append(write_revision(directory, load_revisions(directory), text, up, down))
        out(f"wrote {paths[-1]}")
    return paths


def _name(chain: list[Revision], index: int) -> str:
    return "base" if index < 0 else f"{chain[index].revision} ({chain[index].message})"
