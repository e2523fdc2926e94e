"""Planning a write: the entity's own operation and the companions its declared rules need.

Every write of an entity is planned here, without I/O: ``TableModel.save()``, ``update()`` and
``delete()``, the repositories, a composed transaction (``models.writes``), and the writes that
replace without a condition of the caller's (the upsert and ``batch_write``, ``models.blind_puts``).
A ``Plan`` holds the entity's own operation (``kind``) with its version and rule conditions, plus
the companion operations its rules need (an email claim, a ConditionCheck on the owner, the
aggregate a reading folds into). ``models.sending`` sends it.

What every plan shares: keys derived from the entity's templates (again when a part changes), the
declared rules applied (``Rule.plan``: a condition, a companion, a TTL, or a refusal with
``InvalidInput`` naming what to call instead), no TTL on an entity that declares no expiry, the
400 KB item limit checked on every put, and the version and write-token fields of its own item.

Write tokens. The entity's own put or update stores the plan's token (``WriteToken``) and moves the
token it replaces to ``PriorWriteToken``; a write whose answer was lost recognises its own effect
by them (``models.sending``). Update actions are read for what they do (``models.actions``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from pynamodb.constants import ITEM, KEY
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path
from pynamodb.expressions.update import Action

from core.errors import AlreadyExists, ConflictError, DataLayerError, InvalidInput
from core.ids import uuid4_hex
from models.actions import check_action
from models.item_size import NUMBER_BOUND, check_item_size
from models.partial import Partial
from models.reading import VERSION

if TYPE_CHECKING:
    from models.table import TableModel

_STALE = "changed or was deleted since it was read"

# The share of the Version a put sets after serialization in the item's size bound (counted again
# when serialization wrote one: a bound may be over).
_VERSION_BOUND = 4 * len(VERSION) + NUMBER_BOUND


@dataclass
class Step:
    """One operation of a write: ``op`` with the low-level ``kwargs`` PynamoDB's connection builds.

    ``failure`` makes the error its failed condition means, from the item DynamoDB returns with the
    failure (``ALL_OLD``, when the step asks for it; ``None`` when there is no item); ``retry``
    marks a condition that fails only when a concurrent writer won, so the write is planned again.
    """

    op: str  # check, delete, put or update
    kwargs: dict[str, Any]
    failure: Callable[[dict[str, Any] | None], DataLayerError]
    retry: bool = False
    token: str | None = None  # the WriteToken this step stores: a failed condition showing it is our own
    expects: bool | None = None  # a check that the item exists (True) or not (False); None: another condition

    @property
    def key(self) -> tuple[str, str]:
        """The ``(PK, SK)`` this step writes or checks."""
        return request_key(self.kwargs)


def request_key(kwargs: dict[str, Any]) -> tuple[str, str]:
    """The ``(PK, SK)`` a low-level request writes or checks (its ``Key``, or its ``Item``'s)."""
    key = kwargs.get(KEY) or kwargs.get(ITEM) or {}
    return key["PK"]["S"], key["SK"]["S"]


@dataclass(slots=True)
class Plan:
    """One entity's write: its own operation (``kind``), conditions, update actions and companions."""

    entity: TableModel
    kind: str  # put, update or delete
    actions: tuple[Action, ...] = ()  # update: what it does to the item (``act``)
    changes: dict[str, Any] = field(default_factory=dict)  # update: attribute -> new value
    condition: Condition | None = None
    companions: tuple[Step, ...] = ()  # sent in the same transaction (``add``)
    versioned: bool = True  # conditioned on the version read (optimistic locking)
    unknown: AbstractSet[str] = frozenset()  # update: attributes whose new value DynamoDB computes
    # DynamoDB's ClientRequestToken when the plan is sent as a transaction: a plan sent again (after
    # a lost answer, or a contended attempt) is the very same request under the same token.
    token: str = field(default_factory=uuid4_hex)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # one timestamp for the write
    # A put sent without a version condition (``models.blind_puts``): the Version it stores, above
    # the one stored at its key. None: the entity's own version + 1.
    next_version: int | None = None
    # The entity's own operation once built: its op, request and token (a step is made of them at
    # each ``main_step``, naming this plan: the plan holds no step, so the two make no reference
    # cycle, and a plan written and dropped is freed at once, not by the garbage collector).
    _main: tuple[str, dict[str, Any], str | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        refuse_partial(self.entity)

    @property
    def new(self) -> bool:
        """A put of an entity never stored (no version yet)."""
        return self.kind == "put" and version_of(self.entity) is None

    def stored(self, name: str) -> Any:
        """What the table held for ``name`` when the entity was last read or written (else its value)."""
        return self.entity.stored_values().get(name, getattr(self.entity, name))

    def value(self, name: str) -> Any:
        """The value ``name`` has after this write (an update leaves what it does not set as stored)."""
        if name in self.changes:
            return self.changes[name]
        return self.stored(name) if self.kind == "update" else getattr(self.entity, name)

    def changed(self, name: str) -> bool:
        """Whether this write gives ``name`` a value other than the stored one."""
        if self.kind == "update":
            return name in self.changes and self.changes[name] != self.stored(name)
        return self.kind == "put" and not self.new and self.value(name) != self.stored(name)

    def require(self, condition: Condition) -> None:
        """Make the entity's own operation conditional on ``condition`` too."""
        self.condition = condition if self.condition is None else self.condition & condition

    def act(self, action: Action) -> None:
        """Make the update do ``action`` too."""
        self.actions = (*self.actions, action)

    def add(self, step: Step, *, first: bool = False) -> None:
        """Send ``step`` in the same transaction as the entity's own operation (``first``: before
        the companions added so far)."""
        self.companions = (step, *self.companions) if first else (*self.companions, step)

    def main_failure(self, old: dict[str, Any] | None = None) -> DataLayerError:
        """What a failed condition on the entity's own operation means."""
        name = type(self.entity).__name__
        if self.new:
            return AlreadyExists(f"a {name} with this id exists already")
        return ConflictError(f"the {name} {_STALE}: read it again (a function that writes it, such as "
                             "set_order_status or update_user, returns the updated entity and leaves the one "
                             "passed in as it was)")

    def main_step(self, *, add_version_condition: bool = True) -> Step:
        """The entity's own operation, with its version handling and every rule condition (built
        once: sending the plan again sends the same request)."""
        kind, low, token = self._built(add_version_condition)
        return OwnStep(kind, low, self.main_failure, token=token, plan=self)

    def main_request(self) -> dict[str, Any]:
        """The low-level request of the entity's own operation (``main_step``'s ``kwargs``)."""
        return self._built(True)[1]

    def _built(self, add_version_condition: bool) -> tuple[str, dict[str, Any], str | None]:
        main = self._main
        if main is None:
            main = self._main = self._build_main(add_version_condition=add_version_condition)
        return main

    def rebuild(self) -> Step:
        """Build the entity's own operation again (a blind put given its ``next_version``)."""
        self._main = None
        return self.main_step()

    def _build_main(self, *, add_version_condition: bool) -> tuple[str, dict[str, Any], str | None]:
        entity = self.entity
        condition = self.condition
        model = type(entity)
        token = None if self.kind == "delete" else self.token
        add_version_condition = add_version_condition and self.versioned
        if self.kind == "put":
            entity.stamp(self.now)
            # A replacing put carries the token of the version it replaces (the one read, not that
            # of an earlier attempt of this entity that never landed): see ``models.sending``.
            read = entity.__dict__.get("_token_read")
            stored_version = version_of(entity)
            values = entity.attribute_values  # the tokens are plain attributes
            if read is None or read[0] != stored_version:
                read = entity.__dict__["_token_read"] = (stored_version, values.get("write_token"))
            values["prior_write_token"] = None if stored_version is None else read[1]
            values["write_token"] = token
            low = put_kwargs(entity, condition, add_version_condition=add_version_condition,
                             version=self.next_version)
        else:
            hash_key, range_key = entity._get_hash_range_key_serialized_values()
            actions = None
            if self.kind == "update":
                # A SET's operand reads the item as it was before the update: the previous write's
                # token moves to PriorWriteToken ("" when the item had none) as this one's is set.
                # (no action of the plan names it: check_action and plan_upsert leave the tokens out)
                prior = model.prior_write_token
                actions = [*self.actions, prior.set(model.write_token | ""),
                           model.write_token.set(self.token)]
            if self.kind == "update" and not self.versioned:  # not applied twice when sent again
                mine: Condition = (model.write_token.does_not_exist() | (model.write_token != token)) & (
                    model.prior_write_token.does_not_exist() | (model.prior_write_token != token))
                condition = mine if condition is None else condition & mine
            version = versioned(entity, actions=actions) if self.versioned else None
            if add_version_condition and version is not None:
                condition = version if condition is None else condition & version
            low = entity._get_connection().get_operation_kwargs(
                hash_key, range_key=range_key, key=KEY, actions=actions, condition=condition
            )
        return self.kind, low, token


@dataclass
class OwnStep(Step):
    """A plan's own operation (``Plan.main_step``). It names its plan, so an unknown outcome can
    be resolved by reading the entity back (``WriteOutcomeUnknown.resolve``)."""

    plan: Plan | None = field(default=None, repr=False, compare=False)


def put_kwargs(entity: TableModel, condition: Condition | None, *, add_version_condition: bool = True,
               version: int | None = None) -> dict[str, Any]:
    """The low-level ``PutItem`` of ``entity`` (keys and timestamps filled, version handled): what
    PynamoDB's ``_get_save_args`` and ``get_operation_kwargs`` build, in one pass. ``version``
    replaces the Version stored (a blind put's, ``Plan.next_version``). ``InvalidInput`` for an
    item over DynamoDB's 400 KB limit: every put is built here, so every put is measured."""
    if condition is not None and not isinstance(condition, Condition):
        raise InvalidInput("'condition' must be an instance of Condition")
    model = type(entity)
    item, bound = serialized_bounded(entity)
    version_condition = versioned(entity, attributes=item)
    if version is not None:
        item[VERSION] = {"N": str(version)}
    check_item_size(item, model.__name__, bound + _VERSION_BOUND)
    low: dict[str, Any] = {"TableName": model.Meta.table_name, "Item": item}
    if add_version_condition and condition is absent(model) and version_condition is absent(model, "version"):
        kwargs = new_item_kwargs(model)  # the usual put of a new entity: serialized once a model
        low.update(kwargs, ExpressionAttributeNames=dict(kwargs["ExpressionAttributeNames"]))
        return low
    if add_version_condition:
        condition = version_condition if condition is None else condition & version_condition
    if condition is not None:
        low.update(condition_kwargs(condition))
    return low


def versioned(entity: TableModel, *, attributes: dict[str, Any] | None = None,
              actions: list[Action] | None = None) -> Condition:
    """The version condition of a write of ``entity`` (the version read, or none stored), with the
    next version set in ``attributes`` (a put's item) or by ``actions`` (an update's), as PynamoDB's
    ``Model._handle_version_attribute`` does."""
    model = type(entity)
    value = version_of(entity)
    if value is None:
        if attributes is not None:
            attributes[VERSION] = {"N": "1"}
        if actions is not None:
            actions.append(model.version.set(1))
        return absent(model, "version")
    if attributes is not None:
        attributes[VERSION] = {"N": str(value + 1)}
    if actions is not None:
        actions.append(model.version.add(1))
    condition: Condition = model.version == value
    return condition


def version_of(entity: TableModel) -> int | None:
    """``entity.version`` (``None``: never stored) without PynamoDB's descriptor, which the write
    path would otherwise go through several times a write (it casts a float to int: so does this)."""
    value = entity.attribute_values.get("version")
    return int(value) if isinstance(value, float) else value


@functools.cache
def absent(model: type[TableModel], name: str = "pk") -> Condition:
    """``attribute_not_exists`` of ``model``'s attribute ``name``: one object a model and attribute."""
    condition: Condition = getattr(model, name).does_not_exist()
    return condition


@functools.cache
def new_item_kwargs(model: type[TableModel]) -> dict[str, Any]:
    """No item at the key and no version, serialized: a new entity's put condition (it holds no
    values; a caller copies its names before handing them on)."""
    return condition_kwargs(absent(model) & absent(model, "version"))


def serialized(entity: TableModel) -> dict[str, Any]:
    """``entity`` as the item a write stores; ``InvalidInput`` when a value breaks a rule or a
    required one is missing. For an entity read from the table the error names the item: a stored
    value it cannot write back (written by hand, or by another service) must be repaired first."""
    return serialized_bounded(entity)[0]


def serialized_bounded(entity: TableModel) -> tuple[dict[str, Any], int]:
    """``serialized``, and at least the item's size (``EntityWriting.serialize_bounded``)."""
    try:
        return entity.serialize_bounded(null_check=True)
    except (InvalidInput, ValueError, TypeError) as exc:  # AttributeNullError is a ValueError
        if entity.version is None and isinstance(exc, InvalidInput):
            raise
        where = ""
        if entity.version is not None:
            where = f" (the stored {type(entity).__name__} at PK={entity.pk!r}, SK={entity.sk!r})"
        raise InvalidInput(f"{type(entity).__name__} cannot be written: {exc}{where}") from exc


def condition_kwargs(condition: Condition) -> dict[str, Any]:
    """``condition`` as a request's ``ConditionExpression`` and placeholders (as PynamoDB's
    ``get_operation_kwargs`` serializes it)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    kwargs: dict[str, Any] = {
        "ConditionExpression": condition.serialize(names, values),
        "ExpressionAttributeNames": {placeholder: name for name, placeholder in names.items()},
    }
    if values:
        kwargs["ExpressionAttributeValues"] = values
    return kwargs


# --- the plans -----------------------------------------------------------------------------------


def plan_put(entity: TableModel, condition: Condition | None = None) -> Plan:
    """A put of ``entity`` with every rule it declares applied."""
    plan = Plan(entity, "put", condition=condition)
    check_expiry(entity)
    if plan.new:  # a new entity never replaces what is stored at its key
        plan.require(absent(type(entity)))
    apply_rules(plan)
    return plan


def check_expiry(entity: TableModel) -> None:
    """``InvalidInput`` for a TTL on an entity that declares no expiry (an ``Expires`` rule): a put,
    an upsert and ``batch_write`` would otherwise have DynamoDB delete it."""
    expires = entity.attribute_values.get("expires_at")  # a plain attribute once set
    if expires is not None and not any(rule.sets_expiry for rule in type(entity).rules):
        raise InvalidInput(f"{type(entity).__name__} declares no expiry (an Expires rule): "
                           "leave expires_at unset")


def refuse_partial(entity: Any) -> None:
    """``InvalidInput`` for a partial entity (read with ``attributes=``): a write of a part would
    erase, or be checked against, what was not read."""
    if isinstance(entity, Partial):
        raise InvalidInput(f"a partial {entity.entity_class.__name__} (read with attributes=) cannot be "
                           "written: read the whole entity first")


def plan_delete(entity: TableModel, condition: Condition | None = None) -> Plan:
    """A delete of ``entity`` with every rule it declares applied."""
    refuse_partial(entity)
    if entity.version is None:
        raise InvalidInput(f"this {type(entity).__name__} was never stored (it has no version)")
    plan = Plan(entity, "delete", condition=condition)
    apply_rules(plan)
    return plan


def plan_update(entity: TableModel, actions: list[Action], condition: Condition | None = None) -> Plan:
    """An update of ``entity``: each action held to the declarations (``models.actions``), the
    conditions that keep a rule added, derived keys re-derived."""
    refuse_partial(entity)
    model = type(entity)
    if not isinstance(actions, list) or not actions:
        raise InvalidInput("update takes a non-empty list of actions")
    if entity.version is None:
        raise InvalidInput(f"this {model.__name__} was never stored (it has no version): save it first")
    unique = frozenset(name for rule in model.rules for name in rule.claims())
    managed = model.managed_attributes()
    watched = model.watched_attributes()
    changes: dict[str, Any] = {}
    unknown: set[str] = set()
    sent: list[Action] = []
    conditions: list[Condition] = []
    whole: set[str] = set()
    for given in actions:
        effect = check_action(model, given, unique=unique, managed=managed)
        name = effect.name
        if name in watched and not effect.known:
            raise InvalidInput(f"{model.__name__}.{name} is read by a rule: set it to a value, "
                               "not an expression")
        if len(cast(Path, effect.action.values[0]).path) == 1:
            if name in whole:  # DynamoDB refuses two actions on one attribute after it was sent
                raise InvalidInput(f"{model.__name__}.{name} appears in two actions of one update")
            whole.add(name)
        effect.check_from(model, getattr(entity, name))
        if effect.known:
            changes[name] = effect.value
        else:
            unknown.add(name)
        if effect.condition is not None:
            conditions.append(effect.condition)
        sent.append(effect.action)
    plan = Plan(entity, "update", actions=tuple(sent), changes=changes, condition=condition, unknown=unknown)
    for required in conditions:
        plan.require(required)
    derive_keys(plan)
    plan.changes["updated_at"] = model.now()
    plan.act(model.updated_at.set(plan.changes["updated_at"]))
    apply_rules(plan)
    return plan


def derive_keys(plan: Plan) -> None:
    """Set (or remove) every derived key one of whose parts the update ``plan`` changes; refuse a
    change of a table key's part."""
    model = type(plan.entity)
    templates = model.key_templates()
    for key_name, template in templates.items():
        if not any(f in plan.changes for f in template.fields):
            continue
        if key_name in ("pk", "sk"):
            raise InvalidInput(
                f"{model.__name__}: {', '.join(f for f in template.fields if f in plan.changes)} is part of "
                "the table key and cannot change; delete the entity and create another"
            )
        values = {f: plan.value(f) for f in template.fields}
        key = None if any(v is None for v in values.values()) else template.compose(**values)
        attribute = model.get_attributes()[key_name]
        plan.act(attribute.set(key) if key is not None else attribute.remove())
        plan.changes[key_name] = key


def apply_rules(plan: Plan) -> None:
    """Let each rule the entity declares adjust ``plan`` (or refuse it)."""
    for rule in type(plan.entity).rules:
        rule.plan(plan)
