"""Phase 2: several processes at once, some killed with SIGKILL mid-write, and a killed backfill.

Workers (``multiprocessing``, spawned: no client state is shared) move money between a few shared
accounts (always with an idempotency key), place orders, move their own orders' statuses and
record readings into shared hourly aggregates, with faults injected at random into their own
calls. Each worker judges every outcome against the item its call owns (read raw right after the
call: the transfer record, the order, the reading) and logs a line before and after each call, so
a call cut short by SIGKILL is known. Meanwhile the parent kills a random worker every few seconds
and starts another in its place.

Afterwards the parent does what a careful caller does with a transfer whose outcome it never
learnt (unknown, or its process killed): calls again with the same idempotency key, and judges
that call against a full scan. Then the invariants are checked on the whole table.

Then a backfill (the migrations' own test revision ``0002_count_things``, which adds 1 to every
item's ``Processed``) is SIGKILLed at random moments twice and run to the end: every item must
be processed exactly once, and the revision recorded as applied.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.config import reload_settings
from core.errors import DataLayerError, WriteOutcomeUnknown
from models import Metric, Order, Transfer, new_order_id
from models.order import ORDER_MOVES, OrderStatus
from repositories import accounts, metrics, orders, users
from tests.reliability.faults import FaultInjector
from tests.reliability.outcomes import Op, judge, model_key, summarise, transfer_effects
from tests.reliability.report import PhaseResult
from tests.reliability.table import Invariants, Key, diff, fresh_table, get, number, scan, text, version

REPO = Path(__file__).resolve().parents[2]
ACCOUNTS = 8
OPENING = Decimal("100.00")
USERS = 6
FAULT_RATE = 0.1
BACKFILL_ITEMS = 3000


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process does."""

    index: int
    seed: int
    operations: int
    log: str
    accounts: list[str]
    users: list[str]
    hour: str  # ISO: the hour the readings fall in


# --- the worker process ------------------------------------------------------------------------------


class _Log:
    """One JSON line per event, appended with one ``write`` (whole lines survive a SIGKILL)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def __call__(self, **event: Any) -> None:
        os.write(self.fd, (json.dumps(event, default=str) + "\n").encode())


def _verdict(outcome: object, state: str, own_keys: list[tuple[str, str]]) -> str | None:
    """Whether the outcome is true, given what the call's own item shows (``applied``/``none``/other)."""
    if not isinstance(outcome, BaseException):
        return None if state == "applied" else f"success reported, but the table shows: {state}"
    if not isinstance(outcome, DataLayerError):
        return f"raised a non-DataLayerError: {summarise(outcome)}"
    if isinstance(outcome, WriteOutcomeUnknown):
        named = {tuple(k) for k in outcome.keys}
        if state == "applied" and not set(own_keys) <= named:
            return "WriteOutcomeUnknown does not name the item that was written"
        return None if state in ("applied", "none") else f"outcome unknown, and the table shows: {state}"
    if state != "none":
        return f"{summarise(outcome)} says nothing was written, but the table shows: {state}"
    return None


@dataclass
class Call:
    """One worker call: what it is, how to make it, and what its own item shows afterwards
    (``applied``, ``none``, or a description of anything else)."""

    name: str
    args: dict[str, Any]
    make: Callable[[], object]
    state: Callable[[], str]
    own: list[Key]


