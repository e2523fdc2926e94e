"""The layer's code, awaited: ``await run(fn, *args)`` runs synchronous code whose calls are awaited.

Every rule, plan and access pattern of the data layer is written once, as synchronous code that
calls a client (``models``, ``repositories``). ``run`` runs such code in a greenlet on the event
loop's thread. When it reaches a call (the models' client, ``core.client``), the client sees that
it is inside ``run`` (``active()``) and hands the call's coroutine to the loop (``wait``): the
greenlet pauses, ``run`` awaits the coroutine (``core.engine.aio.AsyncLeanClient.call``), and the
greenlet resumes with its result, or with its exception raised where the call was made. Nothing
blocks the loop; other tasks run while a call is in flight. SQLAlchemy's asyncio extension runs its
ORM the same way.

The greenlet shares the calling task's context (``contextvars``): the access pattern a query names,
and the log context an app binds, are the task's.

**Cancellation.** A task cancelled while one of its calls is in flight is cancelled: ``run`` raises
the same ``asyncio.CancelledError`` (so ``asyncio.timeout`` and task groups keep their bookkeeping).
Before that, the synchronous code learns what happened to its call, and says what it means:

- nothing of the call was sent (``core.engine.aio.request_sent`` false): the ``CancelledError`` is
  raised where the call was made, and unwinds the code;
- the request was, or may have been, sent: ``CallCancelled`` is raised there instead, a transport
  error with no answer, which a write path reports as it reports a lost answer
  (``WriteOutcomeUnknown`` naming the keys). That error is kept on the ``CancelledError`` that
  ``run`` raises (``outcome_of(exc)``, and its ``__cause__``).

Once cancelled, the code makes no further call: each is refused with the ``CancelledError``.

``sleep`` and ``map_bounded`` are the waits and the fan-out of synchronous code that must not block
a loop: inside ``run`` they await (``asyncio.sleep``, ``asyncio.gather`` bounded by a semaphore),
outside it they block (``time.sleep``, a thread pool), so the same code serves both.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from botocore.exceptions import HTTPClientError

if TYPE_CHECKING:
    from types import FrameType

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

OUTCOME: Final = "datalayer_outcome"  # the attribute of a CancelledError that holds what the code raised
REQUEST_SENT: Final = "datalayer_request_sent"  # as core.engine.aio sets it on a cancelled call
IDLE_WORKERS: Final = 64  # greenlets kept for reuse, per thread (starting a new one costs ~10 µs)

_running = 0  # greenlets started by run() and not yet ended (0: the synchronous layer pays one test)
# greenlet's and asyncio's names, bound by the first run() (the synchronous layer never loads them).
_getcurrent: Callable[[], Any] | None = None
_greenlet: Any = None
_greenlet_exit: type[BaseException] = BaseException
_cancelled_error: type[BaseException] = BaseException


class _Idle(threading.local):
    """Each thread's idle workers: a greenlet belongs to the thread that made it."""

    def __init__(self) -> None:
        self.workers: list[Any] = []


_idle = _Idle()


class CallCancelled(HTTPClientError):
    """The task of a call was cancelled after its request was, or may have been, sent: no answer will
    be read. DynamoDB may have applied it; a write path reports it as a lost answer."""

    fmt = "the calling task was cancelled after the request was sent; its answer will not be read"


class _Finished:
    """What a worker hands back when its code has ended: the result, or what the code raised."""

    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None


def _load() -> Callable[[], Any]:
    """Bind greenlet's and asyncio's names (at the first run()); ``getcurrent``."""
    global _getcurrent, _greenlet, _greenlet_exit, _cancelled_error
    import asyncio

    from greenlet import GreenletExit, getcurrent, greenlet

    _greenlet, _greenlet_exit, _cancelled_error = greenlet, GreenletExit, asyncio.CancelledError
    _getcurrent = getcurrent
    return getcurrent


def _work(job: Callable[[], Any]) -> None:
    """A worker greenlet's body: run each job handed to it, hand back a ``_Finished``, wait for the
    next one. (A dying worker's ``GreenletExit`` ends it, as it ends any greenlet.)"""
    assert _getcurrent is not None
    current = _getcurrent()
    while True:
        done = _Finished()
        try:
            done.value = job()
        except _greenlet_exit:
            raise
        except BaseException as exc:  # raised in run(), where the code was awaited
            done.error = exc
        del job  # no reference to the finished code while idle (run() empties ``done``)
        job = current.parent.switch(done)


def _discard(awaitable: object) -> None:
    """Close a coroutine that will not be awaited (no "never awaited" warning)."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def active() -> bool:
    """Whether the current code runs inside ``run`` (its calls must be awaited, not sent)."""
    if not _running or _getcurrent is None:
        return False
    return getattr(_getcurrent(), "datalayer_bridged", False) is True


def awaiting_frame() -> FrameType | None:
    """Inside ``run``: the frame of the coroutine awaiting this code (its stack leads to the app's
    coroutine), for finding a call's caller; ``None`` outside ``run``."""
    if not active():
        return None
    assert _getcurrent is not None
    parent = _getcurrent().parent
    return parent.gr_frame if parent is not None else None


