"""Build DynamoDB's data-plane requests and decode their answers, without I/O.

``build(operation, params, endpoint=..., credentials=..., amz_date=...)`` gives the ``Request`` a
transport sends: ``POST /`` with the body, ``Content-Type``, ``X-Amz-Target`` and SigV4 headers
botocore would send. ``decode(operation, status, headers, body)`` gives what botocore's client
returns for that answer, or raises the ``ClientError`` it raises (``parse`` stops short of both, for
the retry loop).

The body: botocore's JSON serializer walks the service model and then calls ``json.dumps`` on the
copy it built, converting only binary values (``B``, ``BS``: base64) on the way. So ``json.dumps``
of the parameters is botocore's body byte for byte (same keys, same order) unless a binary value is
present; then the attribute values alone are walked (``core.engine.shapes.INPUT_VALUES``) and
encoded as botocore encodes them (a ``str`` under ``B`` is base64 of its UTF-8, as there). The
encoder skips ``json.dumps``'s check for circular references (same bytes; the parameters are
built by the layer, never circular).
``TransactWriteItems`` without ``ClientRequestToken`` gets a fresh UUID, as botocore adds one; the
body is built once per call, so every attempt re-sends the same token.

The answer: successful bodies are read with ``orjson`` and their items checked and decoded in place
(``core.engine.decoding``); error answers follow botocore's JSON error parsing, including the
modeled members of the error (``CancellationReasons``, ``ThrottlingReasons``, ``Item``, ``message``).
"""

from __future__ import annotations

import base64
import http.client
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import orjson
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError
from botocore.parsers import ResponseParserError

from core.engine import decoding
from core.engine.shapes import (
    AV,
    AV_MEMBERS,
    BLOB,
    ERRORS,
    IDEMPOTENCY_TOKENS,
    INPUT_MEMBERS,
    INPUT_VALUES,
    OUTPUTS,
    ListOf,
    MapOf,
    Plan,
    Struct,
)
from core.engine.signing import Signature, host_header, sign_json_post

TARGET_PREFIX: Final = "DynamoDB_20120810"
CONTENT_TYPE: Final = "application/x-amz-json-1.0"
SERVICE: Final = "dynamodb"
USER_AGENT: Final = "dynamo-datalayer-engine/1"
_AV_PLANS: Final[dict[str, Plan]] = dict(AV_MEMBERS)
# ``json.dumps``'s output (the same separators and escaping), without its check for cycles.
_dumps: Final = json.JSONEncoder(check_circular=False).encode


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go: the URL, the ``Host`` that is signed, the region they are signed for."""

    url: str
    host: str
    region: str


def endpoint_for(endpoint_url: str | None, region: str) -> Endpoint:
    """The endpoint of the settings: ``AWS_ENDPOINT_URL_DYNAMODB`` as given (its path kept, as
    botocore keeps it), else the region's public endpoint ``https://dynamodb.<region>.amazonaws.com``."""
    base = endpoint_url or f"https://{SERVICE}.{region}.amazonaws.com"
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
    return Endpoint(url=url, host=host_header(url), region=region)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, ready to send."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


# --- the body --------------------------------------------------------------------------------


def serialize(operation: str, params: Mapping[str, Any]) -> bytes:
    """The body botocore sends for ``operation`` with ``params``.

    Raises ``ValueError`` for an operation outside the data plane and botocore's
    ``ParamValidationError`` for a parameter the operation does not take.
    """
    members = INPUT_MEMBERS.get(operation)
    if members is None:
        raise ValueError(f"{operation!r} is not a DynamoDB data-plane operation")
    unknown = [name for name in params if name not in members]
    if unknown:
        raise ParamValidationError(
            report=f"Unknown parameter in input: {unknown[0]!r}, must be one of: {', '.join(sorted(members))}"
        )
    token = IDEMPOTENCY_TOKENS.get(operation)
    if token is not None and token not in params:
        params = {**params, token: str(uuid.uuid4())}
    try:
        body = _dumps(params)
    except TypeError:  # bytes: binary attribute values
        return _dumps(_encode(INPUT_VALUES[operation], params)).encode("utf-8")
    if '"B": ' in body or '"BS": ' in body:  # possibly a str under B: botocore encodes it too
        return _dumps(_encode(INPUT_VALUES[operation], params)).encode("utf-8")
    return body.encode("utf-8")


def _encode(plan: Plan, value: Any) -> Any:
    """A copy of ``value`` with its binary values base64-encoded, as botocore's serializer does."""
    if type(plan) is Struct:
        members = dict(plan.members)
        return {key: _encode(members[key], member) if key in members else member
                for key, member in value.items()}
    if type(plan) is MapOf:
        return {key: _encode(plan.value, member) for key, member in value.items()}
    if type(plan) is ListOf:
        return [_encode(plan.member, member) for member in value]
    if plan == AV:
        return {tag: _encode(_AV_PLANS[tag], inner) for tag, inner in value.items()}
    if plan == BLOB:
        data = value.encode("utf-8") if isinstance(value, str) else value
        return base64.b64encode(data).strip().decode("utf-8")
    return value


# --- the request -----------------------------------------------------------------------------


