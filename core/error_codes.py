"""DynamoDB's error codes and the mapping of errors no caller expects into the error tree.

Shared by the write path (``models.sending``) and the repositories: an error code is read the same
way from a PynamoDB exception, a botocore ``ClientError`` or a cancelled transaction.

Infrastructure failures (``infrastructure_problem``) become the ``InfrastructureError`` that names
the fix. A connection that was never made is ``EndpointUnreachable`` only when no attempt of the
request reached the endpoint: botocore retries a refused connection, and an earlier attempt may
have been sent and applied (a read timeout, then the server gone). ``watch_attempts`` registers the
botocore hook that tells; a write whose attempts it did not watch stays ``WriteOutcomeUnknown``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from core.config import get_settings, is_loopback_endpoint
from core.errors import (
    AccessDenied,
    ConfigurationError,
    CredentialsExpired,
    CredentialsRejected,
    DataLayerError,
    EndpointUnreachable,
    InfrastructureError,
    TableMissing,
    Throttled,
)

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
RESOURCE_NOT_FOUND_EXCEPTION = "ResourceNotFoundException"  # no such table (or index), or not ACTIVE
MISSING_INDEX_MESSAGE = "does not have the specified index"  # a ValidationException's message
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
# Credentials DynamoDB does not accept (STS and the signer use the same codes for every service).
CREDENTIALS_REJECTED_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId",
    "MissingAuthenticationTokenException", "IncompleteSignature",
})
CREDENTIALS_EXPIRED_CODES = frozenset({"ExpiredTokenException", "ExpiredToken", "RequestExpired"})
# No connection was made, so nothing of the request was sent. A read timeout, or a connection closed
# after the request was written (``ConnectionClosedError``), may have been applied.
NOT_CONNECTED = (EndpointConnectionError, ConnectTimeoutError)


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
    source = _source(exc)
    if isinstance(source, (NoCredentialsError, PartialCredentialsError)):
        return ConfigurationError(NO_CREDENTIALS)
    if isinstance(source, NoRegionError):
        return ConfigurationError(NO_REGION)
    return None


def raise_unexpected(exc: BaseException, what: str, *, index: str | None = None) -> NoReturn:
    """Map an error no access pattern expects into the error tree, keeping ``exc`` as the cause.

    Missing settings become ``ConfigurationError``, infrastructure failures their
    ``InfrastructureError`` (``index``: the index a query used, named when it is missing); throttling
    that outlived botocore's retries is ``Throttled`` (a ``RetriesExhausted``), which a caller can
    meet by trying later; anything else becomes a plain ``DataLayerError``. For a read: a write
    must first rule out an unknown outcome (``models.sending``).
    """
    problem = configuration_problem(exc)
    if problem is not None:
        raise problem from exc
    infrastructure = infrastructure_problem(exc, what, index=index)
    if infrastructure is not None:
        raise infrastructure from exc
    code = error_code(exc)
    raise DataLayerError(f"{what} failed: {code or type(_source(exc)).__name__}") from exc


# --- infrastructure ------------------------------------------------------------------------------

# Set on the exception botocore raises when no attempt of its request reached the endpoint, and kept
# in the request's context once one did (``watch_attempts``).
NOTHING_SENT = "datalayer_nothing_sent"
_SENT = "datalayer_sent"


def watch_attempts(client: Any) -> Any:
    """Register, once, the hook that marks a connection error after which nothing was sent; return
    ``client``. botocore asks ``needs-retry`` after every attempt, the last one included, so the
    exception it raises has passed through the hook."""
    client.meta.events.register("needs-retry.dynamodb", _note_attempt, unique_id="datalayer-attempts")
    return client


def _note_attempt(request_dict: Mapping[str, Any] | None = None,
                  caught_exception: BaseException | None = None, **_: Any) -> None:
    context = request_dict.get("context") if isinstance(request_dict, Mapping) else None
    if not isinstance(context, dict):
        return None
    if isinstance(caught_exception, NOT_CONNECTED) and not context.get(_SENT):
        setattr(caught_exception, NOTHING_SENT, True)
    else:  # an answer, or a failure after the request may have been written
        context[_SENT] = True
    return None  # botocore's own handler decides whether to retry


def nothing_sent(exc: BaseException) -> bool:
    """True when no attempt of the request behind ``exc`` reached the endpoint (see ``watch_attempts``)."""
    source = _source(exc)
    return isinstance(source, NOT_CONNECTED) and getattr(source, NOTHING_SENT, False) is True


def infrastructure_problem(exc: BaseException, what: str, *, write: bool = False, table: str | None = None,
                           index: str | None = None) -> InfrastructureError | None:
    """The ``InfrastructureError`` that names the fix for ``exc`` (or its cause), or ``None``.

    ``write``: a connection error is ``EndpointUnreachable`` only if nothing was sent (otherwise
    the write's outcome is unknown, for the caller to report). ``table`` defaults to the configured
    table; ``index`` is the index a query used.
    """
    source = _source(exc)
    if isinstance(source, NOT_CONNECTED):
        return None if write and not nothing_sent(exc) else _unreachable(source, what, write=write)
    code = error_code(exc)
    if code is None:
        return None
    if is_throttling(exc):
        return throttled(exc, f"{what}: DynamoDB throttled the request on every attempt ({code})")
    return _refused(exc, code, what, table or get_settings().table_name, index)


def _refused(exc: BaseException, code: str, what: str, table: str,
             index: str | None) -> InfrastructureError | None:
    detail = _detail(exc, code)
    if code == RESOURCE_NOT_FOUND_EXCEPTION:
        return _missing(what, detail, table, index)
    if code == "ValidationException" and MISSING_INDEX_MESSAGE in _message(exc):
        named = _message(exc).partition(MISSING_INDEX_MESSAGE)[2].strip(" :") or None
        return _missing(what, detail, table, index or named, index_missing=True)
    if code in ACCESS_DENIED_CODES:
        action = f"dynamodb:{_operation(exc) or '?'}"
        resource = f"table {table}" + (f", index {index}" if index else "")
        return AccessDenied(
            f"{what}: the AWS credentials in use may not call {action} on {resource} ({detail}): give "
            "the role or user the app runs as the policy `python -m migrations policy --role app` "
            "prints (`--role migrations` for the migrations)", action=action, resource=resource,
        )
    if code in CREDENTIALS_EXPIRED_CODES:
        clock = (" (RequestExpired also means this machine's clock is off by minutes: check it)"
                 if code == "RequestExpired" else "")
        return CredentialsExpired(
            f"{what}: the AWS credentials have expired ({detail}): refresh them (`aws sso login` for an "
            "SSO profile, or a new session: assume the role again, new temporary keys) and call again; "
            "a long-running process should take them from a profile or role, which botocore refreshes, "
            f"not from fixed environment variables{clock}"
        )
    if code in CREDENTIALS_REJECTED_CODES:
        return CredentialsRejected(
            f"{what}: DynamoDB does not accept the AWS credentials ({detail}): check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (`aws sts get-caller-identity` tells whose they are); "
            "keys for DynamoDB Local are refused by AWS, so check AWS_ENDPOINT_URL_DYNAMODB too"
        )
    return None


def throttled(exc: BaseException | None, message: str, unprocessed: Sequence[Any] = (), *,
              written: Sequence[Any] = ()) -> Throttled:
    """A ``Throttled`` whose message adds DynamoDB's reasons (from ``exc``) and what to do."""
    reasons = throttling_reasons(exc) if exc is not None else []
    listed = "; ".join(
        " ".join(str(part) for part in (
            f"item {reason['item']}:" if "item" in reason else None, reason.get("reason"),
            f"on {reason['resource']}" if reason.get("resource") else None,
        ) if part)
        for reason in reasons
    )
    because = f"; DynamoDB's reasons: {listed}" if listed else ""
    fix = _throttling_fix(reasons, error_code(exc) if exc is not None else None)
    return Throttled(f"{message}{because}. {fix}", unprocessed, written=written, throttling_reasons=reasons)


def throttling_reasons(exc: BaseException) -> list[dict[str, Any]]:
    """DynamoDB's ``ThrottlingReasons`` (``reason``, ``resource``) from the error response, or for a
    cancelled transaction its throttled items (``item`` index, ``reason`` code, ``message``)."""
    found: list[dict[str, Any]] = []
    for response in _responses(exc):
        for key in ("ThrottlingReasons", "throttlingReasons"):  # ThrottlingException's member is camelCase
            for reason in response.get(key) or ():
                if isinstance(reason, Mapping):
                    found.append({name: reason[name] for name in ("reason", "resource") if name in reason})
        for position, item in enumerate(response.get("CancellationReasons") or ()):
            if isinstance(item, Mapping) and item.get("Code") in THROTTLING_REASONS:
                entry = {"item": position, "reason": item["Code"]}
                if item.get("Message"):
                    entry["message"] = item["Message"]
                found.append(entry)
        if found:
            return found
    return found


def _throttling_fix(reasons: Sequence[Mapping[str, Any]], code: str | None) -> str:
    kinds = " ".join([str(reason.get("reason", "")) for reason in reasons] + [code or ""])
    if "KeyRange" in kinds:
        return ("Try again later, with backoff; one key (or a few) takes more than a partition serves: "
                "spread the writes (write-sharding) or cache the reads of that hot key")
    if "MaxOnDemandThroughput" in kinds:
        return ("Try again later, with backoff; or raise the table's (or index's) maximum on-demand "
                "throughput, which caps it")
    if "AccountLimit" in kinds or "RequestLimitExceeded" in kinds:
        return "Try again later, with backoff; or ask AWS for a higher account throughput quota"
    return ("Try again later, with backoff. If it persists: find the hot key (CloudWatch Contributor "
            "Insights), and check the table's capacity (an on-demand table's maximum throughput, a "
            "provisioned table's capacity units or auto scaling, the account's quotas)")


def _unreachable(source: BaseException, what: str, *, write: bool) -> EndpointUnreachable:
    settings = get_settings()
    tried = getattr(source, "kwargs", {}).get("endpoint_url") or settings.endpoint_url
    endpoint = str(tried).rstrip("/") if tried else None
    where = endpoint or f"DynamoDB's endpoint in {settings.region}"
    outcome = "nothing was sent, so nothing was written" if write else "nothing was sent"
    if endpoint is not None and is_loopback_endpoint(endpoint):
        fix = (f"nothing listens at {endpoint}: start the local DynamoDB with `make db-start`, and point "
               "this shell at it with `eval \"$(make -s db-env)\"` (AWS_ENDPOINT_URL_DYNAMODB must name "
               "its port)")
    else:
        fix = ("check AWS_ENDPOINT_URL_DYNAMODB (unset: the region's endpoint, from AWS_REGION or "
               "AWS_DEFAULT_REGION), this machine's network and any proxy on the way")
    return EndpointUnreachable(
        f"{what}: cannot connect to {where} ({type(source).__name__}); {outcome}. To fix: {fix}",
        endpoint=endpoint,
    )


def _missing(what: str, detail: str, table: str, index: str | None, *,
             index_missing: bool = False) -> TableMissing:
    settings = get_settings()
    where = settings.endpoint_url or f"region {settings.region}"
    if index_missing:
        problem = f"the table {table!r} at {where} has no index {index!r} (or it is not ACTIVE yet)"
    else:
        used = f", whose index {index!r} the query used," if index else ""
        problem = f"the table {table!r}{used} does not exist at {where} (or is not ACTIVE yet)"
    return TableMissing(
        f"{what}: {problem} ({detail}): create it with `make migrate` (`python -m migrations upgrade`; "
        "`python -m migrations status` says what is pending), or set TABLE_NAME to the table to use",
        table=table, index=index,
    )


def _source(exc: BaseException) -> BaseException:
    """The botocore exception behind a PynamoDB one (PynamoDB keeps it as ``cause``)."""
    if isinstance(exc, PynamoDBException) and exc.cause is not None:
        return exc.cause
    return exc


def _responses(exc: BaseException) -> Iterator[Mapping[str, Any]]:
    """The parsed error responses behind ``exc``: PynamoDB's ``VerboseClientError`` keeps only the
    error and the cancellation reasons; botocore's own exception, its ``__cause__``, keeps the rest."""
    seen: BaseException | None = _source(exc)
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, Mapping):
            yield response
        seen = seen.__cause__ if isinstance(seen, ClientError) else None


def _message(exc: BaseException) -> str:
    for response in _responses(exc):
        message = response.get("Error", {}).get("Message")
        if isinstance(message, str) and message:
            return message
    return ""


def _detail(exc: BaseException, code: str) -> str:
    message = _message(exc)
    return f"{code}: {message}" if message else code


def _operation(exc: BaseException) -> str | None:
    source = _source(exc)
    name = getattr(source, "operation_name", None)
    return name if isinstance(name, str) else None

