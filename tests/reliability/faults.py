"""Faults injected at botocore's ``before-send`` event of the models' client.

A handler of ``before-send`` sees each HTTP attempt (botocore's retries included) just before it
goes on the wire. It can answer instead of the server (return an ``AWSResponse``), fail the
attempt (raise a transport error) or let it through. The kinds, as a client meets them:

- ``throttle``: a 400 ``ThrottlingException``, nothing sent (botocore backs off and retries);
- ``server_error``: a 500 ``InternalServerError``, nothing sent (retried too);
- ``reset``: ``ConnectionClosedError`` before anything is sent (retried as a transport error);
- ``lost``: the request is sent for real and applied, then ``ReadTimeoutError``: the answer is lost
  and botocore sends the very same request again;
- ``delay``: sent for real after a short sleep, the answer delivered normally.

``FaultInjector`` either follows a schedule armed for the next attempts (``arm``), or faults each
attempt with a probability (``rate``), choosing the kind with its own seeded generator.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from core.engine.sync import LeanClient
from models import TableModel
from tests.helpers import RawBody, off, on

KINDS = ("throttle", "server_error", "reset", "lost", "delay")
READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "DescribeTable"})
_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
    "server_error": (500, "InternalServerError", "Internal server error"),
}


def error_response(url: str, kind: str) -> AWSResponse:
    """The answer DynamoDB gives for a throttled request or an internal error (JSON 1.0 protocol)."""
    status, code, message = _ERRORS[kind]
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    headers = {"x-amzn-RequestId": uuid.uuid4().hex, "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, status, HTTPHeaders.from_dict(headers), RawBody(body.encode()))


def operation_of(request: Any) -> str:
    """The DynamoDB operation of a prepared request (``DynamoDB_20120810.PutItem`` -> ``PutItem``)."""
    target = request.headers.get("X-Amz-Target", b"")
    return (target.decode() if isinstance(target, bytes) else str(target)).rpartition(".")[2]


class FaultInjector:
    """A ``before-send`` handler; ``install()`` puts it first on the models' client."""

    def __init__(
        self,
        seed: int,
        *,
        rate: float = 0.0,
        delay: tuple[float, float] = (0.01, 0.15),
        faults_reads: bool = True,
    ) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.delay = delay
        self.faults_reads = faults_reads
        self.injected: Counter[str] = Counter()
        self.attempts = 0
        self._schedule: deque[str | None] = deque()
        self._http = URLLib3Session()
        self._client: Any = None

    # --- control ---

    def install(self) -> FaultInjector:
        """Register on the client every entity shares (the current settings' one)."""
        self._client = TableModel._get_connection().connection.client
        on(self._client, "before-send.dynamodb", self, first=True)
        return self

    def uninstall(self) -> None:
        """Unregister (the client is shared with whatever runs next)."""
        if self._client is not None:
            off(self._client, "before-send.dynamodb", self)
            self._client = None

    def arm(self, schedule: Sequence[str | None]) -> None:
        """The next attempts get these faults in order (``None``: let that one through)."""
        self._schedule = deque(schedule)

    def disarm(self) -> None:
        """No scheduled fault is left."""
        self._schedule.clear()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No fault while the block runs (a caller's own reads, between faulted calls)."""
        rate, schedule = self.rate, self._schedule
        self.rate, self._schedule = 0.0, deque()
        try:
            yield
        finally:
            self.rate, self._schedule = rate, schedule

    def refill_retry_quota(self) -> int | None:
        """Give the client's retry quota (standard mode: 500, a retry costs 5 or 14) back in full, as a
        fresh process would have it; return what was left (``None`` if botocore keeps it elsewhere).

        Without this the deliberate faults of phase 1 drain it within a round, and from then on no
        call is retried at all: the paths that recognise a re-sent write's own effect go untested.
        """
        if self._client is None:
            return None
        if isinstance(self._client, LeanClient):  # the lean transport's quota is public
            quota = self._client.retry.quota
            left, quota.available = quota.available, quota.max_capacity
            return left
        emitter = getattr(self._client.meta.events, "_emitter", None)
        handlers = getattr(emitter, "_handlers", None)
        if handlers is None:
            return None
        for handler in handlers.prefix_search("needs-retry.dynamodb.PutItem"):
            quota = getattr(getattr(getattr(handler, "__self__", None), "_retry_quota", None), "_quota", None)
            if quota is not None and hasattr(quota, "_available_capacity"):
                left: int = quota.available_capacity
                quota._available_capacity = quota._max_capacity
                return left
        return None

    def injected_total(self) -> int:
        """How many faults were injected so far."""
        return sum(self.injected.values())

    # --- the handler ---

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.attempts += 1
        if not self.faults_reads and operation_of(request) in READS:
            return None
        if self._schedule:
            kind = self._schedule.popleft()
        elif self.rate and self.rng.random() < self.rate:
            kind = self.rng.choice(KINDS)
        else:
            kind = None
        if kind is None:
            return None
        self.injected[kind] += 1
        if kind in _ERRORS:
            return error_response(request.url, kind)
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "delay":
            time.sleep(self.rng.uniform(*self.delay))
            response: AWSResponse = self._http.send(request)
            return response
        self._http.send(request)  # "lost": DynamoDB applies it...
        raise ReadTimeoutError(endpoint_url=request.url)  # ...and the answer never arrives
