"""Sending planned writes: one operation alone, or one ``TransactWriteItems``; and the truth of a
lost answer.

One operation alone is sent as ``PutItem``/``UpdateItem``/``DeleteItem``; more (a plan's companions,
the plans of a composed transaction) are one ``TransactWriteItems``, merged to one operation per
item (``models.merging``), so a rule and the write it guards commit together or not at all. A
refusal is decoded by ``models.cancellations``; a plan is built and sent again while a rule reports
contention (``execute``).

What a caller is told is the truth. A single write stores its plan's token (``WriteToken``) and
asks for the item when its condition fails: when botocore re-sent it after the first attempt was
applied and its answer lost, the item shows the token and the write reports success; the token
before it is kept too (``PriorWriteToken``), so one other write in between does not hide it. A
transaction is re-sent under the same ``ClientRequestToken``, which DynamoDB applies once. When no
attempt got an answer, ``WriteOutcomeUnknown`` names the keys that may have been written, and its
``resolve()`` reads them back to tell whether this write landed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.constants import ITEM
from pynamodb.exceptions import PynamoDBException

from core.error_codes import CONDITIONAL_CHECK_FAILED_EXCEPTION, error_code, raise_unexpected, throttled
from core.errors import ConflictError, InvalidInput, UnreadableItem
from core.retry import RetryPolicy
from core.telemetry import attributed
from models.cancellations import Contended, raise_for, retry_attempts, returned_item
from models.merging import merge_steps
from models.planning import OwnStep, Plan, Step

if TYPE_CHECKING:
    from models.table import TableModel

MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit of actions in one TransactWriteItems
# A failed condition that only means "a concurrent writer moved on" is planned again (rules that
# read before they write, such as an aggregate's min and max).
CONTENTION_RETRY = RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=1.0)

_OPERATIONS = {"put": "PutItem", "update": "UpdateItem", "delete": "DeleteItem"}
_TRANSACT_NAMES = {"check": "ConditionCheck", "delete": "Delete", "put": "Put", "update": "Update"}


def execute(build: Callable[[], Plan], *, what: str, retry: RetryPolicy | None = None) -> Plan:
    """Build a plan and send it; build and send it again while a rule reports contention."""
    def attempt() -> Plan:
        plan = build()
        with attributed(what):  # the calls' observations name the write (core.telemetry)
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
    merged to one operation per item (``models.merging``); the entities then take what was written."""
    steps = [step for plan in plans for step in (plan.main_step(), *plan.companions)]
    steps = merge_steps([*steps, *checks], what)
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
        response = own_effect(exc, steps) or {}
        if not response:
            raise_for(exc, steps, what, resolver=_resolver(steps))
    for plan in plans:
        record_written(plan, response if len(steps) == 1 else None)
    return response


def own_effect(exc: BaseException, steps: list[Step]) -> dict[str, Any] | None:
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
        resent = retry_attempts(exc) > 0
        return {"Deleted": True} if resent and returned_item(exc) is None else None
    token, item = steps[0].token, returned_item(exc)
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


def record_written(plan: Plan, response: dict[str, Any] | None) -> None:
    """Bring ``plan``'s entity to what its write stored (its version, tokens, the values it set);
    ``response`` is a single write's answer, if any."""
    entity = plan.entity
    if plan.kind == "put":
        entity.__dict__.pop("_token_read", None)  # the stored version is now this write's
        if plan.next_version is None:
            entity.update_local_version_attribute()  # type: ignore[no-untyped-call]
        else:
            entity.attribute_values["version"] = plan.next_version  # an int: as its descriptor stores it
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


def read_again(entity: TableModel) -> None:
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
