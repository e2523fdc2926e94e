"""Rules an entity declares (``rules = (...)`` on its class), and how each one plans a write.

Every write of an entity is planned by ``models.planning``, which asks each declared rule to adjust
the write's plan: add a condition, add a companion operation to the same transaction, or refuse
with ``InvalidInput`` naming what to call instead. A rule is checked against its entity when the
class is created (``bind``), so a rule naming an attribute the entity lacks fails at import.

``blind_put`` says whether a put with no condition (``BatchWriteItem``) can keep the rule;
``batch_write`` refuses entities with a rule that cannot.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from functools import cache, reduce
from typing import TYPE_CHECKING, Any, ClassVar

from pynamodb.expressions.condition import Condition

from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
)
from models.planning import Plan, Step, condition_kwargs, put_kwargs

if TYPE_CHECKING:
    from models.table import TableModel

# The largest balance DynamoDB's 38 significant digits hold to the cent.
MAX_BALANCE_DIGITS = 38
MAX_BALANCE = Decimal("9" * (MAX_BALANCE_DIGITS - 2) + ".99")


class Rule:
    """Base of the declared rules."""

    blind_put: ClassVar[bool] = False
    sets_expiry: ClassVar[bool] = False  # the rule sets the TTL attribute (``ExpiresAt``)
    instead: str = "the entity's own save(), update() or delete()"

    def bind(self, model: type[TableModel]) -> None:
        """Check the declaration against ``model`` when the class is created."""

    def watched(self) -> Collection[str]:
        """Attributes whose stored value this rule compares with (remembered on every read)."""
        return ()

    def claims(self) -> Collection[str]:
        """Attributes whose value this rule claims (unique): never removed from a stored entity."""
        return ()

    def plan(self, plan: Plan) -> None:
        """Adjust ``plan`` (conditions, companions) or refuse it with ``InvalidInput``."""


def _require_attribute(model: type[TableModel], name: str, rule: Rule) -> None:
    if not hasattr(model, name):
        raise TypeError(f"{model.__name__}: {type(rule).__name__} names {name!r}, which it does not have")


def _all(conditions: list[Condition]) -> Condition:
    return reduce(operator.and_, conditions)


Failure = Callable[[dict[str, Any] | None], DataLayerError]


def _put_step(entity: TableModel, condition: Condition | None, failure: Failure) -> Step:
    return Step("put", put_kwargs(entity, condition), failure)


@cache
def _key_condition(model: type[TableModel], exists: bool) -> dict[str, Any]:
    """``attribute_exists(PK)`` or its negation, serialized as PynamoDB would (built once a model)."""
    return condition_kwargs(model.pk.exists() if exists else model.pk.does_not_exist())


def _check_step(model: type[TableModel], fields: Mapping[str, Any], *, exists: bool,
                failure: Failure) -> Step:
    """A ConditionCheck that an item of ``model`` keyed by ``fields`` exists (or does not), its key
    composed by the model's templates with no entity built."""
    key = {"PK": {"S": model.key_template("pk").compose(**fields)},
           "SK": {"S": model.key_template("sk").compose(**fields)}}
    condition = _key_condition(model, exists)
    kwargs = {"TableName": model.Meta.table_name, "Key": key,
              "ConditionExpression": condition["ConditionExpression"],
              "ExpressionAttributeNames": dict(condition["ExpressionAttributeNames"])}
    return Step("check", kwargs, failure, expects=exists)


def _keyed_step(op: str, entity: TableModel, condition: Condition | None,
                failure: Failure, **extra: Any) -> Step:
    entity.fill_keys()
    low = entity._get_connection().get_operation_kwargs(entity.pk, range_key=entity.sk, condition=condition,
                                                        **extra)
    return Step(op, low, failure)


