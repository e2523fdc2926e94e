"""LeanClient against DynamoDB Local: every answer equals what a plain botocore client gets.

Two identical tables; the same script of requests runs through a plain botocore client on one and
through ``LeanClient`` on the other; results and errors (``ConditionalCheckFailedException`` with
its item, ``TransactionCanceledException`` with its reasons, ``ValidationException``,
``ResourceNotFoundException``) are compared with the table names and the per-answer headers set
aside. PynamoDB's connection is then driven through a ``LeanClient``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import VerboseClientError

from core import engine
from core.config import Settings
from core.engine.sync import LeanClient

pytestmark = pytest.mark.integration

BLOB = bytes(range(256))


def plain_client(settings: Settings) -> Any:
    """A botocore client with nothing of the data layer installed."""
    return botocore.session.get_session().create_client(
        "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url)


def create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GSI1PK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "GSI1", "Projection": {"ProjectionType": "ALL"}, "KeySchema": [
            {"AttributeName": "GSI1PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}]}],
    )


@pytest.fixture
def tables(local_endpoint: Settings) -> Iterator[tuple[Any, LeanClient, str, str]]:
    """A plain botocore client, a LeanClient, and a table for each; deleted afterwards."""
    botocore_client = plain_client(local_endpoint)
    names = (f"engine-a-{uuid.uuid4().hex[:8]}", f"engine-b-{uuid.uuid4().hex[:8]}")
    for name in names:
        create_table(botocore_client, name)
    lean = LeanClient(local_endpoint)
    yield botocore_client, lean, *names
    lean.close()
    for name in names:
        botocore_client.delete_table(TableName=name)


def every_type(pk: str, sk: str) -> dict[str, Any]:
    return {
        "PK": {"S": pk}, "SK": {"S": sk}, "GSI1PK": {"S": "STATUS#X"},
        "Text": {"S": "Zoë — 東京 🚀 \"q\" \\ \n"}, "Number": {"N": str(Decimal("1.125"))},
        "Binary": {"B": BLOB}, "Strings": {"SS": ["a", "ü"]}, "Numbers": {"NS": ["1", "-2.5"]},
        "Binaries": {"BS": [b"\x00", BLOB]}, "Null": {"NULL": True}, "Bool": {"BOOL": False},
        "Map": {"M": {"inner": {"L": [{"B": b"\xff"}, {"N": "3"}, {"M": {}}]}}}, "List": {"L": []},
    }


def script(table: str, token: str) -> list[tuple[str, dict[str, Any]]]:
    """Requests that reach every operation, every answer member the local engine fills, and errors."""
    key = {"PK": {"S": "USER#1"}, "SK": {"S": "PROFILE"}}
    capacity = {"ReturnConsumedCapacity": "INDEXES"}
    return [
        ("PutItem", {"TableName": table, "Item": every_type("USER#1", "PROFILE"), **capacity}),
        ("PutItem", {"TableName": table, "Item": every_type("USER#1", "PROFILE"), "ReturnValues": "ALL_OLD"}),
        ("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True, **capacity}),
        ("GetItem", {"TableName": table, "Key": {"PK": {"S": "nobody"}, "SK": {"S": "x"}}}),
        ("UpdateItem", {"TableName": table, "Key": key, "UpdateExpression": "SET #n = :n ADD Visits :one",
                        "ExpressionAttributeNames": {"#n": "Name"},
                        "ExpressionAttributeValues": {":n": {"B": b"\x01\x02"}, ":one": {"N": "1"}},
                        "ReturnValues": "ALL_NEW", **capacity}),
        ("PutItem", {"TableName": table, "Item": {"PK": {"S": "USER#1"}, "SK": {"S": "PROFILE"}},
                     "ConditionExpression": "attribute_not_exists(PK)",
                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
        ("BatchWriteItem", {"RequestItems": {table: [
            {"PutRequest": {"Item": every_type("USER#1", f"ORDER#{n:02d}")}} for n in range(20)
        ]}, **capacity}),
        ("Query", {"TableName": table, "KeyConditionExpression": "PK = :pk",
                   "ExpressionAttributeValues": {":pk": {"S": "USER#1"}}, "Limit": 7, **capacity}),
        ("Query", {"TableName": table, "IndexName": "GSI1", "KeyConditionExpression": "GSI1PK = :s",
                   "ExpressionAttributeValues": {":s": {"S": "STATUS#X"}}, "ScanIndexForward": False,
                   **capacity}),
        ("Query", {"TableName": table, "IndexName": "NoSuchIndex", "KeyConditionExpression": "PK = :pk",
                   "ExpressionAttributeValues": {":pk": {"S": "USER#1"}}}),
        ("Scan", {"TableName": table, "Segment": 0, "TotalSegments": 2,
                  "FilterExpression": "attribute_exists(Bool)", **capacity}),
        ("BatchGetItem", {"RequestItems": {table: {"Keys": [
            key, {"PK": {"S": "USER#1"}, "SK": {"S": "ORDER#03"}}, {"PK": {"S": "none"}, "SK": {"S": "none"}},
        ]}}, **capacity}),
        ("TransactWriteItems", {"TransactItems": [
            {"ConditionCheck": {"TableName": table, "Key": key,
                                "ConditionExpression": "attribute_not_exists(PK)",
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Put": {"TableName": table, "Item": {"PK": {"S": "USER#2"}, "SK": {"S": "PROFILE"}}}},
        ]}),
        ("TransactWriteItems", {"TransactItems": [
            {"Update": {"TableName": table, "Key": key, "UpdateExpression": "SET Version = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}}}},
            {"Put": {"TableName": table, "Item": {"PK": {"S": "USER#2"}, "SK": {"S": "PROFILE"}}}},
        ], "ClientRequestToken": token, **capacity}),
        ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": table, "Key": key}},
                                                {"Get": {"TableName": table, "Key": {"PK": {"S": "x"},
                                                                                     "SK": {"S": "y"}}}}],
                              **capacity}),
        ("DeleteItem", {"TableName": table, "Key": key, "ReturnValues": "ALL_OLD", **capacity}),
        ("GetItem", {"TableName": table, "Key": {"PK": {"S": "only the hash key"}}}),
        ("GetItem", {"TableName": f"missing-{table}", "Key": key}),
    ]


def answer(call: Any, operation: str, params: dict[str, Any], table: str) -> tuple[str, Any]:
    """The result or error of one call, with the table's name and per-answer headers set aside."""
    try:
        result = call(operation, params)
        kind = "ok"
    except ClientError as exc:
        result = exc.response
        kind = f"error {exc.response['Error']['Code']}"
    metadata = result.pop("ResponseMetadata")
    result = _renamed(result, table)
    headers = set(metadata.pop("HTTPHeaders"))
    metadata.pop("RequestId", None)
    return kind, (result, metadata, headers)


