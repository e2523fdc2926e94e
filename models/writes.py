"""The one write path: every write of an entity is planned here, with the rules it declares.

``TableModel.save()``, ``update()`` and ``delete()``, the repositories, ``batch_write`` and
``Transaction`` (a transaction an app composes) all build a ``Plan`` (PynamoDB's own
``TransactWrite`` is refused: ``models.table``): the entity's own operation, with its version and
rule conditions, plus the companion operations its rules need (an email claim, a ConditionCheck on
the owner, the aggregate a reading folds into). One operation alone is sent as
``PutItem``/``UpdateItem``/``DeleteItem``; more are one ``TransactWriteItems``, so a rule and the
write it guards commit together or not at all.

A failed condition becomes the error the rule that set it names (``AlreadyExists``,
``ConflictError``, ``NotFound``); a rule that cannot be kept on a path refuses with
``InvalidInput`` naming what to call instead, before anything is sent. Update actions are read
for what they do (``models.actions``), and the steps of a transaction are merged per item
(``models.merging``), so no check is dropped.

What a caller is told is the truth. A single write stores its plan's token (``WriteToken``) and
asks for the item when its condition fails: when botocore re-sent it after the first attempt was
applied and its answer lost, the item shows the token and the write reports success; the token
before it is kept too (``PriorWriteToken``), so one other write in between does not hide it. A
transaction is re-sent under the same ``ClientRequestToken``, which DynamoDB applies once. When no
attempt got an answer, ``WriteOutcomeUnknown`` names the keys that may have been written, and its
``resolve()`` reads them back to tell whether this write landed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.constants import ITEM, KEY
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path
from pynamodb.expressions.update import Action

from core.error_codes import (
    CONDITION_FAILED,
    CONDITIONAL_CHECK_FAILED_EXCEPTION,
    IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION,
    THROTTLING_CODES,
    THROTTLING_REASONS,
    TRANSACTION_CONFLICT,
    TRANSACTION_CONFLICT_EXCEPTION,
    configuration_problem,
    error_code,
    infrastructure_problem,
    raise_unexpected,
    throttled,
)
from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    IdempotencyKeyReused,
    InvalidInput,
    UnreadableItem,
    WriteOutcomeUnknown,
)
from core.retry import RetryPolicy, retried_by_botocore
from models.actions import check_action, check_action_numbers
from models.item_size import check_item_size
from models.merging import merge_steps

if TYPE_CHECKING:
    from models.table import TableModel

MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit of actions in one TransactWriteItems
# A failed condition that only means "a concurrent writer moved on" is planned again (rules that
# read before they write, such as an aggregate's min and max).
CONTENTION_RETRY = RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=1.0)

_OPERATIONS = {"put": "PutItem", "update": "UpdateItem", "delete": "DeleteItem"}
_TRANSACT_NAMES = {"check": "ConditionCheck", "delete": "Delete", "put": "Put", "update": "Update"}
_STALE = "changed or was deleted since it was read"


class Contended(Exception):
    """A concurrent writer (or item-level throttling) won this attempt; send the write again (internal)."""

    def __init__(self, *, throttled: bool = False) -> None:
        super().__init__("throttled" if throttled else "contended")
        self.throttled = throttled


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
        key = self.kwargs.get(KEY) or self.kwargs.get(ITEM) or {}
        return key["PK"]["S"], key["SK"]["S"]


@dataclass
class Plan:
    """One entity's write: its own operation (``kind``), conditions, update actions and companions."""

    entity: TableModel
    kind: str  # put, update or delete
    actions: list[Action] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)  # update: attribute -> new value
    condition: Condition | None = None
    companions: list[Step] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)  # local effects once written
    versioned: bool = True  # conditioned on the version read (optimistic locking)
    unknown: set[str] = field(default_factory=set)  # update: attributes whose new value DynamoDB computes
    # DynamoDB's ClientRequestToken when the plan is sent as a transaction: a plan sent again (after
    # a lost answer, or a contended attempt) is the very same request under the same token.
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # one timestamp for the write
    _main: Step | None = field(default=None, repr=False)

    @property
    def new(self) -> bool:
        """A put of an entity never stored (no version yet)."""
        return self.kind == "put" and self.entity.version is None

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

    def add(self, step: Step) -> None:
        """Send ``step`` in the same transaction as the entity's own operation."""
        self.companions.append(step)

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
        if self._main is None:
            self._main = self._build_main(add_version_condition=add_version_condition)
        return self._main

    def _build_main(self, *, add_version_condition: bool) -> Step:
        entity = self.entity
        condition = self.condition
        model = type(entity)
        token = None if self.kind == "delete" else self.token
        if self.kind == "put":
            entity.stamp(self.now)
            # A replacing put carries the token of the version it replaces (the one read, not that
            # of an earlier attempt of this entity that never landed): see ``_own_effect``.
            read = entity.__dict__.get("_token_read")
            if read is None or read[0] != entity.version:
                read = entity.__dict__["_token_read"] = (entity.version, entity.write_token)
            entity.prior_write_token = None if self.new else read[1]
            entity.write_token = token
            low = put_kwargs(entity, condition, add_version_condition=add_version_condition)
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
            version = entity._handle_version_attribute(actions=actions) if self.versioned else None
            if add_version_condition and version is not None:
                condition = version if condition is None else condition & version
            low = entity._get_connection().get_operation_kwargs(
                hash_key, range_key=range_key, key=KEY, actions=actions, condition=condition
            )
        return OwnStep(self.kind, low, self.main_failure, token=token, plan=self)


