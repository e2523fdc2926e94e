"""core.engine.bridge without DynamoDB: synchronous code whose waits are fake coroutines.

``answer`` and ``Hanging`` stand for client calls: the code hands their coroutine to ``bridge.wait``
as the models' client does, and ``run`` awaits it on the loop (``Hanging`` marks its cancellation as
``AsyncLeanClient`` does). Each test runs its own loop with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from botocore.exceptions import HTTPClientError

from core.engine import bridge
from core.engine.bridge import REQUEST_SENT, CallCancelled, outcome_of

T = TypeVar("T")
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")
UNSET = object()


class Outcome(Exception):
    """What the code under ``run`` raises when it is told its call may have been applied."""


def arun(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


async def answer(value: T, *, delay: float = 0.0) -> T:
    await asyncio.sleep(delay)
    return value


class Hanging:
    """A call that is never answered; when its task is cancelled it marks the ``CancelledError`` with
    ``REQUEST_SENT`` (``sent``; ``UNSET``: not marked) as ``AsyncLeanClient`` does."""

    def __init__(self, sent: Any) -> None:
        self.sent = sent
        self.started = asyncio.Event()
        self.cancelled: asyncio.CancelledError | None = None

    async def __call__(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError as exc:
            self.cancelled = exc
            if self.sent is not UNSET:
                setattr(exc, REQUEST_SENT, self.sent)
            raise


# --- results, exceptions, context ------------------------------------------------------------------


def test_run_gives_the_result_of_code_whose_waits_were_awaited_on_the_loop() -> None:
    tasks: list[asyncio.Task[Any] | None] = []

    async def in_loop() -> int:
        await asyncio.sleep(0)
        tasks.append(asyncio.current_task())
        return 40

    def code(extra: int, *, more: int) -> tuple[int, bool]:
        return bridge.wait(in_loop()) + extra + more, bridge.active()

    async def main() -> tuple[tuple[int, bool], asyncio.Task[Any] | None]:
        return await bridge.run(code, 1, more=1), asyncio.current_task()

    result, task = arun(main)
    assert result == (42, True)
    assert tasks == [task]  # awaited by the calling task itself


def test_exceptions_pass_through_unchanged_both_ways() -> None:
    raised = KeyError("from the loop")
    seen: list[BaseException] = []

    async def failing() -> None:
        raise raised

    def code() -> None:
        try:
            bridge.wait(failing())
        except KeyError as exc:  # raised where the call was made
            seen.append(exc)
        raise ValueError("from the code")

    async def main() -> None:
        with pytest.raises(ValueError, match="from the code"):
            await bridge.run(code)

    arun(main)
    assert seen == [raised] and seen[0] is raised


def test_the_code_shares_the_callers_context_as_a_plain_call_does() -> None:
    async def read_var() -> str:
        return VAR.get()

    def code() -> tuple[str, str]:
        before = VAR.get()
        VAR.set("set inside")
        awaited = bridge.wait(read_var()) if bridge.active() else VAR.get()
        return before, awaited

    async def main() -> list[tuple[tuple[str, str], str]]:
        seen = []
        for call in (lambda: asyncio.sleep(0, code()), lambda: bridge.run(code)):
            VAR.set("set before")
            seen.append((await call(), VAR.get()))
        return seen

    plain, awaited = arun(main)
    assert plain == awaited == (("set before", "set inside"), "set inside")


def test_concurrent_runs_each_keep_their_own_task_context() -> None:
    def code(name: str) -> str:
        VAR.set(name)
        bridge.wait(asyncio.sleep(0.01))  # the other run sets its value meanwhile
        return VAR.get()

    async def main() -> list[str]:
        return list(await asyncio.gather(bridge.run(code, "a"), bridge.run(code, "b")))

    assert arun(main) == ["a", "b"]


def test_awaitable_is_a_coroutine_function_wrapping_the_code() -> None:
    def add(a: int, b: int = 1) -> int:
        """Add."""
        return a + b

    wrapped = bridge.awaitable(add)
    assert inspect.iscoroutinefunction(wrapped)
    assert (wrapped.__wrapped__, wrapped.__name__, wrapped.__doc__) == (add, "add", "Add.")  # type: ignore[attr-defined]
    assert arun(lambda: wrapped(2, b=3)) == 5


def test_runs_one_after_another_keep_their_own_context_and_nothing_of_the_previous_code() -> None:
    class Result:
        pass

    kept: list[weakref.ref[Result]] = []

    def first() -> Result:
        VAR.set("first")
        result = Result()
        kept.append(weakref.ref(result))
        return bridge.wait(answer(result))

    def failing() -> None:
        raise LookupError(bridge.wait(answer("failed")))

    def second() -> tuple[str, bool]:
        return VAR.get(), bridge.active()

    async def in_task(fn: Callable[[], T]) -> T:
        return await asyncio.create_task(bridge.run(fn))

    async def main() -> tuple[str, bool]:
        result = await in_task(first)
        assert isinstance(result, Result)
        del result
        await asyncio.sleep(0)  # the loop's handle that resumed this task held it too
        gc.collect()
        assert kept[0]() is None  # the code's result is gone once its caller dropped it
        with pytest.raises(LookupError, match="failed"):
            await in_task(failing)
        return await in_task(second)

    assert arun(main) == ("unset", True)  # a task of its own: not the first code's context
    assert not bridge.active()


# --- waits outside run ------------------------------------------------------------------------------


def test_wait_outside_run_raises_runtime_error_and_closes_the_coroutine() -> None:
    coroutine = answer(1)
    with pytest.raises(RuntimeError, match=r"bridge\.run\(\)"):
        bridge.wait(coroutine)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
    assert not bridge.active()

    async def main() -> None:  # in a coroutine, but not inside run: the same
        inner = answer(2)
        with pytest.raises(RuntimeError):
            bridge.wait(inner)
        assert inspect.getcoroutinestate(inner) == inspect.CORO_CLOSED

    arun(main)


def test_sleep_awaits_inside_run_and_blocks_outside() -> None:
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    async def during(work: Callable[[], Coroutine[Any, Any, None]]) -> int:
        nonlocal ticks
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        await asyncio.sleep(0)
        ticks = 0
        await work()
        counted = ticks
        stop.set()
        await ticking
        return counted

    async def inside() -> None:
        await bridge.run(bridge.sleep, 0.05)

    async def outside() -> None:
        bridge.sleep(0.05)  # a coroutine that is not inside run: the loop is blocked

    async def main() -> tuple[int, int]:
        return await during(inside), await during(outside)

    started = time.monotonic()
    inside_ticks, outside_ticks = arun(main)
    assert time.monotonic() - started >= 0.1
    assert inside_ticks > 1 and outside_ticks == 0


# --- fan-out ------------------------------------------------------------------------------------------


class InFlight:
    def __init__(self) -> None:
        self.now = self.most = 0
        self.finished: list[int] = []

    async def one(self, item: int, delay: float) -> int:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(delay)
        finally:
            self.now -= 1
            self.finished.append(item)
        return item


def test_map_bounded_inside_run_awaits_items_concurrently_within_the_limit() -> None:
    flight = InFlight()

    def fetch(item: int) -> tuple[int, bool]:
        return bridge.wait(flight.one(item, 0.01 * (item % 3))) * 10, bridge.active()

    def code() -> list[tuple[int, bool]]:
        return bridge.map_bounded(fetch, list(range(12)), limit=4)

    results = arun(lambda: bridge.run(code))
    assert results == [(i * 10, True) for i in range(12)]  # in item order, each a nested run
    assert flight.most == 4


def test_map_bounded_raises_the_first_exception_in_item_order_after_every_item_ended() -> None:
    flight = InFlight()

    def fetch(item: int) -> int:
        if item == 5:  # fails first in time...
            raise LookupError("item 5")
        value = bridge.wait(flight.one(item, 0.03 if item == 2 else 0.001))
        if item == 2:  # ...but item 2 comes first in order
            raise ValueError("item 2")
        return value

    async def main() -> None:
        with pytest.raises(ValueError, match="item 2"):
            await bridge.run(bridge.map_bounded, fetch, list(range(8)), limit=3)
        assert sorted(flight.finished) == [0, 1, 2, 3, 4, 6, 7]

    arun(main)
    assert bridge.map_bounded(fetch, [], limit=2) == []


def test_map_bounded_outside_run_uses_threads_within_the_limit_and_the_callers_context() -> None:
    barrier = threading.Barrier(3, timeout=10)  # three items must be in flight together
    lock = threading.Lock()
    now = most = 0
    VAR.set("caller")

    def fetch(item: int) -> tuple[int, str, bool]:
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
        if item < 3:
            barrier.wait()
        time.sleep(0.01)
        with lock:
            now -= 1
        return threading.get_ident(), VAR.get(), bridge.active()

    results = bridge.map_bounded(fetch, list(range(9)), limit=3)
    assert most == 3
    assert {ident for ident, _, _ in results}.isdisjoint({threading.get_ident()})
    assert {(var, active) for _, var, active in results} == {("caller", False)}

    def failing(item: int) -> int:
        if item in (1, 4):
            raise ValueError(f"item {item}")
        return item

    with pytest.raises(ValueError, match="item 1"):
        bridge.map_bounded(failing, list(range(6)), limit=2)


def test_a_nested_run_inside_run_awaits_its_own_waits() -> None:
    def inner() -> str:
        return bridge.wait(answer("inner", delay=0.001))

    def outer() -> str:
        return bridge.wait(bridge.run(inner)) + "+outer"

    assert arun(lambda: bridge.run(outer)) == "inner+outer"


# --- cancellation ---------------------------------------------------------------------------------


class Code:
    """Code that makes one hanging call and reports what it was told."""

    def __init__(self, call: Hanging, *, then: Callable[[], Any] | None = None) -> None:
        self.call, self.then = call, then
        self.told: BaseException | None = None

    def __call__(self) -> None:
        try:
            bridge.wait(self.call())
        except CallCancelled as exc:
            self.told = exc
            if self.then is not None:
                self.then()
            raise Outcome("may have been applied") from exc
        except asyncio.CancelledError as exc:
            self.told = exc
            raise


async def cancel_during(code: Code) -> asyncio.CancelledError:
    task = asyncio.create_task(bridge.run(code))
    await code.call.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as raised:
        await task
    assert task.cancelled()
    return raised.value


def test_a_call_cancelled_before_its_request_was_sent_raises_the_cancellation_into_the_code() -> None:
    code = Code(Hanging(sent=False))
    cancelled = arun(lambda: cancel_during(code))
    assert code.told is code.call.cancelled  # the same CancelledError, raised where the call was made
    assert outcome_of(cancelled) is None and cancelled.__cause__ is None


@pytest.mark.parametrize("sent", [True, UNSET], ids=["sent", "not-marked"])
def test_a_call_cancelled_after_its_request_may_have_been_sent_tells_the_code_and_keeps_its_outcome(
    sent: Any,
) -> None:
    code = Code(Hanging(sent=sent))
    cancelled = arun(lambda: cancel_during(code))
    assert isinstance(code.told, CallCancelled) and isinstance(code.told, HTTPClientError)
    assert not isinstance(code.told, asyncio.CancelledError)
    outcome = outcome_of(cancelled)
    assert isinstance(outcome, Outcome) and cancelled.__cause__ is outcome
    assert cancelled is code.call.cancelled  # the cancellation the task got, re-raised


def test_code_that_swallows_the_cancellation_still_ends_cancelled() -> None:
    def swallow() -> str:
        try:
            bridge.wait(Hanging(sent=True)())
        except CallCancelled:
            return "carried on"
        return "answered"

    async def main() -> None:
        task = asyncio.create_task(bridge.run(swallow))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as raised:
            await task
        assert outcome_of(raised.value) is None

    arun(main)


def test_after_a_cancellation_no_further_call_is_made() -> None:
    later = answer("never")
    refused: list[BaseException] = []

    def call_again() -> None:
        try:
            bridge.wait(later)
        except asyncio.CancelledError as exc:
            refused.append(exc)
            raise

    code = Code(Hanging(sent=True), then=call_again)
    cancelled = arun(lambda: cancel_during(code))
    assert refused == [cancelled]  # refused with the task's cancellation...
    assert inspect.getcoroutinestate(later) == inspect.CORO_CLOSED  # ...and never awaited
    assert outcome_of(cancelled) is None


def test_a_task_cancelled_in_a_sleep_sees_its_cancellation_not_a_cancelled_call() -> None:
    seen: list[BaseException] = []

    def backoff() -> None:  # as a retry policy waits between attempts: no request is in flight
        try:
            bridge.sleep(60)
        except BaseException as exc:
            seen.append(exc)
            raise

    async def main() -> asyncio.CancelledError:
        task = asyncio.create_task(bridge.run(backoff))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as raised:
            await task
        return raised.value

    cancelled = arun(main)
    assert seen == [cancelled] and outcome_of(cancelled) is None


def test_a_timeout_around_a_cancelled_call_raises_timeout_error_with_the_outcome_below() -> None:
    code = Code(Hanging(sent=True))

    async def main() -> TimeoutError:
        with pytest.raises(TimeoutError) as raised:
            async with asyncio.timeout(0.02):
                await bridge.run(code)
        return raised.value

    timed_out = arun(main)
    cancelled = timed_out.__cause__
    assert isinstance(cancelled, asyncio.CancelledError)
    assert isinstance(outcome_of(cancelled), Outcome)
