"""What the layer cannot write back is a typed error naming the item, and an applied write is
reported as applied even when the item it returns holds a value the entity cannot read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.config import Settings
from core.errors import InvalidInput
from models import Order, OrderStatus
from repositories.orders import get_order, place_order
from repositories.users import create_user
from tests.helpers import raw_client, raw_get, raw_scan


def _stored(moto_table: Settings, amount: str = "10.00") -> Order:
    user = create_user("buyer@example.com", "Buyer")
    return place_order(user.user_id, Decimal(amount))


def _raw_set(settings: Settings, order: Order, name: str, value: dict[str, str]) -> None:
    raw_client(settings).update_item(
        TableName=settings.table_name, Key={"PK": {"S": order.pk}, "SK": {"S": order.sk}},
        UpdateExpression="SET #n = :v", ExpressionAttributeNames={"#n": name},
        ExpressionAttributeValues={":v": value})


def test_a_new_entity_missing_a_required_value_is_invalid_input_not_pynamodbs_error(
    moto_table: Settings,
) -> None:
    user = create_user("ada@example.com", "Ada")
    before = raw_scan(moto_table)
    orphan = Order(user_id=user.user_id, order_id="01JCZ8YH4B8E3V0M7W9K6T5R2Q", status="PENDING")
    with pytest.raises(InvalidInput, match="amount"):
        orphan.save()
    assert raw_scan(moto_table) == before


def test_a_stored_value_the_entity_cannot_write_back_names_the_item(moto_table: Settings) -> None:
    order = _stored(moto_table)
    _raw_set(moto_table, order, "Amount", {"N": "-5"})  # written by another service
    stored = get_order(order.user_id, order.order_id)
    before = raw_scan(moto_table)
    with pytest.raises(InvalidInput, match="greater than zero") as refused:
        stored.save()
    assert order.pk in str(refused.value) and order.sk in str(refused.value)
    assert raw_scan(moto_table) == before


def test_an_update_applied_to_an_item_with_an_unreadable_value_is_reported_as_applied(
    moto_table: Settings,
) -> None:
    order = _stored(moto_table)
    stored = get_order(order.user_id, order.order_id)
    _raw_set(moto_table, order, "Amount", {"S": "not a number"})  # after the read, by another writer
    _raw_set(moto_table, order, "Version", {"N": str(stored.version)})  # the version the copy read
    stored.update([Order.status.set(OrderStatus.PAID)])  # no exception: it was applied
    raw = raw_get(moto_table, Order, user_id=order.user_id, order_id=order.order_id)
    assert raw is not None and raw["Status"] == {"S": "PAID"}
    assert stored.status is OrderStatus.PAID and stored.version == 2
