"""A property: whatever update action is drawn, on whatever entity, the stored item keeps every rule
its entity declares, or the write is refused with an error of the tree and nothing changes.

Actions are drawn as an attacker would write them: literal values of every type (money with too
many places, huge numbers, control characters, unknown statuses, None), arithmetic from the
attribute or from another, removes, set and list operations, paths inside maps and copies of other
attributes. After each, the whole table is read raw and checked against the declarations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pynamodb.expressions.operand import Path, Value

from core.config import Settings
from core.errors import DataLayerError
from models import ENTITIES, Order, TableModel, User
from models.order import ORDER_MOVES
from models.rules import Expires, WrittenBy
from repositories.accounts import open_account, transfer_funds
from repositories.metrics import record_metric
from repositories.orders import place_order
from repositories.products import put_product
from repositories.users import create_user
from tests.helpers import raw_client, raw_scan

AT = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
Item = dict[str, Any]


def _user(_: Settings) -> tuple[str, str]:
    user = create_user(f"{uuid.uuid4().hex}@example.com", "Ada")
    return user.pk, user.sk


def _order(settings: Settings) -> tuple[str, str]:
    user = create_user(f"{uuid.uuid4().hex}@example.com", "Buyer")
    order = place_order(user.user_id, Decimal("12.34"))
    return order.pk, order.sk


def _account(_: Settings) -> tuple[str, str]:
    account = open_account(balance=Decimal("50"))
    return account.pk, account.sk


def _transfer(_: Settings) -> tuple[str, str]:
    source, target = open_account(balance=Decimal("50")), open_account()
    transfer = transfer_funds(source.account_id, target.account_id, Decimal("5"))
    return transfer.pk, transfer.sk


def _product(_: Settings) -> tuple[str, str]:
    product = put_product(uuid.uuid4().hex, "Lamp", Decimal("5"), tags=["a"], weight=3)
    return product.pk, product.sk


def _metric(_: Settings) -> tuple[str, str]:
    point = record_metric(uuid.uuid4().hex, "load", Decimal("1.5"), at=AT)
    return point.pk, point.sk


def _aggregate(settings: Settings) -> tuple[str, str]:
    pk, _ = _metric(settings)
    return pk, next(i["SK"]["S"] for i in raw_scan(settings)
                    if i["PK"]["S"] == pk and i["SK"]["S"].startswith("AGG#"))


def _claim(settings: Settings) -> tuple[str, str]:
    _user(settings)
    claim = next(i for i in raw_scan(settings) if i["EntityType"]["S"] == "EMAIL")
    return claim["PK"]["S"], claim["SK"]["S"]


BUILDERS: dict[str, Callable[[Settings], tuple[str, str]]] = {
    "User": _user, "Order": _order, "Account": _account, "Transfer": _transfer, "Product": _product,
    "Metric": _metric, "MetricAggregate": _aggregate, "EmailClaim": _claim,
}
MODELS = {model.__name__: model for model in ENTITIES}

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10 ** 45), max_value=10 ** 45),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10_000, max_value=10_000),
    st.sampled_from([Decimal("0"), Decimal("-1"), Decimal("1E+130"), Decimal("0.001"), Decimal("12.34")]),
    st.text(max_size=8),
    st.sampled_from(["PAID", "SHIPPED", "LOST", "a\u202eb", "x\x00", "Ada@Example.com", "", " "]),
    st.lists(st.integers(min_value=-(10 ** 45), max_value=10 ** 45), max_size=2),
    st.dictionaries(st.text(min_size=1, max_size=3), st.integers(), max_size=2),
)
_BUILT: dict[tuple[str, str], tuple[str, str]] = {}
KINDS = ["set", "remove", "plus", "minus", "add", "delete", "copy", "if_not_exists", "append", "inside"]


def _action(model: type[TableModel], name: str, kind: str, value: Any, other: str) -> Any:
    attribute = model.get_attributes()[name]
    source = model.get_attributes()[other]
    build: dict[str, Callable[[], Any]] = {
        "set": lambda: attribute.set(value),
        "remove": attribute.remove,
        "plus": lambda: attribute.set(attribute + value),
        "minus": lambda: attribute.set(attribute - value),
        "add": lambda: attribute.add(value),
        "delete": lambda: attribute.delete(value),
        "copy": lambda: attribute.set(source),
        "if_not_exists": lambda: attribute.set(attribute | value),
        "append": lambda: attribute.set(attribute.append(value)),
        "inside": lambda: Path([attribute.attr_name, "x"]).set(Value(value)),
    }
    return build[kind]()


def _by_key(items: list[Item]) -> dict[tuple[str, str], Item]:
    return {(i["PK"]["S"], i["SK"]["S"]): i for i in items}


def _same(stored: Any, written: Any) -> bool:
    """Two serialized values alike; numbers by value (DynamoDB keeps ``10``, money writes ``10.00``)."""
    if isinstance(stored, dict) and isinstance(written, dict) and "N" in stored and "N" in written:
        return Decimal(stored["N"]) == Decimal(written["N"])
    return bool(stored == written)


def _assert_rules_hold(items: dict[tuple[str, str], Item], key: tuple[str, str], before: Item) -> None:
    """The stored item (and the items its rules keep) against the entity's declarations."""
    stored = items[key]
    model = MODELS[type(TableModel.from_raw_data(stored)).__name__]
    entity = model.from_raw_data(stored)
    item = entity.serialize(null_check=True)  # every value rule, every required attribute
    for name in ("PK", "SK", "GSI1PK"):  # keys composed from the attributes they are made of
        assert item.get(name) == stored.get(name), name
    for name, value in item.items():
        if name not in ("UpdatedAt", "CreatedAt"):  # the stored form is the form the rules write
            assert _same(stored.get(name), value), name
    if model.rule(Expires) is None:  # a TTL only where the entity (or what writes it) sets one
        assert stored.get("ExpiresAt") == before.get("ExpiresAt")
    written_by = model.rule(WrittenBy)
    if written_by is not None:
        for name in written_by.attributes or tuple(model.get_attributes()):
            attr_name = model.get_attributes()[name].attr_name
            if attr_name not in ("UpdatedAt", "Version", "WriteToken", "PriorWriteToken"):
                assert stored.get(attr_name) == before.get(attr_name), name
    if model is Order:
        old, new = before["Status"]["S"], stored["Status"]["S"]
        assert old == new or new in {m.value for m in ORDER_MOVES.get(old, ())}  # type: ignore[call-overload]
    if model is User:
        claim = items.get((f"EMAIL#{stored['Email']['S']}", "EMAIL"))
        assert claim is not None and claim["UserId"] == stored["UserId"]


