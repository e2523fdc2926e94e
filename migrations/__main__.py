"""``python -m migrations upgrade|downgrade|status|history|plan``.

With no endpoint configured (``AWS_ENDPOINT_URL_DYNAMODB`` unset) the commands use a persistent
DynamoDB Local on 127.0.0.1, started if it is not running. Reaching AWS takes an explicit
``--aws`` (or ``DYNAMODB_TARGET=aws``).
"""

from __future__ import annotations

import argparse
import os
import sys

from core.config import get_settings
from migrations import runner
from migrations.context import MigrationError


def _use_local_when_unset(aws: bool) -> None:
    if aws or os.environ.get("DYNAMODB_TARGET", "").lower() == "aws":
        print("endpoint: AWS (region and credentials from the standard chain)")
        return
    if os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        print(f"endpoint: {os.environ['AWS_ENDPOINT_URL_DYNAMODB']} (from AWS_ENDPOINT_URL_DYNAMODB)")
        return
    from core import localdb

    endpoint, started = localdb.ensure_running()
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    # DynamoDB Local accepts any credentials; set placeholders only when none are configured.
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    print(f"endpoint: {endpoint} (local DynamoDB, {'started now' if started else 'already running'})")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m migrations", description=__doc__)
    parser.add_argument("--aws", action="store_true", help="target AWS, not the local DynamoDB")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="apply pending revisions up to TARGET (default head)")
    up.add_argument("target", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="revert revisions until TARGET (a revision or base)")
    down.add_argument("target")
    pl = sub.add_parser("plan", help="print the calls upgrade would make, without making them")
    pl.add_argument("target", nargs="?", default="head")
    sub.add_parser("status", help="current revision, pending revisions, table and index states")
    sub.add_parser("history", help="every revision, base first")
    args = parser.parse_args(argv)

    if args.command == "history":
        for rev in runner.history():
            print(f"{rev.revision}  {rev.message}")
        return 0
    _use_local_when_unset(args.aws)
    print(f"table: {get_settings().table_name}")
    try:
        if args.command == "upgrade":
            runner.upgrade(args.target)
        elif args.command == "downgrade":
            runner.downgrade(args.target)
        elif args.command == "plan":
            for call in runner.plan(args.target):
                print(call.describe())
        elif args.command == "status":
            for key, value in runner.status().items():
                print(f"{key}: {value}")
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