@dataclass(frozen=True, eq=False)
class Unique(Rule):
    """At most one entity holds a value of ``attribute``: a ``claim`` item keyed by the value is
    put, moved and deleted in the same transaction as the entity (OneTable's ``unique: true``).

    The claim entity's key templates read ``attribute``; its other fields (the owner's id) are
    copied from the entity, and a claim is only moved or freed by its owner.
    """

    attribute: str
    claim: type[TableModel]
    instead: str = "the entity's own save(), update() or delete(), or the repository functions"

    def bind(self, model: type[TableModel]) -> None:
        _require_attribute(model, self.attribute, self)
        for name in self._owner_fields():
            _require_attribute(model, name, self)

    def _owner_fields(self) -> list[str]:
        base = self.claim.shared_attributes()  # the attributes every entity shares are no owner's
        own = set(self.claim.key_templates())
        return sorted(set(self.claim.get_attributes()) - base - own - {self.attribute})

    def watched(self) -> Collection[str]:
        return (self.attribute,)

    def claims(self) -> Collection[str]:
        return (self.attribute,)

    def _claim(self, entity: TableModel, value: Any) -> TableModel:
        fields = {name: getattr(entity, name) for name in self._owner_fields()}
        return self.claim(**{self.attribute: value}, **fields)

    def _stored_form(self, entity: TableModel, value: Any) -> Any:
        # Compared and claimed as written (an email lower-cased), not as assigned in memory.
        return None if value is None else type(entity).get_attributes()[self.attribute].serialize(value)

    def _owned(self, entity: TableModel) -> Condition:
        owned = _all([self.claim.get_attributes()[f] == getattr(entity, f) for f in self._owner_fields()])
        # A missing claim (an entity stored before claims existed) is not an error; another's is.
        free: Condition = self.claim.pk.does_not_exist()
        either: Condition = owned | free
        return either

    def plan(self, plan: Plan) -> None:
        entity, name = plan.entity, self.attribute
        taken = f"this {name} is taken"
        if plan.new:
            claim = self._claim(entity, self._stored_form(entity, plan.value(name)))
            plan.add(_put_step(claim, self.claim.pk.does_not_exist(), lambda _: AlreadyExists(taken)))
            return
        old = self._stored_form(entity, plan.stored(name))
        new = None if plan.kind == "delete" else self._stored_form(entity, plan.value(name))
        if plan.kind != "update" or name in plan.changes:
            # The claim kept, moved or freed is the stored value's: hold the write to it (a copy
            # made by hand, never read, may believe in another value).
            plan.require(type(entity).get_attributes()[name] == old)
        if old != new:
            held = f"the {name} being freed is claimed by another {type(entity).__name__.lower()}"
            plan.add(_keyed_step("delete", self._claim(entity, old), self._owned(entity),
                                 lambda _: ConflictError(held)))
        if new is not None and old != new:
            claim = self._claim(entity, new)
            plan.add(_put_step(claim, self.claim.pk.does_not_exist(), lambda _: AlreadyExists(taken)))


@dataclass(frozen=True, eq=False)
class Lifecycle(Rule):
    """``attribute`` moves only along ``moves`` (value -> the values it may become); a move made
    from a stale copy fails, since the write is conditioned on the stored value it moves from."""

    attribute: str
    moves: Mapping[Any, Collection[Any]]
    blind_put: ClassVar[bool] = False

    def bind(self, model: type[TableModel]) -> None:
        _require_attribute(model, self.attribute, self)

    def watched(self) -> Collection[str]:
        return (self.attribute,)

    def allowed(self, old: Any, new: Any) -> bool:
        """Whether ``old`` may become ``new``."""
        return old == new or new in self.moves.get(old, ())

    def plan(self, plan: Plan) -> None:
        if plan.kind == "delete" or plan.new:
            return
        name = self.attribute
        old, new = plan.stored(name), plan.value(name)
        if not self.allowed(old, new):
            allowed = sorted(str(getattr(v, "value", v)) for v in self.moves.get(old, ()))
            raise InvalidInput(
                f"{type(plan.entity).__name__}.{name} cannot move from {getattr(old, 'value', old)} to "
                f"{getattr(new, 'value', new)} (allowed: {', '.join(allowed) or 'none, it is final'})"
            )
        if plan.kind == "put" or name in plan.changes:  # the move is from the stored value
            plan.require(type(plan.entity).get_attributes()[name] == old)


@dataclass(frozen=True, eq=False)
class BelongsTo(Rule):
    """The entity exists only while its ``owner`` does: creating one checks the owner in the same
    transaction (``NotFound`` otherwise). The owner's key is composed from the entity's fields."""

    owner: type[TableModel]
    instead: str = "the entity's own save() (it checks the owner in the same transaction)"

    def bind(self, model: type[TableModel]) -> None:
        for template in (self.owner.key_template("pk"), self.owner.key_template("sk")):
            for name in template.fields:
                _require_attribute(model, name, self)

    def plan(self, plan: Plan) -> None:
        if not plan.new:
            return
        fields = {f: getattr(plan.entity, f) for t in ("pk", "sk") for f in self.owner.key_template(t).fields}
        missing = f"the {self.owner.__name__} this {type(plan.entity).__name__} belongs to does not exist"
        plan.add(_check_step(self.owner, fields, exists=True, failure=lambda _: NotFound(missing)))