@pytest.mark.parametrize("entity", sorted(BUILDERS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_drawn_update_action_breaks_a_declared_rule(
    moto_table: Settings, entity: str, data: st.DataObject,
) -> None:
    # One entity per table, built at the first example: each example reads it again as stored.
    key = _BUILT.get((moto_table.table_name, entity)) or _BUILT.setdefault(
        (moto_table.table_name, entity), BUILDERS[entity](moto_table))
    before_all = raw_scan(moto_table)
    before = _by_key(before_all)[key]
    model = MODELS[type(TableModel.from_raw_data(before)).__name__]
    names = sorted(model.get_attributes())
    name, other = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
    kind, value = data.draw(st.sampled_from(KINDS)), data.draw(VALUES)
    try:
        action = _action(model, name, kind, value, other)
    except Exception:  # PynamoDB or a value rule refused to build it: nothing to send
        assume(False)
    stored_entity = model.from_raw_data(raw_client(moto_table).get_item(
        TableName=moto_table.table_name, Key={"PK": {"S": key[0]}, "SK": {"S": key[1]}})["Item"])
    try:
        stored_entity.update([action])
    except DataLayerError:
        assert raw_scan(moto_table) == before_all  # refused: nothing written anywhere
    _assert_rules_hold(_by_key(raw_scan(moto_table)), key, before)
