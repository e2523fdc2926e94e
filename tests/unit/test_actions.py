"""Update actions read for their effect (``models.actions``) and transaction steps merged per item
(``models.merging``): no network, the requests as they would be sent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pynamodb.expressions.operand import Path, Value

from core.errors import AlreadyExists, ConflictError, InvalidInput, NotFound
from models import Order, OrderStatus, Product, User, new_order_id
from models.actions import check_action, check_numbers
from models.merging import merge_steps
from models.planning import Step, condition_kwargs, plan_update

UNIQUE = frozenset({"email"})
MANAGED = frozenset({"pk", "sk", "version"})


def _effect(model: Any, action: Any) -> Any:
    return check_action(model, action, unique=UNIQUE if model is User else frozenset(), managed=MANAGED)


def _condition(plan: Any) -> str:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    text: str = plan.condition.serialize(names, values)
    for name, placeholder in names.items():
        text = text.replace(placeholder, name)
    for placeholder, value in values.items():
        text = text.replace(placeholder, str(value))
    return text


def _stored_order(amount: str = "10.00", status: str = "PENDING") -> Order:
    order = Order(user_id="u1", order_id=new_order_id(), amount=Decimal(amount), status=status)
    order.version = 3
    order.remember_stored_values()
    return order


# --- literal values -------------------------------------------------------------------------------


def test_a_literal_value_is_known_and_checked_by_the_attribute_rule() -> None:
    effect = _effect(Order, Order.amount.set(Decimal("5.5")))
    assert (effect.name, effect.known, effect.value) == ("amount", True, Decimal("5.5"))
    assert effect.condition is None
    with pytest.raises(InvalidInput, match="greater than zero"):
        _effect(Order, Order.amount.set(Value({"N": "-5"})))
    with pytest.raises(InvalidInput, match="holds N values"):
        _effect(Order, Order.amount.set(Value({"S": "5"})))
    with pytest.raises(InvalidInput, match="holds S values"):
        _effect(Order, Order.user_id.set(Value({"S": 5})))  # a type that lies about its value
    with pytest.raises(InvalidInput, match="not a valid S"):
        _effect(Order, Order.status.set(Value({"S": "LOST"})))


def test_a_managed_attribute_is_refused_first() -> None:
    with pytest.raises(InvalidInput, match=r"Order\.version is kept by the data layer"):
        _effect(Order, Order.version.set(7))


def test_an_unknown_attribute_or_a_non_action_is_refused() -> None:
    with pytest.raises(InvalidInput, match="declares no attribute 'Nope'"):
        _effect(Order, Path("Nope").set(Value({"S": "x"})))
    with pytest.raises(InvalidInput, match="takes PynamoDB actions"):
        _effect(Order, "SET Amount = :x")


# --- removes --------------------------------------------------------------------------------------


def test_removing_a_required_or_unique_attribute_is_refused_and_a_nullable_one_is_known_absent() -> None:
    with pytest.raises(InvalidInput, match="required"):
        _effect(Order, Order.amount.remove())
    with pytest.raises(InvalidInput, match="required"):
        _effect(Order, Order.amount.set(None))
    with pytest.raises(InvalidInput, match=r"unique and required.*delete_user"):
        _effect(User, User.email.remove())
    effect = _effect(Product, Product.attributes.remove())
    assert (effect.known, effect.value) == (True, None)
    assert _effect(Product, Product.attributes.set(None)).known is True


# --- arithmetic -----------------------------------------------------------------------------------


def test_subtracting_money_is_guarded_by_the_bound_of_the_rule() -> None:
    plan = plan_update(_stored_order(), [Order.amount.set(Order.amount - Decimal("2.50"))])
    assert "Amount > {'N': '2.50'}" in _condition(plan)  # positive: more than the amount subtracted
    assert "amount" in plan.unknown and "amount" not in plan.changes
    product = Product(product_id="p", name="Lamp", price=Decimal(5))
    product.version = 1
    plan = plan_update(product, [Product.price.set(Product.price - 3)])
    assert "Price >= {'N': '3'}" in _condition(plan)  # non-negative: at least the amount


def test_adding_money_is_guarded_by_the_most_the_attribute_holds() -> None:
    plan = plan_update(_stored_order(), [Order.amount.add(Decimal("1.25"))])
    assert "Amount <= {'N': '" + "9" * 35 + "8.74'}" in _condition(plan)  # 99...9.99 - 1.25
    with pytest.raises(InvalidInput, match="larger than"):
        _effect(Order, Order.amount.set(Order.amount + Decimal("1E+37")))


@pytest.mark.parametrize(("action", "match"), [
    (lambda: Order.amount.set(Order.amount - 1000), "break its rule"),
    (lambda: Order.amount.set(Order.amount - 10), "break its rule"),  # to zero: above zero is the rule
    (lambda: Order.amount.add(Value({"N": "-11"})), "break its rule"),
    (lambda: Order.amount.set(Order.amount - Order.amount), "literal amount"),
    (lambda: Order.amount.set(Order.amount + Value({"N": "0.001"})), "decimal places"),
    (lambda: Order.amount.set(Order.amount + Value({"N": "0"})), "adding zero"),
    (lambda: Order.amount.set(Value({"N": "1"}) - Order.amount), "start from"),
])
def test_arithmetic_that_breaks_the_rule_is_refused_before_sending(action: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        plan_update(_stored_order(), [action()])


def test_arithmetic_is_for_money_only() -> None:
    with pytest.raises(InvalidInput, match="money only"):
        _effect(Order, Order.user_id.set(Path("UserId") + Value({"N": "1"})))


# --- copies and containers ------------------------------------------------------------------------


def test_a_copy_needs_an_attribute_declared_alike() -> None:
    with pytest.raises(InvalidInput, match="declared differently"):
        _effect(Order, Order.amount.set(Order.user_id))
    assert _effect(Order, Order.order_id.set(Order.user_id)).known is False  # both plain strings
    with pytest.raises(InvalidInput, match="declared differently"):
        _effect(User, User.name.set(User.email))


def test_inside_a_free_form_map_any_storable_value_goes_and_a_huge_number_does_not() -> None:
    assert _effect(Product, Product.attributes["w"].set(3)).known is False
    with pytest.raises(InvalidInput, match="significant digits"):
        _effect(Product, Product.attributes["w"].set(10 ** 50))
    with pytest.raises(InvalidInput, match="not a map, list or set"):
        _effect(Order, Path(["Amount", "x"]).set(Value({"N": "1"})))


def test_check_numbers_walks_maps_lists_and_sets() -> None:
    check_numbers({"M": {"a": {"L": [{"N": "1"}, {"NS": ["2", "3"]}]}}}, "x")
    for bad in ({"M": {"a": {"N": "1E+126"}}}, {"L": [{"N": "1" * 39}]}, {"NS": ["1", "1E-131"]}):
        with pytest.raises(InvalidInput):
            check_numbers(bad, "x")


def test_one_attribute_in_two_actions_is_refused() -> None:
    with pytest.raises(InvalidInput, match="two actions"):
        plan_update(_stored_order(), [Order.amount.set(Decimal(1)), Order.amount.set(Decimal(2))])


def test_a_status_move_still_follows_the_lifecycle() -> None:
    with pytest.raises(InvalidInput, match="cannot move"):
        plan_update(_stored_order(), [Order.status.set(OrderStatus.DELIVERED)])
    plan = plan_update(_stored_order(), [Order.status.set(OrderStatus.PAID)])
    assert plan.changes["status"] is OrderStatus.PAID and plan.changes["gsi1pk"] == "STATUS#PAID"


# --- merging --------------------------------------------------------------------------------------


def _step(op: str, key: tuple[str, str], condition: str | None = None, *, expects: bool | None = None,
          names: dict[str, str] | None = None, values: dict[str, Any] | None = None,
          error: type[Exception] = ConflictError) -> Step:
    kwargs: dict[str, Any] = {"TableName": "t", "Key": {"PK": {"S": key[0]}, "SK": {"S": key[1]}}}
    if condition is not None:
        kwargs["ConditionExpression"] = condition
        kwargs["ExpressionAttributeNames"] = names or {}
        if values:
            kwargs["ExpressionAttributeValues"] = values
    return Step(op, kwargs, lambda _: error(f"{op} failed"), expects=expects)  # type: ignore[arg-type]


A, B = ("A", "1"), ("B", "1")


def test_a_check_on_an_item_another_step_updates_is_folded_into_it_with_names_renamed_apart() -> None:
    update = _step("update", A, "#0 = :0", names={"#0": "Version"}, values={":0": {"N": "3"}})
    check = _step("check", A, "#0 > :0", names={"#0": "Amount"}, values={":0": {"N": "9"}})
    (merged,) = merge_steps([update, check], "t")
    assert merged.kwargs["ConditionExpression"] == "(#0 = :0 AND #m0 > :m0)"
    assert merged.kwargs["ExpressionAttributeNames"] == {"#0": "Version", "#m0": "Amount"}
    assert merged.kwargs["ExpressionAttributeValues"] == {":0": {"N": "3"}, ":m0": {"N": "9"}}
    assert update.kwargs["ConditionExpression"] == "#0 = :0"  # the step itself is not changed
    failure = merged.failure(None)
    assert isinstance(failure, ConflictError)
    assert "update failed" in str(failure) and "check failed" in str(failure)


def test_a_name_both_conditions_use_keeps_one_placeholder() -> None:
    update = _step("update", A, "#0 = :0", names={"#0": "Amount"}, values={":0": {"N": "3"}})
    check = _step("check", A, "#5 > :5", names={"#5": "Amount"}, values={":5": {"N": "1"}})
    (merged,) = merge_steps([update, check], "t")
    assert merged.kwargs["ConditionExpression"] == "(#0 = :0 AND #0 > :m0)"


def test_a_check_folded_into_a_write_without_a_condition_becomes_its_condition() -> None:
    put = Step("put", {"TableName": "t", "Item": {"PK": {"S": "A"}, "SK": {"S": "1"}}},
               lambda _: AlreadyExists("x"))
    check = _step("check", A, "#0 > :0", names={"#0": "Amount"}, values={":0": {"N": "9"}})
    (merged,) = merge_steps([put, check], "t")
    assert merged.kwargs["ConditionExpression"] == "#m0 > :m0"


def test_an_owner_check_on_an_item_the_transaction_deletes_is_refused() -> None:
    with pytest.raises(InvalidInput, match="deletes"):
        merge_steps([_step("delete", A), _step("put", B), _step("check", A, "x", expects=True)], "t")


def test_an_owner_check_on_an_item_the_transaction_writes_is_kept_by_the_write() -> None:
    put = _step("put", A)
    assert merge_steps([put, _step("check", A, "attribute_exists (#0)", expects=True)], "t") == [put]


def test_an_absence_check_holds_for_a_delete_and_never_for_a_put() -> None:
    delete = _step("delete", A)
    assert merge_steps([delete, _step("check", A, "x", expects=False)], "t") == [delete]
    with pytest.raises(InvalidInput, match="absent"):
        merge_steps([_step("put", A), _step("check", A, "x", expects=False)], "t")


def test_two_writes_of_one_item_are_refused() -> None:
    with pytest.raises(InvalidInput, match="one operation per item"):
        merge_steps([_step("update", A), _step("put", A)], "t")


def test_identical_checks_go_once_and_different_ones_on_one_item_are_joined() -> None:
    owner = _step("check", B, "attribute_exists (#0)", names={"#0": "PK"}, expects=True, error=NotFound)
    again = _step("check", B, "attribute_exists (#0)", names={"#0": "PK"}, expects=True)
    steps = merge_steps([_step("put", A), owner, again], "t")
    assert [s.op for s in steps] == ["put", "check"] and steps[1] is owner
    other = _step("check", B, "#0 > :0", names={"#0": "Amount"}, values={":0": {"N": "1"}})
    steps = merge_steps([_step("put", A), owner, other], "t")
    assert steps[1].kwargs["ConditionExpression"] == "(attribute_exists (#0) AND #m0 > :m0)"


def test_condition_kwargs_and_a_single_step_are_left_as_they_are() -> None:
    single = [_step("update", A)]
    assert merge_steps(single, "t") is single
    assert condition_kwargs(Order.amount > 1)["ConditionExpression"] == "#0 > :0"


def test_a_value_serialized_by_hand_is_sent_in_the_form_the_rule_writes() -> None:
    effect = _effect(User, User.email.set(Value({"S": "ADA@Example.COM"})))
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    effect.action.serialize(names, values)
    assert list(values.values()) == [{"S": "ada@example.com"}] and effect.value == "ada@example.com"
    effect = _effect(User, User.name.set(Value({"S": "  Ada  "})))
    values = {}
    effect.action.serialize({}, values)
    assert list(values.values()) == [{"S": "Ada"}]


def test_a_second_fold_takes_the_next_free_placeholders_and_messages_are_exact() -> None:
    update = _step("update", A, "#0 = :0", names={"#0": "Version"}, values={":0": {"N": "3"}})
    first = _step("check", A, "#0 > :0", names={"#0": "Amount"}, values={":0": {"N": "1"}})
    second = _step("check", A, "#0 < :0", names={"#0": "Price"}, values={":0": {"N": "2"}})
    (merged,) = merge_steps([update, first, second], "t")
    assert merged.kwargs["ConditionExpression"] == "((#0 = :0 AND #m0 > :m0) AND #m1 < :m1)"
    assert merged.kwargs["ExpressionAttributeNames"] == {"#0": "Version", "#m0": "Amount", "#m1": "Price"}
    assert str(merged.failure(None)) == "update failed; or check failed; or check failed"
    two = r"^t: two writes of one item in one transaction; DynamoDB allows one operation per item: compose"
    with pytest.raises(InvalidInput, match=two + r" one write per item$"):
        merge_steps([_step("update", A), _step("put", A)], "t")
    with pytest.raises(InvalidInput, match=r"^t: a step needs an item that this transaction deletes$"):
        merge_steps([_step("delete", A), _step("check", A, "x", expects=True)], "t")
    with pytest.raises(InvalidInput, match=r"^t: a step needs an item absent that this transaction writes$"):
        merge_steps([_step("put", A), _step("check", A, "x", expects=False)], "t")
