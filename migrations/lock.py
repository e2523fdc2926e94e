"""The runner's lock: one item (``PK = LOCK``) in the ledger table, held as a lease.

The holder writes ``Owner`` and ``ExpiresAt`` (epoch seconds) with a condition that the lock is
free or its lease has run out, then renews the lease from a heartbeat thread every third of its
length. A crashed holder stops renewing, so its lease runs out and the next runner takes the lock
over.

Fencing: the holder counts its lease as valid only until ``last renewal + lease - margin`` (the
margin, a quarter of the lease, keeps it from acting at the moment a rival may take over), and
``Lease.check()`` compares that local deadline, so a stalled holder learns it has lost the lock
without waiting for the heartbeat; the runner calls it between steps and in every wait. On top
of that, every ledger write the holder makes is a ``TransactWriteItems`` with a
``ConditionCheck`` that the lock item still names it as owner with an unexpired lease
(``Ledger.fence``), so a holder that lost the lock cannot write the ledger even if its clock
lies. Leases compare wall clocks: runners on machines whose clocks disagree by more than the
margin should not share a table.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.retry import RetryPolicy
from migrations.calls import MigrationError, Printer, error_code

LOCK_KEY = "LOCK"


class LockHeld(MigrationError):
    """Another runner holds the migrations lock."""


class LockLost(MigrationError):
    """This runner's lease ran out and another runner may have taken the lock."""


@dataclass
class Lease:
    """The lock as held by this runner: valid until ``valid_until`` (on ``clock``) unless renewed."""

    owner: str
    lease_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    lost: threading.Event = field(default_factory=threading.Event)
    valid_until: float = 0.0

    @property
    def margin(self) -> float:
        """How long before the lease's end this holder stops counting on it."""
        return self.lease_seconds / 4

    def renewed(self, at: float) -> None:
        """The lease was written (acquired or renewed) by a call that started at ``at``."""
        self.valid_until = at + self.lease_seconds - self.margin

    def check(self) -> None:
        """Raise ``LockLost`` if the lease could not be renewed or may have run out."""
        if self.lost.is_set() or self.clock() >= self.valid_until:
            self.lost.set()
            raise LockLost(
                f"the migrations lock held as {self.owner} was lost (its lease ran out or another "
                "runner took it over); stopping before doing anything more: run upgrade again"
            )


class _Conflict(Exception):
    """A fenced write cancelled by a TransactionConflict (e.g. with the heartbeat's renewal)."""

    def __init__(self, cause: ClientError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _reasons(exc: ClientError) -> list[str]:
    return [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]


def new_owner() -> str:
    """An owner id that names the machine and process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lock:
    """Acquire, renew and release the lease item of a ledger table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name
        self.retry = RetryPolicy()
        # One ledger write at a time from this runner's threads (backfill segments, heartbeat):
        # they are few, and moto's TransactWriteItems is not safe against concurrent writes.
        self._writing = threading.Lock()

    def fenced_write(self, lease: Lease, operation: str, params: dict[str, Any]) -> None:
        """One write (``Put``, ``Delete`` or ``Update`` with its ``params``) to this table, made a
        ``TransactWriteItems`` with a ``ConditionCheck`` that the lock item names ``lease``'s owner
        and has not expired. If it does not, nothing is written and ``LockLost`` is raised."""
        lease.check()
        try:
            self.retry.call(_Conflict, self._transact, lease, operation, params)
        except _Conflict as exc:
            raise exc.cause from exc
        except ClientError as exc:
            if _reasons(exc)[:1] == ["ConditionalCheckFailed"]:
                lease.lost.set()
                raise LockLost(
                    f"the migrations lock is no longer held as {lease.owner}: nothing written to "
                    "the ledger; run upgrade again"
                ) from exc
            raise

    def _transact(self, lease: Lease, operation: str, params: dict[str, Any]) -> None:
        check = {
            "TableName": self.table_name,
            "Key": {"PK": {"S": LOCK_KEY}},
            "ConditionExpression": "#owner = :me AND ExpiresAt > :now",
            "ExpressionAttributeNames": {"#owner": "Owner"},
            "ExpressionAttributeValues": {":me": {"S": lease.owner}, ":now": {"N": repr(time.time())}},
        }
        try:
            write = {operation: {"TableName": self.table_name, **params}}
            with self._writing:
                self.client.transact_write_items(TransactItems=[{"ConditionCheck": check}, write])
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and "TransactionConflict" in _reasons(exc):
                raise _Conflict(exc) from exc
            raise

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
            with self._writing:
                self._renew(owner, lease_seconds)
            return True
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def _renew(self, owner: str, lease_seconds: float) -> None:
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
        self,
        *,
        lease_seconds: float = 30.0,
        wait_seconds: float = 0.0,
        out: Printer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Iterator[Lease]:
        """Hold the lock for the block, renewing the lease from a heartbeat thread.

        Waits up to ``wait_seconds`` for another runner to finish (or for its lease to run out),
        then raises ``LockHeld``. ``clock`` (monotonic seconds) measures this holder's lease.
        """
        lease = Lease(new_owner(), lease_seconds, clock)
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            attempt_at = clock()
            if self.acquire(lease.owner, lease_seconds):
                lease.renewed(attempt_at)
                break
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
        while not stop.wait(lease_seconds / 3):
            attempt_at = lease.clock()
            try:
                renewed = self.renew(lease.owner, lease_seconds)
            except (ClientError, BotoCoreError):
                renewed = None  # a failed call: try again at the next beat, while the lease lasts
            if renewed:
                lease.renewed(attempt_at)
            elif renewed is False or lease.clock() >= lease.valid_until:
                lease.lost.set()
                return
