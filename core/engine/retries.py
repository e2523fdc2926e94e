"""botocore's ``standard`` retry mode for DynamoDB, as decisions without I/O.

After each attempt the transport asks ``RetryPolicy.decide`` whether to send again and after how
long; the rules are botocore's (``botocore/retries/standard.py``, ``special.py``, ``quota.py``):

- **Attempts:** at most ``max_attempts`` (1 + ``DYNAMODB_MAX_RETRY_ATTEMPTS``). On the last one,
  whatever it returned, ``MaxAttemptsReached`` is noted in the answer's ``ResponseMetadata``.
- **What is retried:** transient failures (codes ``RequestTimeout``, ``RequestTimeoutException``,
  ``PriorRequestNotComplete``; HTTP 500, 502, 503, 504; a connection error, a read timeout or a
  connection closed mid-answer), throttling (botocore's list of throttling codes; a 429 whose code
  is not one of the operation's modeled errors), errors the operation's model marks retryable
  (``ReplicatedWriteConflictException``, for the writes that declare it), and a 2xx or error
  answer whose ``x-amz-crc32`` header does not match the CRC32 of its body. As in botocore, a
  mismatch on the last attempt is returned
  as it was parsed.
- **Backoff:** full jitter, ``random() * min(base * 2 ** (attempt - 1), 20)`` seconds, ``base`` 1 s
  for throttling and 25 ms otherwise (botocore's DynamoDB scale); an ``x-amz-retry-after`` header
  (milliseconds) raises the wait to that value, at most 5 s beyond the computed one.
- **Retry quota:** one per client, 500 units. A retry costs 5 when it follows throttling and 14
  otherwise; a call that succeeds gives back what its last retry cost, or 1 if it needed none.
  Without enough units the call is not retried (``RetryQuotaReached``).

**One departure, on purpose: a lost answer is always re-sent while attempts remain.** The quota
exists to stop a fleet from multiplying load on an endpoint that is already failing. But once an
attempt of a call was sent and no answer came back (a read timeout, a connection closed after the
request was written), DynamoDB may have applied it; only another attempt can tell. The write path
relies on that: a single write carries its own token and recognises its own effect when the re-sent
request's condition fails, and a transaction is re-sent under the same ``ClientRequestToken``, which
DynamoDB applies once. Refusing that re-send because the quota ran dry in a long-lived process
would turn a recoverable, safe situation into ``WriteOutcomeUnknown``. So from the first attempt of
a call that lost its answer, that call's retries neither need nor spend quota (they remain bounded
by ``max_attempts`` and wait their backoff). Every other retry, above all throttling and 5xx
answers, where re-sending is what an overloaded service must be spared, is bounded by the quota
exactly as botocore bounds it. A connection that could not be made sent nothing: stopping there
tells the truth (``EndpointUnreachable``, nothing written), so it spends quota as in botocore.
"""

from __future__ import annotations

import random
import threading
from binascii import crc32
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, HTTPClientError

from core.engine.shapes import OPERATION_ERRORS, RETRYABLE_ERRORS

TRANSIENT_CODES: Final = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})
TRANSIENT_EXCEPTIONS: Final = (BotocoreConnectionError, HTTPClientError)
THROTTLING_CODES: Final = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})
THROTTLING_STATUS: Final = 429
NOT_CONNECTED: Final = (EndpointConnectionError, ConnectTimeoutError)  # nothing of the request was sent

INITIAL_QUOTA: Final = 500
RETRY_COST: Final = 14
THROTTLING_RETRY_COST: Final = 5
NO_RETRY_INCREMENT: Final = 1
MAX_BACKOFF: Final = 20.0
THROTTLING_BASE: Final = 1.0
BASE: Final = 0.025
RETRY_AFTER_HEADER: Final = "x-amz-retry-after"
RETRY_AFTER_MAX_ADDITIONAL: Final = 5.0
CRC32_HEADER: Final = "x-amz-crc32"


class RetryQuota:
    """botocore's retry quota: capacity that retries spend and successes give back (thread-safe)."""

    def __init__(self, capacity: int = INITIAL_QUOTA) -> None:
        self.max_capacity = capacity
        self.available = capacity
        self._lock = threading.Lock()

    def acquire(self, amount: int) -> bool:
        """Spend ``amount`` if it is available."""
        with self._lock:
            if amount > self.available:
                return False
            self.available -= amount
            return True

    def release(self, amount: int) -> None:
        """Give back ``amount``, never beyond the initial capacity."""
        if self.available == self.max_capacity:
            return
        with self._lock:
            self.available += min(self.max_capacity - self.available, amount)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended: an answer (status, headers, body and what it parsed to) or an exception."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""
    parsed: Mapping[str, Any] | None = None
    error: BaseException | None = None

    @property
    def code(self) -> str | None:
        """The error code of the answer, if it is an error."""
        error = (self.parsed or {}).get("Error")
        code = error.get("Code") if isinstance(error, dict) else None
        return code if isinstance(code, str) else None


