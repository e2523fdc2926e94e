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
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from botocore.exceptions import HTTPClientError

if TYPE_CHECKING:  # asyncio is imported by the code that awaits; the synchronous layer never loads it
    import asyncio
    from types import FrameType

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

OUTCOME: Final = "datalayer_outcome"  # the attribute of a CancelledError that holds what the code raised
REQUEST_SENT: Final = "datalayer_request_sent"  # as core.engine.aio sets it on a cancelled call

_running = 0  # greenlets started by run() and not yet ended (0: the synchronous layer pays one test)


class CallCancelled(HTTPClientError):
    """The task of a call was cancelled after its request was, or may have been, sent: no answer will
    be read. DynamoDB may have applied it; a write path reports it as a lost answer."""

    fmt = "the calling task was cancelled after the request was sent; its answer will not be read"


def _greenlet() -> Any:
    from greenlet import greenlet

    return greenlet


def _discard(awaitable: object) -> None:
    """Close a coroutine that will not be awaited (no "never awaited" warning)."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def active() -> bool:
    """Whether the current code runs inside ``run`` (its calls must be awaited, not sent)."""
    if not _running:
        return False
    from greenlet import getcurrent

    return getattr(getcurrent(), "datalayer_bridged", False) is True


def awaiting_frame() -> FrameType | None:
    """Inside ``run``: the frame of the coroutine awaiting this code (its stack leads to the app's
    coroutine), for finding a call's caller; ``None`` outside ``run``."""
    if not active():
        return None
    from greenlet import getcurrent

    parent = getcurrent().parent
    return parent.gr_frame if parent is not None else None


def wait(awaitable: Awaitable[T]) -> T:
    """Inside ``run``: pause this code until the loop has awaited ``awaitable``; its result (or its
    exception, raised here). Outside ``run``: ``RuntimeError``."""
    from greenlet import getcurrent

    current = getcurrent()
    if getattr(current, "datalayer_bridged", False) is not True:
        _discard(awaitable)
        raise RuntimeError("bridge.wait() is only for code run by core.engine.bridge.run()")
    parent = current.parent
    assert parent is not None  # run() made it with its driver as parent
    result: T = parent.switch(awaitable)
    return result


async def run(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn(*args, **kwargs)`` on this loop, its calls awaited; its result, or what it raised.
    See the module docstring for cancellation."""
    global _running
    import asyncio

    greenlet = _greenlet()
    from greenlet import getcurrent

    driver = getcurrent()
    cancelled: asyncio.CancelledError | None = None  # once cancelled, no further call is made

    child = greenlet(functools.partial(fn, *args, **kwargs), driver)
    child.datalayer_bridged = True
    child.gr_context = driver.gr_context  # the task's context: what the code sets, the task sees
    _running += 1
    try:
        try:
            step: Any = child.switch()
            while not child.dead:
                if cancelled is not None:
                    _discard(step)
                    step = child.throw(cancelled)
                    continue
                try:
                    value = await step
                except asyncio.CancelledError as exc:
                    cancelled = exc
                    sent = getattr(exc, REQUEST_SENT, None)
                    step = child.throw(exc if sent is False else CallCancelled(error=exc))
                except BaseException as exc:  # the call's own error, raised where it was made
                    step = child.throw(exc)
                else:
                    step = child.switch(value)
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
