"""Control-plane calls made by DynamoDB's rules, so revision files do not have to know them.

``Caller`` makes one call at a time: ``ResourceInUseException`` (the table is busy) waits until
the table is ready and retries, ``LimitExceededException`` backs off and retries, both until a
timeout. ``wait_until_active`` waits until the table and every index are ACTIVE and no index is
backfilling (a table is ACTIVE while a new index is still CREATING), reports progress, and gives
up with a clear error after ``wait_timeout``. With ``dry_run`` nothing is called: each call is
recorded (``plan``) and applied to a simulated copy of the table, so later operations see the
state the earlier ones would have left.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

Printer = Callable[[str], None]
RETRY_WHEN_BUSY = ("ResourceInUseException", "LimitExceededException")
_ABSENT: dict[str, Any] = {}  # marker: the simulated table does not exist


class MigrationError(Exception):
    """A migration could not go on; the message says why and what to do."""


class WaitTimeout(MigrationError):
    """The table or an index did not become ACTIVE in time."""


@dataclass(frozen=True)
class Key:
    """One key attribute: its name, DynamoDB type (S, N, B) and role (HASH or RANGE)."""

    name: str
    type: str = "S"
    role: str = "HASH"


@dataclass(frozen=True)
class PlannedCall:
    """A call made (or, in a dry run, that would be made), a wait, or a note."""

    operation: str
    params: dict[str, Any]

    def describe(self) -> str:
        """One line: the operation and its key parameters."""
        if self.operation in ("wait", "note"):
            return f"    {self.operation}: {self.params['what']}"
        if self.operation == "revision":
            return f"{self.params['what']}"
        shown = ", ".join(f"{k}={_compact(k, v)}" for k, v in self.params.items())
        return f"  {self.operation}({shown})"


def _keys(schema: list[dict[str, str]]) -> str:
    return ", ".join(f"{k['AttributeName']} {k['KeyType']}" for k in schema)


def _index(index: dict[str, Any]) -> str:
    projection = index.get("Projection", {})
    extra = projection.get("NonKeyAttributes")
    return (
        f"{index['IndexName']} ({_keys(index['KeySchema'])}; {projection.get('ProjectionType')}"
        + (f" {', '.join(extra)}" if extra else "")
        + ")"
    )


def _compact(name: str, value: Any) -> str:
    """Render a parameter the way a reader scans it: key schemas as ``PK HASH, SK RANGE``."""
    if name in ("KeySchema",):
        return f"[{_keys(value)}]"
    if name == "AttributeDefinitions":
        return "[" + ", ".join(f"{v['AttributeName']} {v['AttributeType']}" for v in value) + "]"
    if name == "GlobalSecondaryIndexes":
        return "[" + "; ".join(_index(i) for i in value) + "]"
    if name == "GlobalSecondaryIndexUpdates":
        parts = [
            f"Create {_index(u['Create'])}"
            if "Create" in u
            else f"Delete {u['Delete']['IndexName']}"
            if "Delete" in u
            else json.dumps(u, default=str)
            for u in value
        ]
        return "[" + "; ".join(parts) + "]"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def error_code(exc: ClientError) -> str:
    """The DynamoDB error code of a botocore ``ClientError``."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    """The DynamoDB error message of a botocore ``ClientError``."""
    return str(exc.response.get("Error", {}).get("Message", ""))


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
class Caller:
    """Makes (or records) control-plane calls on one table and waits for their effect."""

    client: Any
    table_name: str
    out: Printer = print
    dry_run: bool = False
    wait_timeout: float = 900.0
    poll_interval: float = 0.2
    max_poll_interval: float = 5.0
    progress_every: float = 10.0
    calls: list[PlannedCall] = field(default_factory=list)
    _simulated: dict[str, Any] | None = field(default=None, repr=False)

    # -- calls ----------------------------------------------------------------------------------

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Make (or record) one call; retry while the table is busy or a limit is hit."""
        _check_one_index_change(operation, params)
        self.calls.append(PlannedCall(operation, params))
        if self.dry_run:
            self._simulated = _simulate(self.table(), operation, params)
            return {}
        method = getattr(self.client, _snake(operation))
        started = time.monotonic()
        deadline, attempt = started + self.wait_timeout, 0
        while True:
            try:
                result: dict[str, Any] = method(**params)
                return result
            except ClientError as exc:
                code = error_code(exc)
                exists = operation == "CreateTable" and code == "ResourceInUseException"
                if code not in RETRY_WHEN_BUSY or exists:  # for CreateTable it means "exists"
                    raise
                if time.monotonic() >= deadline:
                    raise MigrationError(
                        f"{operation} on {self.table_name} still refused after "
                        f"{time.monotonic() - started:.0f}s: {code}: {error_message(exc)}"
                    ) from exc
                attempt += 1
                self.out(f"  {code}: {error_message(exc)}; waiting, then retrying {operation}")
                if code == "ResourceInUseException":
                    self._wait_ready(deadline, time.monotonic())
                time.sleep(min(self.max_poll_interval, self.poll_interval * 2**attempt))

    def note(self, text: str) -> None:
        """Tell the operator something (recorded as a note in a dry run)."""
        if self.dry_run:
            self.calls.append(PlannedCall("note", {"what": text}))
        else:
            self.out(f"  {text}")

    def describe(self) -> dict[str, Any] | None:
        """``DescribeTable``'s ``Table`` from DynamoDB, or ``None`` if the table does not exist."""
        try:
            table: dict[str, Any] = self.client.describe_table(TableName=self.table_name)["Table"]
            return table
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def table(self) -> dict[str, Any] | None:
        """The table as it is (or, in a dry run, as the calls so far would leave it)."""
        if not self.dry_run:
            return self.describe()
        if self._simulated is None:
            live = self.describe()
            self._simulated = copy.deepcopy(live) if live is not None else _ABSENT
            if live is not None:
                self._simulated["_TimeToLive"] = self._describe_ttl()
        return None if self._simulated is _ABSENT else self._simulated

    def ttl(self) -> dict[str, Any] | None:
        """``TimeToLiveDescription`` (simulated in a dry run); ``None`` if the table does not exist."""
        if self.dry_run:
            table = self.table()
            return None if table is None else dict(table.get("_TimeToLive", {}))
        if self.describe() is None:
            return None
        return self._describe_ttl()

    def _describe_ttl(self) -> dict[str, Any]:
        answer = self.client.describe_time_to_live(TableName=self.table_name)
        return dict(answer.get("TimeToLiveDescription", {}))

    # -- waits ----------------------------------------------------------------------------------

    def wait_until_active(self) -> None:
        """Wait until the table and every index are ACTIVE and nothing is backfilling."""
        self.calls.append(PlannedCall("wait", {"what": "table and every index ACTIVE, none backfilling"}))
        if not self.dry_run:
            started = time.monotonic()
            self._wait_ready(started + self.wait_timeout, started)

    def wait_until_deleted(self) -> None:
        """Wait until the table is gone."""
        self.calls.append(PlannedCall("wait", {"what": "table deleted"}))
        if self.dry_run:
            return
        started = time.monotonic()
        while self.describe() is not None:
            if time.monotonic() - started >= self.wait_timeout:
                raise WaitTimeout(
                    f"timed out after {self.wait_timeout:.0f}s waiting for {self.table_name} to be deleted"
                )
            time.sleep(self.poll_interval)

    def _wait_ready(self, deadline: float, started: float) -> None:
        last, last_report, delay = "", 0.0, self.poll_interval
        while True:
            table = self.describe()
            if table is None:
                raise MigrationError(f"table {self.table_name} disappeared while waiting for it")
            state = ", ".join(not_ready(table))
            now = time.monotonic()
            if not state:
                if last:
                    self.out(f"  ready after {now - started:.1f}s")
                return
            if state != last or now - last_report >= self.progress_every:
                self.out(f"  waiting ({now - started:.0f}s): {state}")
                last, last_report, delay = state, now, self.poll_interval
            if now >= deadline:
                raise WaitTimeout(
                    f"timed out after {now - started:.0f}s waiting for {self.table_name}: {state}. "
                    "DynamoDB goes on with the change: watch it with `python -m migrations status`, "
                    "then run `upgrade` again, which resumes from this revision"
                )
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 1.5, self.max_poll_interval)