@dataclass
class OwnStep(Step):
    """A plan's own operation (``Plan.main_step``). It names its plan, so an unknown outcome can
    be resolved by reading the entity back (``WriteOutcomeUnknown.resolve``)."""

    plan: Plan | None = field(default=None, repr=False, compare=False)


def put_kwargs(entity: TableModel, condition: Condition | None, *,
               add_version_condition: bool = True) -> dict[str, Any]:
    """The low-level ``PutItem`` of ``entity`` (keys and timestamps filled, version handled): what
    PynamoDB's ``_get_save_args`` and ``get_operation_kwargs`` build, in one pass."""
    if condition is not None and not isinstance(condition, Condition):
        raise InvalidInput("'condition' must be an instance of Condition")
    item = serialized(entity)
    version = entity._handle_version_attribute(attributes=item)
    if add_version_condition and version is not None:
        condition = version if condition is None else condition & version
    low: dict[str, Any] = {"TableName": type(entity).Meta.table_name, "Item": item}
    if condition is not None:
        low.update(condition_kwargs(condition))
    return low


def serialized(entity: TableModel) -> dict[str, Any]:
    """``entity`` as the item a write stores; ``InvalidInput`` when a value breaks a rule or a
    required one is missing. For an entity read from the table the error names the item: a stored
    value it cannot write back (written by hand, or by another service) must be repaired first."""
    try:
        return entity.serialize(null_check=True)
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


# --- planning ------------------------------------------------------------------------------------


def plan_put(entity: TableModel, condition: Condition | None = None) -> Plan:
    """A put of ``entity`` with every rule it declares applied."""
    plan = Plan(entity, "put", condition=condition)
    check_expiry(entity)
    if plan.new:  # a new entity never replaces what is stored at its key
        plan.require(type(entity).pk.does_not_exist())
    _apply_rules(plan)
    return plan


def check_expiry(entity: TableModel) -> None:
    """``InvalidInput`` for a TTL on an entity that declares no expiry (an ``Expires`` rule): a put,
    an upsert and ``batch_write`` would otherwise have DynamoDB delete it."""
    if entity.expires_at is not None and not any(rule.sets_expiry for rule in type(entity).rules):
        raise InvalidInput(f"{type(entity).__name__} declares no expiry (an Expires rule): "
                           "leave expires_at unset")


def plan_delete(entity: TableModel, condition: Condition | None = None) -> Plan:
    """A delete of ``entity`` with every rule it declares applied."""
    if entity.version is None:
        raise InvalidInput(f"this {type(entity).__name__} was never stored (it has no version)")
    plan = Plan(entity, "delete", condition=condition)
    _apply_rules(plan)
    return plan


