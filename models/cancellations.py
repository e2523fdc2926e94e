"""What a refused write means: DynamoDB's error, or a transaction's cancellation reasons, decoded
into the error of the rule whose condition failed.

A failed condition becomes the error its step names (``AlreadyExists``, ``ConflictError``,
``NotFound``, ``InsufficientFunds``, ``IdempotencyKeyReused``); a condition that only means "a
concurrent writer moved on", a transaction conflict and item-level throttling become
``Contended``, so the write is planned and sent again (``models.sending.execute``); the rest is an
infrastructure error of the tree, or ``WriteOutcomeUnknown`` when no attempt got an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from core.engine.bridge import CallCancelled
from core.error_codes import (
    CONDITION_FAILED,
    CONDITIONAL_CHECK_FAILED_EXCEPTION,
    IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION,
    THROTTLING_CODES,
    THROTTLING_REASONS,
    TRANSACTION_CONFLICT,
    TRANSACTION_CONFLICT_EXCEPTION,
    configuration_problem,
    error_code,
    infrastructure_problem,
    raise_unexpected,
)
from core.errors import AlreadyExists, IdempotencyKeyReused, WriteOutcomeUnknown
from core.retry import retried_by_botocore
from models.planning import Step


class Contended(Exception):
    """A concurrent writer (or item-level throttling) won this attempt; send the write again (internal)."""

    def __init__(self, *, throttled: bool = False) -> None:
        super().__init__("throttled" if throttled else "contended")
        self.throttled = throttled


def raise_for(exc: BaseException, steps: list[Step], what: str,
              resolver: Callable[[], Any] | None = None) -> NoReturn:
    """Raise what ``exc``, DynamoDB's refusal of ``steps``, means: see the module docstring.
    ``resolver`` is what ``WriteOutcomeUnknown.resolve`` calls when no attempt got an answer."""
    problem = configuration_problem(exc)  # nothing was sent: botocore could not sign it
    if problem is not None:
        raise problem from exc
    code = error_code(exc)
    if code == CONDITIONAL_CHECK_FAILED_EXCEPTION and len(steps) == 1:
        _fail(steps[0], returned_item(exc), exc)
    found = reasons(exc)
    codes = [reason_code for reason_code, _ in found]
    if len(found) == len(steps):
        failed = [(step, item) for step, (reason_code, item) in zip(steps, found, strict=True)
                  if reason_code == CONDITION_FAILED]
        _raise_reused_key(failed, exc)
        for step, _ in failed:  # then a contended rule: planning again may succeed
            if step.retry:
                raise Contended() from exc
        # A concurrent writer can also turn a rule's exact arithmetic invalid (a sum past 38 digits).
        if any(step.retry and code == "ValidationError" for step, code in zip(steps, codes, strict=True)):
            raise Contended() from exc
        if failed:
            _fail(*failed[0], exc)
    if TRANSACTION_CONFLICT in codes or code == TRANSACTION_CONFLICT_EXCEPTION:
        raise Contended() from exc
    if any(reason_code in THROTTLING_REASONS for reason_code in codes):
        raise Contended(throttled=True) from exc  # botocore does not retry inside a cancellation
    if code == IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION:
        raise AlreadyExists(f"{what}: this request token was used for another request") from exc
    # A missing table, denied access, expired credentials, throttling; a refused connection only
    # when no attempt was sent (else the outcome is unknown, below).
    infrastructure = infrastructure_problem(exc, what, write=True, table=steps[0].kwargs.get("TableName"))
    if infrastructure is not None:
        raise infrastructure from exc
    if retried_by_botocore(code) and code not in THROTTLING_CODES:
        keys = [step.key for step in steps if step.op != "check"]
        lost = ("its task was cancelled after the request was sent" if isinstance(exc, CallCancelled)
                else f"{code or type(exc).__name__} on every attempt")
        raise WriteOutcomeUnknown(
            f"{what}: {lost}, so whether it was written is unknown; "
            "resolve() reads the items and tells, or call again with the same ids and idempotency key",
            keys, resolver=resolver,
        ) from exc
    raise_unexpected(exc, what)


def _raise_reused_key(failed: list[tuple[Step, dict[str, Any] | None]], exc: BaseException) -> None:
    """A reused idempotency key is reported before any other failed condition: it explains them
    (the entity exists because the key's first call created it), and sending again cannot help."""
    for step, item in failed:
        error = step.failure(item)
        if isinstance(error, IdempotencyKeyReused) and not step.retry:
            raise error from exc


def reasons(exc: BaseException) -> list[tuple[str | None, dict[str, Any] | None]]:
    """A cancelled transaction's reasons: (code, the item returned) for each of its operations."""
    parsed = getattr(exc, "cancellation_reasons", None) or ()
    return [(None, None) if r is None else (r.code, r.raw_item) for r in parsed]


def retry_attempts(exc: BaseException) -> int:
    """How many times botocore re-sent the request that ended in ``exc``."""
    for source in (exc, exc.__cause__):
        response = getattr(source, "response", None)
        metadata = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
        attempts = metadata.get("RetryAttempts")
        if isinstance(attempts, int):
            return attempts
    return 0


def returned_item(exc: BaseException) -> dict[str, Any] | None:
    """The item DynamoDB returned with a single write's failed condition (``ALL_OLD``), if any."""
    # PynamoDB's VerboseClientError keeps only the error; botocore's own exception has the item.
    for source in (exc, exc.__cause__):
        response = getattr(source, "response", None) or {}
        if isinstance(response, dict) and "Item" in response:
            found: dict[str, Any] = response["Item"]
            return found
    return None


def _fail(step: Step, old: dict[str, Any] | None, exc: BaseException) -> NoReturn:
    if step.retry:
        raise Contended() from exc
    raise step.failure(old) from exc
