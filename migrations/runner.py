"""The runner: one function per command. The command line (``python -m migrations``) is a thin
layer over these.

``upgrade`` and ``downgrade`` hold the lock for their whole run and record every revision in the
ledger: ``running`` when it starts, ``applied`` or ``failed`` when it ends. The current revision
is the last of the unbroken run of applied revisions from base, so it never moves past a failed
one, and applying twice is a no-op.

Before their first write (the ledger table, the lock) they plan the whole run as a dry run and
refuse it, changing nothing, when a step would delete a table or an index that holds data and
``destroy_data`` was not given (``DataWouldBeDestroyed``, naming each; see
``migrations.destructive``). Under the lock the plan is made again if the ledger moved meanwhile.
A run that deletes the table leaves point-in-time recovery on until the delete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from migrations import revisions
from migrations.calls import MigrationError, Printer
from migrations.context import MigrationContext
from migrations.destructive import DataWouldBeDestroyed
from migrations.ledger import Ledger
from migrations.lock import LockLost
from migrations.reports import (
    Current,
    RunPlan,
    check,
    current_revision,
    history,
    new,
    pending,
    plan,
    plan_run,
    setup,
    status,
    to_revert,
)
from migrations.revisions import Revision, current, name, resolve

__all__ = [
    "Current",
    "DataWouldBeDestroyed",
    "Options",
    "RevisionFailed",
    "check",
    "current",
    "current_revision",
    "downgrade",
    "history",
    "new",
    "pending",
    "plan",
    "status",
    "upgrade",
]


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
    # Let steps delete a table or an index that holds data (``--destroy-data``); without it such a
    # run is refused before any change.
    destroy_data: bool = False


def _options(options: Options | None, lock_wait_seconds: float | None, destroy_data: bool | None) -> Options:
    options = options or Options()
    if lock_wait_seconds is not None:  # the explicit argument wins over the one in options
        options = dataclasses.replace(options, lock_wait_seconds=lock_wait_seconds)
    if destroy_data is not None:
        options = dataclasses.replace(options, destroy_data=destroy_data)
    return options


def _checked(
    command: str, steps: list[tuple[Revision, str]], settings: Settings, ledger: Ledger, options: Options
) -> RunPlan:
    """The run planned as a dry run; ``DataWouldBeDestroyed`` if a step would delete a table or an
    index holding data and ``options.destroy_data`` is not set."""
    run = plan_run(ledger.client, settings.table_name, ledger, steps, stop_at_error=True)
    if run.destroying and not options.destroy_data:
        raise DataWouldBeDestroyed(command, run.destroying)
    return run


def _upgrade_steps(
    chain: list[Revision], records: dict[str, dict[str, Any]], goal: int
) -> list[tuple[Revision, str]]:
    return [(rev, "upgrade") for rev in chain[revisions.position(chain, records) + 1 : goal + 1]]


def _downgrade_steps(
    chain: list[Revision], records: dict[str, dict[str, Any]], goal: int, target: str
) -> list[tuple[Revision, str]]:
    position = revisions.position(chain, records)
    if goal > position:
        raise MigrationError(
            f"{target} is ahead of the current revision {name(chain, position)}: use upgrade"
        )
    return [(rev, "downgrade") for rev in to_revert(chain, records, goal)]


@contextlib.contextmanager
def _locked(
    settings: Settings, client: Any, ledger: Ledger, options: Options, out: Printer
) -> Iterator[MigrationContext]:
    """Hold the lock, fence every ledger write with it, and give the context revisions run in."""
    with ledger.lock.hold(
        lease_seconds=options.lease_seconds, wait_seconds=options.lock_wait_seconds, out=out
    ) as lease:
        ledger.fence(lease)
        try:
            yield MigrationContext(
                client,
                settings.table_name,
                out=out,
                wait_timeout=options.wait_timeout,
                ledger=ledger,
                lease=lease,
                progress=options.progress,
                destroy_data=options.destroy_data,
            )
        finally:
            ledger.fence(None)


def upgrade(
    target: str = "head",
    *,
    out: Printer = print,
    settings: Settings | None = None,
    client: Any | None = None,
    lock_wait_seconds: float | None = None,
    versions_dir: Path | None = None,
    options: Options | None = None,
    destroy_data: bool | None = None,
) -> list[str]:
    """Apply the pending revisions up to ``target`` (``head``, a revision id, or ``+N``: N up from
    the current one); return the ids applied (none: a no-op).

    ``lock_wait_seconds`` and ``destroy_data``, when given, override those of ``options``.
    Raises ``DataWouldBeDestroyed``, changing nothing, if a step would delete a table or an index
    that holds data without ``destroy_data``."""
    options = _options(options, lock_wait_seconds, destroy_data)
    if (revisions.relative(target) or 0) < 0:
        raise MigrationError(f"upgrade {target} would go down: use downgrade {target}")
    settings, client, ledger, chain = setup(settings, client, versions_dir)
    checked = ledger.records()
    # A relative target is resolved once, here: two runners given +1 at once apply one revision.
    goal = resolve(chain, target, checked)
    command = f"upgrade to {target}"
    run = _checked(command, _upgrade_steps(chain, checked, goal), settings, ledger, options)
    ledger.ensure()
    done: list[str] = []
    with _locked(settings, client, ledger, options, out) as ctx:
        records = ledger.records()
        if records != checked:  # another runner moved the ledger meanwhile: check this run again
            run = _checked(command, _upgrade_steps(chain, records, goal), settings, ledger, options)
        ctx.deletes_table_later = run.deletes_table
        position = revisions.position(chain, records)
        if position >= goal:
            out(f"nothing to do: {settings.table_name} is at {name(chain, position)}")
            return done
        for rev in chain[position + 1 : goal + 1]:
            ctx.keep_going()
            out(f"applying {rev.revision}: {rev.message}")
            previous = records.get(rev.revision, {})
            if previous.get("Status") in ("running", "failed"):
                out(
                    f"  its last run ({previous['Status']}, {previous.get('At')}) did not finish: "
                    "resuming (its operations skip what is done already)"
                )
            _run(ledger, ctx, rev, "upgrade")
            done.append(rev.revision)
        out(f"{settings.table_name} is at {name(chain, goal)}")
    return done


def downgrade(
    target: str,
    *,
    out: Printer = print,
    settings: Settings | None = None,
    client: Any | None = None,
    lock_wait_seconds: float | None = None,
    versions_dir: Path | None = None,
    options: Options | None = None,
    destroy_data: bool | None = None,
) -> list[str]:
    """Revert applied revisions, newest first, until ``target`` (a revision, ``base``, or ``-N``: N
    down from the current one) is current.

    ``lock_wait_seconds`` and ``destroy_data``, when given, override those of ``options``.
    Raises ``DataWouldBeDestroyed``, changing nothing, if a step would delete a table or an index
    that holds data without ``destroy_data``. Point-in-time recovery is not turned off when a later
    step of the run deletes the table."""
    options = _options(options, lock_wait_seconds, destroy_data)
    if (revisions.relative(target) or 0) > 0:
        raise MigrationError(f"downgrade {target} would go up: use upgrade {target}")
    settings, client, ledger, chain = setup(settings, client, versions_dir)
    if not ledger.exists():
        resolve(chain, target, {})  # an unknown target is an error even when there is nothing to do
        out("nothing to do: no revision was ever applied")
        return []
    checked = ledger.records()
    goal = resolve(chain, target, checked)  # once, as in upgrade
    command = f"downgrade to {target}"
    run = _checked(command, _downgrade_steps(chain, checked, goal, target), settings, ledger, options)
    reverted: list[str] = []
    with _locked(settings, client, ledger, options, out) as ctx:
        records = ledger.records()
        steps = _downgrade_steps(chain, records, goal, target)
        if records != checked:  # another runner moved the ledger meanwhile: check this run again
            run = _checked(command, steps, settings, ledger, options)
        ctx.deletes_table_later = run.deletes_table
        for rev, _ in steps:
            ctx.keep_going()
            status = records[rev.revision].get("Status")
            unfinished = "" if status == "applied" else f" (its last run is {status}: undoing what it did)"
            out(f"reverting {rev.revision}: {rev.message}{unfinished}")
            _run(ledger, ctx, rev, "downgrade")
            reverted.append(rev.revision)
        out(f"{settings.table_name} is at {name(chain, goal)}")
    return reverted


def _run(ledger: Ledger, ctx: MigrationContext, rev: Revision, action: str) -> None:
    """Run one revision's ``action`` and record it. A lost lock writes nothing more: the runner
    that took the lock over owns the ledger now."""
    ctx.revision = rev.revision
    owner = ctx.lease.owner if ctx.lease else ""
    if action == "upgrade":
        ledger.record(rev.revision, "running", rev.message, by=owner)
    try:
        (rev.upgrade if action == "upgrade" else rev.downgrade)(ctx)
        ctx.keep_going()
    except LockLost as exc:
        ctx.out(f"STOPPED {rev.revision}: {exc}")
        raise
    except BaseException as exc:
        error = "".join(traceback.format_exception(exc))
        try:
            if action == "upgrade":
                ledger.record(rev.revision, "failed", rev.message, by=owner, error=error)
            else:
                ledger.log(rev.revision, action, "failed", by=owner, error=error)
        except LockLost as lost:
            ctx.out(f"STOPPED {rev.revision}: {lost}")
            raise lost from exc
        ctx.out(f"FAILED {rev.revision}: {exc}")
        if isinstance(exc, Exception):
            raise RevisionFailed(rev.revision, f"{action} of {rev.revision} failed: {exc}") from exc
        raise
    if action == "upgrade":
        ledger.record(rev.revision, "applied", rev.message, by=owner)
    else:
        ledger.forget(rev.revision, by=owner)
