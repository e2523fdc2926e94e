"""Requests a rule writes out by hand are the ones PynamoDB's expressions build."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

import pytest

from models import Account, Order, OrderStatus, RetiredUserId, Transfer, User
from models.planning import plan_put
from models.rules import MAX_BALANCE, MAX_BALANCE_DIGITS, Moves


def _pynamodb_change(account_id: str, credit: bool, amount: Decimal, now: datetime) -> dict[str, Any]:
    balance = Account.balance
    exists = Account.pk.exists()
    with localcontext() as exact:
        exact.prec = 2 * MAX_BALANCE_DIGITS
        room = MAX_BALANCE - amount
    if credit:
        actions, condition = [balance.set(balance + amount)], exists & (balance <= room)
    else:
        actions, condition = [balance.set(balance - amount)], exists & (balance >= amount)
    actions += [Account.updated_at.set(now), Account.version.add(1)]
    account = Account(account_id=account_id)
    low: dict[str, Any] = account._get_connection().get_operation_kwargs(
        account.pk, range_key=account.sk, condition=condition, actions=actions,
        return_values_on_condition_failure="ALL_OLD")
    return low


@pytest.mark.parametrize("amount", [Decimal("0.01"), Decimal("2.50"), Decimal("123456789012345678901234.99"),
                                    MAX_BALANCE])
def test_a_transfer_credits_and_debits_with_the_requests_pynamodb_builds(amount: Decimal) -> None:
    plan = plan_put(Transfer(transfer_id="t1", from_account="a1", to_account="a2", amount=amount))
    credit, debit = plan.companions
    assert credit.kwargs == _pynamodb_change("a2", True, amount, plan.now)
    assert debit.kwargs == _pynamodb_change("a1", False, amount, plan.now)
    assert (credit.op, debit.op) == ("update", "update")
    assert Transfer.rule(Moves) is not None
    stamped = credit.kwargs["ExpressionAttributeValues"][":2"]["S"]
    assert datetime.fromisoformat(stamped) == plan.now.astimezone(UTC)


def test_an_owner_check_and_a_retired_id_check_are_the_requests_pynamodb_builds() -> None:
    order = plan_put(Order(user_id="u1", order_id="o1", amount=Decimal("1"), status=OrderStatus.PENDING))
    (owner_check,) = order.companions
    owner = User(user_id="u1")
    assert owner_check.kwargs == owner._get_connection().get_operation_kwargs(
        owner.pk, range_key=owner.sk, condition=User.pk.exists())
    user = plan_put(User(user_id="u1", email="a@example.com", name="A"))
    retired = RetiredUserId(user_id="u1")
    (marker_check,) = [step for step in user.companions if step.op == "check"]
    assert marker_check.kwargs == retired._get_connection().get_operation_kwargs(
        retired.pk, range_key=retired.sk, condition=RetiredUserId.pk.does_not_exist())


def _pynamodb_put(entity: Any, condition: Any) -> dict[str, Any]:
    """What PynamoDB's own save builds for ``entity`` under ``condition`` (its version handled by
    ``Model._handle_version_attribute``), with the item the layer serialized."""
    item: dict[str, Any] = entity.serialize(null_check=True)
    version_condition = entity._handle_version_attribute(attributes=item)
    both = condition & version_condition if condition is not None else version_condition
    low: dict[str, Any] = entity._get_connection().get_operation_kwargs(
        *entity._get_hash_range_key_serialized_values(), key="Item", condition=both, attributes=item)
    return {"TableName": type(entity).Meta.table_name, "Item": low["Item"],
            **{k: v for k, v in low.items() if k.startswith(("Condition", "Expression"))}}


@pytest.mark.parametrize("stored_version", [None, 1, 7])
def test_a_put_and_its_version_condition_are_the_request_pynamodb_builds(stored_version: int | None) -> None:
    """A new order's put (its condition serialized once for the model) and a stored one's (on the
    version read): the request PynamoDB's save builds, twice in a row (nothing shared is changed)."""
    for _ in range(2):
        order = Order(user_id="u1", order_id="o1", amount=Decimal("1"), status=OrderStatus.PENDING)
        if stored_version is not None:
            order.version = stored_version
        plan = plan_put(order)
        ours = plan.main_step().kwargs
        expected_order = Order(user_id="u1", order_id="o1", amount=Decimal("1"), status=OrderStatus.PENDING)
        if stored_version is not None:
            expected_order.version = stored_version
        expected_order.write_token, expected_order.created_at = order.write_token, order.created_at
        expected_order.prior_write_token = order.prior_write_token
        expected_order.stamp(plan.now)
        expected = _pynamodb_put(expected_order, plan.condition)  # the rules' conditions: Status, or no item
        assert {k: v for k, v in ours.items() if k != "ReturnValues"} == expected
        assert ours["Item"]["Version"] == {"N": str((stored_version or 0) + 1)}
        ours["ExpressionAttributeNames"]["#0"] = "changed"  # a caller may change its request
