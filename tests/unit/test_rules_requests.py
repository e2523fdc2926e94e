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