def not_ready(table: dict[str, Any]) -> list[str]:
    """What keeps ``table`` from being usable: its status, indexes not ACTIVE or backfilling."""
    pending = []
    if table.get("TableStatus") != "ACTIVE":
        pending.append(f"table {table.get('TableStatus')}")
    for index in table.get("GlobalSecondaryIndexes", []):
        status = index.get("IndexStatus")
        if status != "ACTIVE":
            pending.append(
                f"{index['IndexName']} {status}" + (" (backfilling)" if index.get("Backfilling") else "")
            )
        elif index.get("Backfilling"):
            pending.append(f"{index['IndexName']} backfilling")
    return pending


def _check_one_index_change(operation: str, params: dict[str, Any]) -> None:
    if operation != "UpdateTable":
        return
    changes = [u for u in params.get("GlobalSecondaryIndexUpdates", []) if "Create" in u or "Delete" in u]
    if len(changes) > 1:
        raise MigrationError("DynamoDB accepts one index creation or deletion per UpdateTable: split them")


def _simulate(table: dict[str, Any] | None, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The table as ``operation`` would leave it (``_ABSENT`` once deleted)."""
    if operation == "DeleteTable":
        return _ABSENT
    if operation == "CreateTable":
        table = {
            "TableName": params["TableName"],
            "TableStatus": "ACTIVE",
            "KeySchema": params["KeySchema"],
            "AttributeDefinitions": params["AttributeDefinitions"],
            "BillingModeSummary": {"BillingMode": params.get("BillingMode", "PROVISIONED")},
            "GlobalSecondaryIndexes": [
                dict(i, IndexStatus="ACTIVE") for i in params.get("GlobalSecondaryIndexes", [])
            ],
            "_TimeToLive": {"TimeToLiveStatus": "DISABLED"},
        }
        if params.get("StreamSpecification", {}).get("StreamEnabled"):
            table["StreamSpecification"] = params["StreamSpecification"]
        return table
    table = copy.deepcopy(table) if table is not None else {}
    if operation == "UpdateTimeToLive":
        spec = params["TimeToLiveSpecification"]
        table["_TimeToLive"] = (
            {"TimeToLiveStatus": "ENABLED", "AttributeName": spec["AttributeName"]}
            if spec["Enabled"]
            else {"TimeToLiveStatus": "DISABLED"}
        )
    elif operation == "UpdateTable":
        indexes = table.setdefault("GlobalSecondaryIndexes", [])
        for update in params.get("GlobalSecondaryIndexUpdates", []):
            if "Create" in update:
                indexes.append(dict(update["Create"], IndexStatus="ACTIVE"))
            elif "Delete" in update:
                table["GlobalSecondaryIndexes"] = indexes = [
                    i for i in indexes if i["IndexName"] != update["Delete"]["IndexName"]
                ]
        if "StreamSpecification" in params:
            table["StreamSpecification"] = params["StreamSpecification"]
        if "BillingMode" in params:
            table["BillingModeSummary"] = {"BillingMode": params["BillingMode"]}
            if "ProvisionedThroughput" in params:
                table["ProvisionedThroughput"] = params["ProvisionedThroughput"]
    return table


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
