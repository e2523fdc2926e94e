"""A real DynamoDB stream (DynamoDB Local's) decodes into typed (old, new) entities."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import botocore.session
import pytest

from core.client import new_client
from core.config import Settings
from models import Product
from repositories.streams import decode_stream_record

pytestmark = pytest.mark.integration


def read_stream(settings: Settings, wanted: int) -> list[dict[str, Any]]:
    """Every record of the table's latest stream, shard by shard, until ``wanted`` came (bounded)."""
    arn = new_client(settings).describe_table(TableName=settings.table_name)["Table"]["LatestStreamArn"]
    streams = botocore.session.get_session().create_client(
        "dynamodbstreams", region_name=settings.region, endpoint_url=settings.endpoint_url
    )
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for _ in range(20):  # an open shard always hands out a next iterator: bound the polling
            if iterator is None or len(records) >= wanted:
                break
            page = streams.get_records(ShardIterator=iterator)
            records += page["Records"]
            iterator = page.get("NextShardIterator")
    return records


def test_insert_modify_and_remove_decode_into_typed_entities(local_table: Settings) -> None:
    client, product_id = new_client(local_table), uuid.uuid4().hex
    created = Product(product_id=product_id, name="Lamp", price=Decimal("10.00"), version=1)
    key = {"PK": {"S": created.pk}, "SK": {"S": created.sk}}
    client.put_item(TableName=local_table.table_name, Item=created.serialize())
    client.update_item(
        TableName=local_table.table_name, Key=key,
        UpdateExpression="SET Price = :p, Version = Version + :one",
        ExpressionAttributeValues={":p": {"N": "12.5"}, ":one": {"N": "1"}},
    )  # fmt: skip
    client.delete_item(TableName=local_table.table_name, Key=key)

    records = read_stream(local_table, 3)

    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    decoded = [decode_stream_record(r) for r in records]
    (none, inserted), (before, after), (removed, gone) = decoded
    assert none is None and gone is None
    for entity in (inserted, before, after, removed):
        assert isinstance(entity, Product) and entity.product_id == product_id
    assert isinstance(inserted, Product) and isinstance(after, Product) and isinstance(removed, Product)
    assert (inserted.price, inserted.version) == (Decimal("10.00"), 1)
    assert before is not None and before.price == Decimal("10.00")
    assert (after.price, after.version) == (Decimal("12.5"), 2)
    assert (removed.price, removed.version) == (Decimal("12.5"), 2)
