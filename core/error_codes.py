"""DynamoDB's error codes and the mapping of errors no caller expects into the error tree.

Shared by the write path (``models.writes``) and the repositories: an error code is read the same
way from a PynamoDB exception, a botocore ``ClientError`` or a cancelled transaction.
"""

from __future__ import annotations

from typing import NoReturn

from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from core.errors import ConfigurationError, DataLayerError, RetriesExhausted

# DynamoDB's error codes, in the two places they appear. A cancelled transaction's error code is
# TRANSACTION_CANCELED_EXCEPTION, and each item's reason carries a code without "Exception".
CONDITION_FAILED = "ConditionalCheckFailed"  # cancellation reason
TRANSACTION_CONFLICT = "TransactionConflict"  # cancellation reason
THROTTLING_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})  # reasons
CONDITIONAL_CHECK_FAILED_EXCEPTION = "ConditionalCheckFailedException"  # a single write's error
TRANSACTION_CANCELED_EXCEPTION = "TransactionCanceledException"
TRANSACTION_CONFLICT_EXCEPTION = "TransactionConflictException"
IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION = "IdempotentParameterMismatchException"
# The throttling and limit codes botocore already retried (botocore/retries/standard.py) before
# the error reached us.
THROTTLING_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "LimitExceededException", "Throttling", "TooManyRequestsException",
})


def error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code behind a PynamoDB or botocore exception, if any."""
    if isinstance(exc, PynamoDBException):
        # Not ``cause_response_code``: it raises AttributeError when the cause is a transport
        # error (a read timeout carries ``response=None``).
        source: BaseException | None = exc.cause
    else:
        source = exc
    response = getattr(source, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def cancellation_codes(exc: BaseException) -> list[str | None]:
    """Per-item cancellation codes of a cancelled transaction (``None`` where the item was fine)."""
    parsed = getattr(exc, "cancellation_reasons", None)  # PynamoDB's errors, VerboseClientError too
    if isinstance(exc, TransactWriteError) or parsed:
        return [reason.code if reason is not None else None for reason in parsed or ()]
    if isinstance(exc, ClientError):
        raw: list[dict[str, str]] = exc.response.get("CancellationReasons") or []  # type: ignore[assignment]
        return [None if r.get("Code") in (None, "None") else r.get("Code") for r in raw]
    return []


def is_throttling(exc: BaseException) -> bool:
    """True if DynamoDB throttled the request (or an item of a cancelled transaction)."""
    if error_code(exc) in THROTTLING_CODES:
        return True
    return any(code in THROTTLING_REASONS for code in cancellation_codes(exc))


NO_REGION = (
    "no AWS region is configured: set AWS_REGION or AWS_DEFAULT_REGION (or AWS_ENDPOINT_URL_DYNAMODB "
    "to use a local DynamoDB; `python -m core.localdb start` starts one)"
)
NO_CREDENTIALS = (
    "no AWS credentials were found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run "
    "where an instance or task role provides them (DynamoDB Local accepts any non-empty values)"
)


def configuration_problem(exc: BaseException) -> ConfigurationError | None:
    """A ``ConfigurationError`` with the fix, when ``exc`` (or its cause) is missing region or credentials.

    Nothing was sent then: botocore could not sign the request.
    """
    source = exc.cause if isinstance(exc, PynamoDBException) else exc
    if isinstance(source, (NoCredentialsError, PartialCredentialsError)):
        return ConfigurationError(NO_CREDENTIALS)
    if isinstance(source, NoRegionError):
        return ConfigurationError(NO_REGION)
    return None


def raise_unexpected(exc: BaseException, what: str) -> NoReturn:
    """Map an error no access pattern expects into the error tree, keeping ``exc`` as the cause.

    Throttling (botocore retries it before we see it) becomes ``RetriesExhausted``, which a
    caller can meet by trying later; anything else becomes a plain ``DataLayerError``.
    """
    problem = configuration_problem(exc)
    if problem is not None:
        raise problem from exc
    code = error_code(exc)
    if is_throttling(exc):
        raise RetriesExhausted(f"{what}: DynamoDB kept throttling the request") from exc
    raise DataLayerError(f"{what} failed: {code or type(exc).__name__}") from exc
