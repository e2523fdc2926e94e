"""AWS Lambda handlers over the repositories: an HTTP API (API Gateway payload 2.0) and a stream consumer.

``handle`` serves::

    POST /users                     {"email": ..., "name": ...}          -> 201 the user
    GET  /users/{user_id}                                                -> 200 the user
    POST /users/{user_id}/orders    {"amount": 12.5}                     -> 201 the order
    GET  /users/{user_id}/orders    ?limit=20&cursor=...                 -> 200 a page of orders
    POST /orders/{user_id}/{order_id}/status  {"status": "PAID"}         -> 200 the order

A request is routed by its ``routeKey`` when the API declares these routes, otherwise by its method
and path (the SAM template of ``python -m migrations export`` sends every request through one
``ANY /{proxy+}`` route). Bodies are JSON whose numbers are read as ``Decimal`` (``12.5`` is exactly
12.5, never a float); money is returned as a string with its declared two places (``"12.50"``).
The creating routes take an ``Idempotency-Key`` header: the same key with the same body returns the
first result and writes nothing, with another body 422.

Errors of the tree become status codes: ``InvalidInput`` 400, ``NotFound`` 404, ``AlreadyExists``
and ``ConflictError`` 409, ``IdempotencyKeyReused`` 422, ``WriteOutcomeUnknown`` 503 (the body says
what to retry), anything else 500 with no detail in the response; that one is logged at ERROR on the
``logging`` logger of this module with the Lambda request id, the route and the error's type (and,
for a configuration or infrastructure error, its message, which names the fix), never a request
body, key or item.

``on_stream`` decodes a DynamoDB Streams batch into typed ``(old, new)`` entities. At the first
record it cannot handle it stops and reports that record's sequence number (partial batch
responses, ``ReportBatchItemFailures``): Lambda retries the batch from that record, so no later
record of the shard is handled before it. Configuration is the environment (``TABLE_NAME``,
``DATALAYER_CURSOR_SECRET``, the timeouts); the AWS region and credentials come from Lambda itself.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from core.errors import (
    AlreadyExists,
    ConfigurationError,
    ConflictError,
    DataLayerError,
    IdempotencyKeyReused,
    InfrastructureError,
    InvalidInput,
    NotFound,
    WriteOutcomeUnknown,
)
from models import Order, TableModel, User
from repositories import orders, streams, users

Response = dict[str, Any]
Params = dict[str, Any]  # path or query parameters, the body, the headers (names in lower case)
ChangeHandler = Callable[[str, TableModel | None, TableModel | None], None]

logger = logging.getLogger(__name__)

_STATUS = ((InvalidInput, 400), (NotFound, 404), (AlreadyExists, 409), (ConflictError, 409),
           (IdempotencyKeyReused, 422), (WriteOutcomeUnknown, 503))
IDEMPOTENCY_HEADER = "idempotency-key"  # API Gateway hands header names on in lower case


def _create_user(path: Params, query: Params, body: Params,
                 headers: Params) -> Response:
    user = users.create_user(_field(body, "email"), _field(body, "name"),
                             idempotency_key=_field(headers, IDEMPOTENCY_HEADER))
    return _json(201, _user(user))


def _get_user(path: Params, query: Params, body: Params,
              headers: Params) -> Response:
    return _json(200, _user(users.get_user(_field(path, "user_id"))))


def _place_order(path: Params, query: Params, body: Params,
                 headers: Params) -> Response:
    order = orders.place_order(_field(path, "user_id"), _field(body, "amount"),
                               idempotency_key=_field(headers, IDEMPOTENCY_HEADER))
    return _json(201, _order(order))


def _list_orders(path: Params, query: Params, body: Params,
                 headers: Params) -> Response:
    page = orders.get_user_orders(_field(path, "user_id"), limit=_int(query.get("limit", "20")),
                                  cursor=_field(query, "cursor"))
    return _json(200, {"items": [_order(o) for o in page.items], "next_cursor": page.next_cursor})


def _move_order(path: Params, query: Params, body: Params,
                headers: Params) -> Response:
    order = orders.get_order(_field(path, "user_id"), _field(path, "order_id"))
    return _json(200, _order(orders.set_order_status(order, _field(body, "status"))))


Route = Callable[[Params, Params, Params, Params], Response]
ROUTES: dict[str, Route] = {
    "POST /users": _create_user,
    "GET /users/{user_id}": _get_user,
    "POST /users/{user_id}/orders": _place_order,
    "GET /users/{user_id}/orders": _list_orders,
    "POST /orders/{user_id}/{order_id}/status": _move_order,
}


def _pattern(route_key: str) -> re.Pattern[str]:
    """``GET /users/{user_id}`` as a regular expression over ``METHOD /path``, one group a parameter."""
    parts = re.split(r"\{(\w+)\}", route_key)
    return re.compile("".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)"
                              for i, part in enumerate(parts)) + r"\Z")


_PATTERNS = [(key, _pattern(key), route) for key, route in ROUTES.items()]


def _route(event: dict[str, Any]) -> tuple[str, Route, Params] | None:
    """The route of ``event`` (its key, function and path parameters); ``None`` when none matches."""
    key = event.get("routeKey", "")
    if key in ROUTES:
        return key, ROUTES[key], dict(event.get("pathParameters") or {})
    http = (event.get("requestContext") or {}).get("http") or {}
    request = f"{http.get('method', '')} {event.get('rawPath', '')}"
    for route_key, pattern, route in _PATTERNS:
        match = pattern.match(request)
        if match:
            return route_key, route, {name: unquote(value) for name, value in match.groupdict().items()}
    return None


def handle(event: dict[str, Any], context: Any = None) -> Response:
    """Route one API Gateway (HTTP API, payload 2.0) request to a repository function."""
    found = _route(event)
    if found is None:
        return _json(404, {"error": "no such route"})
    key, route, path = found
    try:
        body = _body(event.get("body"))
        headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
        return route(path, event.get("queryStringParameters") or {}, body, headers)
    except json.JSONDecodeError:
        return _json(400, {"error": "the body is not JSON"})
    except DataLayerError as exc:
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                return _json(status, {"error": type(exc).__name__, "message": str(exc)})
        _log_internal_error(exc, key, context)
        return _json(500, {"error": "internal error"})
    except Exception as exc:
        _log_internal_error(exc, key, context)
        return _json(500, {"error": "internal error"})


def on_stream(
    event: dict[str, Any], context: Any = None, *, changed: ChangeHandler | None = None
) -> Response:
    """Decode the records of a DynamoDB Streams batch, in order, into typed entities and hand them on.

    ``changed(event_name, old, new)`` is called for each record of an entity this layer declares
    (records of types nobody declares are skipped). At the first record that fails, the batch
    stops: its sequence number is the one item of ``batchItemFailures``, and Lambda retries from it.
    """
    for record in event.get("Records", []):
        try:
            old, new = streams.decode_stream_record(record, on_unknown="skip")
            if (old or new) is not None and changed is not None:
                changed(record["eventName"], old, new)
        except Exception as exc:
            sequence_number = (record.get("dynamodb") or {}).get("SequenceNumber")
            _log_internal_error(exc, f"stream record {sequence_number}", context)
            return {"batchItemFailures": [{"itemIdentifier": sequence_number}]}
    return {"batchItemFailures": []}


def _body(text: str | None) -> Params:
    """The request body: a JSON object, its numbers as ``Decimal``; ``{}`` when there is none."""
    if not text:
        return {}
    body = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def _no_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not a number JSON allows")


def _log_internal_error(exc: BaseException, where: str, context: Any) -> None:
    """One ERROR record: the request id, where, the error's type; a message only when it is the
    layer's own about configuration or infrastructure (other messages may hold request data)."""
    request_id = getattr(context, "aws_request_id", None)
    detail = f": {exc}" if isinstance(exc, ConfigurationError | InfrastructureError) else ""
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))  # code, no values
    logger.error("internal error in %s (request %s): %s%s\n%s", where, request_id,
                 type(exc).__name__, detail, frames.rstrip(), extra={"aws_request_id": request_id})


def _field(params: Params, name: str) -> Any:
    """A request's value, as sent (the repository functions check it); ``None`` when absent."""
    return params.get(name)


def _int(text: Any) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise InvalidInput("limit must be a whole number") from None


def _user(user: User) -> dict[str, Any]:
    return {"user_id": user.user_id, "email": user.email, "name": user.name, "version": user.version}


def _order(order: Order) -> dict[str, Any]:
    return {"user_id": order.user_id, "order_id": order.order_id, "amount": format(order.amount, "f"),
            "status": order.status.value, "version": order.version}


def _json(status: int, body: Any) -> Response:
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body, default=lambda v: str(v) if isinstance(v, Decimal) else None)}
