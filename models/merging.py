"""One operation per item: the steps of a transaction merged, never dropped.

DynamoDB refuses a ``TransactWriteItems`` that touches one item twice, so the steps of the plans
sent together (their own writes, the checks their rules ask for, the checks an app adds) are
merged per item before sending. Every check is sent, folded into the write on its item, or
refused; none is discarded:

- two writes on one item: refused (``InvalidInput``): compose one write per item;
- a check that needs the item (an owner check) on an item another step deletes: refused, since
  the rules see the whole transaction (an order saved with the deletion of its user);
- a check that needs the item on an item another step writes: the write keeps it, since it
  creates the item or is itself conditioned on the item it read (a user and its first order);
- a check that needs the item absent on an item another step puts: refused (it could never hold
  once the transaction commits); on an item another step deletes: kept by the delete;
- any other check (an app's ``condition_check``): folded into the write on the same item with
  ``AND``, evaluated against the item as the transaction finds it, and reported if it fails;
- several checks on one item with no write: one check, their conditions joined with ``AND``
  (identical ones once).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.errors import ConflictError, DataLayerError, InvalidInput

if TYPE_CHECKING:
    from models.planning import Step

_PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")
Failure = Callable[[dict[str, Any] | None], DataLayerError]


def merge_steps(steps: list[Step], what: str) -> list[Step]:
    """``steps`` with at most one operation per item, every check kept, in their order (the first
    failed condition is the one reported): see the module docstring."""
    if len(steps) == 1:
        return steps
    writes: dict[tuple[str, str], Step] = {}
    for step in steps:
        if step.op != "check":
            if step.key in writes:
                raise InvalidInput(f"{what}: two writes of one item in one transaction; DynamoDB allows "
                                   "one operation per item: compose one write per item")
            writes[step.key] = step
    merged: dict[tuple[str, str], Step] = dict(writes)
    kept: list[Step] = []
    for step in steps:
        if step.op != "check":
            kept.append(step)
        elif step.key in writes:
            merged[step.key] = _onto_write(merged[step.key], step, what)
        elif step.key not in merged:
            merged[step.key] = step
            kept.append(step)
        elif merged[step.key].kwargs != step.kwargs:
            merged[step.key] = _folded(merged[step.key], step)
    return [merged[step.key] for step in kept]


def _onto_write(write: Step, check: Step, what: str) -> Step:
    if check.expects is True:
        if write.op == "delete":
            raise InvalidInput(f"{what}: a step needs an item that this transaction deletes")
        return write  # the write creates the item, or is conditioned on the item it read
    if check.expects is False:
        if write.op == "delete":
            return write
        raise InvalidInput(f"{what}: a step needs an item absent that this transaction writes")
    return _folded(write, check)


def _folded(into: Step, check: Step) -> Step:
    """``into`` whose condition also requires ``check``'s, its placeholders renamed apart."""
    kwargs = dict(into.kwargs)
    names: dict[str, str] = dict(kwargs.get("ExpressionAttributeNames", {}))
    values: dict[str, Any] = dict(kwargs.get("ExpressionAttributeValues", {}))
    placeholder_of = {name: placeholder for placeholder, name in names.items()}
    renamed: dict[str, str] = {}
    for placeholder, name in check.kwargs.get("ExpressionAttributeNames", {}).items():
        if name not in placeholder_of:
            placeholder_of[name] = _fresh("#m", names)
            names[placeholder_of[name]] = name
        renamed[placeholder] = placeholder_of[name]
    for placeholder, value in check.kwargs.get("ExpressionAttributeValues", {}).items():
        renamed[placeholder] = _fresh(":m", values)
        values[renamed[placeholder]] = value
    condition = _PLACEHOLDER.sub(lambda m: renamed.get(m.group(), m.group()),
                                 check.kwargs["ConditionExpression"])
    own = kwargs.get("ConditionExpression")
    # PynamoDB's form: a compound condition is one parenthesized group (DynamoDB refuses doubled ones)
    kwargs["ConditionExpression"] = condition if own is None else f"({own} AND {condition})"
    kwargs["ExpressionAttributeNames"] = names
    if values:
        kwargs["ExpressionAttributeValues"] = values
    return dataclasses.replace(into, kwargs=kwargs, failure=_either(into.failure, check.failure))


def _fresh(prefix: str, taken: dict[str, Any]) -> str:
    number = 0
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"


def _either(own: Failure, other: Failure) -> Failure:
    def failure(old: dict[str, Any] | None) -> DataLayerError:
        return ConflictError(f"{own(old)}; or {other(old)}")

    return failure