@dataclass(slots=True)
class CallState:
    """What the retry decisions of one call remember."""

    attempts: int = 0
    quota_spent: int | None = None  # the cost of the last retry, given back on success
    unanswered: bool = False  # an attempt was sent and its answer lost: re-sends are exempt from the quota
    sent: bool = False  # an attempt reached the endpoint (else a connection error means nothing was sent)
    metadata: dict[str, Any] = field(default_factory=dict)  # for the last answer's ResponseMetadata


@dataclass(frozen=True, slots=True)
class Decision:
    """Send again after ``delay`` seconds, or stop."""

    retry: bool
    delay: float = 0.0


class RetryPolicy:
    """botocore's standard mode for one client (see the module docstring, and its one departure)."""

    def __init__(self, max_attempts: int, *, quota: RetryQuota | None = None,
                 random: Callable[[], float] = random.random) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.quota = quota or RetryQuota()
        self._random = random

    def decide(self, operation: str, outcome: Outcome, state: CallState) -> Decision:
        """After attempt ``state.attempts`` ended with ``outcome``: retry, and after how long?"""
        error = outcome.error
        if error is None or not isinstance(error, NOT_CONNECTED):
            state.sent = True
            if error is not None:
                state.unanswered = True
        state.metadata = {}
        if state.attempts >= self.max_attempts:
            state.metadata["MaxAttemptsReached"] = True
            return Decision(False)
        if not self.retryable(operation, outcome):
            return Decision(False)
        throttling = self.throttling(operation, outcome)
        if not state.unanswered:
            cost = THROTTLING_RETRY_COST if throttling else RETRY_COST
            if not self.quota.acquire(cost):
                state.metadata["RetryQuotaReached"] = True
                return Decision(False)
            state.quota_spent = cost
        return Decision(True, self.delay(state.attempts, outcome, throttling=throttling))

    def succeeded(self, state: CallState) -> None:
        """A call ended with a 2xx answer: give back what its last retry cost (1 if none)."""
        self.quota.release(state.quota_spent if state.quota_spent is not None else NO_RETRY_INCREMENT)

    def retryable(self, operation: str, outcome: Outcome) -> bool:
        """botocore's conditions: transient, throttled, modeled retryable, or a CRC32 mismatch."""
        code = outcome.code
        if code in TRANSIENT_CODES or outcome.status in TRANSIENT_STATUSES:
            return True
        if outcome.error is not None:
            return isinstance(outcome.error, TRANSIENT_EXCEPTIONS)
        if self.throttling(operation, outcome):
            return True
        if code in RETRYABLE_ERRORS and code in OPERATION_ERRORS.get(operation, ()):  # modeled retryable
            return True
        return crc32_mismatch(outcome)

    @staticmethod
    def throttling(operation: str, outcome: Outcome) -> bool:
        """A throttling code, or a 429 whose code is not one of the operation's modeled errors."""
        code = outcome.code
        if code in THROTTLING_CODES:
            return True
        return outcome.status == THROTTLING_STATUS and code not in OPERATION_ERRORS.get(operation, ())

    def delay(self, attempt: int, outcome: Outcome, *, throttling: bool) -> float:
        """Full jitter on a truncated exponential, raised to ``x-amz-retry-after`` within 5 s."""
        base = THROTTLING_BASE if throttling else BASE
        delay: float = self._random() * min(base * 2 ** (attempt - 1), MAX_BACKOFF)
        retry_after = outcome.headers.get(RETRY_AFTER_HEADER)
        if retry_after is not None and outcome.status is not None:
            try:
                wanted = int(str(retry_after)) / 1000.0
            except (ValueError, OverflowError):
                return delay
            if wanted >= 0:
                return max(delay, min(wanted, RETRY_AFTER_MAX_ADDITIONAL + delay))
        return delay


def crc32_mismatch(outcome: Outcome) -> bool:
    """True when the answer carries ``x-amz-crc32`` and its body's CRC32 differs."""
    expected = outcome.headers.get(CRC32_HEADER)
    if expected is None or outcome.status is None:
        return False
    try:
        return crc32(outcome.body) & 0xFFFFFFFF != int(expected)
    except ValueError:
        return True  # an unreadable checksum proves nothing about the body: read it again
