"""Entities built from stored items: the same entity PynamoDB's own instantiation gives, faster."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pynamodb.attributes import AttributeContainer, MapAttribute
from pynamodb.constants import ITEM
from pynamodb.exceptions import AttributeDeserializationError, AttributeNullError
from pynamodb.models import Model

from core.config import Settings
from core.errors import UnreadableItem
from models import ENTITIES, Order, Product, TableModel, User, planning
from models.item_size import UNBOUNDED, item_size, upper_bound
from repositories.accounts import open_account, transfer_funds
from repositories.metrics import record_metric
from repositories.orders import place_order, set_order_status
from repositories.products import put_product
from repositories.users import create_user, delete_user
from tests.helpers import raw_scan


def _pynamodb_reads(data: dict[str, Any]) -> TableModel:
    """PynamoDB's own instantiation (the entity built, then every attribute set through its descriptor)."""
    entity: TableModel = AttributeContainer._instantiate.__func__(TableModel, data)  # type: ignore[attr-defined]
    entity.remember_stored_values()
    return entity


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Map attributes compare by identity; their contents are what matters."""
    return {name: value.as_dict() if isinstance(value, MapAttribute) else value
            for name, value in values.items()}


def _every_kind_of_item(settings: Settings) -> list[dict[str, Any]]:
    user = create_user("ada@example.com", "Ada Lovelace")
    order = place_order(user.user_id, Decimal("12.50"))
    set_order_status(order, "PAID")
    put_product("p1", "Lamp", Decimal("19.99"), spec={"w": 2.5, "tags": ["a", None, True]}, count=7)
    put_product("p2", "Bare", Decimal("0"))
    open_account(account_id="a1", balance=Decimal("10.00"))
    open_account(account_id="a2")
    transfer_funds("a1", "a2", Decimal("2.50"), idempotency_key="t1")
    at = datetime(2026, 5, 1, 10, tzinfo=UTC)
    record_metric("d1", "temp", Decimal("21.5"), at=at, dimensions={"room": "k"})
    gone = create_user("bob@example.com", "Bob")
    delete_user(gone)
    return raw_scan(settings)


def test_every_stored_entity_reads_as_pynamodb_would_read_it(moto_table: Settings) -> None:
    items = _every_kind_of_item(moto_table)
    kinds = set()
    for item in items:
        fast, slow = TableModel.from_raw_data(item), _pynamodb_reads(item)
        kinds.add(type(fast))
        assert type(fast) is type(slow)
        assert _plain(fast.attribute_values) == _plain(slow.attribute_values), type(fast).__name__
        types = [{n: type(v) for n, v in e.attribute_values.items()} for e in (fast, slow)]
        assert types[0] == types[1]
        assert _plain(fast.stored_values()) == _plain(slow.stored_values())
        now = datetime.now(UTC)
        fast.stamp(now)
        slow.stamp(now)
        assert fast.serialize() == slow.serialize()  # and it writes back the same item
    assert len(kinds) >= 9 and kinds <= set(ENTITIES)


def test_an_entity_remembers_every_watched_value_as_read_and_as_written(moto_table: Settings) -> None:
    computed = set()  # watched values that are no attribute of their own (a metric's day)
    for item in _every_kind_of_item(moto_table):
        entity = TableModel.from_raw_data(item)
        model = type(entity)
        watched = model.watched_attributes()
        computed |= {(model.__name__, name) for name in watched if name not in model.get_attributes()}
        assert entity.stored_values() == {name: getattr(entity, name) for name in watched}, model.__name__
        entity.stamp(datetime.now(UTC))
        entity.serialize()
        entity.remember_stored_values()  # as a write records it
        assert entity.stored_values() == {name: getattr(entity, name) for name in watched}, model.__name__
    assert computed


def test_a_read_entity_remembers_its_watched_values_and_is_writable(moto_table: Settings) -> None:
    user = create_user("cy@example.com", "Cy")
    order = place_order(user.user_id, Decimal("3"))
    (item,) = [i for i in raw_scan(moto_table) if i["EntityType"] == {"S": "ORDER"}]
    read = Order.from_raw_data(item)
    assert read.stored_values()["status"] == "PENDING"
    assert read.version == 1 and read.order_id == order.order_id and read.amount == Decimal("3")
    assert set_order_status(read, "PAID").version == 2  # the rules read the remembered PENDING


def test_a_null_is_read_as_pynamodb_reads_it_and_a_wrong_type_is_an_unreadable_item() -> None:
    item = {"PK": {"S": "USER#u1"}, "SK": {"S": "PROFILE"}, "EntityType": {"S": "USER"},
            "UserId": {"S": "u1"}, "Email": {"S": "a@example.com"}, "Name": {"NULL": True}}
    assert User.from_raw_data(item).name is None
    with pytest.raises(AttributeDeserializationError):  # what PynamoDB's own reading raises
        _pynamodb_reads({**item, "Name": {"N": "1"}})
    with pytest.raises(UnreadableItem) as wrong_type:
        User.from_raw_data({**item, "Name": {"N": "1"}})
    assert (wrong_type.value.keys, wrong_type.value.entity, wrong_type.value.attribute) == (
        ("USER#u1", "PROFILE"), "User", "Name")
    assert isinstance(wrong_type.value.__cause__, AttributeDeserializationError)
    with pytest.raises(UnreadableItem, match="cannot be read as Order") as foreign:
        Order.from_raw_data(item)
    assert foreign.value.attribute == "EntityType"
    with pytest.raises(ValueError, match="no data"):
        User.from_raw_data(None)  # type: ignore[arg-type]


def test_every_entity_serializes_as_pynamodb_would_serialize_it(moto_table: Settings) -> None:
    for item in _every_kind_of_item(moto_table):
        entity = TableModel.from_raw_data(item)
        entity.stamp(datetime.now(UTC))
        written = entity.serialize()
        assert written == entity._container_serialize(null_check=True), type(entity).__name__
        assert written == item | {"UpdatedAt": written["UpdatedAt"]}  # what was read, written back


def test_the_size_bound_found_while_serializing_is_the_one_the_item_has(moto_table: Settings) -> None:
    for item in _every_kind_of_item(moto_table):
        entity = TableModel.from_raw_data(item)
        written, bound = entity.serialize_bounded()
        assert item_size(written) <= bound, type(entity).__name__
        if upper_bound(written) < UNBOUNDED:  # strings and numbers only: the same bound
            assert bound == upper_bound(written), type(entity).__name__
        else:
            assert bound >= UNBOUNDED, type(entity).__name__
    odd = Product(product_id=7, name="Lamp", price=Decimal("1"))  # a number held where text belongs
    assert odd.serialize_bounded()[1] >= UNBOUNDED  # not bounded: measured exactly


def test_a_missing_required_attribute_is_refused_as_pynamodb_refuses_it() -> None:
    user = User(user_id="u1", email="a@example.com")  # no name
    with pytest.raises(AttributeNullError) as fast:
        user.serialize()
    with pytest.raises(AttributeNullError) as slow:
        user._container_serialize(null_check=True)
    assert str(fast.value) == str(slow.value)
    assert "Name" not in user.serialize(null_check=False)


def _pynamodb_put(entity: TableModel, condition: Any, add_version_condition: bool) -> dict[str, Any]:
    args, kwargs = Model._get_save_args(entity, condition=condition,
                                        add_version_condition=add_version_condition)
    low: dict[str, Any] = entity._get_connection().get_operation_kwargs(
        next(iter(args)), range_key=kwargs.get("range_key"), key=ITEM, attributes=kwargs["attributes"],
        condition=kwargs["condition"])
    return low


@pytest.mark.parametrize("add_version_condition", [True, False])
def test_a_put_is_the_request_pynamodb_would_build(moto_table: Settings, add_version_condition: bool) -> None:
    conditions = [None, Order.status == "PENDING", Order.amount > Decimal("0.01"),
                  Order.pk.does_not_exist() | Order.status.is_in("PAID", "SHIPPED")]
    for item in _every_kind_of_item(moto_table):
        for condition in conditions:
            entity = TableModel.from_raw_data(item)
            now = datetime.now(UTC)
            entity.stamp(now)
            ours = planning.put_kwargs(entity, condition, add_version_condition=add_version_condition)
            entity = TableModel.from_raw_data(item)
            entity.stamp(now)
            assert ours == _pynamodb_put(entity, condition, add_version_condition), type(entity).__name__
    new = User(user_id="n1", email="n@example.com", name="N")
    new.stamp(now)
    ours = planning.put_kwargs(new, None)
    assert ours["ConditionExpression"] == "attribute_not_exists (#0)"
    assert ours["Item"]["Version"] == {"N": "1"}
    new.stamp(now)
    assert ours == _pynamodb_put(new, None, True)
    with pytest.raises(ValueError, match="instance of Condition"):
        planning.put_kwargs(new, "Version = 1")  # type: ignore[arg-type]


def _pynamodb_made(model: type[TableModel], **attributes: Any) -> TableModel:
    entity = model.__new__(model)
    Model.__init__(entity, **attributes)
    entity.fill_keys(partial=True)
    return entity


def test_a_new_entity_is_built_as_pynamodb_builds_it(moto_table: Settings) -> None:
    for item in _every_kind_of_item(moto_table):
        stored = TableModel.from_raw_data(item)
        model = type(stored)
        given = {name: value for name, value in stored.attribute_values.items()
                 if name not in model.managed_attributes()}
        made, reference = model(**given), _pynamodb_made(model, **given)
        assert _plain(made.attribute_values) == _plain(reference.attribute_values), model.__name__
        assert made.stored_values() == {}
        partial = model(**{name: given[name] for name in list(given)[:1]})
        assert _plain(partial.attribute_values) == _plain(_pynamodb_made(model, **{
            name: given[name] for name in list(given)[:1]}).attribute_values)


def test_a_new_entity_refuses_what_pynamodb_refuses() -> None:
    with pytest.raises(ValueError, match="Attribute nickname specified does not exist"):
        User(user_id="u1", nickname="x")
    with pytest.raises(ValueError, match="discriminator attribute must be set to the instance type"):
        User(user_id="u1", entity_type=Order)
    assert User("USER#u1", "PROFILE").pk == "USER#u1"  # keys given positionally: PynamoDB's own path


def _resolved(read: Any, item: dict[str, Any]) -> type | str:
    """The class ``read(item)`` builds, or that it failed."""
    try:
        return type(read(item))
    except (UnreadableItem, ValueError, KeyError, TypeError):
        return "failed"


def test_the_stored_type_is_resolved_as_pynamodb_resolves_it_read_after_read() -> None:
    user = {"PK": {"S": "USER#u1"}, "SK": {"S": "PROFILE"}, "EntityType": {"S": "USER"},
            "UserId": {"S": "u1"}, "Email": {"S": "a@example.com"}, "Name": {"S": "Ada"},
            "Version": {"N": "1"}}
    order = {"PK": {"S": "USER#u1"}, "SK": {"S": "ORDER#o1"}, "EntityType": {"S": "ORDER"},
             "UserId": {"S": "u1"}, "OrderId": {"S": "o1"}, "Amount": {"N": "5"}, "Status": {"S": "PENDING"},
             "Version": {"N": "1"}}
    odd = [{**user, "EntityType": t} for t in ({"S": "NOPE"}, {"N": "1"}, {"S": "USER", "N": "1"}, {"S": 7})]
    for _ in range(2):  # the second round reads with what the first one kept of the types
        assert type(TableModel.from_raw_data(user)) is User
        assert type(TableModel.from_raw_data(order)) is Order
        assert type(Order.from_raw_data(order)) is Order
        with pytest.raises(UnreadableItem, match="cannot be read as Order"):
            Order.from_raw_data(user)
        with pytest.raises(UnreadableItem, match="cannot be read as User"):
            User.from_raw_data(order)
        for item in odd:
            assert _resolved(TableModel.from_raw_data, item) == _resolved(_pynamodb_reads, item)
    assert [_resolved(TableModel.from_raw_data, item) for item in odd] == ["failed", "failed", User, "failed"]
