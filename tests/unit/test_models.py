"""Entities on the wire: PascalCase attribute names, exact numbers, typed reads, optimistic locking."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.client import new_client
from core.config import Settings
from core.error_codes import error_code
from core.errors import ConflictError, InvalidInput
from models import Account, Metric, Order, OrderStatus, Product, TableModel, User
from models.attributes import to_decimal, to_money
from repositories.accounts import transfer_funds, transfer_id_for_key


def raw_item(settings: Settings, pk: str, sk: str) -> dict[str, dict[str, str]]:
    item = new_client(settings).get_item(
        TableName=settings.table_name, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True
    )
    return item["Item"]  # type: ignore[no-any-return]


def test_user_is_stored_in_the_wire_format(moto_table: Settings) -> None:
    User(user_id="u1", email="ada@example.com", name="Ada").save()
    item = raw_item(moto_table, "USER#u1", "PROFILE")
    assert set(item) == {
        "PK", "SK", "EntityType", "UserId", "Email", "Name", "CreatedAt", "UpdatedAt", "Version",
        "WriteToken",
    }
    assert item["EntityType"] == {"S": "USER"}
    assert item["Email"] == {"S": "ada@example.com"}
    assert item["Version"] == {"N": "1"}
    created = datetime.fromisoformat(item["CreatedAt"]["S"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_order_is_stored_with_exact_money_status_and_index_key(moto_table: Settings) -> None:
    User(user_id="u1", email="ann@example.com", name="Ann").save()
    Order(user_id="u1", order_id="o1", amount=Decimal("1234567890.12"), status=OrderStatus.SHIPPED).save()
    item = raw_item(moto_table, "USER#u1", "ORDER#o1")
    assert item["Amount"] == {"N": "1234567890.12"}
    assert item["Status"] == {"S": "SHIPPED"}
    assert item["GSI1PK"] == {"S": "STATUS#SHIPPED"}
    assert item["OrderId"] == {"S": "o1"}
    assert item["EntityType"] == {"S": "ORDER"}


def test_other_entities_use_their_documented_keys_and_names(moto_table: Settings) -> None:
    Account(account_id="a1", balance=Decimal("10.00")).save()
    Account(account_id="a2", balance=Decimal("0")).save()
    transfer_funds("a1", "a2", Decimal("2.50"), idempotency_key="t1")
    Product(product_id="p1", name="Lamp", price=Decimal("19.99")).save()
    at = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    Metric(device_id="d1", metric_name="temp", timestamp=at, value=Decimal("21.5")).save()
    assert raw_item(moto_table, "ACCOUNT#a1", "BALANCE")["Balance"] == {"N": "7.50"}
    transfer = raw_item(moto_table, "TRANSACTION#" + transfer_id_for_key("t1", "a1"), "TRANSFER")
    assert (transfer["FromAccount"], transfer["ToAccount"]) == ({"S": "a1"}, {"S": "a2"})
    assert raw_item(moto_table, "PRODUCT#p1", "METADATA#p1")["Price"] == {"N": "19.99"}
    metric = raw_item(moto_table, "DEVICE#d1#2026-05-01", "METRIC#2026-05-01T10:00:00.000000Z#temp#-")
    assert (metric["MetricName"], metric["Value"]) == ({"S": "temp"}, {"N": "21.5"})


def test_a_partition_with_a_user_and_two_orders_reads_back_typed(moto_table: Settings) -> None:
    User(user_id="u2", email="bo@example.com", name="Bo").save()
    Order(user_id="u2", order_id="o1", amount=Decimal("5"), status=OrderStatus.PENDING).save()
    Order(user_id="u2", order_id="o2", amount=Decimal("7.25"), status=OrderStatus.PAID).save()
    items = list(TableModel.query("USER#u2"))
    assert [type(i) for i in items] == [Order, Order, User]
    orders = [i for i in items if isinstance(i, Order)]
    assert [o.amount for o in orders] == [Decimal("5"), Decimal("7.25")]
    assert orders[1].status is OrderStatus.PAID
    assert [type(i) for i in Order.query("USER#u2")] == [Order, Order]


def test_version_increments_on_every_save(moto_table: Settings) -> None:
    user = User(user_id="u3", email="cy@example.com", name="Cy")
    user.save()
    user.name = "Cyrus"
    user.save()
    assert user.version == 2
    assert raw_item(moto_table, "USER#u3", "PROFILE")["Version"] == {"N": "2"}


def test_a_stale_save_fails_and_keeps_the_newer_write(moto_table: Settings) -> None:
    User(user_id="u4", email="di@example.com", name="Di").save()
    first, second = User.get("USER#u4", "PROFILE"), User.get("USER#u4", "PROFILE")
    first.name = "Diana"
    first.save()
    second.name = "Stale"
    with pytest.raises(ConflictError) as caught:
        second.save()
    assert error_code(caught.value.__cause__) == "ConditionalCheckFailedException"  # type: ignore[arg-type]
    assert raw_item(moto_table, "USER#u4", "PROFILE")["Name"] == {"S": "Diana"}


def test_updated_at_moves_and_created_at_stays(moto_table: Settings) -> None:
    user = User(user_id="u5", email="ed@example.com", name="Ed")
    user.save()
    created, updated = user.created_at, user.updated_at
    user.save()
    assert user.created_at == created
    assert user.updated_at is not None and updated is not None and user.updated_at >= updated


@pytest.mark.parametrize("bad", [0.1, float("nan"), Decimal("NaN"), Decimal("Infinity"), "abc", True, None])
def test_money_refuses_floats_and_non_finite_numbers(bad: object) -> None:
    with pytest.raises(InvalidInput):
        to_decimal(bad)


@pytest.mark.parametrize(("value", "positive", "expected"), [
    ("19.90", True, Decimal("19.90")), (Decimal("1.500"), True, Decimal("1.500")), (5, True, Decimal(5)),
    (Decimal("1E+3"), True, Decimal(1000)), (Decimal("0"), False, Decimal(0)),
    (Decimal("-0"), False, Decimal(0)), (Decimal("0E-10"), False, Decimal(0)),
])
def test_to_money_accepts_exact_amounts_and_returns_plain_notation(
    value: object, positive: bool, expected: Decimal
) -> None:
    money = to_money(value, "amount", positive=positive)
    assert money == expected and "E" not in str(money) and not money.is_signed()


@pytest.mark.parametrize(("value", "positive"), [
    (Decimal("0.001"), False), ("1.005", True), (0, True), (Decimal("0.00"), True), (Decimal("-0.01"), False),
    (Decimal("1E+38"), True), ("1" * 39, True), (0.5, True), (Decimal("NaN"), False),
])
def test_to_money_refuses_what_is_not_money(value: object, positive: bool) -> None:
    with pytest.raises(InvalidInput):
        to_money(value, "amount", positive=positive)


def test_saving_a_float_amount_is_refused_and_writes_nothing(moto_table: Settings) -> None:
    order = Order(user_id="u6", order_id="o1", amount=0.1, status=OrderStatus.PENDING)
    with pytest.raises(InvalidInput):
        order.save()
    scan = new_client(moto_table).scan(TableName=moto_table.table_name)
    assert scan["Count"] == 0
