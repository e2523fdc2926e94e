"""Phase 1: every write path under injected faults; each outcome judged against the table.

The write paths: ``create_user``, ``update_user``, ``delete_user``, ``place_order``,
``set_order_status``, ``open_account``, ``transfer_funds``, ``record_metric``, ``put_product``,
``batch_write``, the entities' own ``save()``/``update()``/``delete()`` and ``models.transaction``.
Each round calls every one of them once per fault kind (and once without a fault), in an order
shuffled by the seed. The fault is scheduled on the call's HTTP attempts: round 0 faults its first
request once (botocore retries it), round 1 every attempt of its first request, round 2 every
attempt of its last request (a batch's last chunk, the transaction after a read), later rounds a
random request once, twice or every time. botocore's retry quota is refilled before each call.

Arguments are drawn from what the table holds (read raw after every call), and include the
calls that must fail: a taken email, a stale copy, an unknown user or account, a transfer larger
than the balance, a reading already recorded, a replayed idempotency key. After an unknown
outcome the caller sometimes calls again with the same ids, as the error advises. An exception
that is not a ``DataLayerError`` counts as a raw exception (as in phase 4), not as an outcome.

The same workload runs through the synchronous API (on whichever transport the settings choose)
or through the async API (``api="async"``: ``repositories.asyncio``, ``asave()``/``aupdate()``/
``adelete()``, ``models.atransaction()``, awaited on one event loop), where each path meets the
cancellation twice a round: its task cancelled after a random time within about the call's own
duration (``cancel after``), and as a random one of its requests starts, a few turns of the loop
later (``cancel at request``); sometimes after a refused first attempt, or with the loop's pools
closed first. Judged as a caller sees it: a task that completed anyway, by its result; one that
ended cancelled, by ``outcome_of(exc)`` as that error would be (a ``WriteOutcomeUnknown``: either,
its keys naming every change) or, when that says nothing (nothing was sent), by the table, which
must not have changed.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from core.errors import DataLayerError, TransferOutcomeUnknown, WriteOutcomeUnknown
from models import (
    Account,
    EmailClaim,
    Metric,
    MetricAggregate,
    Order,
    Product,
    RetiredUserId,
    TableModel,
    Transfer,
    User,
    atransaction,
    new_order_id,
    transaction,
)
from models.metric_aggregate import hour_of
from models.order import ORDER_MOVES, OrderStatus
from models.writes import Transaction
from repositories import accounts, batch, metrics, orders, products, users
from repositories.asyncio import accounts as aaccounts
from repositories.asyncio import aclose, outcome_of
from repositories.asyncio import batch as abatch
from repositories.asyncio import metrics as ametrics
from repositories.asyncio import orders as aorders
from repositories.asyncio import products as aproducts
from repositories.asyncio import users as ausers
from tests.helpers import off, on
from tests.reliability.faults import KINDS, FaultInjector
from tests.reliability.outcomes import (
    Effects,
    Op,
    bumped,
    created,
    deleted,
    describe,
    folded,
    judge,
    model_key,
    transfer_effects,
    upserted,
)
from tests.reliability.report import PhaseResult
from tests.reliability.table import (
    Invariants,
    Item,
    Key,
    diff,
    fresh_table,
    number,
    of_type,
    scan,
    text,
    version,
)

PRODUCT_IDS = [f"p{n:03d}" for n in range(80)]
BATCH_SIZES = (40, 1, 26, 60, 10)  # five, against six fault kinds a round: each kind meets each size
DEVICES = ("dev-a", "dev-b", "dev-c")
ATTEMPTS = 3  # botocore's attempts of one request with DYNAMODB_MAX_RETRY_ATTEMPTS=2 (the runner sets it)
NAMES = ("Ada", " Grace Hopper ", "Émile Zola", "李雷", "O'Brien")
CANCEL_SETTLE_SECONDS = 0.2  # after a cancelled call, for a request already on the wire to land
HUNG_SECONDS = 60.0  # an async call with no outcome after this long is reported (a TimeoutError: raw)
CANCELS = ("cancel after", "cancel at request")  # the async API's fault kinds (one run of each)
TICKS = (0, 2, 0, 5, 1)  # turns of the loop from a request's start to its cancellation, by round
_SELF = object()


@dataclass(frozen=True)
class CancelPlan:
    """Where an async call's task is cancelled: ``after`` seconds, or when its ``at``-th request to
    the network starts, ``ticks`` turns of the loop later. ``cold``: the loop's pools are closed
    first, so the call fetches credentials and opens a connection before it sends (where a
    cancellation leaves nothing sent)."""

    after: float | None = None
    at: int = 0
    ticks: int = 0
    cold: bool = False

    def __str__(self) -> str:
        where = (
            f"cancel after {self.after * 1000:.1f} ms"
            if self.after is not None
            else f"cancel at request {self.at} + {self.ticks} ticks"
        )
        return f"{where}{' (cold pool)' if self.cold else ''}"


key = model_key


def same_version(at: Key) -> Callable[[Any, dict[Key, Item]], str | None]:
    """A check that the returned entity's version is the stored one."""

    def check(result: Any, after: dict[Key, Item]) -> str | None:
        stored = version(after.get(at))
        return (
            None
            if getattr(result, "version", None) == stored
            else f"it returned version {result.version}, the table holds {stored}"
        )

    return check