def plan_update(entity: TableModel, actions: list[Action], condition: Condition | None = None) -> Plan:
    """An update of ``entity``: each action held to the declarations (``models.actions``), the
    conditions that keep a rule added, derived keys re-derived."""
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
    plan = Plan(entity, "update", actions=sent, changes=changes, condition=condition, unknown=unknown)
    for required in conditions:
        plan.require(required)
    _derive_keys(plan)
    plan.changes["updated_at"] = model.now()
    plan.actions.append(model.updated_at.set(plan.changes["updated_at"]))
    _apply_rules(plan)
    return plan


def plan_upsert(entity: TableModel) -> Plan:
    """Create ``entity``, or replace whatever is stored at its key: one ``UpdateItem`` that sets
    every attribute (removing unset ones), keeps ``CreatedAt`` and moves ``Version`` on by one, so
    a copy read before is stale afterwards. Only for entities none of whose rules reads what is
    stored (``Rule.blind_put``)."""
    model = type(entity)
    for rule in model.rules:
        if not rule.blind_put:
            raise InvalidInput(f"{model.__name__} cannot be replaced blindly; use {rule.instead}")
    check_expiry(entity)
    check_item_size(serialized(entity), f"{model.__name__} upsert")  # the item it replaces
    now = model.now()
    skip = {"pk", "sk", "version", "created_at", "updated_at", "write_token", "prior_write_token"}
    actions: list[Action] = [model.entity_type.set(model)]
    for name, attribute in model.get_attributes().items():
        if name not in skip and name != "entity_type":
            value = getattr(entity, name)
            actions.append(attribute.remove() if value is None else attribute.set(value))
    for action in actions:
        check_action_numbers(action, f"{model.__name__} upsert")
    actions += [model.created_at.set(model.created_at | now), model.updated_at.set(now), model.version.add(1)]
    plan = Plan(entity, "update", actions=actions, versioned=False)
    _apply_rules(plan)
    return plan


def _derive_keys(plan: Plan) -> None:
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
        plan.actions.append(attribute.set(key) if key is not None else attribute.remove())
        plan.changes[key_name] = key


def _apply_rules(plan: Plan) -> None:
    for rule in type(plan.entity).rules:
        rule.plan(plan)


# --- sending -------------------------------------------------------------------------------------


def execute(build: Callable[[], Plan], *, what: str, retry: RetryPolicy | None = None) -> Plan:
    """Build a plan and send it; build and send it again while a rule reports contention."""
    def attempt() -> Plan:
        plan = build()
        send([plan], what=what)
        return plan

    try:
        return (retry or CONTENTION_RETRY).call(Contended, attempt)
    except Contended as exc:
        cause = exc.__cause__  # DynamoDB's own error
        if exc.throttled:
            raise throttled(cause, f"{what}: DynamoDB throttled the transaction on every attempt; nothing "
                                   "was written") from cause
        raise ConflictError(f"{what}: concurrent writers kept winning; nothing was written") from cause


def send(plans: list[Plan], *, what: str, token: str | None = None,
         checks: tuple[Step, ...] = ()) -> dict[str, Any]:
    """Send ``plans`` (and ``checks``) as one request (a single operation, or one transaction),
    merged to one operation per item (``models.merging``); apply local effects."""
    steps = [step for plan in plans for step in (plan.main_step(), *plan.companions)]
    steps = merge_steps([*steps, *checks], what)
    for step in steps:
        if step.op == "put":
            check_item_size(step.kwargs[ITEM], what)
    if len(steps) > MAX_TRANSACTION_ITEMS:
        raise InvalidInput(
            f"{what}: {len(steps)} operations exceed DynamoDB's {MAX_TRANSACTION_ITEMS} a transaction"
        )
    connection = plans[0].entity._get_connection().connection
    try:
        if len(steps) == 1:
            response = _send_one(connection, steps[0])
        else:  # botocore re-sends a transaction under the same token: DynamoDB applies it once
            response = _send_transaction(connection, steps, token or plans[0].token)
    except (BotoCoreError, ClientError) as exc:
        response = _own_effect(exc, steps) or {}
        if not response:
            _raise_for(exc, steps, what)
    for plan in plans:
        _written(plan, response if len(steps) == 1 else None)
    return response


