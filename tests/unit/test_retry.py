"""core.retry: the bounded full-jitter policy, and which errors botocore already retries.

The botocore tests ask the installed botocore's own standard-mode retry conditions, so an
upgrade that changes what it retries fails here rather than silently doubling (or dropping)
retries in the repositories.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.retries.standard import RetryContext, StandardRetryConditions

from core.client import retry_config
from core.config import get_settings
from core.errors import InvalidInput
from core.retry import BOTOCORE_RETRIED_CODES, RetryPolicy, retried_by_botocore

STATUS = {"InternalServerError": 500, "ServiceUnavailable": 503}


def botocore_retries(code: str, operation: str) -> bool:
    """Whether botocore's standard mode would retry this DynamoDB error on its first attempt."""
    model = botocore.session.get_session().get_service_model("dynamodb").operation_model(operation)
    context = RetryContext(
        attempt_number=1,
        operation_model=model,
        parsed_response={"Error": {"Code": code, "Message": "x"}},
        http_response=AWSResponse("https://dynamodb.invalid", STATUS.get(code, 400), HTTPHeaders(), None),
    )
    return bool(StandardRetryConditions(max_attempts=3).is_retryable(context))


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[float, float]]]:
    """Record the jitter window of every backoff (``random.uniform``'s bounds) and wait its top."""
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", uniform)
    yield seen


@pytest.mark.parametrize("code", sorted(BOTOCORE_RETRIED_CODES))
def test_every_code_we_leave_to_botocore_is_retried_by_botocore(code: str) -> None:
    operation = "PutItem" if code == "ReplicatedWriteConflictException" else "TransactWriteItems"
    assert botocore_retries(code, operation)
    assert retried_by_botocore(code)


@pytest.mark.parametrize(
    "code",
    ["TransactionCanceledException", "TransactionConflictException", "ConditionalCheckFailedException",
     "IdempotentParameterMismatchException", "ValidationException"],
)
def test_botocore_does_not_retry_cancellations_and_conflicts_so_the_layer_does(code: str) -> None:
    assert not botocore_retries(code, "TransactWriteItems")
    assert not retried_by_botocore(code)


def test_a_transport_error_counts_as_retried_by_botocore() -> None:
    assert retried_by_botocore(None)


def test_every_client_uses_botocores_standard_mode_with_the_configured_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "3")
    assert retry_config(get_settings()) == {"mode": "standard", "total_max_attempts": 4}


def test_call_retries_only_the_given_error_with_full_jitter_and_reraises_the_last(
    windows: list[tuple[float, float]],
) -> None:
    slept: list[float] = []
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(len(attempts))
        raise KeyError(len(attempts))

    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=0.3, sleep=slept.append)
    with pytest.raises(KeyError) as raised:
        policy.call(KeyError, flaky)
    assert raised.value.args == (4,)
    assert windows[:3] == [(0, 0.1), (0, 0.2), (0, 0.3)]  # lower bound 0: full jitter; doubling, capped
    assert slept == [0.1, 0.2, 0.3]  # no wait after the last attempt


def test_call_does_not_retry_other_errors() -> None:
    calls: list[Any] = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("not retryable")

    with pytest.raises(ValueError, match="not retryable"):
        RetryPolicy(sleep=lambda _: None).call(KeyError, broken)
    assert len(calls) == 1


def test_call_returns_the_first_success() -> None:
    results = iter([KeyError(), KeyError(), "done"])

    def step() -> str:
        result = next(results)
        if isinstance(result, BaseException):
            raise result
        return result

    assert RetryPolicy(sleep=lambda _: None).call(KeyError, step) == "done"


def test_until_done_returns_what_is_left_when_attempts_run_out() -> None:
    steps: list[list[int]] = []

    def step(pending: list[int]) -> list[int]:
        steps.append(pending)
        return pending[1:]

    left = RetryPolicy(max_attempts=2, sleep=lambda _: None).until_done(step, [1, 2, 3])
    assert steps == [[1, 2, 3], [2, 3]]
    assert left == [3]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"max_attempts": 1.5}, {"max_attempts": True}, {"base_delay": -1},
     {"max_delay": float("nan")}, {"sleep": None}],
)
def test_retry_policy_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        RetryPolicy(**kwargs)
