"""Batches on DynamoDB Local, which enforces what moto does not: 25 items a request, one request
per key, 400 KB an item. The raw calls show each limit is real; batch.py keeps within them. The
version read that guards batch_write runs here against a real engine too."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.client import new_client
from core.config import Settings
from core.errors import AlreadyExists, InvalidInput
from models import Product
from repositories.batch import MAX_ITEM_BYTES, batch_get, batch_write, item_size

pytestmark = pytest.mark.integration

Item = dict[str, Any]


def product(product_id: str | None = None, **attrs: Any) -> Product:
    product_id = product_id or uuid.uuid4().hex
    return Product(product_id=product_id, name="lamp", price=Decimal("9.99"), attributes=attrs or None)


def count_items(client: Any, settings: Settings) -> int:
    pages = client.get_paginator("scan").paginate(TableName=settings.table_name, Select="COUNT")
    return sum(page["Count"] for page in pages)


def sized(total: int) -> Product:
    """A product whose item is ``total`` bytes as ``item_size`` counts them."""
    entity = product(blob="")
    base = item_size({**entity.serialize(), "Version": {"N": "1"}})  # with the Version batch_write adds
    entity.attributes = {"blob": "x" * (total - base)}
    entity.created_at = entity.updated_at = None
    return entity


def test_dynamodb_local_rejects_a_raw_batch_of_26_items(local_table: Settings) -> None:
    client = new_client(local_table)
    requests = [{"PutRequest": {"Item": product().serialize()}} for _ in range(26)]
    with pytest.raises(ClientError) as raised:
        client.batch_write_item(RequestItems={local_table.table_name: requests})
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert count_items(client, local_table) == 0


def test_batch_write_of_more_than_25_items_writes_them_all(local_table: Settings) -> None:
    entities = [product() for _ in range(61)]

    batch_write(entities)

    client = new_client(local_table)
    assert count_items(client, local_table) == 61
    found = batch_get(Product, [(e.pk, e.sk) for e in entities], consistent_read=True)
    assert [p.product_id for p in found] == [e.product_id for e in entities]
    assert all(p.version == 1 for p in found)


def test_dynamodb_local_rejects_a_raw_batch_with_one_key_twice(local_table: Settings) -> None:
    twice = product().serialize()
    with pytest.raises(ClientError):
        new_client(local_table).batch_write_item(
            RequestItems={local_table.table_name: [{"PutRequest": {"Item": twice}}] * 2}
        )


def test_an_over_size_item_is_refused_before_sending_and_nothing_is_written(local_table: Settings) -> None:
    client = new_client(local_table)
    too_big = sized(MAX_ITEM_BYTES + 64)
    with pytest.raises(ClientError) as raised:  # DynamoDB Local would refuse it too...
        client.put_item(TableName=local_table.table_name, Item=too_big.serialize())
    assert raised.value.response["Error"]["Code"] == "ValidationException"

    with pytest.raises(InvalidInput, match="item limit"):  # ...but batch_write sends nothing at all
        batch_write([*(product() for _ in range(30)), too_big])

    assert count_items(client, local_table) == 0


def test_an_item_just_under_the_limit_is_written(local_table: Settings) -> None:
    # item_size is not stricter than DynamoDB Local: what it lets through, DynamoDB Local takes.
    near = sized(MAX_ITEM_BYTES - 64)
    batch_write([near])
    found = batch_get(Product, [(near.pk, near.sk)], consistent_read=True)
    assert found[0].attributes is not None and len(found[0].attributes["blob"]) == len(
        near.attributes["blob"]
    )


def test_batch_write_over_stored_versions_refuses_or_moves_them_on_never_back(local_table: Settings) -> None:
    client = new_client(local_table)
    existing = [product() for _ in range(120)]  # more than one BatchGetItem of versions
    for entity in existing:
        item = {**entity.serialize(), "Version": {"N": "7"}}
        client.put_item(TableName=local_table.table_name, Item=item)
    fresh = [product(e.product_id) for e in existing]  # no versions: they would reset 7 to 1

    with pytest.raises(AlreadyExists):
        batch_write([product(), *fresh])
    assert count_items(client, local_table) == 120

    batch_write(fresh, overwrite=True)
    found = batch_get(Product, [{"product_id": e.product_id} for e in existing], consistent_read=True)
    assert {p.version for p in found} == {8} and len(found) == 120
    assert all(e.version == 8 for e in fresh)