def _own_effect(exc: BaseException, steps: list[Step]) -> dict[str, Any] | None:
    """The item, when a single write's condition failed only because botocore re-sent it after its
    first attempt was applied and the answer lost: the item then carries this write's token. A
    delete leaves no item to carry one: re-sent (botocore counted a retry) and finding the item
    gone, it reports the end state the caller asked for.

    Every write also moves the token it replaces to ``PriorWriteToken`` (an update by a ``SET``
    from ``WriteToken``, a replacing put with the token it read), so a write that landed is still
    recognised when one other write changed the item before botocore re-sent it; it is then
    reported as applied, without that later write's values (``{"Superseded": item}``). After two
    or more other writes the token is gone: the write reports the refusal its condition meets
    (``ConflictError``), though it was applied.
    """
    if len(steps) != 1 or error_code(exc) != CONDITIONAL_CHECK_FAILED_EXCEPTION:
        return None
    if steps[0].op == "delete":
        resent = _retry_attempts(exc) > 0
        return {"Deleted": True} if resent and _returned_item(exc) is None else None
    token, item = steps[0].token, _returned_item(exc)
    if token is None or item is None:
        return None
    if item.get("WriteToken") == {"S": token}:
        return {"Attributes": item}
    return {"Superseded": item} if item.get("PriorWriteToken") == {"S": token} else None


def _send_one(connection: Any, step: Step) -> dict[str, Any]:
    kwargs = {"ReturnValuesOnConditionCheckFailure": "ALL_OLD", **step.kwargs}
    if step.op == "update":
        kwargs["ReturnValues"] = "ALL_NEW"
    response: dict[str, Any] = connection.dispatch(_OPERATIONS[step.op], kwargs)
    return response


def _send_transaction(connection: Any, steps: list[Step], token: str) -> dict[str, Any]:
    # Every write asks for the item it failed on: a rule's failure reads it (a debit short of funds
    # returns the account, a missing one returns nothing).
    items = [{_TRANSACT_NAMES[step.op]: step.kwargs if step.op == "check"
              else {"ReturnValuesOnConditionCheckFailure": "ALL_OLD", **step.kwargs}} for step in steps]
    response: dict[str, Any] = connection.dispatch(
        "TransactWriteItems", {"TransactItems": items, "ClientRequestToken": token}
    )
    return response


def _raise_for(exc: BaseException, steps: list[Step], what: str) -> None:
    problem = configuration_problem(exc)  # nothing was sent: botocore could not sign it
    if problem is not None:
        raise problem from exc
    code = error_code(exc)
    if code == CONDITIONAL_CHECK_FAILED_EXCEPTION and len(steps) == 1:
        _fail(steps[0], _returned_item(exc), exc)
    reasons = _reasons(exc)
    codes = [reason_code for reason_code, _ in reasons]
    if len(reasons) == len(steps):
        failed = [(step, item) for step, (reason_code, item) in zip(steps, reasons, strict=True)
                  if reason_code == CONDITION_FAILED]
        _raise_reused_key(failed, exc)
        for step, _ in failed:  # then a contended rule: planning again may succeed
            if step.retry:
                raise Contended() from exc
        # A concurrent writer can also turn a rule's exact arithmetic invalid (a sum past 38 digits).
        if any(step.retry and code == "ValidationError" for step, code in zip(steps, codes, strict=True)):
            raise Contended() from exc
        if failed:
            _fail(*failed[0], exc)
    if TRANSACTION_CONFLICT in codes or code == TRANSACTION_CONFLICT_EXCEPTION:
        raise Contended() from exc
    if any(reason_code in THROTTLING_REASONS for reason_code in codes):
        raise Contended(throttled=True) from exc  # botocore does not retry inside a cancellation
    if code == IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION:
        raise AlreadyExists(f"{what}: this request token was used for another request") from exc
    # A missing table, denied access, expired credentials, throttling; a refused connection only
    # when no attempt was sent (else the outcome is unknown, below).
    infrastructure = infrastructure_problem(exc, what, write=True, table=steps[0].kwargs.get("TableName"))
    if infrastructure is not None:
        raise infrastructure from exc
    if retried_by_botocore(code) and code not in THROTTLING_CODES:
        keys = [step.key for step in steps if step.op != "check"]
        raise WriteOutcomeUnknown(
            f"{what}: {code or type(exc).__name__} on every attempt, so whether it was written is unknown; "
            "resolve() reads the items and tells, or call again with the same ids and idempotency key",
            keys, resolver=_resolver(steps),
        ) from exc
    raise_unexpected(exc, what)


