"""Writes that replace without a condition of the caller's: the upsert and ``batch_write``'s puts.

Both are planned as a put of the entity (``models.planning``): keys derived by its templates, value
rules kept by its serialization, the TTL its ``Expires`` rule sets, the 400 KB item limit, the
version and the write tokens. A rule that only a conditioned write can keep (``Rule.blind_put``
false: a unique value, an owner, a lifecycle, a derived item, a ``WrittenBy``) refuses the entity
with ``InvalidInput`` naming what to use instead, before anything is sent.

``plan_upsert``: one ``UpdateItem`` that sets every attribute of that put (removing unset ones),
keeps ``CreatedAt`` and moves ``Version`` on by one, so a copy read before is stale afterwards.

``plan_batch_put``: the put ``BatchWriteItem`` sends. A batch carries no condition, so its version
comes from the item stored at its key, read just before (``STORED``; ``BatchPut.base_on``): never
set back, and a taken key or a stale version reported for ``batch_write`` to refuse. Its token
stays with the entity until the write is acknowledged (``BatchPut.written``): planned again after
a lost answer, the stored item shows it, and the entity counts as written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pynamodb.expressions.update import Action

from core.errors import DataLayerError, InvalidInput
from core.ids import uuid4_hex
from models.actions import check_action_numbers
from models.item_size import check_item_size
from models.planning import Plan, apply_rules, check_expiry, request_key, serialized, version_of
from models.reading import VERSION
from models.sending import record_written

if TYPE_CHECKING:
    from models.table import TableModel

# What a batch put reads of the item stored at its key (stored attribute names).
STORED = ("PK", "SK", "Version", "CreatedAt", "UpdatedAt", "WriteToken")
_PENDING = "_pending_write_token"  # the token of a batch put not yet acknowledged
_MANAGED = {"pk", "sk", "version", "created_at", "updated_at", "write_token", "prior_write_token"}

TAKEN = "taken"  # a new entity's key holds an item
STALE = "stale"  # the entity's version is not the stored one (or its item is gone)
LANDED = "landed"  # an earlier attempt of this very put is stored


def planned_as_put(entity: TableModel, what: str, *, token: str | None = None,
                   now: datetime | None = None) -> Plan:
    """A put of ``entity`` with no condition, every rule it declares applied as on any put;
    ``InvalidInput`` naming what to use when a rule needs a condition or a companion. ``token``
    and ``now``: the plan's write token and time (else new ones)."""
    model = type(entity)
    for rule in model.rules:
        if not rule.blind_put:
            raise InvalidInput(f"{what} cannot keep {model.__name__}'s {type(rule).__name__} rule; "
                               f"use {rule.instead}")
    check_expiry(entity)
    plan = Plan(entity, "put", versioned=False, token=token or uuid4_hex(), now=now or datetime.now(UTC))
    apply_rules(plan)
    if plan.condition is not None or plan.companions:  # a rule that said it needs neither
        raise InvalidInput(f"{what} cannot keep {model.__name__}'s rules; use the entity's own save()")
    return plan


def plan_upsert(entity: TableModel) -> Plan:
    """Create ``entity``, or replace whatever is stored at its key: one ``UpdateItem`` that sets
    every attribute of the put it plans (removing unset ones), keeps ``CreatedAt`` and moves
    ``Version`` on by one, so a copy read before is stale afterwards."""
    model = type(entity)
    planned_as_put(entity, "an upsert")
    check_item_size(serialized(entity), f"{model.__name__} upsert")  # the item it replaces
    now = model.now()
    actions: list[Action] = [model.entity_type.set(model)]
    for name, attribute in model.get_attributes().items():
        if name not in _MANAGED and name != "entity_type":
            value = getattr(entity, name)
            actions.append(attribute.remove() if value is None else attribute.set(value))
    for action in actions:
        check_action_numbers(action, f"{model.__name__} upsert")
    actions += [model.created_at.set(model.created_at | now), model.updated_at.set(now), model.version.add(1)]
    return Plan(entity, "update", actions=tuple(actions), versioned=False)


