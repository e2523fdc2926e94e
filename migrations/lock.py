"""The runner's lock: one item (``PK = LOCK``) in the ledger table, held as a lease.

The holder writes ``Owner`` and ``ExpiresAt`` (epoch seconds) with a condition that the lock is
free or its lease has run out, then renews the lease from a heartbeat thread every third of its
length. A crashed holder stops renewing, so its lease runs out and the next runner takes the lock
over. A holder that fails to renew (its lease ran out while it was stalled, and another runner
took over) learns it from ``Lease.check()``, which the runner calls between steps.
Leases compare wall clocks: runners on machines whose clocks disagree by more than a lease
should not share a table.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrations.calls import MigrationError, Printer, error_code

LOCK_KEY = "LOCK"


class LockHeld(MigrationError):
    """Another runner holds the migrations lock."""


class LockLost(MigrationError):
    """This runner's lease ran out and another runner may have taken the lock."""


@dataclass
class Lease:
    """The lock as held by this runner."""

    owner: str
    lost: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        """Raise ``LockLost`` if the lease could not be renewed."""
        if self.lost.is_set():
            raise LockLost(
                f"the migrations lock held as {self.owner} was lost (its lease ran out); "
                "stopping before doing anything more: run upgrade again"
            )


def new_owner() -> str:
    """An owner id that names the machine and process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lock:
    """Acquire, renew and release the lease item of a ledger table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def acquire(self, owner: str, lease_seconds: float) -> bool:
        """Take the lock if it is free or its lease has run out; True on success."""
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "PK": {"S": LOCK_KEY},
                    "Owner": {"S": owner},
                    "ExpiresAt": {"N": repr(now + lease_seconds)},
                    "AcquiredAt": {"S": datetime.now(UTC).isoformat()},
                },
                ConditionExpression="attribute_not_exists(PK) OR ExpiresAt < :now",
                ExpressionAttributeValues={":now": {"N": repr(now)}},
            )
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def renew(self, owner: str, lease_seconds: float) -> bool:
        """Extend our lease; False if we no longer hold the lock."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"PK": {"S": LOCK_KEY}},
                UpdateExpression="SET ExpiresAt = :exp",
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "Owner"},
                ExpressionAttributeValues={
                    ":exp": {"N": repr(time.time() + lease_seconds)},
                    ":me": {"S": owner},
                },
            )
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
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
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def holder(self) -> tuple[str, float] | None:
        """(owner, lease expiry in epoch seconds) of the lock, if anyone holds or held it."""
        item = self.client.get_item(
            TableName=self.table_name, Key={"PK": {"S": LOCK_KEY}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return item["Owner"]["S"], float(item["ExpiresAt"]["N"])

    def describe_holder(self) -> str:
        """``owner (lease until HH:MM:SS UTC)`` or ``nobody``."""
        held = self.holder()
        if held is None:
            return "nobody"
        until = datetime.fromtimestamp(held[1], UTC)
        state = "expired" if held[1] < time.time() else "until"
        return f"{held[0]} (lease {state} {until:%H:%M:%S} UTC)"

    @contextlib.contextmanager
    def hold(
        self, *, lease_seconds: float = 30.0, wait_seconds: float = 0.0, out: Printer | None = None
    ) -> Iterator[Lease]:
        """Hold the lock for the block, renewing the lease from a heartbeat thread.

        Waits up to ``wait_seconds`` for another runner to finish (or for its lease to run out),
        then raises ``LockHeld``.
        """
        lease = Lease(new_owner())
        deadline = time.monotonic() + wait_seconds
        told = False
        while not self.acquire(lease.owner, lease_seconds):
            if time.monotonic() >= deadline:
                raise LockHeld(
                    f"migrations on {self.table_name} are locked by {self.describe_holder()}; "
                    "try again when that runner has finished (a crashed runner's lease runs out)"
                )
            if out is not None and not told:
                out(f"waiting for the migrations lock, held by {self.describe_holder()}")
                told = True
            time.sleep(min(0.5, lease_seconds / 4, max(0.01, deadline - time.monotonic())))
        stop = threading.Event()
        thread = threading.Thread(
            target=self._heartbeat,
            args=(lease, lease_seconds, stop),
            name="migrations-lock-heartbeat",
            daemon=True,
        )
        thread.start()
        try:
            yield lease
        finally:
            stop.set()
            thread.join()
            self.release(lease.owner)

    def _heartbeat(self, lease: Lease, lease_seconds: float, stop: threading.Event) -> None:
        expires = time.monotonic() + lease_seconds
        while not stop.wait(lease_seconds / 3):
            try:
                renewed = self.renew(lease.owner, lease_seconds)
            except (ClientError, BotoCoreError):
                renewed = None  # a failed call: try again at the next beat, while the lease lasts
            if renewed:
                expires = time.monotonic() + lease_seconds
            elif renewed is False or time.monotonic() >= expires:
                lease.lost.set()
                return
