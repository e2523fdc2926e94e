"""core.fast_parse against DynamoDB Local: what a real engine sends decodes as botocore decodes it.

Items holding every attribute type (binary and binary sets inside maps and lists included) are
written with a raw client, then read back with GetItem, Query, Scan and BatchGetItem through a
data-layer client (fast path installed) and through a plain botocore client. The results must be
equal, and botocore's own parser must never have seen the fast client's items.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import botocore.session
import pytest

from core.client import new_client
from core.config import Settings
from core.fast_parse import is_installed

pytestmark = pytest.mark.integration

BLOB = bytes(range(256))
MARKER = "read-back-marker"


def every_type(pk: str, number: int) -> dict[str, Any]:
    """An item with every attribute type; botocore takes ``bytes`` for binary values."""
    return {
        "PK": {"S": pk},
        "SK": {"S": f"ITEM#{number:03d}"},
        "Marker": {"S": MARKER},
        "Unicode": {"S": "Zoë — 東京 🚀 \"quoted\" back\\slash \n"},
        "Number": {"N": str(Decimal(number) / 8)},
        "Binary": {"B": BLOB[number:]},
        "Strings": {"SS": ["a", "ü", "🚀"]},
        "Numbers": {"NS": ["1", "2.5", "-3"]},
        "Binaries": {"BS": [b"\x00", b"\xff\xfe", BLOB]},
        "Null": {"NULL": True},
        "Flag": {"BOOL": number % 2 == 0},
        "Map": {"M": {
            "Bin": {"B": b"in a map"},
            "Set": {"BS": [b"x", b"y"]},
            "Inner": {"M": {"List": {"L": [{"B": b"in a list in a map"}, {"N": "1"},
                                           {"BS": [b"deep"]}, {"M": {}}]}}},
        }},
        "List": {"L": [{"S": "s"}, {"L": [{"B": b"in a list in a list"}]}, {"BOOL": False}, {"NULL": True}]},
    }


def plain_client(settings: Settings) -> Any:
    """A botocore client without the fast path."""
    return botocore.session.get_session().create_client(
        "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url
    )


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    """The response less ``ResponseMetadata`` (request ids and dates differ between two calls)."""
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def same_metadata(fast: dict[str, Any], plain: dict[str, Any]) -> None:
    fast_metadata, plain_metadata = fast["ResponseMetadata"], plain["ResponseMetadata"]
    assert list(fast_metadata) == list(plain_metadata)
    assert fast_metadata["HTTPStatusCode"] == plain_metadata["HTTPStatusCode"] == 200
    assert fast_metadata["RetryAttempts"] == plain_metadata["RetryAttempts"] == 0
    assert set(fast_metadata["HTTPHeaders"]) == set(plain_metadata["HTTPHeaders"])


@pytest.fixture
def seeded(local_table: Settings) -> tuple[Settings, str, list[dict[str, Any]]]:
    """Five items of every attribute type in one partition of the test's table, written raw."""
    pk = f"FASTPARSE#{uuid.uuid4().hex}"
    items = [every_type(pk, number) for number in range(5)]
    raw = new_client(local_table)
    for item in items:
        raw.put_item(TableName=local_table.table_name, Item=item)
    return local_table, pk, items


def read_both(settings: Settings, bodies: list[bytes], operation: str, **params: Any) -> tuple[Any, Any]:
    """``operation`` through a fast and a plain client; checks botocore never parsed the fast one's items."""
    fast_client, plain = new_client(settings), plain_client(settings)
    assert is_installed(fast_client)
    bodies.clear()
    fast = getattr(fast_client, operation)(**params)
    assert bodies and not any(MARKER.encode() in body for body in bodies)
    bodies.clear()
    slow = getattr(plain, operation)(**params)
    assert any(MARKER.encode() in body for body in bodies)  # the spy sees botocore's full parse
    same_metadata(fast, slow)
    return fast, slow


def test_get_item_of_every_type_reads_as_botocore_reads_it(
    seeded: tuple[Settings, str, list[dict[str, Any]]], botocore_bodies: list[bytes]
) -> None:
    settings, _, items = seeded
    fast, plain = read_both(settings, botocore_bodies, "get_item", TableName=settings.table_name,
                            Key={"PK": items[3]["PK"], "SK": items[3]["SK"]}, ConsistentRead=True,
                            ReturnConsumedCapacity="INDEXES")
    assert without_metadata(fast) == without_metadata(plain)
    assert repr(without_metadata(fast)) == repr(without_metadata(plain))
    item = fast["Item"]
    assert item["Binary"] == {"B": BLOB[3:]}
    assert sorted(item["Binaries"]["BS"]) == sorted([b"\x00", b"\xff\xfe", BLOB])
    assert item["Map"]["M"]["Inner"]["M"]["List"]["L"][0] == {"B": b"in a list in a map"}
    assert item["List"]["L"][1] == {"L": [{"B": b"in a list in a list"}]}
    assert fast["ConsumedCapacity"]["CapacityUnits"] == plain["ConsumedCapacity"]["CapacityUnits"]


@pytest.mark.parametrize("operation", ["query", "scan"])
def test_pages_of_every_type_read_as_botocore_reads_them(
    seeded: tuple[Settings, str, list[dict[str, Any]]], botocore_bodies: list[bytes], operation: str
) -> None:
    settings, pk, items = seeded
    params: dict[str, Any] = {"TableName": settings.table_name, "Limit": 2, "ConsistentRead": True,
                              "ReturnConsumedCapacity": "INDEXES"}
    if operation == "query":
        params |= {"KeyConditionExpression": "PK = :pk", "ExpressionAttributeValues": {":pk": {"S": pk}}}
    read: list[dict[str, Any]] = []
    while True:
        fast, plain = read_both(settings, botocore_bodies, operation, **params)
        assert without_metadata(fast) == without_metadata(plain)
        assert repr(without_metadata(fast)) == repr(without_metadata(plain))
        read.extend(fast["Items"])
        if "LastEvaluatedKey" not in fast:
            break
        params["ExclusiveStartKey"] = fast["LastEvaluatedKey"]
    assert [item["SK"] for item in read] == [item["SK"] for item in items]
    assert all(item["Map"]["M"]["Bin"] == {"B": b"in a map"} for item in read)


def test_batch_get_of_every_type_reads_as_botocore_reads_it(
    seeded: tuple[Settings, str, list[dict[str, Any]]], botocore_bodies: list[bytes]
) -> None:
    settings, pk, items = seeded
    keys = [{"PK": item["PK"], "SK": item["SK"]} for item in items]
    keys.append({"PK": {"S": pk}, "SK": {"S": "ITEM#missing"}})
    fast, plain = read_both(settings, botocore_bodies, "batch_get_item",
                            RequestItems={settings.table_name: {"Keys": keys, "ConsistentRead": True}},
                            ReturnConsumedCapacity="TOTAL")

    def by_key(response: dict[str, Any]) -> list[dict[str, Any]]:
        return sorted(response["Responses"][settings.table_name], key=lambda item: item["SK"]["S"])

    assert by_key(fast) == by_key(plain) and repr(by_key(fast)) == repr(by_key(plain))
    assert fast["UnprocessedKeys"] == plain["UnprocessedKeys"] == {}
    assert fast["ConsumedCapacity"] == plain["ConsumedCapacity"]
    assert [item["Binary"] for item in by_key(fast)] == [{"B": BLOB[number:]} for number in range(5)]
