"""The Lambda example on DynamoDB Local, invoked with real event shapes: an API Gateway HTTP API
(payload 2.0) request, and a DynamoDB Streams batch read from DynamoDB Local's own stream."""

from __future__ import annotations

import json
from typing import Any

from core.config import Settings
from examples.lambda_handler import handle, on_stream
from models import Order, TableModel, User
from tests.helpers import random_email, raw_scan
from tests.integration.test_streams_local import read_stream


def _request(route: str, *, path: dict[str, str] | None = None, query: dict[str, str] | None = None,
             body: Any = None) -> dict[str, Any]:
    method, _, raw_path = route.partition(" ")
    for name, value in (path or {}).items():
        raw_path = raw_path.replace("{" + name + "}", value)
    return {
        "version": "2.0", "routeKey": route, "rawPath": raw_path, "rawQueryString": "",
        "headers": {"content-type": "application/json"}, "queryStringParameters": query,
        "pathParameters": path,
        "requestContext": {"http": {"method": method, "path": raw_path}, "stage": "$default"},
        "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
    }


def _call(route: str, **kwargs: Any) -> tuple[int, Any]:
    response = handle(_request(route, **kwargs), None)
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_the_api_handler_serves_users_and_orders_with_typed_errors(local_table: Settings) -> None:
    email = random_email()
    status, user = _call("POST /users", body={"email": email.upper(), "name": "Ada"})
    assert status == 201 and user["email"] == email
    assert _call("POST /users", body={"email": email, "name": "Copy"})[0] == 409  # taken
    assert _call("POST /users", body={"email": "not-an-address", "name": "X"})[0] == 400
    assert _call("GET /users/{user_id}", path={"user_id": user["user_id"]}) == (200, user)
    assert _call("GET /users/{user_id}", path={"user_id": "nobody"})[0] == 404

    placed = [_call("POST /users/{user_id}/orders", path={"user_id": user["user_id"]}, body={"amount": a})
              for a in (12.5, "3")]  # a JSON number is read as a Decimal, never a float
    assert placed[0][1]["amount"] == "12.50"  # money with its two places
    assert [s for s, _ in placed] == [201, 201]
    mine, nobody = {"user_id": user["user_id"]}, {"user_id": "nobody"}
    assert _call("POST /users/{user_id}/orders", path=nobody, body={"amount": "1"})[0] == 404
    assert _call("POST /users/{user_id}/orders", path=mine, body={"amount": 0.125})[0] == 400  # 3 places

    status, page = _call("GET /users/{user_id}/orders", path=mine, query={"limit": "1"})
    assert status == 200 and len(page["items"]) == 1 and page["next_cursor"]
    status, rest = _call("GET /users/{user_id}/orders", path={"user_id": user["user_id"]},
                         query={"limit": "1", "cursor": page["next_cursor"]})
    assert {o["amount"] for o in page["items"] + rest["items"]} == {"12.50", "3.00"}

    order = placed[0][1]
    move = {"user_id": user["user_id"], "order_id": order["order_id"]}
    assert _call("POST /orders/{user_id}/{order_id}/status", path=move, body={"status": "PAID"})[0] == 200
    assert _call("POST /orders/{user_id}/{order_id}/status", path=move, body={"status": "PENDING"})[0] == 400
    assert _call("GET /nowhere")[0] == 404
    items = raw_scan(local_table)
    assert sum(i["EntityType"]["S"] == "ORDER" for i in items) == 2  # refused requests wrote nothing


def test_the_stream_handler_decodes_a_real_batch_into_typed_changes(local_table: Settings) -> None:
    status, user = _call("POST /users", body={"email": random_email(), "name": "Ada"})
    _call("POST /users/{user_id}/orders", path={"user_id": user["user_id"]}, body={"amount": "5"})
    records = read_stream(local_table, 3)  # the user, its claim, the order
    event = {"Records": [{**r, "eventSource": "aws:dynamodb", "awsRegion": local_table.region}
                         for r in records]}
    seen: list[tuple[str, type[TableModel] | None]] = []

    result = on_stream(event, None, changed=lambda name, old, new: seen.append((name, type(new))))

    assert status == 201 and result == {"batchItemFailures": []}
    assert ("INSERT", User) in seen and ("INSERT", Order) in seen
    broken = {"Records": [{"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "42"}}]}
    assert on_stream(broken, None) == {"batchItemFailures": [{"itemIdentifier": "42"}]}
