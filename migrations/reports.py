"""The commands that change nothing: ``plan``, ``history`` (with ``current_revision``), ``status``,
``check`` (with ``pending``), and ``new`` (which writes a revision file, not the table). ``runner``
re-exports them, and plans its runs with ``plan_run`` before changing anything."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.client import new_client
from core.config import Settings, get_settings
from core.errors import ConfigurationError
from migrations import autogenerate, revisions
from migrations.calls import Caller, MigrationError, Printer
from migrations.context import MigrationContext
from migrations.destructive import Deletion, mark
from migrations.ledger import Ledger
from migrations.planned import PlannedCall
from migrations.revisions import VERSIONS_DIR, Revision, load_revisions, name, resolve, write_revision
from migrations.schema import Difference, TableSpec, diff, live_spec


def setup(
    settings: Settings | None, client: Any | None, versions_dir: Path | None
) -> tuple[Settings, Any, Ledger, list[Revision]]:
    """Settings, client, ledger and revision chain of a command (defaults from the environment)."""
    settings = settings or get_settings()
    client = client or new_client(settings)
    return settings, client, Ledger(client, settings.ledger_table_name), load_revisions(versions_dir)


def to_revert(chain: list[Revision], records: dict[str, dict[str, Any]], goal: int) -> list[Revision]:
    """The revisions a downgrade to ``goal`` runs, newest first: every one above it that the ledger
    records, applied or not (an unfinished run's downgrade undoes what it did; each is idempotent)."""
    return [rev for rev in reversed(chain[goal + 1 :]) if rev.revision in records]


@dataclass(frozen=True)
class RunPlan:
    """A run planned as a dry run: its calls (as ``plan`` prints them, each deletion followed by
    what it would delete) and every table or index it deletes, with what each holds now."""

    calls: list[PlannedCall]
    deletions: list[Deletion]

    @property
    def destroying(self) -> list[Deletion]:
        """The deletions that would delete data (they need ``destroy_data``)."""
        return [d for d in self.deletions if d.holds_data]

    @property
    def deletes_table(self) -> bool:
        """Whether the run deletes the table (point-in-time recovery then stays on until it does)."""
        return any(d.index is None for d in self.deletions)


def plan_run(
    client: Any,
    table_name: str,
    ledger: Ledger,
    steps: list[tuple[Revision, str]],
    *,
    stop_at_error: bool = False,
) -> RunPlan:
    """Run ``steps`` (revision, ``upgrade``/``downgrade``) as a dry run, making no change, and
    inspect each table or index they would delete. A run that deletes the table is planned again
    with ``deletes_table_later`` set, so its PITR steps read as they will run. With
    ``stop_at_error`` a revision that raises ends the plan there (the real run stops there too;
    the delete operations check again for what a later step would delete)."""

    def dry_run(deletes_table_later: bool) -> list[PlannedCall]:
        ctx = MigrationContext(
            client,
            table_name,
            out=lambda _: None,
            dry_run=True,
            ledger=ledger,
            deletes_table_later=deletes_table_later,
        )
        for rev, action in steps:
            ctx.revision = rev.revision
            ctx.calls.append(PlannedCall("revision", {"what": f"{action} {rev.revision}: {rev.message}"}))
            try:
                (rev.upgrade if action == "upgrade" else rev.downgrade)(ctx)
            except Exception as exc:
                if not stop_at_error:
                    raise
                ctx.calls.append(PlannedCall("note", {"what": f"the dry run stops here: {exc!r}"}))
                break
        return ctx.calls

    calls = dry_run(False)
    if any(call.operation == "DeleteTable" for call in calls):
        calls = dry_run(True)
    marked, deletions = mark(client, calls)
    return RunPlan(marked, deletions)


def plan(
    target: str = "head",
    *,
    settings: Settings | None = None,
    client: Any | None = None,
    versions_dir: Path | None = None,
) -> list[PlannedCall]:
    """The calls ``upgrade(target)`` (or ``downgrade``, for a target behind) would make, in order,
    with its waits; makes none of them. Each call that deletes a table or an index is followed by
    what it would delete: ``DESTROYS DATA`` (the run needs ``--destroy-data``) or a note."""
    settings, client, ledger, chain = setup(settings, client, versions_dir)
    records = ledger.records()
    position = revisions.position(chain, records)
    goal = resolve(chain, target, records)
    if goal >= position:
        steps = [(rev, "upgrade") for rev in chain[position + 1 : goal + 1]]
    else:
        steps = [(rev, "downgrade") for rev in to_revert(chain, records, goal)]
    if not steps:
        return [PlannedCall("revision", {"what": f"nothing to do: at {name(chain, position)}"})]
    return plan_run(client, settings.table_name, ledger, steps).calls


def history(versions_dir: Path | None = None) -> list[Revision]:
    """Every revision, base first."""
    return load_revisions(versions_dir)


@dataclass(frozen=True)
class Current:
    """Where the table stands, as far as the ledger tells: ``index`` in the chain (-1: base), or
    ``None`` when it cannot be told; ``note`` says why, or where the answer came from."""

    index: int | None
    note: str


def current_revision(
    chain: list[Revision], *, settings: Settings | None = None, client: Any | None = None
) -> Current:
    """The current revision from the ledger, for ``history``: one attempt, short timeouts, and an
    unreachable endpoint or a ledger that disagrees with ``chain`` gives ``index=None``, not an error."""
    settings = settings or get_settings()
    if client is None:
        quick = dataclasses.replace(
            settings, max_retry_attempts=0, connect_timeout_seconds=2.0, read_timeout_seconds=5.0
        )
        try:
            client = new_client(quick)
        except ConfigurationError as exc:  # no region, say: history is still worth printing
            return Current(None, str(exc))
    ledger = Ledger(client, settings.ledger_table_name)
    try:
        if not ledger.exists():
            return Current(-1, f"no ledger table {settings.ledger_table_name}: nothing applied yet")
        index = revisions.position(chain, ledger.records())
    except MigrationError as exc:
        return Current(None, str(exc))
    except (ClientError, BotoCoreError) as exc:
        return Current(None, f"cannot read the ledger at {client.meta.endpoint_url}: {exc}")
    return Current(index, f"from the ledger {settings.ledger_table_name} at {client.meta.endpoint_url}")


def pending(
    *, settings: Settings | None = None, client: Any | None = None, versions_dir: Path | None = None
) -> list[str]:
    """The ids of the revisions after the current one (``upgrade head`` would apply them)."""
    _, _, ledger, chain = setup(settings, client, versions_dir)
    return [rev.revision for rev in chain[revisions.position(chain, ledger.records()) + 1 :]]


def status(
    *, settings: Settings | None = None, client: Any | None = None, versions_dir: Path | None = None
) -> dict[str, Any]:
    """Current revision, pending and failed revisions, backfills, the lock, and the state of the
    table, its indexes, TTL, stream and billing."""
    settings, client, ledger, chain = setup(settings, client, versions_dir)
    records = ledger.records()
    position = revisions.current(chain, {r for r, rec in records.items() if rec.get("Status") == "applied"})
    try:
        revisions.position(chain, records)
        problem = None
    except MigrationError as exc:
        problem = str(exc)
    caller = Caller(client, settings.table_name)
    table = caller.describe()
    live = live_spec(client, settings.table_name) if table else None
    return {
        "table": settings.table_name,
        "endpoint": client.meta.endpoint_url,
        "current": name(chain, position),
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
        "ledger": problem or "consistent",
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
    settings, client, ledger, chain = setup(settings, client, directory)
    position = revisions.position(chain, ledger.records())
    if position != len(chain) - 1:
        raise MigrationError(
            f"{settings.table_name} is at {name(chain, position)}, not at head: run upgrade "
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
