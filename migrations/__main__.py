"""``python -m migrations upgrade|downgrade|status|history|plan|check|new``.

With no endpoint configured (``AWS_ENDPOINT_URL_DYNAMODB`` unset) the commands use a persistent
DynamoDB Local on 127.0.0.1, started if it is not running (the ``history`` command never starts
one: it marks the current revision when it can read the ledger, and says when it cannot).
Reaching AWS takes an explicit ``--aws`` (or ``DYNAMODB_TARGET=aws``). The ``check`` command exits
1 when the table has drifted from ``models/``, so CI can run it, and names the revisions not
applied yet.

A target is ``head``, ``base``, a revision id, or relative to the current revision: ``upgrade +1``,
``downgrade -1``.

An ``upgrade`` or ``downgrade`` with a step that deletes the table, or an index, while it holds
items runs only with ``--destroy-data``; without it the command changes nothing, prints what it
would delete (each table or index, with its item count) and exits 2. The ``plan`` command marks
such steps ``DESTROYS DATA``. A missing prerequisite (Python 3.11+; Java 17+ and, for the first
install, npm when a local DynamoDB must be started) or a malformed setting exits 2 too, with a
one-line message. Other errors exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core import localdb
from core.config import get_settings, reload_settings
from core.errors import ConfigurationError
from core.logs import log_level
from migrations import export, policy, runner
from migrations.calls import MigrationError
from migrations.destructive import DataWouldBeDestroyed
from migrations.revisions import Revision

# The exit status of an upgrade or downgrade refused because it would delete data without
# --destroy-data (2, like a command line that lacks what it needs; other errors exit 1).
EXIT_DESTROYS_DATA = 2
# A missing or too old Java, npm or Python, or a malformed setting: the command could not start.
EXIT_NOT_RUNNABLE = 2
# --help shows the docstring as plain text: no reST quoting, no first line repeating the usage.
DESCRIPTION = (__doc__ or "").split("\n\n", 1)[-1].replace("``", "")
DESTROY_HELP = (
    "let steps delete the table or an index that holds data (without it such a run changes nothing, "
    f"lists what it would delete and exits {EXIT_DESTROYS_DATA})"
)


def _use_local_when_unset(aws: bool) -> None:
    if aws or os.environ.get("DYNAMODB_TARGET", "").lower() == "aws":
        print("endpoint: AWS (region and credentials from the standard chain)")
        return
    if os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        print(f"endpoint: {os.environ['AWS_ENDPOINT_URL_DYNAMODB']} (from AWS_ENDPOINT_URL_DYNAMODB)")
        return
    endpoint, started = localdb.ensure_running()
    _point_at_local(endpoint)
    how = "started now" if started else "already running"
    print(f"endpoint: {endpoint} (local DynamoDB, {how}, data in {localdb.data_dir()})")


def _point_at_local(endpoint: str) -> None:
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    # DynamoDB Local accepts any credentials; set placeholders only when none are configured.
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    reload_settings()


def _history(aws: bool, versions_dir: Path | None) -> None:
    """Print every revision, marking the current one when the ledger can be read; never starts a
    local DynamoDB (a stopped one leaves the current revision unknown)."""
    chain = runner.history(versions_dir)
    targeted = aws or os.environ.get("DYNAMODB_TARGET", "").lower() == "aws"
    if targeted or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        where = runner.current_revision(chain)
    elif (endpoint := localdb.status()) is not None:
        _point_at_local(endpoint)
        where = runner.current_revision(chain)
    else:
        where = runner.Current(
            None, "no endpoint is set and the local DynamoDB is not running; make db-start starts it"
        )
    for index, rev in enumerate(chain):
        marks = ("  (current)" if index == where.index else "") + ("  (head)" if rev is chain[-1] else "")
        print(f"{rev.revision}  {rev.message}{marks}")
    now = "unknown" if where.index is None else _name(chain, where.index)
    print(f"current: {now} ({where.note})")


def _name(chain: list[Revision], index: int) -> str:
    return "base" if index < 0 else chain[index].revision


def _check(versions_dir: Path | None) -> int:
    differences = runner.check()
    for difference in differences:
        print(f"drift: {difference}")
    print(
        f"{len(differences)} difference(s) between models/ and the live table"
        if differences
        else "in sync: the live table matches models/"
    )
    try:
        waiting = runner.pending(versions_dir=versions_dir)
    except MigrationError as exc:  # a ledger this checkout does not understand: say so, drift decides
        print(f"pending: unknown ({exc})")
    else:
        if waiting:
            print(f"pending: {', '.join(waiting)} — run `make migrate`")
    return 1 if differences else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m migrations",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--aws", action="store_true", help="target AWS, not the local DynamoDB")
    parser.add_argument(
        "--versions-dir",
        type=Path,
        default=None,
        help="the revision files' directory (default: migrations/versions)",
    )
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another runner's lock (default 60)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="the lock's lease, renewed while running (default 30)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="the longest wait for the table or an index to become ACTIVE (default 900)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar for backfills")
    parser.add_argument("--verbose", action="store_true",
                        help="log every DynamoDB call (one structured event each); same as LOG_LEVEL=DEBUG")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="apply pending revisions up to TARGET (default head)")
    up.add_argument("target", nargs="?", default="head",
                    help="head (default), a revision id, or +N: N revisions up from the current one")
    up.add_argument("--destroy-data", action="store_true", help=DESTROY_HELP)
    down = sub.add_parser("downgrade", help="revert revisions until TARGET (a revision, base or -N)")
    down.add_argument("target", help="base, a revision id, or -N: N revisions down from the current one")
    down.add_argument("--destroy-data", action="store_true", help=DESTROY_HELP)
    pl = sub.add_parser("plan", help="print the calls upgrade (or downgrade) would make, making none")
    pl.add_argument("target", nargs="?", default="head", help="as for upgrade or downgrade (default head)")
    sub.add_parser("status", help="current revision, pending revisions, table and index states")
    sub.add_parser("history", help="every revision, base first, marking the current one and head")
    sub.add_parser("check", help="compare models/ with the live table (exit 1 on drift); list pending ones")
    new = sub.add_parser("new", help="write the next numbered revision file")
    new.add_argument("message")
    new.add_argument(
        "--autogenerate",
        action="store_true",
        help="fill it with the operations that bring the live table to models/",
    )
    export.register(sub)
    policy.register(sub)
    return parser


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return "".join(f"\n  {k}: {v}" for k, v in value.items()) if value else "none"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value)


def _command(args: argparse.Namespace) -> int:
    options = runner.Options(
        lock_wait_seconds=args.lock_wait,
        lease_seconds=args.lease_seconds,
        wait_timeout=args.timeout,
        progress=not args.no_progress,
        destroy_data=getattr(args, "destroy_data", False),
    )
    if args.command == "upgrade":
        runner.upgrade(args.target, versions_dir=args.versions_dir, options=options)
    elif args.command == "downgrade":
        runner.downgrade(args.target, versions_dir=args.versions_dir, options=options)
    elif args.command == "plan":
        for call in runner.plan(args.target, versions_dir=args.versions_dir):
            print(call.describe())
    elif args.command == "status":
        for key, value in runner.status(versions_dir=args.versions_dir).items():
            if key not in ("table", "endpoint"):  # printed already
                print(f"{key}: {_show(value)}")
    elif args.command == "check":
        return _check(args.versions_dir)
    elif args.command == "new":
        runner.new(args.message, autogenerate_ops=args.autogenerate, versions_dir=args.versions_dir)
    return 0


def _run(args: argparse.Namespace) -> int:
    """Check the prerequisites and settings every command needs, then run the command."""
    localdb.require_python()
    reload_settings()  # a malformed setting stops every command here, before it does anything
    log_level()
    if args.command == "history":
        _history(args.aws, args.versions_dir)
        return 0
    if args.command in ("export", "policy"):  # offline: they read models/, not the table
        return int(args.run(args))
    if args.command == "new" and not args.autogenerate:
        runner.new(args.message, versions_dir=args.versions_dir)
        return 0
    _use_local_when_unset(args.aws)
    print(f"table: {get_settings().table_name}")
    return _command(args)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; return the exit status."""
    args = _parser().parse_args(argv)
    # The command prints what it does; per-call events are for --verbose (or an explicit LOG_LEVEL).
    if args.verbose:
        os.environ["LOG_LEVEL"] = "DEBUG"
    # The commands report what failed themselves (a PITR the endpoint lacks, a ledger not there
    # yet): per-call failure events would only repeat it, as JSON.
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    try:
        return _run(args)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        destroys = isinstance(exc, DataWouldBeDestroyed) or isinstance(exc.__cause__, DataWouldBeDestroyed)
        return EXIT_DESTROYS_DATA if destroys else 1
    except (ClientError, BotoCoreError) as exc:
        print(f"error: DynamoDB: {exc}", file=sys.stderr)
        return 1
    except (localdb.MissingPrerequisite, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_RUNNABLE
    except localdb.LocalDynamoDBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
