"""Control-plane calls made by DynamoDB's rules, so revision files do not have to know them.

``Caller`` makes one call at a time: ``ResourceInUseException`` (the table is busy) waits until
the table is ready and retries; a ``LimitExceededException`` about simultaneous changes and a
``ContinuousBackupsUnavailableException`` (PITR asked for soon after ``CreateTable``) back off and
retry, all until a timeout (``wait_and_retry``); a hard limit (e.g. the number of GSIs) fails at
once. ``wait_until_active`` waits until the table and every index are ACTIVE and no index is
backfilling (a table is ACTIVE while a new index is still CREATING), reports progress, and gives
up with a clear error after ``wait_timeout``. With ``dry_run`` nothing is called: each call is
recorded (``plan``) and applied to a simulated copy of the table, so later operations see the
state the earlier ones would have left.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from tenacity import RetryCallState, retry_if_exception

from core.retry import RetryPolicy
from migrations.planned import PlannedCall
from migrations.simulate import ABSENT, simulate

Printer = Callable[[str], None]
# Words of a LimitExceededException that lifts by itself (too many changes at once), unlike a hard
# limit (e.g. "There is a limit of 20 global secondary indexes per table"), which fails at once.
TRANSIENT_LIMIT_WORDS = ("simultaneous", "concurrent", "at a time", "at the same time", "in progress")


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
    not_found_grace: float = 30.0
    calls: list[PlannedCall] = field(default_factory=list)
    _simulated: dict[str, Any] | None = field(default=None, repr=False)

    # -- calls ----------------------------------------------------------------------------------

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Make (or record) one call; retry while the table is busy or a limit is hit."""
        _check_one_index_change(operation, params)
        self.calls.append(PlannedCall(operation, params))
        if self.dry_run:
            self._simulated = simulate(self.table(), operation, params)
            return {}
        method = getattr(self.client, _snake(operation))
        started = time.monotonic()
        deadline = started + self.wait_timeout

        def attempt() -> dict[str, Any]:
            self.keep_going()
            try:
                result: dict[str, Any] = method(**params)
                return result
            except ClientError as exc:
                if error_code(exc) == "LimitExceededException" and not wait_and_retry(operation, exc):
                    raise MigrationError(
                        f"{operation} on {self.table_name} refused: {error_code(exc)}: "
                        f"{error_message(exc)} (a limit that waiting does not lift)"
                    ) from exc
                raise

        def again(exc: BaseException) -> bool:
            return (
                isinstance(exc, ClientError)
                and wait_and_retry(operation, exc)
                and time.monotonic() < deadline
            )

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            assert isinstance(exc, ClientError)
            self.out(f"  {error_code(exc)}: {error_message(exc)}; waiting, then retrying {operation}")
            if error_code(exc) == "ResourceInUseException":
                self._wait_ready(deadline, time.monotonic())

        # Bounded by the deadline (the predicate), not by a number of attempts.
        policy = RetryPolicy(
            max_attempts=1_000_000, base_delay=self.poll_interval, max_delay=self.max_poll_interval
        )
        try:
            done: dict[str, Any] = policy.retrying(
                retry=retry_if_exception(again), reraise=True, before_sleep=before_sleep
            )(attempt)
            return done
        except ClientError as exc:
            if not wait_and_retry(operation, exc):
                raise
            raise MigrationError(
                f"{operation} on {self.table_name} still refused after "
                f"{time.monotonic() - started:.0f}s: {error_code(exc)}: {error_message(exc)}"
            ) from exc

    def keep_going(self) -> None:
        """Raise if this runner may no longer act (``MigrationContext``: the lock was lost); called
        before every call and in every wait."""

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
            self._simulated = copy.deepcopy(live) if live is not None else ABSENT
            if live is not None:
                self._simulated["_TimeToLive"] = self._describe_ttl()
        return None if self._simulated is ABSENT else self._simulated

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

    def wait_until_active(self, *, index: str | None = None, without_index: str | None = None) -> None:
        """Wait until the table and every index are ACTIVE and nothing is backfilling; also until
        ``index`` is listed, or ``without_index`` no longer is. ``DescribeTable`` is eventually
        consistent: right after a change it may not show it yet (a new table may even be not found
        for a moment, which counts as "not yet" for ``not_found_grace`` seconds)."""
        what = "table and every index ACTIVE, none backfilling"
        what += f", {index} listed" if index else ""
        what += f", {without_index} gone" if without_index else ""
        self.calls.append(PlannedCall("wait", {"what": what}))
        if not self.dry_run:
            started = time.monotonic()
            self._wait_ready(started + self.wait_timeout, started, index=index, without_index=without_index)

    def wait_until_deleted(self) -> None:
        """Wait until the table is gone."""
        self.calls.append(PlannedCall("wait", {"what": "table deleted"}))
        if self.dry_run:
            return
        started = time.monotonic()
        while self.describe() is not None:
            self.keep_going()
            if time.monotonic() - started >= self.wait_timeout:
                raise WaitTimeout(
                    f"timed out after {self.wait_timeout:.0f}s waiting for {self.table_name} to be deleted"
                )
            time.sleep(self.poll_interval)

    def _wait_ready(
        self, deadline: float, started: float, *, index: str | None = None, without_index: str | None = None
    ) -> None:
        last, last_report, delay = "", 0.0, self.poll_interval
        grace_end = time.monotonic() + self.not_found_grace
        while True:
            self.keep_going()
            table = self.describe()
            now = time.monotonic()
            if table is None:
                if now >= grace_end:
                    raise MigrationError(f"table {self.table_name} disappeared while waiting for it")
                state = f"table {self.table_name} not found yet"
            else:
                state = ", ".join(not_ready(table, index=index, without_index=without_index))
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


