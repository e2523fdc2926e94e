"""Operations for revision files, obeying DynamoDB's rules so revisions do not have to.

A revision's ``upgrade(ctx)`` calls these. Each one makes the DynamoDB calls in the order
DynamoDB accepts them (one index change per ``UpdateTable``), waits until the table and every
index are ACTIVE and no index is backfilling, and retries ``ResourceInUseException``. With
``dry_run`` the context records the calls and waits instead of making them (``plan``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

Printer = Callable[[str], None]


class MigrationError(Exception):
    """A revision could not be applied; the message says why and what to do."""


@dataclass(frozen=True)
class Key:
    """One key attribute: its name, DynamoDB type (S, N, B) and role (HASH or RANGE)."""

    name: str
    type: str = "S"
    role: str = "HASH"


@dataclass(frozen=True)
class PlannedCall:
    """A call the context made (or, in a dry run, would make)."""

    operation: str
    params: dict[str, Any]

    def describe(self) -> str:
        """One line: the operation and its key parameters."""
        if self.operation == "wait":
            return f"wait   {self.params['what']}"
        shown = {k: v for k, v in self.params.items() if k != "TableName"}
        return f"{self.operation}({self.params.get('TableName', '')}) {shown}"


def key_schema(keys: Sequence[Key]) -> list[dict[str, str]]:
    """``KeySchema`` for ``keys``."""
    return [{"AttributeName": k.name, "KeyType": k.role} for k in keys]


def attribute_definitions(keys: Sequence[Key]) -> list[dict[str, str]]:
    """``AttributeDefinitions`` for ``keys`` (each attribute once)."""
    seen: dict[str, str] = {}
    for k in keys:
        seen.setdefault(k.name, k.type)
    return [{"AttributeName": n, "AttributeType": t} for n, t in seen.items()]


@dataclass
class MigrationContext:
    """What a revision's ``upgrade``/``downgrade`` receives."""

    client: Any
    table_name: str
    out: Printer = print
    dry_run: bool = False
    wait_timeout: float = 900.0
    poll_interval: float = 0.5
    calls: list[PlannedCall] = field(default_factory=list)

    # -- plumbing -------------------------------------------------------------------------------

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Make (or record) one DynamoDB call; ``ResourceInUseException`` waits and retries."""
        self.calls.append(PlannedCall(operation, params))
        if self.dry_run:
            return {}
        method = getattr(self.client, _snake(operation))
        deadline = time.monotonic() + self.wait_timeout
        while True:
            try:
                result: dict[str, Any] = method(**params)
                return result
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                busy = code in ("ResourceInUseException", "LimitExceededException")
                if busy and operation == "UpdateTable":
                    if time.monotonic() > deadline:
                        raise MigrationError(f"{operation} kept failing with {code}") from exc
                    self.out(f"  {code}: table busy, waiting before retrying {operation}")
                    self._wait_active(deadline)
                    time.sleep(self.poll_interval)
                    continue
                raise

    def describe(self) -> dict[str, Any] | None:
        """``DescribeTable``'s ``Table``, or ``None`` if the table does not exist."""
        try:
            table: dict[str, Any] = self.client.describe_table(TableName=self.table_name)["Table"]
            return table
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise

    def wait_until_active(self) -> None:
        """Wait until the table and every index are ACTIVE and nothing is backfilling."""
        self.calls.append(PlannedCall("wait", {"what": "table and every index ACTIVE, none backfilling"}))
        if self.dry_run:
            return
        self._wait_active(time.monotonic() + self.wait_timeout)

    def _wait_active(self, deadline: float) -> None:
        last = ""
        while True:
            table = self.describe()
            if table is None:
                raise MigrationError(f"table {self.table_name} disappeared while waiting for it")
            pending = _not_ready(table)
            if not pending:
                return
            state = ", ".join(pending)
            if state != last:
                self.out(f"  waiting: {state}")
                last = state
            if time.monotonic() > deadline:
                raise MigrationError(f"timed out waiting for {self.table_name}: {state}")
            time.sleep(self.poll_interval)

    def _wait_deleted(self) -> None:
        self.calls.append(PlannedCall("wait", {"what": "table deleted"}))
        if self.dry_run:
            return
        deadline = time.monotonic() + self.wait_timeout
        while self.describe() is not None:
            if time.monotonic() > deadline:
                raise MigrationError(f"timed out waiting for {self.table_name} to be deleted")
            time.sleep(self.poll_interval)

    # -- operations for revision files -----------------------------------------------------------

    def create_table(
        self,
        keys: Sequence[Key],
        *,
        global_indexes: Sequence[tuple[str, Sequence[Key]]] = (),
        billing_mode: str = "PAY_PER_REQUEST",
        stream_view_type: str | None = None,
    ) -> None:
        """Create the table with its keys, GSIs (projection ALL), billing and stream."""
        all_keys = list(keys) + [k for _, idx in global_indexes for k in idx]
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeySchema": key_schema(keys),
            "AttributeDefinitions": attribute_definitions(all_keys),
            "BillingMode": billing_mode,
        }
        if global_indexes:
            params["GlobalSecondaryIndexes"] = [
                {"IndexName": name, "KeySchema": key_schema(idx), "Projection": {"ProjectionType": "ALL"}}
                for name, idx in global_indexes
            ]
        if stream_view_type:
            params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view_type}
        self.call("CreateTable", **params)
        self.wait_until_active()

    def delete_table(self) -> None:
        """Delete the table and wait until it is gone."""
        self.call("DeleteTable", TableName=self.table_name)
        self._wait_deleted()

    def create_global_index(self, name: str, keys: Sequence[Key]) -> None:
        """Add one GSI (projection ALL) to the live table; wait until it is ACTIVE and backfilled."""
        self.wait_until_active()
        self.call(
            "UpdateTable",
            TableName=self.table_name,
            AttributeDefinitions=attribute_definitions(keys),
            GlobalSecondaryIndexUpdates=[
                {"Create": {"IndexName": name, "KeySchema": key_schema(keys),
                            "Projection": {"ProjectionType": "ALL"}}}
            ],
        )
        self.wait_until_active()

    def delete_global_index(self, name: str) -> None:
        """Drop one GSI; wait until it is gone."""
        self.wait_until_active()
        self.call(
            "UpdateTable",
            TableName=self.table_name,
            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": name}}],
        )
        self.wait_until_active()

    def set_ttl(self, attribute: str, *, enabled: bool = True) -> None:
        """Enable (or disable) TTL on ``attribute``."""
        self.call(
            "UpdateTimeToLive",
            TableName=self.table_name,
            TimeToLiveSpecification={"Enabled": enabled, "AttributeName": attribute},
        )

    def enable_point_in_time_recovery(self, *, enabled: bool = True) -> None:
        """Enable PITR; where the endpoint does not support it (DynamoDB Local), warn and go on."""
        try:
            self.call(
                "UpdateContinuousBackups",
                TableName=self.table_name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled},
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            self.out(f"  warning: point-in-time recovery not supported by this endpoint ({code}); skipped")


def _not_ready(table: dict[str, Any]) -> list[str]:
    pending = []
    if table.get("TableStatus") != "ACTIVE":
        pending.append(f"table {table.get('TableStatus')}")
    for index in table.get("GlobalSecondaryIndexes", []):
        if index.get("IndexStatus") != "ACTIVE":
            pending.append(f"{index['IndexName']} {index.get('IndexStatus')}")
        elif index.get("Backfilling"):
            pending.append(f"{index['IndexName']} backfilling")
    return pending


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
