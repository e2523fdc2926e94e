"""Update actions and composed transactions, tried as an attacker would, on DynamoDB Local.

Each write goes through every path that applies: the entity's own ``update()``, a transaction the
app composes (``models.transaction``) and PynamoDB's own ``TransactWrite``. Each test either
leaves the stored item obeying the entity's declared rules or gets a typed refusal, and a raw scan
shows that nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pynamodb.expressions.operand import Value
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from core.config import Settings
from core.errors import ConflictError, DataLayerError, InvalidInput
from models import Order, OrderStatus, Product, User, new_order_id, sending, transaction
from models.blind_puts import plan_upsert
from repositories.batch import batch_write
from repositories.orders import get_order, place_order
from repositories.products import get_product, put_product
from repositories.users import create_user, delete_user, get_user, update_user
from tests.helpers import claims, random_email, raw_get, raw_scan

AT = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)


def _refused(settings: Settings, error: type[Exception], write: Callable[[], Any],
             match: str | None = None) -> None:
    before = raw_scan(settings)
    with pytest.raises(error, match=match):
        write()
    assert raw_scan(settings) == before


def _order(amount: str = "12.34") -> Order:
    user = create_user(random_email(), "Buyer")
    return place_order(user.user_id, Decimal(amount))


def _every_path(model_update: Callable[[], list[Action]], read: Callable[[], Any]) -> list[Callable[[], Any]]:
    """The update as the entity's own method, a composed transaction and PynamoDB's TransactWrite."""
    def own() -> None:
        read().update(model_update())

    def composed() -> None:
        with transaction() as t:
            t.update(read(), model_update())

    def pynamodb_transact_write() -> None:
        entity = read()
        with TransactWrite(connection=type(entity)._get_connection().connection) as raw:
            raw.update(entity, model_update())

    return [own, composed, pynamodb_transact_write]


def _ids(order: Order) -> tuple[str, str]:
    return order.user_id, order.order_id


# --- arithmetic ----------------------------------------------------------------------------------


@pytest.mark.parametrize("actions", [
    lambda: [Order.amount.set(Order.amount - 1000)],
    lambda: [Order.amount.set(Order.amount - Decimal("12.34"))],  # to zero: an amount is above zero
    lambda: [Order.amount.set(Order.amount - Order.amount)],
    lambda: [Order.amount.set(Order.amount + Order.amount)],
    lambda: [Order.amount.add(-1000)],
    lambda: [Order.amount.set(Order.amount + Decimal("1E+40"))],
])
def test_arithmetic_that_would_break_the_amount_rule_is_refused_on_every_path(
    local_table: Settings, actions: Callable[[], list[Action]],
) -> None:
    order = _order()
    for write in _every_path(actions, lambda: get_order(*_ids(order))):
        _refused(local_table, InvalidInput, write)
    assert get_order(*_ids(order)).amount == Decimal("12.34")


def test_a_price_cannot_be_taken_below_zero_by_arithmetic(local_table: Settings) -> None:
    put_product("p-arith", "Lamp", Decimal("5"))
    paths = _every_path(lambda: [Product.price.set(Product.price - 100)], lambda: get_product("p-arith"))
    for write in paths:
        _refused(local_table, InvalidInput, write)
    assert get_product("p-arith").price == Decimal("5")


def test_arithmetic_that_keeps_the_rule_is_applied_and_the_entity_sees_the_result(
    local_table: Settings,
) -> None:
    order = _order("10.00")
    stored = get_order(*_ids(order))
    stored.update([Order.amount.set(Order.amount - Decimal("2.50"))])
    assert stored.amount == Decimal("7.5") and stored.version == 2
    with transaction() as t:
        t.update(stored, [Order.amount.add(Decimal("0.25"))])
    assert stored.amount == Decimal("7.75") and stored.version == 3  # read back after the transaction
    raw = raw_get(local_table, Order, user_id=order.user_id, order_id=order.order_id)
    assert raw is not None and raw["Amount"] == {"N": "7.75"} and raw["Version"] == {"N": "3"}


def test_a_stale_copy_cannot_subtract_below_the_rule(local_table: Settings) -> None:
    order = _order("10.00")
    first, second = get_order(*_ids(order)), get_order(*_ids(order))
    first.update([Order.amount.set(Order.amount - 6)])
    _refused(local_table, ConflictError, lambda: second.update([Order.amount.set(Order.amount - 6)]))
    assert get_order(*_ids(order)).amount == Decimal("4")


# --- removes and values of another type ------------------------------------------------------------


@pytest.mark.parametrize(("actions", "match"), [
    (lambda: [Order.amount.remove()], "required"),
    (lambda: [Order.amount.set(None)], "required"),
    (lambda: [Order.amount.set(Order.user_id)], "declared differently"),
    (lambda: [Order.amount.set(Value({"N": "-5"}))], "greater than zero"),
    (lambda: [Order.amount.set(Value({"S": "12"}))], "holds N values"),
    (lambda: [Order.status.set(Value({"S": "LOST"}))], "not a valid"),
    (lambda: [Order.expires_at.set(AT + timedelta(days=1))], "kept by the data layer"),
    (lambda: [Order.amount.set(Decimal("3")), Order.amount.set(Decimal("4"))], "two actions"),
])
def test_removes_and_foreign_values_are_refused_on_every_path(
    local_table: Settings, actions: Callable[[], list[Action]], match: str,
) -> None:
    order = _order()
    own, composed, pynamodb_transact_write = _every_path(actions, lambda: get_order(*_ids(order)))
    _refused(local_table, InvalidInput, own, match)
    _refused(local_table, InvalidInput, composed, match)
    _refused(local_table, InvalidInput, pynamodb_transact_write, "models.transaction")


@pytest.mark.parametrize("actions", [
    lambda: [User.email.remove()],
    lambda: [User.email.set(None)],
    lambda: [User.name.remove()],
    lambda: [User.name.set(User.email)],  # text from the email: declared differently
])
def test_a_users_email_and_name_cannot_be_removed(
    local_table: Settings, actions: Callable[[], list[Action]],
) -> None:
    user = create_user(random_email(), "Ada")
    for write in _every_path(actions, lambda: get_user(user.user_id)):
        _refused(local_table, InvalidInput, write)
    stored = get_user(user.user_id)
    update_user(stored, name="Still Ada")  # the user stays fully usable through the layer
    delete_user(get_user(user.user_id))
    assert [c for c in claims(local_table) if c["UserId"]["S"] == user.user_id] == []


def test_an_entity_cannot_be_given_a_ttl_it_does_not_declare_on_any_path(local_table: Settings) -> None:
    user = create_user(random_email(), "Buyer")
    doomed = Order(user_id=user.user_id, order_id=new_order_id(AT), amount=Decimal(1), status="PENDING",
                   expires_at=AT + timedelta(days=1))
    _refused(local_table, InvalidInput, doomed.save, "declares no expiry")

    def composed() -> None:
        with transaction() as t:
            t.save(doomed)

    _refused(local_table, InvalidInput, composed, "declares no expiry")
    lamp = Product(product_id="p-ttl", name="Lamp", price=Decimal(1), expires_at=AT + timedelta(days=1))
    _refused(local_table, InvalidInput, lambda: batch_write([lamp]), "declares no expiry")
    upsert = lambda: sending.execute(lambda: plan_upsert(lamp), what="upsert")  # noqa: E731
    _refused(local_table, InvalidInput, upsert, "declares no expiry")


# --- free-form numbers ---------------------------------------------------------------------------


def test_a_number_dynamodb_cannot_store_is_refused_before_sending(local_table: Settings) -> None:
    huge = 10 ** 50
    _refused(local_table, InvalidInput, lambda: put_product("p-huge", "Lamp", Decimal(1), weight=huge))
    put_product("p-ok", "Lamp", Decimal(1), weight=3)
    product = get_product("p-ok")
    _refused(local_table, InvalidInput, lambda: product.update([Product.attributes["weight"].set(huge)]))
    product.update([Product.attributes["weight"].set(4)])
    assert get_product("p-ok").attributes["weight"] == 4


# --- composed transactions -----------------------------------------------------------------------


def test_a_condition_check_on_an_item_the_transaction_updates_is_kept(local_table: Settings) -> None:
    order = _order()
    stored = get_order(*_ids(order))

    def paid_if_large() -> None:
        with transaction() as t:
            t.update(stored, [Order.status.set(OrderStatus.PAID)])
            t.condition_check(Order, Order.amount > 1_000_000, user_id=order.user_id, order_id=order.order_id)

    _refused(local_table, ConflictError, paid_if_large, "does not hold")
    assert get_order(*_ids(order)).status is OrderStatus.PENDING
    with transaction() as t:  # a check that holds lets the same transaction through
        t.update(get_order(*_ids(order)), [Order.status.set(OrderStatus.PAID)])
        t.condition_check(Order, Order.amount < 1_000_000, user_id=order.user_id, order_id=order.order_id)
    assert get_order(*_ids(order)).status is OrderStatus.PAID


def test_two_checks_on_one_item_are_both_kept(local_table: Settings) -> None:
    order, other = _order(), _order()

    def checked() -> None:
        with transaction() as t:
            t.update(get_order(*_ids(other)), [Order.status.set(OrderStatus.PAID)])
            t.condition_check(Order, Order.amount > 1, user_id=order.user_id, order_id=order.order_id)
            t.condition_check(Order, Order.amount > 1_000_000, user_id=order.user_id, order_id=order.order_id)

    _refused(local_table, DataLayerError, checked)
    assert get_order(*_ids(other)).status is OrderStatus.PENDING


def test_an_order_saved_with_the_deletion_of_its_user_is_refused(local_table: Settings) -> None:
    user = create_user(random_email(), "Leaving")

    def delete_and_order() -> None:
        with transaction() as t:
            t.delete(get_user(user.user_id))
            t.save(Order(user_id=user.user_id, order_id=new_order_id(AT), amount=Decimal(1),
                         status="PENDING"))

    _refused(local_table, InvalidInput, delete_and_order, "deletes")


def test_two_writes_of_one_item_in_a_transaction_are_refused(local_table: Settings) -> None:
    order = _order()

    def twice() -> None:
        with transaction() as t:
            t.update(get_order(*_ids(order)), [Order.status.set(OrderStatus.PAID)])
            t.update(get_order(*_ids(order)), [Order.amount.set(Decimal(3))])

    _refused(local_table, InvalidInput, twice, "one operation per item")


def test_pynamodbs_transact_write_condition_check_is_refused(local_table: Settings) -> None:
    order = _order()

    def raw_check() -> None:
        with TransactWrite(connection=Order._get_connection().connection) as raw:
            raw.condition_check(Order, order.pk, order.sk, condition=Order.amount > 1)

    _refused(local_table, InvalidInput, raw_check, "models.transaction")