@dataclass(frozen=True, eq=False)
class RetiredOnDelete(Rule):
    """Deleting the entity retires its key: a ``marker`` item is put in its place, and creating an
    entity with that key again is refused, so nothing the old one owned is ever inherited."""

    marker: type[TableModel]

    def bind(self, model: type[TableModel]) -> None:
        for name in self.marker.key_template("pk").fields:
            _require_attribute(model, name, self)

    def _marker(self, entity: TableModel) -> TableModel:
        fields = {f: getattr(entity, f) for f in self.marker.key_template("pk").fields}
        return self.marker(**fields)

    def plan(self, plan: Plan) -> None:
        if plan.new:
            retired = f"this {type(plan.entity).__name__} id belonged to a deleted one and is not reused"
            fields = {f: getattr(plan.entity, f) for f in self.marker.key_template("pk").fields}
            plan.add(_check_step(self.marker, fields, exists=False, failure=lambda _: AlreadyExists(retired)))
        elif plan.kind == "delete":
            marker = self._marker(plan.entity)
            plan.add(_put_step(marker, None, lambda _: ConflictError("retiring the id failed")))


@dataclass(frozen=True, eq=False)
class WrittenBy(Rule):
    """Only ``function`` writes the entity (``attributes`` empty), or only it changes ``attributes``
    once the entity exists; every other write is refused naming it."""

    function: str
    attributes: tuple[str, ...] = ()
    deletable: bool = False

    @property
    def instead(self) -> str:  # type: ignore[override]
        return self.function

    def bind(self, model: type[TableModel]) -> None:
        for name in self.attributes:
            _require_attribute(model, name, self)

    def watched(self) -> Collection[str]:
        return self.attributes

    def plan(self, plan: Plan) -> None:
        name = type(plan.entity).__name__
        if not self.attributes:
            raise InvalidInput(f"{name} is written only by {self.function}")
        if plan.kind == "delete" and not self.deletable:
            raise InvalidInput(f"{name} cannot be deleted; its {', '.join(self.attributes)} changes only "
                               f"through {self.function}")
        if plan.new or plan.kind == "delete":
            return
        for attribute in self.attributes:
            if plan.changed(attribute):
                raise InvalidInput(f"{name}.{attribute} changes only through {self.function}")
            if plan.kind == "put":  # a replace must not change it either, whatever was read
                plan.require(type(plan.entity).get_attributes()[attribute] == plan.stored(attribute))


@dataclass(frozen=True, eq=False)
class Expires(Rule):
    """The entity expires ``after`` its ``start`` attribute (DynamoDB's TTL on ``ExpiresAt``)."""

    after: timedelta
    start: str
    blind_put: ClassVar[bool] = True
    sets_expiry: ClassVar[bool] = True

    def bind(self, model: type[TableModel]) -> None:
        _require_attribute(model, self.start, self)

    def watched(self) -> Collection[str]:
        return (self.start,)

    def plan(self, plan: Plan) -> None:
        # Always derived: a TTL given by hand could delete the item at once, or never.
        if plan.kind == "put":
            plan.entity.expires_at = getattr(plan.entity, self.start) + self.after
        elif plan.kind == "update" and self.start in plan.changes:  # the TTL moves with its start
            start = plan.changes[self.start]
            expires = None if start is None else start + self.after
            attribute = type(plan.entity).expires_at
            plan.act(attribute.set(expires) if expires is not None else attribute.remove())
            plan.changes["expires_at"] = expires


@dataclass(frozen=True, eq=False)
class WriteShards(Rule):
    """A write-sharded partition: ``count`` shards, chosen per item by the entity (``shard``);
    every read fans out over all of them."""

    count: int
    blind_put: ClassVar[bool] = True

    def bind(self, model: type[TableModel]) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= 100:
            raise TypeError(f"{model.__name__}: WriteShards.count must be an int from 1 to 100")
        _require_attribute(model, "shard", self)


@dataclass(frozen=True, eq=False)
class FoldsInto(Rule):
    """Each entity is folded into an ``aggregate`` in the same transaction (a reading and its
    hour's count, sum, min and max). Readings are immutable: updates and deletes are refused,
    they expire by TTL. The aggregate says how (``aggregate.fold_step``)."""

    aggregate: type[TableModel]
    instead: str = "the entity's own save() (it folds into its aggregate in the same transaction)"
    refusal: str = field(default="readings are immutable (they expire by TTL)")

    def plan(self, plan: Plan) -> None:
        if not plan.new:
            raise InvalidInput(f"{type(plan.entity).__name__}: {self.refusal}")
        plan.require(type(plan.entity).pk.does_not_exist())
        fold: Callable[[TableModel], Step] = getattr(self.aggregate, "fold_step")  # noqa: B009
        plan.add(fold(plan.entity))


