"""Transactions an app composes: ``with transaction() as t: t.save(order); t.update(user, [...])``.

Each write added is planned as the entity's own method would plan it (``models.planning``: claims,
owner checks, status moves, derived keys, TTLs, the conditions update actions need), and the whole
is sent as one ``TransactWriteItems`` (``models.sending``), its steps merged per item
(``models.merging``), so no check is dropped. PynamoDB's own ``TransactWrite`` is refused
(``models.table``): it cannot keep what this keeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from core.engine import bridge
from core.error_codes import throttled
from core.errors import ConflictError, InvalidInput
from models import planning, sending
from models.cancellations import Contended

if TYPE_CHECKING:
    from models.table import TableModel

__all__ = ["Transaction", "atransaction", "transaction"]

class Transaction:
    """Writes an app composes into one ``TransactWriteItems``, each with its entity's rules.

    ``save``, ``update`` and ``delete`` plan the write as the entity's own method would (claims,
    owner checks, status moves, derived keys, the conditions update actions need) and add it;
    ``condition_check`` adds a check. Nothing is sent until the ``with`` block ends without an
    exception; the steps are then merged to one operation per item (``models.merging``): a check
    on an item another step writes is folded into that write, never dropped.
    """

    def __init__(self, *, token: str | None = None) -> None:
        self.plans: list[planning.Plan] = []
        self.checks: list[planning.Step] = []
        self.token = token

    def save(self, entity: TableModel, condition: Condition | None = None) -> None:
        """Put ``entity`` (create, or replace the version it was read at)."""
        self.plans.append(planning.plan_put(entity, condition))

    def update(self, entity: TableModel, actions: list[Action], condition: Condition | None = None) -> None:
        """Update ``entity`` with ``actions`` (conditioned on its version)."""
        self.plans.append(planning.plan_update(entity, actions, condition))

    def delete(self, entity: TableModel, condition: Condition | None = None) -> None:
        """Delete ``entity`` (conditioned on its version)."""
        self.plans.append(planning.plan_delete(entity, condition))

    def condition_check(self, model: type[TableModel], condition: Condition, **key_parts: Any) -> None:
        """Require ``condition`` of the ``model`` item at ``key_parts``; ``ConflictError`` if it fails."""
        if not isinstance(condition, Condition):
            raise InvalidInput("condition_check takes a PynamoDB condition, such as Order.amount > 0")
        probe = model(**key_parts)
        probe.fill_keys()
        connection = model._get_connection()
        kwargs = connection.get_operation_kwargs(probe.pk, range_key=probe.sk, condition=condition)
        self.checks.append(planning.Step("check", kwargs, lambda _: ConflictError(
            f"the condition on the {model.__name__} in this transaction does not hold")))

    def commit(self) -> None:
        """Send everything added as one transaction; entities whose new values DynamoDB computed
        (arithmetic) are read again."""
        if not self.plans:
            raise InvalidInput("a transaction needs at least one save, update or delete")
        try:
            sending.send(self.plans, what="transaction", token=self.token, checks=tuple(self.checks))
        except Contended as exc:
            if exc.throttled:
                raise throttled(exc.__cause__, "transaction: DynamoDB throttled an item; nothing was "
                                               "written") from exc.__cause__
            raise ConflictError("a concurrent write won; compose the transaction again") from exc
        for plan in self.plans:
            if plan.unknown:
                sending.read_again(plan.entity)


@contextmanager
def transaction(*, token: str | None = None) -> Iterator[Transaction]:
    """``with transaction() as t: t.save(order); t.update(user, [...])``: one atomic write.

    ``token`` is DynamoDB's ``ClientRequestToken``: the same token re-sent within ten minutes is
    applied once.
    """
    composed = Transaction(token=token)
    yield composed
    composed.commit()


@asynccontextmanager
async def atransaction(*, token: str | None = None) -> AsyncIterator[Transaction]:
    """``async with atransaction() as t: t.save(order); t.update(user, [...])``: ``transaction``,
    its commit awaited (``core.engine.bridge``). Adding writes sends nothing; the commit is the
    same code, with the same rules, refusals and outcomes."""
    composed = Transaction(token=token)
    yield composed
    await bridge.run(composed.commit)