def wait(awaitable: Awaitable[T]) -> T:
    """Inside ``run``: pause this code until the loop has awaited ``awaitable``; its result (or its
    exception, raised here). Outside ``run``: ``RuntimeError``."""
    current = _getcurrent() if _getcurrent is not None else None
    if current is None or getattr(current, "datalayer_bridged", False) is not True:
        _discard(awaitable)
        raise RuntimeError("bridge.wait() is only for code run by core.engine.bridge.run()")
    parent = current.parent
    assert parent is not None  # run() made it with its driver as parent
    result: T = parent.switch(awaitable)
    return result


async def run(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn(*args, **kwargs)`` on this loop, its calls awaited; its result, or what it raised.
    See the module docstring for cancellation.

    The code runs in a worker greenlet, taken from this thread's idle ones (or made), whose parent
    is the greenlet awaiting here; it goes back to them once its code has ended."""
    global _running
    driver = (_getcurrent or _load())()
    cancelled: BaseException | None = None  # asyncio.CancelledError; once cancelled, no further call
    child = _worker(driver)
    _running += 1
    try:
        try:
            step: Any = child.switch(functools.partial(fn, *args, **kwargs))
            while type(step) is not _Finished and not child.dead:
                if cancelled is not None:
                    _discard(step)
                    step = child.throw(cancelled)
                    continue
                try:
                    value = await step
                except _cancelled_error as exc:
                    cancelled = exc
                    sent = getattr(exc, REQUEST_SENT, None)
                    step = child.throw(exc if sent is False else CallCancelled(error=exc))
                except BaseException as exc:  # the call's own error, raised where it was made
                    step = child.throw(exc)
                else:
                    step = child.switch(value)
            if type(step) is _Finished:
                step = _released(child, step)
        except BaseException as raised:
            if cancelled is not None and raised is not cancelled:
                setattr(cancelled, OUTCOME, raised)
                raise cancelled from raised
            raise
        if cancelled is not None:
            raise cancelled
        result: R = step
        return result
    finally:
        _running -= 1


def _worker(driver: Any) -> Any:
    """An idle worker of this thread (or a new one), to run code for ``driver`` in its context."""
    idle = _idle.workers
    if idle:
        child = idle.pop()
        child.parent = driver
    else:
        child = _greenlet(_work, driver)
        child.datalayer_bridged = True
    child.gr_context = driver.gr_context  # the task's context: what the code sets, the task sees
    return child


def _released(child: Any, finished: _Finished) -> Any:
    """Keep the worker whose code has ended for the next run; the code's result, or raise what it
    raised."""
    child.gr_context = None
    idle = _idle.workers
    if len(idle) < IDLE_WORKERS:
        idle.append(child)
    error, value = finished.error, finished.value
    finished.error = finished.value = None
    if error is not None:
        raise error
    return value


def outcome_of(cancelled: BaseException) -> BaseException | None:
    """What the code of a cancelled ``run`` raised when told its call was cancelled (for a write
    that may have been applied, a ``WriteOutcomeUnknown`` naming the keys), if anything."""
    outcome: BaseException | None = getattr(cancelled, OUTCOME, None)
    return outcome


def awaitable(fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``fn`` as a coroutine function: ``await awaitable(fn)(*args)`` is ``await run(fn, *args)``,
    with ``fn``'s name, signature (overloads included, for type checkers) and docstring."""

    @functools.wraps(fn)
    async def awaited(*args: P.args, **kwargs: P.kwargs) -> R:
        return await run(fn, *args, **kwargs)

    return awaited


def sleep(seconds: float) -> None:
    """Wait ``seconds``: awaited inside ``run`` (the loop goes on), ``time.sleep`` outside it. A wait
    sends nothing: a task cancelled during it raises its ``CancelledError`` here (not ``CallCancelled``)."""
    if active():
        wait(_slept(seconds))
    else:
        time.sleep(seconds)


async def _slept(seconds: float) -> None:
    import asyncio

    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError as exc:
        setattr(exc, REQUEST_SENT, False)
        raise


def map_bounded(fn: Callable[[T], R], items: Sequence[T], *, limit: int) -> list[R]:
    """``[fn(item) for item in items]``, at most ``limit`` at a time: as tasks of this loop inside
    ``run`` (``asyncio.gather`` under a semaphore), in a thread pool outside it. Every call ends
    before this returns; the first exception, in the order of ``items``, is raised."""
    if not items:
        return []
    if active():
        return wait(_gathered(fn, items, limit))
    from concurrent.futures import ThreadPoolExecutor  # imported at the first fan-out

    with ThreadPoolExecutor(max_workers=max(1, min(limit, len(items)))) as pool:
        # Each task runs in a copy of this context, so log context bound by the caller follows it.
        futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        return [future.result() for future in futures]


async def _gathered(fn: Callable[[T], R], items: Sequence[T], limit: int) -> list[R]:
    import asyncio

    semaphore = asyncio.Semaphore(max(1, limit))

    async def one(item: T) -> R:
        async with semaphore:
            return await run(fn, item)

    results = await asyncio.gather(*(one(item) for item in items), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]
