"""Data migrations: change every item of the table, in parallel, resumably, and never twice.

A revision calls ``ctx.backfill(name, transform)``. The table is read by a parallel scan (one
thread per segment); ``transform(item)`` gets each item in DynamoDB's wire format and returns an
``ItemUpdate`` (or ``None``: nothing to do). Each update is one conditional write, so an item is
never changed twice, even when a page is read again after a crash:

- with ``mark=True`` (the default) the write also sets ``MigrationRun`` to this backfill run's id,
  on the condition that it does not hold that id yet and that the item is as the transform saw
  it (its ``Version``, or the attributes the transform read: ``items.guard``);
- with ``mark=False`` the update must say which values it ``expect``s the item to still hold (for
  example the old email it lower-cases), which makes the write conditional on them.

When a condition fails, the item is read again (consistently) and transformed once more. After
every page, the segment's position (``LastEvaluatedKey``) and counts are checkpointed in the ledger;
a run that was killed resumes from there. Throttling is botocore's to retry (exponential backoff,
full jitter); a transaction cancelled by a conflict or throttling of one of its items is retried
here (``core.retry.RetryPolicy``), and a request still throttled after all that stops the
backfill with its checkpoints saved. Items that cannot be migrated are reported, kept in the
ledger and retried by the next run; the revision fails until none is left.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from tenacity import RetryCallState, retry_if_exception
from tqdm import tqdm

from core.retry import RetryPolicy, retried_by_botocore
from migrations.calls import MigrationError, Printer, error_code
from migrations.items import (
    MARK_ATTRIBUTE,
    AttributeValue,
    Item,
    ItemFailed,
    ItemUpdate,
    ReadTracker,
    Transform,
    check_update,
    conditional_write,
    guard,
)
from migrations.ledger import Ledger, SegmentCheckpoint, decode_key, encode_key
from migrations.lock import Lease

# What a transaction's cancellation reasons say can go again. botocore cannot see these (the
# request failed as a whole with TransactionCanceledException), so they are retried here; the
# error codes botocore retries itself (core.retry.BOTOCORE_RETRIED_CODES) are not retried again.
RETRIED_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


@dataclass
class BackfillStats:
    """What a backfill did, over all its runs."""

    scanned: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    resumed: bool = False


class _Stopped(Exception):
    """Another segment failed: stop this one."""


class _Conflict(Exception):
    """A write's condition failed."""


def _retryable(exc: BaseException) -> bool:
    """A transaction cancelled only by a conflict or throttling of one of its items."""
    if not isinstance(exc, ClientError) or error_code(exc) != "TransactionCanceledException":
        return False
    return bool({r.get("Code") for r in exc.response.get("CancellationReasons", [])} & RETRIED_REASONS)


def _throttled(exc: ClientError) -> bool:
    """Still throttled (or busy) once every retry, botocore's and ours, was spent."""
    return _retryable(exc) or retried_by_botocore(error_code(exc))


