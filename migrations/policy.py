"""Least-privilege IAM policies for the roles that reach the table (``python -m migrations policy``),
in place of a blanket ``DynamoDBCrudPolicy``.

``app``: the data-plane actions the data layer's calls need, on the table and on the indexes it
queries, and nothing else: no ``Scan``, no control plane. The operations are those the write path
(``models.planning``, ``models.sending``) and the repositories send (``APP_OPERATIONS``); the
resources are derived from the declarations in ``models/``: the table, if a declared query
(``models.queries.Query``) reads it, and every index a declared query reads (repositories read only
through declared queries). IAM has no action for a transaction: it authorizes each item of a
``TransactWriteItems`` as the ``PutItem``, ``UpdateItem``, ``DeleteItem`` or ``ConditionCheckItem``
it holds, and of a ``TransactGetItems`` as ``GetItem`` (AWS, "Using IAM with DynamoDB
transactions"), so those are what a transaction adds.

No ``DescribeTable`` for the app: PynamoDB 6 builds every request from the models' own schema and
calls ``DescribeTable`` only in ``Model.exists``, ``describe_table``, ``create_table`` and
``count`` without a hash key, none of which the data layer calls at run time.
``tests/integration/test_policy_local.py`` records every call of a session of every repository
function and checks that the policy allows each and holds no action the session does not use.

``migrations``: what the runner does (``MIGRATIONS_ACTIONS``): the control plane of the table
(create, update, delete, describe; TTL; point-in-time recovery), the data plane of backfills
(``Scan`` in segments, conditional writes, their transactions), a ``Scan`` of any index (is an index
about to be deleted empty? Revisions create and drop indexes ``models/`` may no longer declare, so
``index/*``), and the ledger table ``<table>-migrations`` (created by the first ``upgrade``; its
lock is fenced by ``TransactWriteItems`` with a ``ConditionCheck``). Reaching the table's stream,
listing tables and tagging are not needed.

The stream consumer of the SAM template (``migrations.export``) gets ``stream_statements``: the
stream read actions on the table's stream only; and ``queue_statements``: ``sqs:SendMessage`` on
its on-failure destination only (Lambda sends there with the function's role).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

ROLES = ("app", "migrations")
POLICY_VERSION = "2012-10-17"

# The DynamoDB operations the data layer sends, with where it sends them from.
APP_OPERATIONS: dict[str, str] = {
    "GetItem": "Model.get (repositories.query.get_one), get_product",
    "PutItem": "the write path (models.sending): a put that needs no companion item",
    "UpdateItem": "the write path: update, set_order_status, put_product's upsert",
    "DeleteItem": "the write path: a delete that needs no companion item",
    "TransactWriteItems": "the write path: a write with its rules' companion items; models.transaction",
    "BatchGetItem": "repositories.batch.batch_get, and batch_write's read of the stored versions",
    "BatchWriteItem": "repositories.batch.batch_write",
    "Query": "the declared queries (models.queries.Query)",
}
# IAM authorizes a transaction item by item, as the single-item operation it holds.
TRANSACTION_ITEM_ACTIONS: dict[str, tuple[str, ...]] = {
    "TransactWriteItems": ("PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"),
    "TransactGetItems": ("GetItem",),
}
# What the runner calls, by resource (see the module docstring).
MIGRATIONS_ACTIONS: dict[str, tuple[str, ...]] = {
    "table": (
        "CreateTable", "UpdateTable", "DeleteTable", "DescribeTable",
        "UpdateTimeToLive", "DescribeTimeToLive", "UpdateContinuousBackups", "DescribeContinuousBackups",
        "Scan", "GetItem", "UpdateItem", *TRANSACTION_ITEM_ACTIONS["TransactWriteItems"],
    ),
    "indexes": ("Scan",),
    "ledger": (
        "CreateTable", "DescribeTable", "Scan", "GetItem",
        *TRANSACTION_ITEM_ACTIONS["TransactWriteItems"],
    ),
}
STREAM_READ_ACTIONS = ("DescribeStream", "GetRecords", "GetShardIterator")
_TABLE_ARN = re.compile(r"arn:aws[a-z-]*:dynamodb:[a-z0-9-*]+:(?:\d{12}|\*):table/[A-Za-z0-9_.-]{3,255}")


@dataclass(frozen=True)
class Arns:
    """How a policy names the table's resources: ARN strings, or CloudFormation expressions."""

    table: Any
    index: Callable[[str], Any]
    ledger: Any = None
    stream: Any = None
    streams: Any = None

    @classmethod
    def of(cls, table_arn: str) -> Arns:
        """The resources of the table ``table_arn`` (``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME``)."""
        if not _TABLE_ARN.fullmatch(table_arn):
            raise ValueError(f"not a DynamoDB table ARN: {table_arn!r}")
        return cls(
            table=table_arn,
            index=lambda name: f"{table_arn}/index/{name}",
            ledger=f"{table_arn}-migrations",
            stream=f"{table_arn}/stream/*",
            streams=f"{table_arn}/stream/*",
        )