def signed(operation: str, body: bytes, *, endpoint: Endpoint, credentials: ReadOnlyCredentials,
           amz_date: str) -> tuple[Request, Signature]:
    """The request carrying ``body``, signed at ``amz_date`` (``YYYYMMDDTHHMMSSZ``), and its signature."""
    if credentials.access_key is None or credentials.secret_key is None:
        raise NoCredentialsError()
    target = f"{TARGET_PREFIX}.{operation}"
    headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": target, "Host": endpoint.host,
               "X-Amz-Date": amz_date}
    if credentials.token:
        headers["X-Amz-Security-Token"] = credentials.token
    signature = sign_json_post(endpoint.url, host=endpoint.host, content_type=CONTENT_TYPE, target=target,
                               body=body, access_key=credentials.access_key,
                               secret_key=credentials.secret_key, token=credentials.token,
                               amz_date=amz_date, region=endpoint.region, service=SERVICE)
    headers["Authorization"] = signature.authorization
    headers["User-Agent"] = USER_AGENT  # never signed
    return Request("POST", endpoint.url, headers, body), signature


def build(operation: str, params: Mapping[str, Any], *, endpoint: Endpoint, credentials: ReadOnlyCredentials,
          amz_date: str) -> Request:
    """The signed request for ``operation`` with ``params`` (see ``serialize`` and ``signed``)."""
    request, _ = signed(operation, serialize(operation, params), endpoint=endpoint, credentials=credentials,
                        amz_date=amz_date)
    return request


# --- the answer ------------------------------------------------------------------------------


def parse(operation: str, status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """What botocore's parser (and its modeled-error pass) makes of an answer: the result, or for
    an error the ``Error``, modeled members and ``ResponseMetadata`` (without ``RetryAttempts``)."""
    plan = OUTPUTS.get(operation)
    if plan is None:
        raise ValueError(f"{operation!r} is not a DynamoDB data-plane operation")
    lowered = {name.lower(): headers[name] for name in headers}  # botocore's lowercase_dict
    if status >= 301:
        parsed = _error(status, lowered, body)
    else:
        parsed = _result(plan, body)
        if "x-amzn-requestid" in lowered:
            parsed["ResponseMetadata"] = {"RequestId": lowered["x-amzn-requestid"]}
    metadata = parsed.get("ResponseMetadata", {})
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = lowered
    parsed["ResponseMetadata"] = metadata
    if status >= 301:
        modeled = ERRORS.get(parsed["Error"].get("Code"))
        if modeled is not None:
            parsed.update(decoding.faithful(modeled, _json(body)))
    return parsed


def decode(operation: str, status: int, headers: Mapping[str, str], body: bytes, *, retries: int = 0,
           retry_metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What botocore's client returns for this answer; for a status of 300 or more, the
    ``ClientError`` it raises, with the same ``response``. ``retries``: the attempts before this one
    (``RetryAttempts``); ``retry_metadata``: what botocore's retry handler noted
    (``MaxAttemptsReached``, ``RetryQuotaReached``)."""
    return finish(operation, parse(operation, status, headers, body), retries=retries,
                  retry_metadata=retry_metadata)


def finish(operation: str, parsed: dict[str, Any], *, retries: int,
           retry_metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Complete a parsed answer as botocore's endpoint and client do: retry metadata, then the
    result or its ``ClientError``."""
    metadata = parsed["ResponseMetadata"]
    if retry_metadata:
        metadata.update(retry_metadata)
    metadata["RetryAttempts"] = retries
    if metadata["HTTPStatusCode"] >= 300:
        raise ClientError(parsed, operation)  # type: ignore[arg-type]  # botocore's stubs want a TypedDict
    return parsed


def _result(plan: Struct, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        loaded = orjson.loads(body)
        if type(loaded) is dict:
            result: dict[str, Any] = decoding.fast(plan, loaded)
            return result
    except (orjson.JSONDecodeError, decoding.Irregular):
        pass
    decoded = decoding.faithful(plan, _json(body))
    if decoded is None:  # a body of "null"
        raise ResponseParserError("a DynamoDB response body of null")
    return dict(decoded)


def _json(body: bytes) -> Any:
    """botocore's ``_parse_body_as_json``: ``{}`` for no body, ``{"message": text}`` for one that is
    not JSON."""
    if not body:
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResponseParserError("a DynamoDB response body that is not UTF-8") from exc
    try:
        return json.loads(text)
    except ValueError:
        return {"message": text}


def _error(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    stripped = body.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):  # a proxy's page, or nothing
        return {"Error": {"Code": str(status), "Message": http.client.responses.get(status, "")},
                "ResponseMetadata": {}}
    data = _json(body)
    if not isinstance(data, dict):
        raise ResponseParserError("a DynamoDB error body that is not a JSON object")
    error: dict[str, Any] = {"Error": {"Message": data.get("message", data.get("Message", "")), "Code": ""},
                             "ResponseMetadata": {}}
    code = data.get("__type", str(status))
    if code is not None:
        if not isinstance(code, str):
            raise ResponseParserError("a DynamoDB error code that is not a string")
        if ":" in code:
            code = code.split(":", 1)[0]
        if "#" in code:
            code = code.rsplit("#", 1)[1]
        query_error = headers.get("x-amzn-query-error")
        if query_error is not None:
            parts = query_error.split(";")
            if len(parts) == 2 and parts[0]:
                error["Error"]["QueryErrorCode"] = code
                error["Error"]["Type"] = parts[1]
                code = parts[0]
        error["Error"]["Code"] = code
    if "x-amzn-requestid" in headers:
        error["ResponseMetadata"]["RequestId"] = headers["x-amzn-requestid"]
    return error


def error_code(parsed: Mapping[str, Any] | None) -> str | None:
    """The error code of a parsed answer (``None`` for a success)."""
    if parsed is None:
        return None
    error = parsed.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