def _raise_reused_key(failed: list[tuple[Step, dict[str, Any] | None]], exc: BaseException) -> None:
    """A reused idempotency key is reported before any other failed condition: it explains them
    (the entity exists because the key's first call created it), and sending again cannot help."""
    for step, item in failed:
        error = step.failure(item)
        if isinstance(error, IdempotencyKeyReused) and not step.retry:
            raise error from exc


def _resolver(steps: list[Step]) -> Callable[[], Any] | None:
    """What ``WriteOutcomeUnknown.resolve`` calls: a transaction commits whole, so its first write
    that stores a token (a put or an update; else its first delete) tells for all of it."""
    own = [step for step in steps if isinstance(step, OwnStep) and step.plan is not None]
    if not own:
        return None
    step = next((s for s in own if s.token is not None), own[0])
    return lambda: _resolve(step)


def _resolve(step: OwnStep) -> Any:
    """Read the item ``step`` writes (strongly consistent) and say whether this write landed."""
    plan = cast(Plan, step.plan)
    entity = plan.entity
    model = type(entity)
    hash_key, range_key = step.key
    try:
        found = model._get_connection().get_item(hash_key, range_key=range_key, consistent_read=True)
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        raise_unexpected(exc, f"resolving a {model.__name__} write")
    item: dict[str, Any] | None = found.get(ITEM)
    if item is None:
        if plan.kind == "delete":
            return entity  # gone: the end state this delete asked for
        if plan.new or not plan.versioned:
            return None  # a create or an upsert: nothing of it is stored
        raise plan.main_failure(None)  # the item this write changes was deleted meanwhile
    if step.token is not None and {"S": step.token} in (item.get("WriteToken"), item.get("PriorWriteToken")):
        return model.from_raw_data(item)
    if plan.new:
        raise plan.main_failure(item)  # someone else's item holds the key
    if not plan.versioned or item.get("Version") == {"N": str(entity.version)}:
        return None  # the item is as this write found it
    raise plan.main_failure(item)  # it moved on without this write


def _reasons(exc: BaseException) -> list[tuple[str | None, dict[str, Any] | None]]:
    parsed = getattr(exc, "cancellation_reasons", None) or ()
    return [(None, None) if r is None else (r.code, r.raw_item) for r in parsed]


def _retry_attempts(exc: BaseException) -> int:
    for source in (exc, exc.__cause__):
        response = getattr(source, "response", None)
        metadata = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
        attempts = metadata.get("RetryAttempts")
        if isinstance(attempts, int):
            return attempts
    return 0


def _returned_item(exc: BaseException) -> dict[str, Any] | None:
    # PynamoDB's VerboseClientError keeps only the error; botocore's own exception has the item.
    for source in (exc, exc.__cause__):
        response = getattr(source, "response", None) or {}
        if isinstance(response, dict) and "Item" in response:
            found: dict[str, Any] = response["Item"]
            return found
    return None


def _fail(step: Step, old: dict[str, Any] | None, exc: BaseException) -> None:
    if step.retry:
        raise Contended() from exc
    raise step.failure(old) from exc


def _written(plan: Plan, response: dict[str, Any] | None) -> None:
    entity = plan.entity
    if plan.kind == "put":
        entity.__dict__.pop("_token_read", None)  # the stored version is now this write's
        entity.update_local_version_attribute()  # type: ignore[no-untyped-call]
    elif plan.kind == "update" and not _loaded(entity, response):
        # a transaction, or a write another one followed ("Superseded"): as this write left it
        for name, value in plan.changes.items():
            setattr(entity, name, value)
        entity.prior_write_token, entity.write_token = entity.write_token, plan.token
        entity.update_local_version_attribute()  # type: ignore[no-untyped-call]
        if plan.unknown and response is not None:
            # values DynamoDB computed are not known here: the copy stays a version behind, so a
            # write from it is a ConflictError rather than a write of values it never saw
            entity.version = (entity.version or 1) - 1
    for effect in plan.after:
        effect()
    if plan.kind == "delete":
        entity.forget_stored_values()
    else:
        entity.remember_stored_values()


