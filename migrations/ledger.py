"""The ledger of applied revisions and the runner's lock, kept in DynamoDB itself.

They live in their own small table, ``<TABLE_NAME>-migrations`` (hash key ``PK``), because the
first revision creates the application table and the ledger must exist before it:

- ``PK = REVISION#<id>``: ``Revision``, ``Status`` (``applied`` or ``failed``), ``AppliedAt``,
  ``Message``, ``Error`` (for a failed one);
- ``PK = LOCK``: ``Owner``, ``ExpiresAt`` (epoch seconds). The lock is a lease: its holder
  renews it from a heartbeat thread, and a crashed holder's lease runs out so another runner can
  take it over.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from migrations.context import Key, MigrationContext, MigrationError

LOCK_KEY = "LOCK"
REVISION_PREFIX = "REVISION#"


class LockHeld(MigrationError):
    """Another runner holds the migrations lock."""


class Ledger:
    """Read and write the ledger table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def exists(self) -> bool:
        """True if the ledger table exists."""
        return MigrationContext(self.client, self.table_name).describe() is not None

    def ensure(self) -> None:
        """Create the ledger table if it does not exist yet."""
        ctx = MigrationContext(self.client, self.table_name, out=lambda _: None)
        if ctx.describe() is None:
            try:
                ctx.create_table([Key("PK")])
            except ClientError as exc:  # another runner created it first
                if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                    raise
                ctx.wait_until_active()

    def records(self) -> dict[str, dict[str, Any]]:
        """Revision id -> its ledger record (plain values), for every recorded revision."""
        if not self.exists():
            return {}
        out: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            for item in page.get("Items", []):
                pk = item["PK"]["S"]
                if pk.startswith(REVISION_PREFIX):
                    out[pk[len(REVISION_PREFIX):]] = {k: next(iter(v.values())) for k, v in item.items()}
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def applied(self) -> set[str]:
        """Ids of the revisions recorded as applied."""
        return {rev for rev, rec in self.records().items() if rec.get("Status") == "applied"}

    def record(self, revision: str, status: str, message: str, error: str | None = None) -> None:
        """Record a revision's outcome (overwriting an earlier failure)."""
        item = {
            "PK": {"S": REVISION_PREFIX + revision},
            "Revision": {"S": revision},
            "Status": {"S": status},
            "AppliedAt": {"S": datetime.now(UTC).isoformat()},
            "Message": {"S": message},
        }
        if error:
            item["Error"] = {"S": error[:2000]}
        self.client.put_item(TableName=self.table_name, Item=item)

    def forget(self, revision: str) -> None:
        """Remove a revision's record (after it was downgraded)."""
        self.client.delete_item(TableName=self.table_name, Key={"PK": {"S": REVISION_PREFIX + revision}})

    # -- lock -----------------------------------------------------------------------------------

    def acquire(self, owner: str, lease_seconds: float) -> bool:
        """Take the lock if it is free or its lease has run out; True on success."""
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={"PK": {"S": LOCK_KEY}, "Owner": {"S": owner},
                      "ExpiresAt": {"N": repr(now + lease_seconds)}},
                ConditionExpression="attribute_not_exists(PK) OR ExpiresAt < :now",
                ExpressionAttributeValues={":now": {"N": repr(now)}},
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise

    def renew(self, owner: str, lease_seconds: float) -> bool:
        """Extend our lease; False if we lost the lock."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"PK": {"S": LOCK_KEY}},
                UpdateExpression="SET ExpiresAt = :exp",
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "Owner"},
                ExpressionAttributeValues={":exp": {"N": repr(time.time() + lease_seconds)},
                                           ":me": {"S": owner}},
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise

    def release(self, owner: str) -> None:
        """Give the lock back if we still hold it."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"PK": {"S": LOCK_KEY}},
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "Owner"},
                ExpressionAttributeValues={":me": {"S": owner}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def holder(self) -> tuple[str, float] | None:
        """(owner, lease expiry) of the current lock, if any."""
        item = self.client.get_item(
            TableName=self.table_name, Key={"PK": {"S": LOCK_KEY}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return item["Owner"]["S"], float(item["ExpiresAt"]["N"])

    @contextmanager
    def lock(self, *, lease_seconds: float = 30.0, wait_seconds: float = 0.0) -> Iterator[str]:
        """Hold the lock for the block, renewing the lease from a heartbeat thread.

        Waits up to ``wait_seconds`` for another runner to finish, then raises ``LockHeld``.
        """
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + wait_seconds
        while not self.acquire(owner, lease_seconds):
            if time.monotonic() >= deadline:
                held = self.holder()
                who = f"{held[0]} (lease until {datetime.fromtimestamp(held[1], UTC):%H:%M:%S} UTC)" \
                    if held else "another runner"
                raise LockHeld(f"migrations are locked by {who}; try again when it has finished")
            time.sleep(min(1.0, lease_seconds / 4))
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(lease_seconds / 3):
                if not self.renew(owner, lease_seconds):
                    return

        thread = threading.Thread(target=heartbeat, name="migrations-lock-heartbeat", daemon=True)
        thread.start()
        try:
            yield owner
        finally:
            stop.set()
            thread.join()
            self.release(owner)