@dataclass(slots=True)
class BatchPut:
    """One entity's put in a ``BatchWriteItem``: its plan, and the entity's timestamps before it."""

    plan: Plan
    entity: TableModel  # the entity it writes (the plan's)
    created_at: datetime | None
    updated_at: datetime | None
    key: tuple[str, str]  # the (PK, SK) it writes (built again on the stored item, it keeps its key)

    @property
    def item(self) -> dict[str, Any]:
        """The item this put stores (as ``PutItem`` would): its plan's request's, built once."""
        item: dict[str, Any] = self.plan.main_request()["Item"]
        return item

    def restore(self) -> None:
        """Give the entity back the timestamps it had before this put was planned (nothing sent)."""
        self.entity.created_at, self.entity.updated_at = self.created_at, self.updated_at

    def base_on(self, stored: Mapping[str, Any] | None) -> str | None:
        """Build the put on ``stored``, the item at its key (``STORED`` of it; None: no item): the
        Version written is the stored one + 1 (at least the entity's own + 1), and a replaced item
        keeps its ``CreatedAt`` when the entity has none. ``LANDED`` when an earlier attempt of this
        put is stored (its token, its version); ``TAKEN`` or ``STALE`` when the put would replace
        what its entity never read; else None."""
        entity, plan = self.entity, self.plan
        old_version = _stored_version(stored)
        version = version_of(entity)
        own = version or 0
        if stored is not None and stored.get("WriteToken") == {"S": plan.token} and old_version == own + 1:
            return LANDED
        outcome = None
        if version is None and stored is not None:
            outcome = TAKEN
        elif version is not None and (stored is None or version != old_version):
            outcome = STALE
        plan.next_version = max(_at_least(old_version), own) + 1
        changed = self.item.get(VERSION) != {"N": str(plan.next_version)}
        if stored is not None and self.created_at is None and "CreatedAt" in stored:
            entity.created_at = type(entity).created_at.deserialize(stored["CreatedAt"]["S"])
            changed = True
        if changed:  # built again, and measured again: a longer version or another CreatedAt
            plan.rebuild()
        return outcome

    def written(self, stored: Mapping[str, Any] | None = None) -> None:
        """The put is stored: the entity takes its version and gives up its pending token.
        ``stored``: what an earlier attempt of it stored (``LANDED``), whose timestamps the entity
        takes (this attempt stamped its own, which were never written)."""
        entity = self.entity
        entity.__dict__.pop(_PENDING, None)
        if stored is not None:
            model = type(entity)
            for name, attribute in (("created_at", model.created_at), ("updated_at", model.updated_at)):
                if attribute.attr_name in stored:
                    setattr(entity, name, attribute.deserialize(stored[attribute.attr_name]["S"]))
        record_written(self.plan, None)


def plan_batch_put(entity: TableModel, now: datetime | None = None, token: str | None = None) -> BatchPut:
    """The put of ``entity`` in a ``BatchWriteItem``, built and checked before anything is sent
    (rules, keys, values, size); the entity's timestamps are as before when it raises. ``now``:
    the time of the whole batch (one ``UpdatedAt`` for every entity a call writes); ``token``: a
    new write token for it (else one is made), used unless the entity holds one not acknowledged."""
    values = entity.attribute_values  # the timestamps are plain attributes: read without their descriptor
    before = values.get("created_at"), values.get("updated_at")
    try:
        # The token stays with the entity until its write is acknowledged (see the module docstring).
        token = entity.__dict__.setdefault(_PENDING, token or uuid4_hex())
        plan = planned_as_put(entity, "batch_write", token=token, now=now)
        request = plan.main_request()
    except DataLayerError:
        entity.created_at, entity.updated_at = before
        raise
    return BatchPut(plan, entity, *before, request_key(request))


def _stored_version(stored: Mapping[str, Any] | None) -> Decimal | None:
    """The stored ``Version``, exactly as stored: another writer's may be ``1.5``, ``-1`` or not a
    number at all (NaN then), which no entity's version equals (stale without ``overwrite``)."""
    if stored is None or "Version" not in stored:
        return None
    try:
        return Decimal(stored["Version"]["N"])
    except (KeyError, TypeError, ArithmeticError):
        return Decimal("NaN")


def _at_least(stored: Decimal | None) -> int:
    """The smallest integer version not below ``stored`` (0 for none, a negative one or NaN)."""
    if stored is None or not stored.is_finite() or stored < 0:
        return 0
    return math.ceil(stored)