@dataclass(frozen=True, eq=False)
class Moves(Rule):
    """Saving the entity moves its ``amount`` from the ``source`` account's ``balance`` to the
    ``target``'s, in the same transaction: the debit on ``attribute_exists(PK) AND balance >=
    amount``, the credit on ``attribute_exists(PK)``, both bumping the account's version. Money is
    conserved whatever fails. The entity is written once: updates and deletes are refused.

    A failed debit that returns the account (``ALL_OLD``) is ``InsufficientFunds``; one that returns
    nothing, or a failed credit, is ``NotFound``.
    """

    account: type[TableModel]
    balance: str
    source: str
    target: str
    amount: str
    instead: str = "the entity's own save() (it moves the money in the same transaction)"

    def bind(self, model: type[TableModel]) -> None:
        for name in (self.source, self.target, self.amount):
            _require_attribute(model, name, self)
        _require_attribute(self.account, self.balance, self)

    def plan(self, plan: Plan) -> None:
        name = type(plan.entity).__name__
        if not plan.new:
            raise InvalidInput(f"a {name} is written once; it cannot be changed or deleted")
        source, target = getattr(plan.entity, self.source), getattr(plan.entity, self.target)
        if source == target:
            raise InvalidInput("cannot move money from an account to itself")
        amount = getattr(plan.entity, self.amount)
        # The credit first: an unknown target is named even when the source is short of funds. It
        # may not take the balance past what 38 digits hold at two decimal places.
        with localcontext() as exact:
            exact.prec = 2 * MAX_BALANCE_DIGITS
            room = MAX_BALANCE - amount
        if room < 0:
            raise InvalidInput(f"the amount is larger than an account can hold ({MAX_BALANCE})")
        plan.add(self._change(target, ("+", "<="), (amount, room), _credit_failed, plan.now))
        plan.add(self._change(source, ("-", ">="), (amount, amount), _debit_failed, plan.now))

    def _change(self, account_id: str, operators: tuple[str, str], values: tuple[Any, Any],
                failure: Failure, now: datetime) -> Step:
        """``SET balance = balance {sign} amount`` on ``attribute_exists(PK) AND balance {compare}
        bound``, the account's version and time moved on: the request PynamoDB builds from
        ``balance.set(balance + amount)`` and ``pk.exists() & (balance <= bound)``, written out
        (tests/unit/test_rules_requests.py holds them equal)."""
        sign, compare = operators
        amount, bound = values
        account = self.account
        (field_name,) = account.key_template("pk").fields
        fields = {field_name: account_id}
        attributes = account.get_attributes()
        balance = attributes[self.balance]
        # No version condition: the balance condition is the one that matters, and a transfer need
        # not read the accounts first; the version still moves, so a copy read before is stale.
        kwargs = {
            "TableName": account.Meta.table_name,
            "Key": {"PK": {"S": account.key_template("pk").compose(**fields)},
                    "SK": {"S": account.key_template("sk").compose(**fields)}},
            "ConditionExpression": f"(attribute_exists (#0) AND #1 {compare} :0)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "UpdateExpression": f"SET #1 = #1 {sign} :1, #2 = :2 ADD #3 :3",
            "ExpressionAttributeNames": {"#0": account.pk.attr_name, "#1": balance.attr_name,
                                         "#2": account.updated_at.attr_name, "#3": account.version.attr_name},
            "ExpressionAttributeValues": {":0": {"N": balance.serialize(bound)},
                                          ":1": {"N": balance.serialize(amount)},
                                          ":2": {"S": attributes["updated_at"].serialize(now)},
                                          ":3": {"N": attributes["version"].serialize(1)}},
        }
        return Step("update", kwargs, failure)


def _credit_failed(old: dict[str, Any] | None) -> DataLayerError:
    if old is None:
        return NotFound("the account to credit does not exist")
    return InvalidInput(f"the credit would take the balance past the most an account holds ({MAX_BALANCE})")


def _debit_failed(old: dict[str, Any] | None) -> DataLayerError:
    if old is None:
        return NotFound("the account to debit does not exist")
    return InsufficientFunds("the balance of the account to debit is lower than the amount")