def default_table_arn(table_name: str) -> str:
    """The table's ARN in any region and account (``--table-arn`` names one exactly)."""
    return f"arn:aws:dynamodb:*:*:table/{table_name}"


def iam_actions(operations: Iterable[str]) -> list[str]:
    """The IAM actions (``dynamodb:...``) that calling ``operations`` needs, sorted."""
    actions: set[str] = set()
    for operation in operations:
        actions.update(TRANSACTION_ITEM_ACTIONS.get(operation, (operation,)))
    return sorted(f"dynamodb:{action}" for action in actions)


def query_targets() -> tuple[bool, list[str]]:
    """Whether the data layer queries the table, and the names of the indexes it queries."""
    targets = {query.index_name() for query in _declared_queries()}
    return None in targets, sorted(name for name in targets if name is not None)


def statements(role: str, arns: Arns) -> list[dict[str, Any]]:
    """The policy statements of ``role`` (``app`` or ``migrations``) on the resources ``arns`` names."""
    if role == "app":
        table_queried, indexes = query_targets()
        item_operations = [op for op in APP_OPERATIONS if op != "Query"]
        query_resources = [arns.table] * table_queried + [arns.index(name) for name in indexes]
        return [
            _statement("Items", iam_actions(item_operations), [arns.table]),
            _statement("Queries", iam_actions(["Query"]), query_resources),
        ]
    if role == "migrations":
        return [
            _statement("Table", iam_actions(MIGRATIONS_ACTIONS["table"]), [arns.table]),
            _statement("IndexScans", iam_actions(MIGRATIONS_ACTIONS["indexes"]), [arns.index("*")]),
            _statement("Ledger", iam_actions(MIGRATIONS_ACTIONS["ledger"]), [arns.ledger]),
        ]
    raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")


def stream_statements(arns: Arns) -> list[dict[str, Any]]:
    """A stream consumer's statements: read the table's stream (``arns.stream``), list its streams."""
    return [
        _statement("ReadStream", iam_actions(STREAM_READ_ACTIONS), [arns.stream]),
        _statement("ListStreams", iam_actions(["ListStreams"]), [arns.streams]),
    ]


def queue_statements(queue_arn: Any) -> list[dict[str, Any]]:
    """An on-failure destination's statement: send messages to the queue ``queue_arn``, nothing else."""
    return [_statement("SendFailures", ["sqs:SendMessage"], [queue_arn])]


def document(role: str, table_arn: str) -> dict[str, Any]:
    """The IAM policy document of ``role`` for the table ``table_arn``."""
    return {"Version": POLICY_VERSION, "Statement": statements(role, Arns.of(table_arn))}


def register(commands: Any) -> None:
    """Add ``policy`` to the command line's subcommands (``commands``: argparse's subparsers)."""
    parser = commands.add_parser("policy", help="print a least-privilege IAM policy (JSON) for a role")
    parser.add_argument("--role", choices=ROLES, required=True,
                        help="app: the data layer's calls; migrations: the runner's")
    parser.add_argument("--table-arn", metavar="ARN", default=None,
                        help="the table's ARN (default: TABLE_NAME's table, in any region and account)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``policy`` command: print the policy document."""
    from core.config import get_settings

    table_arn = args.table_arn or default_table_arn(get_settings().table_name)
    try:
        policy = document(args.role, table_arn)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(policy, indent=2))
    return 0


def _statement(sid: str, actions: list[str], resources: list[Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def _declared_queries() -> Iterator[Any]:
    """Every access pattern the entities declare (``models.queries.Query``), as bound to its entity."""
    import models
    from models.queries import Query

    for entity in models.ENTITIES:
        names = dict.fromkeys(name for klass in entity.__mro__ for name, value in vars(klass).items()
                              if isinstance(value, Query))
        for name in names:
            yield getattr(entity, name)
