"""AWS Lambda handlers over the repositories: an HTTP API (API Gateway payload 2.0) and a stream consumer.

``handle`` serves::

    POST /users                     {"email": ..., "name": ...}          -> 201 the user
    GET  /users/{user_id}                                                -> 200 the user
    POST /users/{user_id}/orders    {"amount": "12.50"}                  -> 201 the order
    GET  /users/{user_id}/orders    ?limit=20&cursor=...                 -> 200 a page of orders
    POST /orders/{user_id}/{order_id}/status  {"status": "PAID"}         -> 200 the order

Errors of the tree become status codes: ``InvalidInput`` 400, ``NotFound`` 404, ``AlreadyExists``
and ``ConflictError`` 409, ``IdempotencyKeyReused`` 422, ``WriteOutcomeUnknown`` 503 (the body says
what to retry), anything else 500 with no detail. ``on_stream`` decodes a DynamoDB Streams batch
into typed ``(old, new)`` entities and reports the records it could not handle, so Lambda retries
only those (partial batch responses, ``ReportBatchItemFailures``). Configuration is the environment
(``TABLE_NAME``, ``DATALAYER_CURSOR_SECRET``); the AWS region and credentials come from Lambda
itself. """

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    WriteOutcomeUnknown,
)
from models import Order, TableModel, User
from repositories import orders, streams, users

Response = dict[str, Any]
ChangeHandler = Callable[[str, TableModel | None, TableModel | None], None]

_STATUS = ((InvalidInput, 400), (NotFound, 404), (AlreadyExists, 409), (ConflictError, 409),
           (IdempotencyKeyReused, 422), (WriteOutcomeUnknown, 503))


def _create_user(path: dict[str, str], query: dict[str, str], body: dict[str, Any]) -> Response:
    return _json(201, _user(users.create_user(body.get("email"), body.get("name"))))


def _get_user(path: dict[str, str], query: dict[str, str], body: dict[str, Any]) -> Response:
    return _json(200, _user(users.get_user(path.get("user_id"))))


def _place_order(path: dict[str, str], query: dict[str, str], body: dict[str, Any]) -> Response:
    return _json(201, _order(orders.place_order(path.get("user_id"), body.get("amount"))))


def _list_orders(path: dict[str, str], query: dict[str, str], body: dict[str, Any]) -> Response:
    page = orders.get_user_orders(path.get("user_id"), limit=_int(query.get("limit", "20")),
                                  cursor=query.get("cursor"))
    return _json(200, {"items": [_order(o) for o in page.items], "next_cursor": page.next_cursor})


def _move_order(path: dict[str, str], query: dict[str, str], body: dict[str, Any]) -> Response:
    order = orders.get_order(path.get("user_id"), path.get("order_id"))
    return _json(200, _order(orders.set_order_status(order, body.get("status"))))


ROUTES: dict[str, Callable[[dict[str, str], dict[str, str], dict[str, Any]], Response]] = {
    "POST /users": _create_user,
    "GET /users/{user_id}": _get_user,
    "POST /users/{user_id}/orders": _place_order,
    "GET /users/{user_id}/orders": _list_orders,
    "POST /orders/{user_id}/{order_id}/status": _move_order,
}


def handle(event: dict[str, Any], context: Any = None) -> Response:
    """Route one API Gateway (HTTP API, payload 2.0) request to a repository function."""
    route = ROUTES.get(event.get("routeKey", ""))
    if route is None:
        return _json(404, {"error": "no such route"})
    try:
        body = json.loads(event["body"]) if event.get("body") else {}
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        return route(event.get("pathParameters") or {}, event.get("queryStringParameters") or {}, body)
    except json.JSONDecodeError:
        return _json(400, {"error": "the body is not JSON"})
    except DataLayerError as exc:
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                return _json(status, {"error": type(exc).__name__, "message": str(exc)})
        return _json(500, {"error": "internal error"})


def on_stream(
    event: dict[str, Any], context: Any = None, *, changed: ChangeHandler | None = None
) -> Response:
    """Decode every record of a DynamoDB Streams batch into typed entities and hand them on.

    ``changed(event_name, old, new)`` is called for each record of an entity this layer declares
    (records of types nobody declares are skipped). A record that fails is reported in
    ``batchItemFailures`` by its sequence number, so Lambda retries from there.
    """
    failures = []
    for record in event.get("Records", []):
        try:
            old, new = streams.decode_stream_record(record, on_unknown="skip")
            if (old or new) is not None and changed is not None:
                changed(record["eventName"], old, new)
        except Exception:
            failures.append({"itemIdentifier": record.get("dynamodb", {}).get("SequenceNumber")})
    return {"batchItemFailures": failures}


def _int(text: Any) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise InvalidInput("limit must be a whole number") from None


def _user(user: User) -> dict[str, Any]:
    return {"user_id": user.user_id, "email": user.email, "name": user.name, "version": user.version}


def _order(order: Order) -> dict[str, Any]:
    cents = order.amount.quantize(Decimal("0.01"))  # DynamoDB gives 12.50 back as 12.5
    return {"user_id": order.user_id, "order_id": order.order_id, "amount": format(cents, "f"),
            "status": order.status.value, "version": order.version}


def _json(status: int, body: Any) -> Response:
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body, default=lambda v: str(v) if isinstance(v, Decimal) else None)}