def wait_and_retry(operation: str, exc: ClientError) -> bool:
    """Whether DynamoDB refused ``operation`` only for now: the table is busy
    (``ResourceInUseException``; for ``CreateTable`` it means the table exists), too many changes
    at once (a ``LimitExceededException`` saying so, not a hard limit), or continuous backups are
    still being set up on a new table (``ContinuousBackupsUnavailableException``)."""
    code = error_code(exc)
    if code == "ResourceInUseException":
        return operation != "CreateTable"
    if code == "LimitExceededException":
        return any(word in error_message(exc).lower() for word in TRANSIENT_LIMIT_WORDS)
    return code == "ContinuousBackupsUnavailableException" and operation == "UpdateContinuousBackups"


def not_ready(
    table: dict[str, Any], *, index: str | None = None, without_index: str | None = None
) -> list[str]:
    """What keeps ``table`` from being usable: its status, indexes not ACTIVE or backfilling,
    ``index`` not listed yet, ``without_index`` still listed."""
    pending = []
    if table.get("TableStatus") != "ACTIVE":
        pending.append(f"table {table.get('TableStatus')}")
    names = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
    if index is not None and index not in names:
        pending.append(f"{index} not listed yet")
    for gsi in table.get("GlobalSecondaryIndexes", []):
        status = gsi.get("IndexStatus")
        if status != "ACTIVE":
            backfilling = " (backfilling)" if gsi.get("Backfilling") else ""
            pending.append(f"{gsi['IndexName']} {status}{backfilling}")
        elif gsi.get("Backfilling"):
            pending.append(f"{gsi['IndexName']} backfilling")
    if without_index is not None and without_index in names:
        pending.append(f"{without_index} still listed")
    return pending


def _check_one_index_change(operation: str, params: dict[str, Any]) -> None:
    if operation != "UpdateTable":
        return
    changes = [u for u in params.get("GlobalSecondaryIndexUpdates", []) if "Create" in u or "Delete" in u]
    if len(changes) > 1:
        raise MigrationError("DynamoDB accepts one index creation or deletion per UpdateTable: split them")


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
