"""core.fast_serialize against DynamoDB Local: requests serialized by json.dumps are what botocore sends."""

from __future__ import annotations

import uuid
from typing import Any

import botocore.session
import pytest

from core.client import new_client
from core.config import Settings

pytestmark = pytest.mark.integration


def _item(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}, "Text": {"S": "Zoë — 東京 🚀 \"q\" \\ \n"},
            "N": {"N": "-12.50"}, "Set": {"SS": ["a", "ü"]}, "Nums": {"NS": ["1", "2.5"]},
            "Flag": {"BOOL": True}, "Null": {"NULL": True},
            "Map": {"M": {"L": {"L": [{"S": "x"}, {"M": {"n": {"N": "1"}}}]}}}}


def _plain(settings: Settings) -> Any:
    return botocore.session.get_session().create_client(
        "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url)


def test_every_write_and_read_request_serialized_by_json_dumps_is_applied_as_botocore_sends_it(
    local_table: Settings,
) -> None:
    fast, plain, table = new_client(local_table), _plain(local_table), local_table.table_name
    pk = f"FASTSER#{uuid.uuid4().hex}"
    fast.put_item(TableName=table, Item=_item(pk, "A"), ConditionExpression="attribute_not_exists(PK)")
    fast.update_item(TableName=table, Key={"PK": {"S": pk}, "SK": {"S": "A"}},
                     UpdateExpression="SET #n = #n + :one", ExpressionAttributeNames={"#n": "N"},
                     ExpressionAttributeValues={":one": {"N": "1"}})
    puts = [{"PutRequest": {"Item": _item(pk, f"B{i}")}} for i in range(3)]
    fast.batch_write_item(RequestItems={table: puts})
    fast.transact_write_items(ClientRequestToken=uuid.uuid4().hex, TransactItems=[
        {"Put": {"TableName": table, "Item": _item(pk, "C")}},
        {"ConditionCheck": {"TableName": table, "Key": {"PK": {"S": pk}, "SK": {"S": "A"}},
                            "ConditionExpression": "attribute_exists(PK)"}},
    ])
    fast.delete_item(TableName=table, Key={"PK": {"S": pk}, "SK": {"S": "B2"}})
    assert fast._serializer.fast_requests == 5

    stored = plain.query(TableName=table, KeyConditionExpression="PK = :pk",
                         ExpressionAttributeValues={":pk": {"S": pk}}, ConsistentRead=True)["Items"]
    by_sort_key = {item["SK"]["S"]: item for item in stored}
    assert sorted(by_sort_key) == ["A", "B0", "B1", "C"]
    assert by_sort_key["A"] == {**_item(pk, "A"), "N": {"N": "-11.5"}}
    assert by_sort_key["C"] == {**_item(pk, "C"), "N": {"N": "-12.5"}}  # DynamoDB normalizes numbers
    read = fast.query(TableName=table, KeyConditionExpression="PK = :pk", ConsistentRead=True,
                      ExpressionAttributeValues={":pk": {"S": pk}},
                      ExclusiveStartKey={"PK": {"S": pk}, "SK": {"S": "B0"}})
    assert [item["SK"]["S"] for item in read["Items"]] == ["B1", "C"]
    assert fast._serializer.fast_requests == 6


def test_a_request_holding_binary_values_goes_through_botocore_and_lands_as_bytes(
    local_table: Settings,
) -> None:
    fast, plain, table = new_client(local_table), _plain(local_table), local_table.table_name
    key = {"PK": {"S": f"FASTSER#{uuid.uuid4().hex}"}, "SK": {"S": "BIN"}}
    fast.put_item(TableName=table, Item={**key, "B": {"B": b"\x00\xff"}, "M": {"M": {"bs": {"BS": [b"x"]}}}})
    assert fast._serializer.fast_requests == 0
    item = plain.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert item["B"] == {"B": b"\x00\xff"} and item["M"] == {"M": {"bs": {"BS": [b"x"]}}}