def _renamed(value: Any, table: str) -> Any:
    if isinstance(value, dict):
        return {("TABLE" if key == table else key): _renamed(member, table) for key, member in value.items()}
    if isinstance(value, list):
        return [_renamed(member, table) for member in value]
    if isinstance(value, str):
        return value.replace(table, "TABLE")
    return value


def test_every_operation_answers_as_through_botocore(tables: tuple[Any, LeanClient, str, str]) -> None:
    botocore_client, lean, table_a, table_b = tables
    observed: list[engine.Observation] = []
    engine.observers.append(observed.append)
    try:
        theirs = [answer(botocore_client._make_api_call, operation, params, table_a)
                  for operation, params in script(table_a, str(uuid.uuid4()))]
        ours = [answer(lean.call, operation, params, table_b)
                for operation, params in script(table_b, str(uuid.uuid4()))]
    finally:
        engine.observers.remove(observed.append)
    kinds = [kind for kind, _ in ours]
    assert kinds.count("ok") == 13
    assert {"error ConditionalCheckFailedException", "error TransactionCanceledException",
            "error ValidationException", "error ResourceNotFoundException"} <= set(kinds)
    for operation, mine, botocores in zip((op for op, _ in script(table_a, "")), ours, theirs, strict=True):
        assert mine == botocores, operation
    assert [o.operation for o in observed] == [op for op, _ in script(table_b, "")]
    query = observed[7]
    assert (query.table, query.outcome, query.items_returned, query.items_read) == (table_b, "ok", 7, 7)
    assert query.consumed_capacity is not None and "table" in query.capacity_by_index
    assert observed[9].outcome == "ValidationException" and observed[9].index == "NoSuchIndex"
    assert all(o.request_id for o in observed)


def test_pynamodb_sends_through_a_lean_client(tables: tuple[Any, LeanClient, str, str],
                                              local_endpoint: Settings) -> None:
    _, lean, table, _ = tables
    connection = Connection(host=local_endpoint.endpoint_url, region=local_endpoint.region)
    connection._client = lean  # type: ignore[assignment]
    assert connection.client is lean  # _request_signer is None: PynamoDB keeps it
    assert repr(connection) == f"Connection<{local_endpoint.endpoint_url}>"
    connection.dispatch("PutItem", {"TableName": table, "Item": every_type("USER#9", "PROFILE")})
    found = connection.dispatch("GetItem", {"TableName": table, "Key": {"PK": {"S": "USER#9"},
                                                                         "SK": {"S": "PROFILE"}}})
    assert found["Item"]["Binary"] == {"B": BLOB}
    with pytest.raises(VerboseClientError) as raised:
        connection.dispatch("TransactWriteItems", {"TransactItems": [{"ConditionCheck": {
            "TableName": table, "Key": {"PK": {"S": "USER#9"}, "SK": {"S": "PROFILE"}},
            "ConditionExpression": "attribute_not_exists(PK)"}}]})
    assert [reason.code if reason else None for reason in raised.value.cancellation_reasons] == [
        "ConditionalCheckFailed"]
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