def _loaded(entity: TableModel, response: dict[str, Any] | None) -> bool:
    """Load the item an update returned (``ALL_NEW``) into ``entity``; False when there is none, or
    when it holds a value the entity cannot read (the update was applied all the same)."""
    if response is None or "Attributes" not in response:
        return False
    try:
        entity.deserialize(response["Attributes"])
    except UnreadableItem:
        return False
    return True


# --- composed transactions -----------------------------------------------------------------------


class Transaction:
    """Writes an app composes into one ``TransactWriteItems``, each with its entity's rules.

    ``save``, ``update`` and ``delete`` plan the write as the entity's own method would (claims,
    owner checks, status moves, derived keys, the conditions update actions need) and add it;
    ``condition_check`` adds a check. Nothing is sent until the ``with`` block ends without an
    exception; the steps are then merged to one operation per item (``models.merging``): a check
    on an item another step writes is folded into that write, never dropped.
    """

    def __init__(self, *, token: str | None = None) -> None:
        self.plans: list[Plan] = []
        self.checks: list[Step] = []
        self.token = token

    def save(self, entity: TableModel, condition: Condition | None = None) -> None:
        """Put ``entity`` (create, or replace the version it was read at)."""
        self.plans.append(plan_put(entity, condition))

    def update(self, entity: TableModel, actions: list[Action], condition: Condition | None = None) -> None:
        """Update ``entity`` with ``actions`` (conditioned on its version)."""
        self.plans.append(plan_update(entity, actions, condition))

    def delete(self, entity: TableModel, condition: Condition | None = None) -> None:
        """Delete ``entity`` (conditioned on its version)."""
        self.plans.append(plan_delete(entity, condition))

    def condition_check(self, model: type[TableModel], condition: Condition, **key_parts: Any) -> None:
        """Require ``condition`` of the ``model`` item at ``key_parts``; ``ConflictError`` if it fails."""
        if not isinstance(condition, Condition):
            raise InvalidInput("condition_check takes a PynamoDB condition, such as Order.amount > 0")
        probe = model(**key_parts)
        probe.fill_keys()
        connection = model._get_connection()
        kwargs = connection.get_operation_kwargs(probe.pk, range_key=probe.sk, condition=condition)
        self.checks.append(Step("check", kwargs, lambda _: ConflictError(
            f"the condition on the {model.__name__} in this transaction does not hold")))

    def commit(self) -> None:
        """Send everything added as one transaction; entities whose new values DynamoDB computed
        (arithmetic) are read again."""
        if not self.plans:
            raise InvalidInput("a transaction needs at least one save, update or delete")
        try:
            send(self.plans, what="transaction", token=self.token, checks=tuple(self.checks))
        except Contended as exc:
            if exc.throttled:
                raise throttled(exc.__cause__, "transaction: DynamoDB throttled an item; nothing was "
                                               "written") from exc.__cause__
            raise ConflictError("a concurrent write won; compose the transaction again") from exc
        for plan in self.plans:
            if plan.unknown:
                _read_again(plan.entity)


def _read_again(entity: TableModel) -> None:
    """Load what is stored for ``entity`` (strongly consistent) after a write computed its values.
    The write committed either way: if the read fails, the copy is left a version behind, so a
    later write from it is a ``ConflictError`` rather than a write of values it does not know."""
    hash_key, range_key = entity._get_hash_range_key_serialized_values()
    try:
        item = entity._get_connection().get_item(hash_key, range_key=range_key, consistent_read=True)
    except (BotoCoreError, ClientError, PynamoDBException):
        entity.version = (entity.version or 1) - 1
        return
    if "Item" in item:
        entity.deserialize(item["Item"])


@contextmanager
def transaction(*, token: str | None = None) -> Iterator[Transaction]:
    """``with transaction() as t: t.save(order); t.update(user, [...])``: one atomic write.

    ``token`` is DynamoDB's ``ClientRequestToken``: the same token re-sent within ten minutes is
    applied once.
    """
    composed = Transaction(token=token)
    yield composed
    composed.commit()