class Worker:
    """The calls one worker process makes, each drawn from its own seeded generator."""

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.injector = FaultInjector(plan.seed, rate=FAULT_RATE).install()
        self.hour = datetime.fromisoformat(plan.hour)
        self.mine: list[tuple[str, str]] = []  # orders this worker placed: (user_id, order_id)

    def run(self) -> None:
        """``plan.operations`` calls, each logged before and after (with its verdict)."""
        log = _Log(self.plan.log)
        for n in range(self.plan.operations):
            roll = self.rng.random()
            call: Call | None
            if roll < 0.5:
                call = self.transfer(n)
            elif roll < 0.7 or not self.mine:
                call = self.order()
            elif roll < 0.85:
                call = self.move()
            else:
                call = self.reading(n)
            if call is None:
                continue
            log(n=n, event="start", op=call.name, args=call.args)
            outcome: object
            try:
                outcome = call.make()
            except Exception as exc:  # judged: a non-DataLayerError is a false outcome
                outcome = exc
            log(n=n, event="end", op=call.name, args=call.args, faults=self.injector.injected_total(),
                outcome=type(outcome).__name__ if isinstance(outcome, BaseException) else "success",
                problem=_verdict(outcome, call.state(), call.own))  # fmt: skip

    def transfer(self, n: int) -> Call:
        """A transfer between two shared accounts, with an idempotency key of its own."""
        source, target = self.rng.sample(self.plan.accounts, 2)
        amount = Decimal(self.rng.randint(1, 4000)) / 100
        key = f"w{self.plan.index}-{n}-{uuid.uuid4().hex[:8]}"
        record = model_key(Transfer, transfer_id=accounts.transfer_id_for_key(key, source))

        def state() -> str:
            item = get(record)
            if item is None:
                return "none"
            stored = (text(item, "FromAccount"), text(item, "ToAccount"), number(item, "Amount"))
            return (
                "applied" if stored == (source, target, amount) else "a record with other accounts or amount"
            )

        args = {"source": source, "target": target, "amount": str(amount), "key": key}
        return Call(
            "transfer_funds",
            args,
            lambda: accounts.transfer_funds(source, target, amount, idempotency_key=key),
            state,
            [record],
        )

    def order(self) -> Call:
        """An order of one of the shared users, with an id chosen here."""
        user_id, order_id = self.rng.choice(self.plan.users), new_order_id()
        amount = Decimal(self.rng.randint(1, 100_000)) / 100
        at = model_key(Order, user_id=user_id, order_id=order_id)

        def make() -> object:
            placed = orders.place_order(user_id, amount, order_id=order_id)
            self.mine.append((user_id, order_id))
            return placed

        def state() -> str:
            item = get(at)
            if item is None:
                return "none"
            return "applied" if number(item, "Amount") == amount and version(item) == 1 else "another order"

        return Call(
            "place_order",
            {"user_id": user_id, "order_id": order_id, "amount": str(amount)},
            make,
            state,
            [at],
        )

    def move(self) -> Call | None:
        """The next status of one of this worker's orders (read first, without faults)."""
        user_id, order_id = self.rng.choice(self.mine)
        at = model_key(Order, user_id=user_id, order_id=order_id)
        with self.injector.paused():
            order = orders.get_order(user_id, order_id)
        moves = sorted(ORDER_MOVES.get(OrderStatus(order.status), ()))
        if not moves:
            return None
        status = self.rng.choice(moves)
        before = (version(get(at)), OrderStatus(order.status).value)

        def state() -> str:
            item = get(at)
            now = (version(item), text(item, "Status"))
            if now == before:
                return "none"
            if (
                now == ((before[0] or 0) + 1, status.value)
                and text(item, "GSI1PK") == f"STATUS#{status.value}"
            ):
                return "applied"
            return f"version/status {before} became {now}"

        return Call(
            "set_order_status",
            {"user_id": user_id, "order_id": order_id, "status": status.value},
            lambda: orders.set_order_status(order, status),
            state,
            [at],
        )

    def reading(self, n: int) -> Call:
        """A reading of the shared device: every worker folds into the same hourly aggregates."""
        name = self.rng.choice(("temp", "hum"))
        offset = timedelta(seconds=self.rng.randrange(7200), microseconds=self.plan.index * 1000 + n % 1000)
        at, value = self.hour + offset, Decimal(self.rng.randint(-10_000, 10_000)) / 100
        dimensions = {"worker": str(self.plan.index)}
        point = Metric(device_id="shared", metric_name=name, timestamp=at, value=value, dimensions=dimensions)
        point.fill_keys()
        own = (point.pk, point.sk)

        def state() -> str:
            item = get(own)
            if item is None:
                return "none"
            return "applied" if number(item, "Value") == value else "another reading"

        return Call("record_metric", {"name": name, "at": at.isoformat(), "value": str(value)},
                    lambda: metrics.record_metric("shared", name, value, at=at, dimensions=dimensions), state,
                    [own])  # fmt: skip


def worker_main(plan: WorkerPlan) -> None:
    """Entry point of a worker process."""
    Worker(plan).run()


# --- the parent --------------------------------------------------------------------------------------


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a line cut by the kill
    return events


def _spawn(context: Any, plan: WorkerPlan) -> Any:
    process = context.Process(target=worker_main, args=(plan,), daemon=True)
    process.start()
    return process


