"""What both transports do around a call, without I/O: the capacity asked, the error raised, the observation.

``LeanClient`` (``core.engine.sync``) and ``AsyncLeanClient`` (``core.engine.aio``) differ only in how
they send bytes and wait; these functions are the rest of a call's bookkeeping, written once:

- ``widened``: ``INDEXES`` capacity asked where a call would ask for ``TOTAL`` (or nothing);
- ``unanswered``: the transport exception a call raises when its last attempt got no answer, marked
  ``core.error_codes.NOTHING_SENT`` when no attempt of the call reached the endpoint;
- ``wanted``, ``observation``: whether a call is observed, and its one ``Observation`` (a cancelled
  call's outcome is ``"cancelled"``);
- ``answered_by_hook``, ``sent_by_hook``, ``after_call``: the test hooks both clients offer
  (``before_call``, ``before_send``, ``after_call``; see ``core.engine.sync``), run the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from botocore.awsrequest import AWSPreparedRequest, HeadersDict
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

from core.engine import observe
from core.engine.requests import Request, error_code, finish, parse
from core.engine.retries import CallState, Outcome, RetryPolicy
from core.error_codes import NOTHING_SENT

READS_CAPACITY: Final = frozenset({"TOTAL"})
CANCELLED: Final = "cancelled"  # the outcome of a call whose task was cancelled before it ended


def widened(params: Mapping[str, Any], capacity: str | None) -> Mapping[str, Any]:
    """``params`` asking for ``capacity`` instead of ``TOTAL`` (or nothing); an explicit ``NONE`` is kept."""
    if capacity is not None and params.get("ReturnConsumedCapacity", "TOTAL") in READS_CAPACITY:
        return {**params, "ReturnConsumedCapacity": capacity}
    return params


def unanswered(outcome: Outcome, state: CallState) -> BaseException:
    """The exception of a last attempt that got no answer (marked when nothing of the call was sent)."""
    error = outcome.error
    assert error is not None
    if not state.sent and isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        setattr(error, NOTHING_SENT, True)
    return error


def wanted(observing: Callable[[], bool] | None, failure: BaseException | None) -> bool:
    """Whether a call that ended with ``failure`` (``None``: it succeeded) gets an ``Observation``:
    always, unless it succeeded while ``observing()`` says nobody would receive one."""
    return failure is not None or observing is None or observing()


def observation(operation: str, params: Mapping[str, Any], *, start: float, started_at: int,
                state: CallState, outcome: Outcome | None, result: Mapping[str, Any] | None,
                failure: BaseException | None, reasons: list[dict[str, Any]]) -> observe.Observation:
    """The one ``Observation`` of a call that started at ``start`` (``perf_counter``) and ended now."""
    answered = outcome.parsed if outcome is not None else None
    parsed: Mapping[str, Any] = result or answered or {}
    code = error_code(parsed)
    asyncio = sys.modules.get("asyncio")  # not imported here: the synchronous layer never loads it
    if failure is None:
        label = "ok"
    elif asyncio is not None and isinstance(failure, asyncio.CancelledError):
        label = CANCELLED
    else:
        label = code or type(failure).__name__
    total, split = observe.capacity(parsed)
    returned, read = observe.items(operation, parsed) if failure is None else (None, None)
    metadata = parsed.get("ResponseMetadata") or {}
    index = params.get("IndexName")
    return observe.Observation(
        operation=operation,
        table=observe.tables(params),
        index=index if isinstance(index, str) else None,
        outcome=label,
        latency=time.perf_counter() - start,
        attempts=state.attempts,
        status=outcome.status if outcome is not None else None,
        request_id=metadata.get("RequestId"),
        consumed_capacity=total,
        capacity_by_index=split,
        items_returned=returned,
        items_read=read,
        throttling_reasons=tuple(reasons),
        access_pattern=observe.ACCESS_PATTERN.get(),
        consumed=observe.consumed_entries(parsed),
        cancellation_reasons=observe.cancellation_codes(parsed) if code else (),
        started_at=started_at,
    )


Hook = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Operation:
    """What the hooks get as ``model``: the operation's name, as botocore's operation model has it."""

    name: str


def after_call(hooks: Sequence[Hook], operation: str, parsed: Mapping[str, Any]) -> None:
    """Run the ``after_call`` hooks on an answered call (one raising replaces the answer)."""
    for hook in tuple(hooks):
        hook(parsed=parsed, model=Operation(operation), operation=operation, http_response=None)


def answered_by_hook(hooks: Sequence[Hook], operation: str, body: bytes, url: str) -> dict[str, Any] | None:
    """The answer a ``before_call`` hook gave instead of a request being sent, if one did."""
    request_dict = {"body": body, "url": url, "url_path": "/", "headers": {}, "context": {}}
    for hook in tuple(hooks):
        answer = hook(params=request_dict, model=Operation(operation), operation=operation)
        if answer is not None:
            http_response, parsed = answer
            status = getattr(http_response, "status_code", 200)
            answered = dict(parsed)
            metadata = dict(answered.get("ResponseMetadata") or {})
            metadata.setdefault("HTTPStatusCode", status)
            metadata.setdefault("HTTPHeaders", {})
            answered["ResponseMetadata"] = metadata
            return answered
    return None


def sent_by_hook(hooks: Sequence[Hook], operation: str, request: Request) -> Outcome | None:
    """The outcome a ``before_send`` hook gave this attempt (an answer, or what it raised)."""
    headers: Any = HeadersDict()  # as botocore prepares it: utf-8 bytes values
    for name, value in request.headers.items():
        headers[name] = value.encode("utf-8")
    prepared = AWSPreparedRequest(request.method, request.url, headers, request.body, stream_output=False)
    for hook in tuple(hooks):
        try:
            response = hook(request=prepared, operation=operation)
        except Exception as exc:  # the hook's fault stands for the transport's
            return Outcome(error=exc)
        if response is not None:
            raw = response.content
            status = int(response.status_code)
            answered = {str(name).lower(): str(value) for name, value in response.headers.items()}
            return Outcome(status=status, headers=answered, body=raw,
                           parsed=parse(operation, status, answered, raw))
    return None


def hooked(before: Sequence[Hook], after: Sequence[Hook], operation: str, body: bytes,
           url: str) -> Outcome | None:
    """The outcome a ``before_call`` hook gave instead of the call being sent (``after_call`` hooks
    run on it), or ``None`` when no hook answered."""
    answered = answered_by_hook(before, operation, body, url) if before else None
    if answered is None:
        return None
    after_call(after, operation, answered)
    return Outcome(status=answered["ResponseMetadata"]["HTTPStatusCode"], parsed=answered)


def settled(operation: str, outcome: Outcome, state: CallState, retry: RetryPolicy,
            after: Sequence[Hook]) -> dict[str, Any]:
    """The result of a call whose last attempt ended with ``outcome``: the transport error when it
    got no answer, else the answer (``ClientError`` for an error) after the ``after_call`` hooks,
    a success refilling the retry quota."""
    if outcome.parsed is None:
        raise unanswered(outcome, state)
    if outcome.status is not None and 200 <= outcome.status < 300:
        retry.succeeded(state)
    after_call(after, operation, outcome.parsed)
    return finish(operation, dict(outcome.parsed), retries=state.attempts - 1, retry_metadata=state.metadata)
