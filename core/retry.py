"""The retry policy: one place that says what is retried, how often, and how long to wait.

Two layers retry, and they must not retry the same thing (their attempts would multiply):

1. **botocore** (standard mode, ``core.client.retry_config``: ``total_max_attempts`` = 1 +
   ``DYNAMODB_MAX_RETRY_ATTEMPTS``) retries one HTTP request, re-sending it unchanged (same
   ``ClientRequestToken``) with exponential backoff and full jitter. Per
   ``botocore/retries/standard.py`` (``StandardRetryConditions``) that covers: connection errors
   and read timeouts, HTTP 500/502/503/504 (``InternalServerError``, ``ServiceUnavailable``),
   HTTP 429, and the error codes in ``BOTOCORE_RETRIED_CODES`` (its throttling list, which includes
   ``TransactionInProgressException``, plus what DynamoDB's service model marks retryable).
   ``botocore/data/_retry.json`` also lists ``TransactionInProgressException`` for DynamoDB; that
   file drives the ``legacy`` mode, which we do not use.
2. **RetryPolicy** (here, on tenacity) retries what botocore cannot see as retryable, because the
   request "succeeded" as HTTP or must be rebuilt: items a batch left unprocessed, and the reasons
   inside a ``TransactionCanceledException`` (``TransactionConflict``, ``ThrottlingError``,
   ``ProvisionedThroughputExceeded`` per item), and a condition that failed only because a
   concurrent writer moved on (metrics re-read before trying again).

So a repository never retries a code in ``BOTOCORE_RETRIED_CODES`` itself: when one reaches it,
botocore's attempts are spent already.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from core.engine import bridge
from core.errors import InvalidInput

if TYPE_CHECKING:  # tenacity is imported where it is used: most processes never need it
    from tenacity import Retrying

P = TypeVar("P")
R = TypeVar("R")

# The DynamoDB error codes botocore's standard mode retries by code (its ThrottledRetryableChecker
# and the service model's retryable shapes); 5xx and transport errors are retried by status/type.
BOTOCORE_RETRIED_CODES = frozenset({
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "LimitExceededException",
    "ReplicatedWriteConflictException",
    "InternalServerError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
})


def retried_by_botocore(code: str | None) -> bool:
    """Whether botocore already retried an error with this code (``None``: a transport error)."""
    return code is None or code in BOTOCORE_RETRIED_CODES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries, exponential backoff with full jitter (AWS's recommended policy).

    After attempt ``n`` the wait is uniform in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``
    seconds. ``sleep`` is injectable so tests need not wait.
    """

    max_attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 5.0
    sleep: Callable[[float], None] = bridge.sleep  # time.sleep, or awaited by an async caller

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidInput("max_attempts must be an int")
        if self.max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1")
        if not (self.base_delay >= 0 and self.max_delay >= 0):
            raise InvalidInput("delays must be >= 0")
        if not callable(self.sleep):
            raise InvalidInput("sleep must be callable")

    def retrying(self, **kwargs: Any) -> Retrying:
        """A ``tenacity.Retrying`` with this policy's stop, wait and sleep (``kwargs`` add the rest)."""
        from tenacity import Retrying, stop_after_attempt, wait_random_exponential

        return Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_random_exponential(multiplier=self.base_delay, max=self.max_delay),
            sleep=self.sleep,
            **kwargs,
        )

    def delay(self, attempt: int) -> float:
        """The wait after attempt ``attempt`` (1-based); see the class docstring."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))  # noqa: S311

    def call(
        self,
        retry_on: type[BaseException] | tuple[type[BaseException], ...],
        fn: Callable[..., R],
        *args: Any,
        **kwargs: Any,
    ) -> R:
        """Call ``fn(*args, **kwargs)``, again while it raises ``retry_on``; re-raise the last one.

        A plain loop: the first attempt, which nearly every call ends with, costs one ``try``.
        """
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except retry_on:
                if attempt >= self.max_attempts:
                    raise
            self.sleep(self.delay(attempt))
            attempt += 1

    def until_done(self, step: Callable[[list[P]], list[P]], pending: list[P]) -> list[P]:
        """Call ``step`` with what is pending until nothing is, or attempts run out; return what is left.

        An exception from ``step`` is not retried here (botocore retried it already if it could).
        """
        left = pending
        attempt = 1
        while True:
            left = step(left)
            if not left or attempt >= self.max_attempts:
                return left
            self.sleep(self.delay(attempt))
            attempt += 1