def run_workers(seed: int, workers: int, per_worker: int, kills: int, result: PhaseResult) -> None:
    """Start the workers, kill some mid-write, judge every logged outcome, recover, check."""
    rng = random.Random(seed)
    fresh_table("rel-procs")
    invariants = Invariants()
    account_ids = []
    for _ in range(ACCOUNTS):
        account = accounts.open_account(balance=OPENING)
        invariants.opened[account.account_id] = OPENING
        account_ids.append(account.account_id)
    user_ids = [
        users.create_user(f"worker.{uuid.uuid4().hex[:10]}@example.com", "Worker").user_id
        for _ in range(USERS)
    ]
    hour = (datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)).isoformat()
    context = multiprocessing.get_context("spawn")
    logs = Path(tempfile.mkdtemp(prefix="reliability-"))
    running: dict[int, Any] = {}
    try:
        for index in range(workers):
            plan = WorkerPlan(
                index,
                seed * 100 + index,
                per_worker,
                str(logs / f"{index}.jsonl"),
                account_ids,
                user_ids,
                hour,
            )
            running[index] = _spawn(context, plan)
        killed_mid_call = killed = 0
        next_index = workers
        for _ in range(kills):
            time.sleep(rng.uniform(1.0, 3.0))
            alive = [i for i, p in running.items() if p.is_alive()]
            if not alive:
                break
            victim = rng.choice(alive)
            os.kill(running[victim].pid, signal.SIGKILL)
            running[victim].join()
            killed += 1
            events = _read_log(logs / f"{victim}.jsonl")
            killed_mid_call += bool(events and events[-1]["event"] == "start")
            plan = WorkerPlan(
                next_index,
                seed * 100 + next_index,
                per_worker // 2,
                str(logs / f"{next_index}.jsonl"),
                account_ids,
                user_ids,
                hour,
            )
            running[next_index] = _spawn(context, plan)
            next_index += 1
        for process in running.values():
            process.join(timeout=300)
            if process.is_alive():
                process.kill()
                result.finding("a worker did not finish within 300 s")
                result.false += 1
        pending = _judge_logs(logs, running, result)
    finally:
        shutil.rmtree(logs, ignore_errors=True)
    result.notes.append(
        f"{workers} workers + {next_index - workers} replacements; {killed} SIGKILLs, "
        f"{killed_mid_call} of them while a call was in flight (a call cut short is run, not judged)"
    )
    result.violation(invariants.check(scan()), "after the workers, some killed")
    _recover(pending, result)
    result.violation(invariants.check(scan()), "after the recovery")


def _judge_logs(logs: Path, running: dict[int, Any], result: PhaseResult) -> list[dict[str, Any]]:
    """Count every worker's judged outcomes; return the transfers whose outcome the caller never learnt."""
    pending = []
    for index in running:
        events = _read_log(logs / f"{index}.jsonl")
        ends = [e for e in events if e["event"] == "end"]
        result.faults += ends[-1]["faults"] if ends else 0
        finished = {e["n"] for e in ends}
        for event in ends:
            result.operations += 1
            if event["problem"] is None:
                result.true += 1
            else:
                result.false += 1
                result.finding(
                    f"worker {index}: {event['op']} {event['args']} -> {event['outcome']}: {event['problem']}"
                )
            if event["op"] == "transfer_funds" and event["outcome"].endswith("OutcomeUnknown"):
                pending.append(event["args"])
        for event in events:
            if event["event"] == "start" and event["n"] not in finished:
                result.operations += 1  # cut short by SIGKILL: no outcome was reported, nothing to judge
                if event["op"] == "transfer_funds":
                    pending.append(event["args"])
    return pending


def _again(source: str, target: str, amount: Decimal, key: str, before: dict[Any, Any]) -> Op:
    transfer_id = accounts.transfer_id_for_key(key, source)
    replay = model_key(Transfer, transfer_id=transfer_id) in before
    effects = {} if replay else transfer_effects(source, target, amount, transfer_id)
    return Op(
        "transfer_funds (again, same key)",
        lambda: accounts.transfer_funds(source, target, amount, idempotency_key=key),
        lambda _: effects,
    )