@dataclass
class Backfill:
    """One backfill run over one table; ``run()`` does the work."""

    client: Any
    table_name: str
    key_names: Sequence[str]
    ledger: Ledger
    revision: str
    name: str
    transform: Transform
    segments: int = 4
    page_size: int = 100
    where: Mapping[str, AttributeValue] = field(default_factory=dict)
    mark: bool = True
    max_failures: int = 100
    out: Printer = print
    progress: bool = False
    lease: Lease | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    throttled: int = 0
    _run_id: str = ""
    _total_segments: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _bar: Any = None
    _totals: dict[str, int] = field(default_factory=dict)

    def run(self) -> BackfillStats:
        """Scan every segment to its end (from its checkpoint), then report; raise on failed items."""
        self._run_id, segments, resumed = self.ledger.start_backfill(self.revision, self.name, self.segments)
        self._total_segments = segments  # a resumed run keeps the segment count it started with
        checkpoints = [self.ledger.load_segment(self.revision, self.name, s) for s in range(segments)]
        before = sum(c.scanned for c in checkpoints)
        if resumed:
            self.out(f"  resuming backfill {self.name} from its checkpoints ({before} items scanned before)")
        self._totals = {k: sum(getattr(c, k) for c in checkpoints) for k in ("updated", "unchanged")}
        self._totals["failed"] = sum(len(c.failures) for c in checkpoints)
        estimate = self.client.describe_table(TableName=self.table_name)["Table"].get("ItemCount") or None
        started = time.monotonic()
        self._bar = tqdm(
            total=estimate,
            initial=before,
            unit=" items",
            desc=f"  {self.name}",
            disable=not self.progress,
            file=sys.stderr,
            mininterval=0.5 if sys.stderr.isatty() else 10.0,  # a log file: a line every 10 s
            dynamic_ncols=True,
        )
        try:
            with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="backfill") as pool:
                futures = [pool.submit(self._segment, c) for c in checkpoints]
                try:
                    wait(futures, return_when=FIRST_EXCEPTION)
                finally:
                    self._stop.set()  # the others stop at their next item (all may be done already)
        finally:
            self._bar.close()
        errors = [e for f in futures if (e := f.exception()) is not None and not isinstance(e, _Stopped)]
        if errors:
            raise errors[0]
        stats = BackfillStats(
            scanned=sum(c.scanned for c in checkpoints),
            updated=sum(c.updated for c in checkpoints),
            unchanged=sum(c.unchanged for c in checkpoints),
            failures=[f for c in checkpoints for f in c.failures],
            resumed=resumed,
        )
        self._report(stats, stats.scanned - before, time.monotonic() - started)
        return stats

    def _report(self, stats: BackfillStats, scanned_now: int, seconds: float) -> None:
        rate = scanned_now / seconds if seconds > 0 else 0.0
        self.out(
            f"  backfill {self.name}: {stats.scanned} items scanned, {stats.updated} updated, "
            f"{stats.unchanged} unchanged, {len(stats.failures)} failed "
            f"({scanned_now} scanned in this run, {rate:.0f} items/s, {self.throttled} throttled requests)"
        )
        if not stats.failures:
            self.ledger.finish_backfill(self.revision, self.name)
            return
        self.ledger.finish_backfill(self.revision, self.name, "failed")
        for failure in stats.failures[:10]:
            self.out(f"    failed: {failure['key']}: {failure['reason']}")
        if len(stats.failures) > 10:
            self.out(
                f"    ... and {len(stats.failures) - 10} more, all kept in the ledger "
                f"(items BACKFILL#{self.revision}#{self.name}#<segment>, attribute Failures)"
            )
        raise MigrationError(
            f"backfill {self.name}: {len(stats.failures)} item(s) could not be migrated; fix the cause and "
            "run upgrade again: it retries exactly those items"
        )

    # -- one segment ----------------------------------------------------------------------------

    def _segment(self, checkpoint: SegmentCheckpoint) -> SegmentCheckpoint:
        if checkpoint.failures:
            self._retry_failures(checkpoint)
        while not checkpoint.done:
            self._check()
            params: dict[str, Any] = {
                "TableName": self.table_name,
                "Segment": checkpoint.segment,
                "TotalSegments": self._total_segments,
                "Limit": self.page_size,
                "ConsistentRead": True,
                **self._filter(),
            }
            if checkpoint.position is not None:
                params["ExclusiveStartKey"] = checkpoint.position
            page = self._call(self.client.scan, **params)
            counts = {"updated": 0, "unchanged": 0, "failed": 0}
            for item in page.get("Items", []):
                self._check()
                outcome, reason = self._process(item)
                counts[outcome] += 1
                if outcome == "failed":
                    checkpoint.failures.append({"key": encode_key(self._key(item)), "reason": str(reason)})
                    self._count_failure()
            checkpoint.scanned += int(page.get("ScannedCount", len(page.get("Items", []))))
            checkpoint.updated += counts["updated"]
            checkpoint.unchanged += counts["unchanged"]
            checkpoint.position = page.get("LastEvaluatedKey")
            checkpoint.done = checkpoint.position is None
            self.ledger.save_segment(self.revision, self.name, checkpoint)
            self._advance(int(page.get("ScannedCount", 0)), counts)
        return checkpoint

    def _retry_failures(self, checkpoint: SegmentCheckpoint) -> None:
        remaining = []
        for failure in checkpoint.failures:
            self._check()
            key = decode_key(failure["key"])
            item = self._call(
                self.client.get_item, TableName=self.table_name, Key=key, ConsistentRead=True
            ).get("Item")
            outcome, reason = ("unchanged", None) if item is None else self._process(item)
            if outcome == "failed":
                remaining.append({"key": failure["key"], "reason": str(reason)})
            elif outcome == "updated":
                checkpoint.updated += 1
            else:
                checkpoint.unchanged += 1
        with self._mutex:
            self._totals["failed"] -= len(checkpoint.failures) - len(remaining)
        checkpoint.failures = remaining
        self.ledger.save_segment(self.revision, self.name, checkpoint)

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Stopped
        if self.lease is not None:
            self.lease.check()

    def _count_failure(self) -> None:
        with self._mutex:
            self._totals["failed"] += 1
            if self._totals["failed"] > self.max_failures:
                raise MigrationError(
                    f"backfill {self.name}: more than {self.max_failures} items failed; stopped "
                    "(the transform is probably wrong: fix it, then run upgrade again)"
                )

    def _advance(self, scanned: int, counts: dict[str, int]) -> None:
        with self._mutex:
            self._totals["updated"] += counts["updated"]
            self._totals["unchanged"] += counts["unchanged"]
            self._bar.update(scanned)
            self._bar.set_postfix(self._totals, refresh=False)

    # -- one item -------------------------------------------------------------------------------

    def _process(self, item: Item, *, again: bool = True) -> tuple[str, str | None]:
        """``("updated" | "unchanged" | "failed", reason)`` for one item."""
        if self.mark and item.get(MARK_ATTRIBUTE) == {"S": self._run_id}:
            return "unchanged", None  # done by this run before it was interrupted
        seen = ReadTracker(item)
        try:
            update = self.transform(seen)
        except ItemFailed as exc:
            return "failed", str(exc)
        except Exception as exc:  # a bug in the transform: report the item, go on
            return "failed", f"the transform raised {type(exc).__name__}: {exc}"
        if update is None:
            return "unchanged", None
        if self.mark:  # the mark alone would let a stale result overwrite a live write
            update = guard(update, item, seen.read, self.key_names)
        return self._apply(item, update, again=again)

    def _apply(self, item: Item, update: ItemUpdate, *, again: bool) -> tuple[str, str | None]:
        problem = check_update(update, self.key_names, marked=self.mark)
        if problem:
            raise MigrationError(f"backfill {self.name}: {problem}")
        try:
            return ("updated" if self._write(self._key(item), update) else "unchanged"), None
        except _Conflict:
            fresh = self._call(
                self.client.get_item, TableName=self.table_name, Key=self._key(item), ConsistentRead=True
            ).get("Item")
        except ClientError as exc:
            if _throttled(exc):
                raise MigrationError(
                    f"backfill {self.name}: still throttled after every retry ({error_code(exc)}); "
                    "its checkpoints are saved: run upgrade again"
                ) from exc
            return "failed", f"{error_code(exc)}: the write was refused"
        if fresh is None:
            return "unchanged", None  # deleted meanwhile
        if again:
            return self._process(fresh, again=False)
        return "failed", "the item kept changing while it was being migrated"

    def _write(self, key: Item, update: ItemUpdate) -> bool:
        write = conditional_write(
            self.table_name, self.key_names, key, update, self._run_id if self.mark else None
        )
        if write is None:
            return False
        self._conditional(getattr(self.client, write[0]), **write[1])
        return True

    def _conditional(self, method: Callable[..., Any], **params: Any) -> None:
        try:
            self._call(method, **params)
        except ClientError as exc:
            reasons = {r.get("Code") for r in exc.response.get("CancellationReasons", [])}
            if error_code(exc) == "ConditionalCheckFailedException" or "ConditionalCheckFailed" in reasons:
                raise _Conflict from exc
            raise

    # -- plumbing -------------------------------------------------------------------------------

    def _key(self, item: Item) -> Item:
        return {k: item[k] for k in self.key_names}

    def _filter(self) -> dict[str, Any]:
        if not self.where:
            return {}
        names = {f"#w{i}": attribute for i, attribute in enumerate(self.where)}
        values = {f":w{i}": wire for i, wire in enumerate(self.where.values())}
        return {
            "FilterExpression": " AND ".join(f"#w{i} = :w{i}" for i in range(len(names))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method(...)``, again (``self.retry``) while a transaction is cancelled by a conflict or
        throttling; everything else botocore retried already."""

        def count(_: RetryCallState) -> None:
            with self._mutex:
                self.throttled += 1

        retrying = self.retry.retrying(retry=retry_if_exception(_retryable), reraise=True, before_sleep=count)
        return retrying(method, *args, **kwargs)