class Cancelled:
    """The outcome of an async call whose task ended cancelled: the ``CancelledError`` it raised
    (``None``: cancelled before it ran) and what ``outcome_of`` says of it."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.said = None if error is None else outcome_of(error)


class Canceller:
    """A ``before-send`` hook of the async calls: once armed for a task, it cancels that task when
    the ``at``-th attempt that goes to the network starts (after ``ticks`` turns of the loop)."""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector  # counts the cancellations among the faults injected
        self.task: asyncio.Task[Any] | None = None
        self.at = 0
        self.ticks = 0
        self.seen = 0

    def arm(self, task: asyncio.Task[Any], at: int, ticks: int) -> None:
        self.task, self.at, self.ticks, self.seen = task, at, ticks, 0

    def disarm(self) -> None:
        self.task = None

    def cancel(self, task: asyncio.Task[Any], ticks: int = 0) -> None:
        """Cancel ``task`` now, or after ``ticks`` turns of its loop (counted when it takes)."""
        if ticks > 0:
            asyncio.get_running_loop().call_soon(self.cancel, task, ticks - 1)
        elif task.cancel():
            self.injector.injected["cancel"] += 1

    def __call__(self, **_: Any) -> None:
        if self.task is not None:
            if self.seen == self.at:
                self.cancel(self.task, self.ticks)  # inside the task: it takes at its next await
                self.task = None
            self.seen += 1


class FaultedWorkload:
    """Runs the faulted calls one at a time, judging each and checking the invariants after it.

    ``api``: ``"sync"`` calls the repositories and the entities' ``save()``/``update()``/``delete()``
    on the models' client of the current settings (``DATALAYER_TRANSPORT`` chooses it); ``"async"``
    awaits ``repositories.asyncio``, ``asave()``/``aupdate()``/``adelete()`` and
    ``models.atransaction()`` on one event loop (``asyncio.Runner``) for the whole phase, with the
    same faults (the loop's ``AsyncLeanClient`` shares the ``LeanClient``'s hooks) and two more
    (``CANCELS``): the task cancelled at a random point while its write is in flight.
    """

    def __init__(self, seed: int, rounds: int, *, api: str = "sync", label: str = "1 faults") -> None:
        if api not in ("sync", "async"):
            raise ValueError(f"api must be sync or async, got {api!r}")
        self.rng = random.Random(seed)
        self.rounds = rounds
        self.aio = api == "async"
        self.api = SimpleNamespace(users=users, orders=orders, accounts=accounts, metrics=metrics,
                                   products=products, batch=batch)
        if self.aio:
            self.api = SimpleNamespace(users=ausers, orders=aorders, accounts=aaccounts, metrics=ametrics,
                                       products=aproducts, batch=abatch)
        self.kinds: tuple[str, ...] = (*KINDS, *CANCELS) if self.aio else KINDS
        self.injector = FaultInjector(seed + 1)
        self.canceller = Canceller(self.injector)
        self.runner: asyncio.Runner | None = None
        self.invariants = Invariants()
        self.result = PhaseResult(label)
        self.snapshot: dict[Key, Item] = {}
        self.copies: dict[Key, list[TableModel]] = defaultdict(list)  # older copies, to go stale
        self.idempotency: dict[str, tuple[str, str, Decimal]] = {}
        self.hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
        self.by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.outcomes: Counter[str] = Counter()
        self.cancellations: Counter[str] = Counter()
        self.durations: dict[str, float] = {}  # seconds of each path's last call without a fault
        self.lowest_quota = 500
        self.batches = 0

    # --- running ---

    def run(self) -> PhaseResult:
        """Set up a few entities, then ``rounds`` rounds of every write path under every fault kind."""
        started = time.monotonic()
        fresh_table("rel-faults")
        self.injector.install()
        if self.aio:
            self.runner = asyncio.Runner()
            on(self.injector._client, "before-send.dynamodb", self.canceller)
        try:
            self.snapshot = scan()
            setup: list[tuple[Callable[[], Op | None], int]] = [
                (self.create_user, 4), (self.open_account, 4), (self.put_product, 3), (self.place_order, 4),
                (self.record_metric, 3),
            ]  # fmt: skip
            for builder, times in setup:
                for _ in range(times):
                    self.attempt(builder, None)
            for round_no in range(self.rounds):
                builders = list(self.builders().items())
                self.rng.shuffle(builders)
                for _, builder in builders:
                    for kind in (None, *self.kinds):
                        self.attempt(builder, kind, round_no)
        finally:
            if self.runner is not None:
                off(self.injector._client, "before-send.dynamodb", self.canceller)
                self.runner.run(aclose())  # the loop's connection pools, before the loop ends
                self.runner.close()
            self.injector.uninstall()
        self.result.faults = self.injector.injected_total()
        self.result.seconds = time.monotonic() - started
        self.result.notes.append(
            "faults injected by kind: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.injector.injected.items()))
        )
        self.result.notes.append(
            "outcomes by fault kind (true/false): "
            + ", ".join(f"{k} {t}/{f}" for k, (t, f) in sorted(self.by_kind.items()))
        )
        if self.aio:
            self.result.notes.append(
                "cancel runs: " + ", ".join(f"{k} {v}" for k, v in sorted(self.cancellations.items()))
            )
        self.result.notes.append(
            f"botocore retry quota refilled before each call (lowest found: {self.lowest_quota} of 500)"
        )
        self.result.notes.append(
            "outcomes reported: " + ", ".join(f"{k} {v}" for k, v in self.outcomes.most_common())
        )
        return self.result

    def builders(self) -> dict[str, Callable[[], Op | None]]:
        """Every write path, by the name the report uses."""
        return {
            "create_user": self.create_user,
            "update_user": self.update_user,
            "delete_user": self.delete_user,
            "place_order": self.place_order,
            "set_order_status": self.set_order_status,
            "open_account": self.open_account,
            "transfer_funds": self.transfer_funds,
            "record_metric": self.record_metric,
            "put_product": self.put_product,
            "batch_write": self.batch_write,
            "Product.save": self.product_save,
            "Order.save": self.order_save,
            "Account.save": self.account_save,
            "User.update": self.user_update,
            "Order.update": self.order_update,
            "Product.update": self.product_update,
            "Order.delete": self.order_delete,
            "Product.delete": self.product_delete,
            "transaction": self.composed_transaction,
        }

    def attempt(self, builder: Callable[[], Op | None], kind: str | None, round_no: int = 3) -> None:
        """Build an op from the current table (no faults while reading), then run it under ``kind``."""
        op = builder()
        if op is None:
            return
        if kind in CANCELS:
            schedule, plan = self.cancel_plan(op, kind, round_no)
            self.execute(op, schedule, "cancel", cancel=plan)
        else:
            self.execute(op, self.schedule(kind, op, round_no), kind or "none")

    def schedule(self, kind: str | None, op: Op, round_no: int) -> list[str | None]:
        """Faults for the next HTTP attempts of ``op``. Round 0: one fault on its first request
        (retried); round 1: every attempt of its first request; round 2: every attempt of its last
        request; later rounds: a random request, once, twice or every attempt (three)."""
        if kind is None:
            return []
        fixed = [(0, 1), (0, ATTEMPTS), (op.requests - 1, ATTEMPTS)]
        if round_no < len(fixed):
            skip, count = fixed[round_no]
        else:
            skip, count = self.rng.randrange(op.requests), self.rng.choice((1, 2, ATTEMPTS))
        return [None] * skip + [kind] * count

    def cancel_plan(self, op: Op, kind: str, round_no: int) -> tuple[list[str | None], CancelPlan]:
        """Where the task of ``op`` is cancelled. ``cancel after``: after a random time within about
        the call's own duration (its last run without a fault); ``cancel at request``: when a random
        one of its requests starts, after ``TICKS[round_no]`` turns of the loop (0: at once, from
        inside the task, so at its next await). Sometimes a request is first refused (throttle,
        500, reset), so that the cancellation may land in the backoff before the retry; sometimes
        the pool is cold."""
        schedule: list[str | None] = []
        cold = self.rng.random() < 0.4
        window = 1.3 * self.durations.get(op.function, 0.02) + (0.02 if cold else 0.0)
        if self.rng.random() < 0.3:
            schedule = [None] * self.rng.randrange(op.requests) + [
                self.rng.choice(("throttle", "server_error", "reset"))
            ]
            window += 0.3
        if kind == "cancel after":
            return schedule, CancelPlan(after=self.rng.uniform(0.0, window), cold=cold)
        ticks = TICKS[round_no] if round_no < len(TICKS) else self.rng.choice(TICKS)
        return schedule, CancelPlan(at=self.rng.randrange(op.requests), ticks=ticks, cold=cold)

    def execute(
        self,
        op: Op,
        schedule: list[str | None],
        label: str,
        *,
        retry: bool = False,
        cancel: CancelPlan | None = None,
    ) -> None:
        """Call, scan, judge, check the invariants; after an unknown outcome maybe call again."""
        left = self.injector.refill_retry_quota()
        if left is not None:
            self.lowest_quota = min(self.lowest_quota, left)
        self.injector.arm(schedule)
        started = time.monotonic()
        outcome: object
        try:
            outcome = op.call() if self.runner is None else self.runner.run(self.awaited(op, cancel))
        except Exception as exc:  # judged below: a non-DataLayerError is a raw exception
            outcome = exc
        finally:
            self.injector.disarm()
            self.canceller.disarm()
        if not schedule and cancel is None and not retry:
            self.durations[op.function] = time.monotonic() - started
        told = outcome  # what the caller learns (of a cancelled task: what outcome_of says)
        if isinstance(outcome, Cancelled):
            told = outcome.said
            # The task is gone, and its request (when sent) may still be on its way to DynamoDB:
            # let it land before the table is read.
            time.sleep(CANCEL_SETTLE_SECONDS)
        if op.settle is not None:
            op.settle(told)
        after = scan()
        changes = diff(self.snapshot, after)
        if isinstance(outcome, Cancelled) and told is None:
            name = "CancelledError (nothing sent)"
            problem = (
                None
                if not changes
                else f"the task ended cancelled and outcome_of() says nothing (nothing sent), but the table "
                f"shows {describe(changes)}"
            )
        else:
            name = type(told).__name__ if isinstance(told, BaseException) else "success"
            if isinstance(outcome, Cancelled):
                name = f"CancelledError -> {name}"
            problem = judge(op, told, changes, after)
        if isinstance(outcome, Cancelled):
            self.cancellations[name] += 1
        elif cancel is not None:
            self.cancellations[f"completed before the cancellation: {name}"] += 1
        self.result.operations += 1
        tally = self.by_kind[label]
        self.outcomes[name] += 1
        faults = ",".join(k or "pass" for k in schedule) or "none"
        if cancel is not None:
            faults += f"; {cancel}"
        again = " (called again after an unknown outcome)" if retry else ""
        if isinstance(told, BaseException) and not isinstance(told, DataLayerError):
            self.result.raw += 1
            tally[1] += 1
            self.result.finding(f"RAW EXCEPTION: {op.function}{again} [faults: {faults}]: {problem}")
        elif problem is None:
            self.result.true += 1
            tally[0] += 1
        else:
            self.result.false += 1
            tally[1] += 1
            self.result.finding(f"{op.function}{again} [faults: {faults}] -> {name}: {problem}")
        self.result.violation(self.invariants.check(after), f"after {op.function} #{self.result.operations}")
        self.snapshot = after
        if isinstance(told, WriteOutcomeUnknown) and op.again is not None and self.rng.random() < 0.6:
            repeated = op.again()
            if repeated is not None:
                self.execute(repeated, [], "none", retry=True)

    async def awaited(self, op: Op, plan: CancelPlan | None) -> object:
        """``await op.call()`` in a task of its own, cancelled as ``plan`` says: its result, the
        exception it raised, or ``Cancelled``."""
        raised: list[BaseException] = []

        async def call() -> Any:
            try:
                return await op.call()
            except asyncio.CancelledError as exc:  # as a caller would catch it, to ask outcome_of
                raised.append(exc)
                raise

        if plan is not None and plan.cold:
            await aclose()  # the next call makes the loop's client again: credentials, connection
        task = asyncio.ensure_future(call())
        timer = None
        if plan is not None and plan.after is not None:
            timer = asyncio.get_running_loop().call_later(plan.after, self.canceller.cancel, task)
        elif plan is not None:
            self.canceller.arm(task, plan.at, plan.ticks)
        done, _ = await asyncio.wait({task}, timeout=HUNG_SECONDS)
        if timer is not None:
            timer.cancel()
        if not done:
            task.cancel()
            await asyncio.wait({task})
            return TimeoutError(f"no outcome within {HUNG_SECONDS} s")
        if task.cancelled():
            return Cancelled(raised[0] if raised else None)
        return task.exception() or task.result()

    def entity_call(
        self, entity: TableModel, method: str, *args: Any, returns: object = _SELF
    ) -> Callable[[], Any]:
        """``entity.method(*args)`` (or, for the async API, ``await entity.a<method>(*args)``) as an
        op's call, returning ``entity`` (or ``returns``)."""
        result = entity if returns is _SELF else returns
        if self.aio:

            async def awaited() -> object:
                await getattr(entity, f"a{method}")(*args)
                return result

            return awaited

        def call() -> object:
            getattr(entity, method)(*args)
            return result

        return call

    def transaction_call(self, compose: Callable[[Transaction], None]) -> Callable[[], Any]:
        """``with models.transaction() as t: compose(t)`` (``async with models.atransaction()``)."""
        if self.aio:

            async def awaited() -> None:
                async with atransaction() as t:
                    compose(t)

            return awaited

        def call() -> None:
            with transaction() as t:
                compose(t)

        return call

    # --- picking from the table ---

    def pick(self, entity_type: str, where: Callable[[Item], bool] = lambda _: True) -> Item | None:
        """A random stored item of this type (``None`` if there is none)."""
        found = [item for item in of_type(self.snapshot, entity_type) if where(item)]
        return self.rng.choice(sorted(found, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))) if found else None

    def copy_of(self, fresh: TableModel) -> TableModel:
        """``fresh``, or sometimes an older copy of the same entity (stale: the write must fail)."""
        at = (fresh.pk, fresh.sk)
        stale = [c for c in self.copies[at] if (c.version or 0) < (fresh.version or 0)]
        self.copies[at] = [*self.copies[at][-2:], copy.deepcopy(fresh)]
        return self.rng.choice(stale) if stale and self.rng.random() < 0.15 else fresh

    def money(self, low: int, high: int) -> Decimal:
        """An amount with two decimal places, ``low`` to ``high`` cents."""
        return Decimal(self.rng.randint(low, high)) / 100

    # --- users ---

    def create_user(self) -> Op:
        """A new user; sometimes a taken email or a retired id (``AlreadyExists``)."""
        user_id, email = uuid.uuid4().hex, f"User.{uuid.uuid4().hex[:10]}@Example.com"
        roll = self.rng.random()
        claim, retired = self.pick("EMAIL"), self.pick("USER_RETIRED")
        if roll < 0.1 and claim is not None:
            email = str(text(claim, "ClaimedEmail"))
        elif roll < 0.15 and retired is not None:
            user_id = str(text(retired, "UserId"))
        return self.create_user_op(email, self.rng.choice(NAMES), user_id)

    def create_user_op(self, email: str, name: str, user_id: str) -> Op:
        stored = email.lower()
        effects: Effects = {
            key(User, user_id=user_id): created(Email=stored, Name=name.strip(), UserId=user_id),
            key(EmailClaim, email=stored): created(UserId=user_id),
        }
        return Op(
            "create_user",
            lambda: self.api.users.create_user(email, name, user_id=user_id),
            lambda _: effects,
            check_result=same_version(key(User, user_id=user_id)),
            again=lambda: self.create_user_op(email, name, user_id),
        )

    def _user(self) -> tuple[User, Item] | None:
        item = self.pick("USER")
        if item is None:
            return None
        fresh = users.get_user(str(text(item, "UserId")))
        chosen = self.copy_of(fresh)
        assert isinstance(chosen, User)
        return chosen, item

    def update_user(self) -> Op | None:
        """A new name and/or email (sometimes one taken by another user); sometimes a stale copy."""
        found = self._user()
        if found is None:
            return None
        user, stored = found
        roll = self.rng.random()
        name = f"Renamed {self.rng.randint(1, 10**6)}" if roll < 0.75 else None
        email = None
        if roll > 0.5:
            other = self.pick("EMAIL", lambda c: text(c, "UserId") != user.user_id)
            email = f"moved.{uuid.uuid4().hex[:10]}@example.com"
            if other is not None and self.rng.random() < 0.15:
                email = str(text(other, "ClaimedEmail"))
        at = key(User, user_id=user.user_id)
        attrs: dict[str, Any] = {}
        effects: Effects = {}
        if name is not None:
            attrs["Name"] = name
        if email is not None:
            attrs["Email"] = email
            effects[key(EmailClaim, email=str(text(stored, "Email")))] = deleted()
            effects[key(EmailClaim, email=email)] = created(UserId=user.user_id)
        effects[at] = bumped(**attrs)
        return Op(
            "update_user",
            lambda: self.api.users.update_user(user, name=name, email=email),
            lambda _: effects,
            check_result=same_version(at),
        )

    def delete_user(self) -> Op | None:
        """Delete a user (its claim goes, its id is retired); sometimes from a stale copy."""
        found = self._user()
        if found is None:
            return None
        user, stored = found
        effects: Effects = {
            key(User, user_id=user.user_id): deleted(),
            key(EmailClaim, email=str(text(stored, "Email"))): deleted(),
            key(RetiredUserId, user_id=user.user_id): created(UserId=user.user_id),
        }
        return Op("delete_user", lambda: self.api.users.delete_user(user), lambda _: effects)

    def user_update(self) -> Op | None:
        """``User.update([User.name.set(...)])``: the entity's own update."""
        found = self._user()
        if found is None:
            return None
        user, _ = found
        name = f"  Own update {self.rng.randint(1, 10**6)} "
        at = key(User, user_id=user.user_id)
        effects: Effects = {at: bumped(Name=name.strip())}

        call = self.entity_call(user, "update", [User.name.set(name)])
        return Op("User.update", call, lambda _: effects, check_result=same_version(at))

    # --- orders ---

    def place_order(self) -> Op:
        """An order of a stored user (sometimes an unknown one, or a taken order id)."""
        owner = self.pick("USER")
        user_id = (
            str(text(owner, "UserId")) if owner is not None and self.rng.random() > 0.08 else uuid.uuid4().hex
        )
        order_id: str | None = new_order_id() if self.rng.random() < 0.7 else None
        mine = self.pick("ORDER", lambda o: text(o, "UserId") == user_id)
        if mine is not None and self.rng.random() < 0.05:
            order_id = text(mine, "OrderId")
        status = self.rng.choice(("PENDING", "PENDING", "PENDING", "PAID"))
        return self.place_order_op(user_id, self.money(1, 100_000), status, order_id)

    def place_order_op(self, user_id: str, amount: Decimal, status: str, order_id: str | None) -> Op:
        def effects(outcome: object) -> Effects:
            placed = order_id
            if isinstance(outcome, Order):
                placed = outcome.order_id
            elif isinstance(outcome, WriteOutcomeUnknown):
                placed = next((sk[6:] for _, sk in outcome.keys if sk.startswith("ORDER#")), placed)
            if placed is None:
                return {}
            return {
                key(Order, user_id=user_id, order_id=placed): created(
                    Amount=amount, Status=status, GSI1PK=f"STATUS#{status}"
                )
            }

        return Op(
            "place_order",
            lambda: self.api.orders.place_order(user_id, amount, status=status, order_id=order_id),
            effects,
            again=None
            if order_id is None
            else (lambda: self.place_order_op(user_id, amount, status, order_id)),
        )

    def _order(self, movable: bool = True) -> tuple[Order, Item] | None:
        finals = {s.value for s in OrderStatus if s not in ORDER_MOVES}
        item = self.pick("ORDER", lambda o: not movable or text(o, "Status") not in finals)
        if item is None:
            return None
        fresh = orders.get_order(str(text(item, "UserId")), str(text(item, "OrderId")))
        chosen = self.copy_of(fresh)
        assert isinstance(chosen, Order)
        return chosen, item

    def _next_status(self, order: Order) -> OrderStatus:
        return self.rng.choice(sorted(ORDER_MOVES[OrderStatus(order.status)]))

    def set_order_status(self) -> Op | None:
        """Move an order along its lifecycle; sometimes from a stale copy."""
        found = self._order()
        if found is None:
            return None
        order, _ = found
        status = self._next_status(order)
        at = key(Order, user_id=order.user_id, order_id=order.order_id)
        effects: Effects = {at: bumped(Status=status.value, GSI1PK=f"STATUS#{status.value}")}
        return Op(
            "set_order_status",
            lambda: self.api.orders.set_order_status(order, status.value),
            lambda _: effects,
            check_result=same_version(at),
        )

    def order_save(self) -> Op | None:
        """``Order.save()`` of a read order with a new amount: a replace, on its version."""
        found = self._order(movable=False)
        if found is None:
            return None
        order, _ = found
        amount = self.money(1, 50_000)
        at = key(Order, user_id=order.user_id, order_id=order.order_id)
        effects: Effects = {at: bumped(Amount=amount, Status=OrderStatus(order.status).value)}

        def call() -> Any:
            order.amount = amount
            return self.entity_call(order, "save")()

        return Op("Order.save", call, lambda _: effects, check_result=same_version(at))

    def order_update(self) -> Op | None:
        """``Order.update([Order.status.set(...)])``: GSI1's key must move with the status."""
        found = self._order()
        if found is None:
            return None
        order, _ = found
        status = self._next_status(order)
        at = key(Order, user_id=order.user_id, order_id=order.order_id)
        effects: Effects = {at: bumped(Status=status.value, GSI1PK=f"STATUS#{status.value}")}

        call = self.entity_call(order, "update", [Order.status.set(status)])
        return Op("Order.update", call, lambda _: effects, check_result=same_version(at))

    def order_delete(self) -> Op | None:
        """``Order.delete()`` of a freshly read order."""
        found = self._order(movable=False)
        if found is None:
            return None
        order, _ = found
        effects: Effects = {key(Order, user_id=order.user_id, order_id=order.order_id): deleted()}
        return Op("Order.delete", self.entity_call(order, "delete", returns=None), lambda _: effects)

    # --- accounts and transfers ---

    def _open(self, account_id: str | None, balance: Decimal) -> None:
        if account_id is not None and key(Account, account_id=account_id) not in self.snapshot:
            self.invariants.opened.setdefault(account_id, balance)

    def open_account(self) -> Op:
        """A new account (sometimes a taken id, sometimes an id chosen by the layer)."""
        account_id: str | None = str(uuid.uuid4()) if self.rng.random() < 0.8 else None
        taken = self.pick("ACCOUNT")
        if taken is not None and self.rng.random() < 0.05:
            account_id = str(text(taken, "AccountId"))
        balance = self.money(0, 50_000)
        self._open(account_id, balance)

        def opened(outcome: object) -> str | None:
            if isinstance(outcome, Account):
                return outcome.account_id
            if isinstance(outcome, WriteOutcomeUnknown):
                return next((pk[8:] for pk, _ in outcome.keys if pk.startswith("ACCOUNT#")), account_id)
            return account_id

        def effects(outcome: object) -> Effects:
            chosen = opened(outcome)
            return {} if chosen is None else {key(Account, account_id=chosen): created(Balance=balance)}

        return Op(
            "open_account",
            lambda: self.api.accounts.open_account(account_id=account_id, balance=balance),
            effects,
            settle=lambda outcome: self._open(opened(outcome), balance),
        )

    def account_save(self) -> Op:
        """``Account(...).save()`` of a new account."""
        account_id, balance = str(uuid.uuid4()), self.money(0, 20_000)
        self._open(account_id, balance)
        account = Account(account_id=account_id, balance=balance)

        call = self.entity_call(account, "save")
        effects: Effects = {key(Account, account_id=account_id): created(Balance=balance)}
        return Op(
            "Account.save",
            call,
            lambda _: effects,
            check_result=same_version(key(Account, account_id=account_id)),
        )

    def transfer_funds(self) -> Op | None:
        """A transfer between stored accounts: with a new key, no key, a replayed key, an unknown
        account; amounts up to 130% of the balance (so some are short of funds)."""
        if len(of_type(self.snapshot, "ACCOUNT")) < 2:
            return None
        roll = self.rng.random()
        if roll < 0.1 and self.idempotency:
            replayed = self.rng.choice(sorted(self.idempotency))
            source, target, amount = self.idempotency[replayed]
            return self.transfer_op(source, target, amount, replayed)
        first = self.pick("ACCOUNT")
        second = self.pick("ACCOUNT", lambda a: a is not first)
        assert first is not None and second is not None
        source, target = str(text(first, "AccountId")), str(text(second, "AccountId"))
        if roll > 0.95:
            target = str(uuid.uuid4())  # unknown: NotFound
        cents = int((number(first, "Balance") or 0) * 130)
        amount = self.money(1, max(2, cents))
        idempotency_key = f"key-{uuid.uuid4()}" if roll < 0.7 else None
        if idempotency_key is not None:
            self.idempotency[idempotency_key] = (source, target, amount)
        return self.transfer_op(source, target, amount, idempotency_key)

    def transfer_op(self, source: str, target: str, amount: Decimal, idempotency_key: str | None) -> Op:
        known = None if idempotency_key is None else accounts.transfer_id_for_key(idempotency_key, source)
        replay = known is not None and key(Transfer, transfer_id=known) in self.snapshot

        def effects(outcome: object) -> Effects:
            transfer_id = known
            if isinstance(outcome, (Transfer, TransferOutcomeUnknown)):
                transfer_id = outcome.transfer_id
            return {} if replay else transfer_effects(source, target, amount, transfer_id)

        def check(result: Any, _: dict[Key, Item]) -> str | None:
            if known is not None and result.transfer_id != known:
                return f"it returned transfer {result.transfer_id}, the key's transfer is {known}"
            return None

        return Op(
            "transfer_funds",
            lambda: self.api.accounts.transfer_funds(source, target, amount, idempotency_key=idempotency_key),
            effects,
            check_result=check,
            again=None
            if idempotency_key is None
            else (lambda: self.transfer_op(source, target, amount, idempotency_key)),
            requests=1 if idempotency_key is None else 2,  # a keyed transfer first reads for an old one
        )

    # --- metrics ---

    def record_metric(self) -> Op:
        """A reading of a few devices and names over three hours; sometimes one already recorded."""
        point = self.pick("METRIC")
        if point is not None and self.rng.random() < 0.05:
            at = datetime.fromisoformat(str(text(point, "Timestamp")))
            dimensions = (
                {k: v["S"] for k, v in point["Dimensions"]["M"].items()} if "Dimensions" in point else None
            )
            return self.record_metric_op(
                str(text(point, "DeviceId")), str(text(point, "MetricName")), Decimal(1), at, dimensions
            )
        at = self.hour + timedelta(
            seconds=self.rng.randrange(3 * 3600), microseconds=self.rng.randrange(10**6)
        )
        value: Decimal | int | float = Decimal(self.rng.randint(-5000, 5000)) / 100
        if self.rng.random() < 0.2:
            value = self.rng.choice((int(value), float(value) + 0.001))
        dimensions = {"site": self.rng.choice("ab")} if self.rng.random() < 0.3 else None
        return self.record_metric_op(
            self.rng.choice(DEVICES), self.rng.choice(("temp", "hum")), value, at, dimensions
        )

    def record_metric_op(
        self,
        device: str,
        name: str,
        value: Decimal | int | float,
        at: datetime,
        dimensions: dict[str, str] | None,
    ) -> Op:
        number_value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        point = Metric(
            device_id=device, metric_name=name, timestamp=at, value=number_value, dimensions=dimensions
        )
        point.fill_keys()
        aggregate = MetricAggregate(device_id=device, metric_name=name, hour=hour_of(at))
        aggregate.fill_keys()
        effects: Effects = {
            (point.pk, point.sk): created(Value=number_value),
            (aggregate.pk, aggregate.sk): folded(number_value),
        }
        return Op(
            "record_metric",
            lambda: self.api.metrics.record_metric(device, name, value, at=at, dimensions=dimensions),
            lambda _: effects,
            again=lambda: self.record_metric_op(device, name, value, at, dimensions),
            requests=2,  # the hour's extremes are read, then the transaction
        )

    # --- products ---

    def put_product(self) -> Op:
        """Create or replace a product of a small pool of ids."""
        product_id = self.rng.choice(PRODUCT_IDS)
        name = f"Product {self.rng.randint(1, 10**6)}"
        extras = (
            {"color": self.rng.choice(("red", "blue")), "tags": ["a", "b"]} if self.rng.random() < 0.4 else {}
        )
        return self.put_product_op(product_id, name, self.money(0, 99_999), extras)

    def put_product_op(self, product_id: str, name: str, price: Decimal, extras: dict[str, Any]) -> Op:
        at = key(Product, product_id=product_id)
        effects: Effects = {at: upserted(Name=name, Price=price)}
        return Op(
            "put_product",
            lambda: self.api.products.put_product(product_id, name, price, **extras),
            lambda _: effects,
            check_result=same_version(at),
            again=lambda: self.put_product_op(product_id, name, price, extras),
        )

    def _product(self) -> Product | None:
        item = self.pick("PRODUCT")
        return None if item is None else products.get_product(str(text(item, "ProductId")))

    def batch_write(self) -> Op:
        """1 to 60 products (sizes in turn, so every fault kind meets batches of several requests):
        new ids, or any ids with ``overwrite=True``, or a new entity at a taken id without it
        (``AlreadyExists``, nothing written)."""
        count = BATCH_SIZES[self.batches % len(BATCH_SIZES)]
        self.batches += 1
        mode = self.rng.choice(("new", "new", "new", "overwrite", "overwrite", "taken"))
        free = [p for p in PRODUCT_IDS if key(Product, product_id=p) not in self.snapshot]
        taken = [p for p in PRODUCT_IDS if key(Product, product_id=p) in self.snapshot]
        if mode == "overwrite" or len(free) < count:
            ids, mode = self.rng.sample(PRODUCT_IDS, count), "overwrite"
        else:
            ids = self.rng.sample(free, count)
            if mode == "taken" and taken:
                ids[-1] = self.rng.choice(taken)
        batch = [Product(product_id=p, name=f"Batch {p}", price=self.money(0, 9_999)) for p in ids]
        return self.batch_write_op(batch, overwrite=mode == "overwrite")

    def batch_write_op(self, batch: list[Product], *, overwrite: bool) -> Op:
        effects: Effects = {}
        for product in batch:
            at = key(Product, product_id=product.product_id)
            stored = self.snapshot.get(at)
            pending = product.__dict__.get("_pending_write_token")
            landed = (
                stored is not None
                and pending is not None
                and text(stored, "WriteToken") == pending
                and version(stored) == (product.version or 0) + 1
            )
            if not landed:  # an earlier call's item that landed is recognised, not written again
                effects[at] = upserted(Name=product.name, Price=product.price)
        return Op(
            "batch_write",
            lambda: self.api.batch.batch_write(batch, overwrite=overwrite),
            lambda _: effects,
            atomic=False,
            again=lambda: self.batch_write_op(batch, overwrite=overwrite),
            requests=1 + -(-len(batch) // 25),  # the stored versions are read, then 25 a request
        )

    def product_save(self) -> Op:
        """``Product(...).save()`` of a new product (or a taken id: ``AlreadyExists``)."""
        product = Product(product_id=self.rng.choice(PRODUCT_IDS), name="Saved", price=self.money(0, 999))
        at = key(Product, product_id=product.product_id)
        effects: Effects = {at: created(Name="Saved", Price=product.price)}

        call = self.entity_call(product, "save")
        return Op("Product.save", call, lambda _: effects, check_result=same_version(at))

    def product_update(self) -> Op | None:
        """``Product.update([Product.name.set(...)])`` of a freshly read product."""
        product = self._product()
        if product is None:
            return None
        name = f"Updated {self.rng.randint(1, 10**6)}"
        at = key(Product, product_id=product.product_id)
        effects: Effects = {at: bumped(Name=name)}

        call = self.entity_call(product, "update", [Product.name.set(name)])
        return Op("Product.update", call, lambda _: effects, check_result=same_version(at))

    def product_delete(self) -> Op | None:
        """``Product.delete()`` of a freshly read product."""
        product = self._product()
        if product is None:
            return None
        effects: Effects = {key(Product, product_id=product.product_id): deleted()}
        return Op("Product.delete", self.entity_call(product, "delete", returns=None), lambda _: effects)

    # --- a composed transaction ---

    def composed_transaction(self) -> Op | None:
        """``with models.transaction() as t``: a new user and its first order, or two status moves."""
        if self.rng.random() < 0.5:
            user_id, email = uuid.uuid4().hex, f"tx.{uuid.uuid4().hex[:10]}@example.com"
            user = User(user_id=user_id, email=email, name="Composed")
            amount = self.money(1, 9_999)
            order = Order(user_id=user_id, order_id=new_order_id(), amount=amount, status=OrderStatus.PENDING)
            effects: Effects = {
                key(User, user_id=user_id): created(Email=email),
                key(EmailClaim, email=email): created(UserId=user_id),
                key(Order, user_id=user_id, order_id=order.order_id): created(
                    Amount=amount, GSI1PK="STATUS#PENDING"
                ),
            }

            def create(t: Transaction) -> None:
                t.save(user)
                t.save(order)

            return Op("transaction", self.transaction_call(create), lambda _: effects)
        first, second = self._order(), self._order()
        if first is None or second is None or first[0].order_id == second[0].order_id:
            return None
        moves = [(o, self._next_status(o)) for o, _ in (first, second)]
        effects = {
            key(Order, user_id=o.user_id, order_id=o.order_id): bumped(
                Status=s.value, GSI1PK=f"STATUS#{s.value}"
            )
            for o, s in moves
        }

        def move(t: Transaction) -> None:
            for o, s in moves:
                t.update(o, [Order.status.set(s)])

        return Op("transaction", self.transaction_call(move), lambda _: effects)


def run(seed: int, rounds: int, *, api: str = "sync", label: str = "1 faults") -> PhaseResult:
    """Phase 1, on a table of its own, through the sync API (on the settings' transport) or the async one."""
    return FaultedWorkload(seed, rounds, api=api, label=label).run()