def _recover(pending: list[dict[str, Any]], result: PhaseResult) -> None:
    """Call each unlearnt transfer again with its key; judge each call against a full scan."""
    before = scan()
    for args in pending:
        source, target, amount, key = args["source"], args["target"], Decimal(args["amount"]), args["key"]
        op = _again(source, target, amount, key, before)
        outcome: object
        try:
            outcome = op.call()
        except Exception as exc:
            outcome = exc
        after = scan()
        problem = judge(op, outcome, diff(before, after), after)
        result.operations += 1
        if problem is None:
            result.true += 1
        else:
            result.false += 1
            result.finding(f"{op.function} {args} -> {type(outcome).__name__}: {problem}")
        before = after
    result.notes.append(f"{len(pending)} transfers of unknown outcome (or cut by SIGKILL) called again")


# --- a backfill killed mid-run -----------------------------------------------------------------------


def run_backfill_kills(seed: int, kills: int, result: PhaseResult) -> None:
    """SIGKILL the migrations runner mid-backfill ``kills`` times, then let it finish; check each item
    was processed exactly once and the revision is applied."""
    from migrations import runner
    from migrations.ledger import Ledger
    from tests.migrations.helpers import TEST_REVISIONS
    from tests.migrations.helpers import seed as seed_items

    rng = random.Random(seed)
    versions = Path(tempfile.mkdtemp(prefix="reliability-versions-"))
    try:
        for name in ("0001_plain_table", "0002_count_things"):
            shutil.copy(TEST_REVISIONS / f"{name}.py", versions / f"{name}.py")
        table = f"rel-backfill-{uuid.uuid4().hex[:8]}"
        os.environ["TABLE_NAME"] = table
        reload_settings()
        from tests.reliability.table import raw_client

        client = raw_client()
        runner.upgrade("0001", out=lambda _: None, client=client, versions_dir=versions)
        things = [
            {"PK": {"S": f"THING#{n:05d}"}, "SK": {"S": "THING"}, "EntityType": {"S": "THING"}}
            for n in range(BACKFILL_ITEMS)
        ]
        seed_items(client, table, things)
        ledger = Ledger(client, f"{table}-migrations")
        command = [
            sys.executable,
            "-m",
            "migrations",
            "--versions-dir",
            str(versions),
            "--lease-seconds",
            "2",
            "--lock-wait",
            "60",
            "--no-progress",
            "upgrade",
        ]
        landed = 0
        for _ in range(kills):
            process = subprocess.Popen(
                command, cwd=REPO, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                scanned = sum(int(b.get("Scanned", 0)) for b in ledger.backfills("0002") if "Segment" in b)
                if scanned:
                    break
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.6))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                landed += 1
            process.wait()
        final = subprocess.run(
            command, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=300, check=False
        )
        items = [i for i in scan().values() if i.get("EntityType") == {"S": "THING"}]
        counts: dict[str | None, int] = {}
        for item in items:
            processed = item.get("Processed", {}).get("N")
            counts[processed] = counts.get(processed, 0) + 1
        problems = []
        if final.returncode != 0:
            problems.append(f"the run after the kills exited {final.returncode}: {final.stdout[-300:]}")
        if counts != {"1": BACKFILL_ITEMS}:
            problems.append(
                f"backfill: items by times processed {counts} (want every one of "
                f"{BACKFILL_ITEMS} exactly once)"
            )
        status = ledger.records().get("0002", {}).get("Status")
        if status != "applied":
            problems.append(f"backfill: revision 0002 is {status!r} after the final run, not 'applied'")
        result.violation(problems, "after the killed backfill")
        result.operations += kills + 1
        if final.returncode == 0 and problems:  # the runner said "applied", the items say otherwise
            result.false += 1
            result.finding("the migrations runner reported success, but " + "; ".join(problems))
        elif final.returncode == 0:
            result.true += 1
        result.notes.append(
            f"backfill of {BACKFILL_ITEMS} items: {landed} of {kills} SIGKILLs landed mid-run, "
            f"then a final run; items by times processed: {counts}"
        )
    finally:
        shutil.rmtree(versions, ignore_errors=True)


def run(seed: int, workers: int, per_worker: int, kills: int) -> PhaseResult:
    """Phase 2: the workers with kills and recovery, then the killed backfill."""
    result = PhaseResult("2 processes")
    started = time.monotonic()
    run_workers(seed, workers, per_worker, kills, result)
    run_backfill_kills(seed, 2, result)
    result.seconds = time.monotonic() - started
    return result
