"""Update actions read for what they do, and held to the declarations before anything is sent.

An entity's ``update()``, a composed transaction's ``update`` and the upsert take PynamoDB actions.
Each action is read for its effect on the attribute it names (``check_action``) and accepted only
where the stored result keeps that attribute's declared rules; anything else is refused with
``InvalidInput`` naming what to do instead:

=============================================  ==============================================
action                                         accepted when
=============================================  ==============================================
``SET a = value``                              the value has ``a``'s type and passes ``a``'s own
                                               ``serialize`` (money, text, email, enum rules)
``SET a = NULL``, ``REMOVE a``                 ``a`` is nullable and not unique (removing an
                                               email is not a way to delete a user)
``SET m = m + x``, ``SET m = m - x``,          ``m`` is money and ``x`` a literal amount of
``ADD m x``                                    money; the rule's bound becomes a condition of
                                               the write: ``m >= x`` (``m > x`` for a positive
                                               amount) for a decrease, ``m <= MAX - x`` for an
                                               increase (``MAX``: the most ``m`` declares)
``SET a = if_not_exists(a, value)``            the value passes ``a``'s rule
``SET a = b`` (another attribute)              ``a`` and ``b`` are declared alike (same type and
                                               rules), and ``b`` is required where ``a`` is
``SET``/``REMOVE`` inside a map or list,       ``a`` is a free-form container (a map, list or set
``list_append``, ``ADD``/``DELETE`` on a set   with no value rule); every number in the value is
                                               one DynamoDB stores (38 digits, its exponents)
anything else                                  refused
=============================================  ==============================================

Keys, the type, timestamps, the version and the write token are the write path's own
(``managed_attributes``); attributes a rule reads (``watched_attributes``) take literal values
only. The TTL attribute is set by the entity's ``Expires`` rule and by nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import cache
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import (
    Attribute,
    BinarySetAttribute,
    ListAttribute,
    MapAttribute,
    NumberSetAttribute,
    UnicodeSetAttribute,
)
from pynamodb.constants import NULL
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import (
    Path,
    Value,
    _Decrement,
    _IfNotExists,
    _Increment,
    _ListAppend,
)
from pynamodb.expressions.update import Action, AddAction, DeleteAction, RemoveAction, SetAction

from core.errors import InvalidInput
from models.attributes import (
    MAX_MONEY_DECIMAL_PLACES,
    MAX_SIGNIFICANT_DIGITS,
    MoneyAttribute,
    to_decimal,
    to_money,
)

if TYPE_CHECKING:
    from models.table import TableModel

_SETS = (NumberSetAttribute, UnicodeSetAttribute, BinarySetAttribute)
# The Python type of each DynamoDB type on the wire (a value serialized by hand may lie about it).
_WIRE_TYPES: dict[str, type | tuple[type, ...]] = {
    "S": str, "N": str, "B": (bytes, bytearray, str), "BOOL": bool, "M": dict, "L": list,
    "SS": list, "NS": list, "BS": list,
}
# What two attributes must share to be "declared alike" (the value rules of models.attributes).
_RULE_FIELDS = ("positive", "max_digits", "max_length", "min_length", "strip", "multiline", "enum_type")


@dataclass(frozen=True)
class Effect:
    """What one action does to the entity's attribute ``name``.

    ``known``: the new value is known before sending (``value``, ``None`` for absent);
    ``condition``: what must hold of the stored item for the result to keep the attribute's rule.
    """

    name: str
    action: Action
    known: bool
    value: Any = None
    condition: Condition | None = None
    delta: Decimal | None = None  # arithmetic: what is added (negative: subtracted)

    def check_from(self, model: type[TableModel], current: Any) -> None:
        """Refuse arithmetic whose result from ``current`` (the value read) breaks the rule; the
        condition still guards the stored value, which may have moved on."""
        if self.delta is None or isinstance(current, bool) or not isinstance(current, (Decimal, int)):
            return  # nothing to compute from (a value set in memory by hand): the condition guards
        with localcontext() as exact:
            exact.prec = 4 * MAX_SIGNIFICANT_DIGITS
            result = current + self.delta
        try:
            model.get_attributes()[self.name].serialize(result)
        except InvalidInput as exc:
            raise InvalidInput(
                f"{model.__name__}.{self.name}: this change would break its rule ({exc})") from None


@dataclass(frozen=True)
class _Target:
    """The attribute an action names, as the checks below need it."""

    model: type[TableModel]
    name: str
    attribute: Attribute[Any]
    path: Path

    @property
    def what(self) -> str:
        return f"{self.model.__name__}.{self.name}"


def check_action(model: type[TableModel], action: Any, *, unique: frozenset[str],
                 managed: frozenset[str]) -> Effect:
    """``action``'s effect on ``model``'s item, or ``InvalidInput`` if it could break a declared rule
    (``unique``: the attributes a ``Unique`` rule claims; ``managed``: those the write path sets)."""
    if not isinstance(action, Action) or not action.values or not isinstance(action.values[0], Path):
        raise InvalidInput(f"{model.__name__}.update takes PynamoDB actions, such as "
                           f"{model.__name__}.attribute.set(value)")
    path: Path = action.values[0]
    name = _names(model).get(path.path[0])
    if name is None:
        raise InvalidInput(f"{model.__name__} declares no attribute {path.path[0]!r}")
    target = _Target(model, name, model.get_attributes()[name], path)
    if name in managed:
        raise InvalidInput(f"{target.what} is kept by the data layer, not set directly")
    if len(path.path) > 1:
        return _inside_container(target, action)
    if isinstance(action, RemoveAction):
        return _removed(target, action, unique)
    if isinstance(action, (AddAction, DeleteAction)) and _free_form(target.attribute):
        return _inside_container(target, action)
    if isinstance(action, AddAction):
        return _arithmetic(target, action.values[1], +1)
    if not isinstance(action, SetAction):
        raise InvalidInput(f"{target.what}: {type(action).__name__} is not an update action accepted here")
    return _set(target, action, unique)


def _set(target: _Target, action: SetAction, unique: frozenset[str]) -> Effect:
    operand = action.values[1]
    what = target.what
    if isinstance(operand, Value):
        ((kind, _),) = operand.value.items()
        if kind == NULL:  # an unset attribute is absent from the item, as a put leaves it
            return _removed(target, target.attribute.remove(), unique)
        value, stored = _literal(target, operand)
        if stored != operand.value[kind]:  # serialized by hand: sent in the form the rule writes
            action = SetAction(target.path, Value({kind: stored}))
            value = target.attribute.deserialize(stored)
        return Effect(target.name, action, known=True, value=value)
    if isinstance(operand, (_Increment, _Decrement)):
        left, right = operand.values
        if not (isinstance(left, Path) and left.path == target.path.path):
            raise InvalidInput(f"{what}: arithmetic must start from {what} itself ({what} + x or {what} - x)")
        return _arithmetic(target, right, +1 if isinstance(operand, _Increment) else -1)
    if isinstance(operand, _IfNotExists):
        source, fallback = operand.values
        if not (isinstance(source, Path) and source.path == target.path.path and isinstance(fallback, Value)):
            raise InvalidInput(f"{what}: if_not_exists must read {what} itself and fall back to a value")
        _literal(target, fallback)  # (sent as given: only a type and rule check here)
        return Effect(target.name, action, known=False)
    if isinstance(operand, Path):
        return _copied(target, action, operand)
    if isinstance(operand, _ListAppend) and _free_form(target.attribute):
        return _inside_container(target, action)
    raise InvalidInput(f"{what}: set it to a value ({type(operand).__name__} is not accepted here)")


@cache
def _names(model: type[TableModel]) -> dict[str, str]:
    """Stored name -> Python name of ``model``'s attributes (once per model)."""
    return {attribute.attr_name: name for name, attribute in model.get_attributes().items()}


def _free_form(attribute: Attribute[Any]) -> bool:
    """A container with no value rule: a raw map, a list, a set."""
    if isinstance(attribute, MapAttribute):
        raw: bool = attribute.is_raw()  # type: ignore[no-untyped-call]
        return raw
    return isinstance(attribute, (ListAttribute, *_SETS))


def _inside_container(target: _Target, action: Action) -> Effect:
    if not _free_form(target.attribute):
        raise InvalidInput(f"{target.what} is not a map, list or set: set it as a whole, to a value")
    check_action_numbers(action, target.what)
    return Effect(target.name, action, known=False)


def _values(operand: Any) -> list[Value]:
    """Every literal value inside an operand (list_append, if_not_exists, arithmetic)."""
    if isinstance(operand, Value):
        return [operand]
    if isinstance(operand, (_ListAppend, _IfNotExists, _Increment, _Decrement)):
        return [value for inner in operand.values for value in _values(inner)]
    return []


def _removed(target: _Target, action: Action, unique: frozenset[str]) -> Effect:
    if target.name in unique:
        raise InvalidInput(f"{target.what} is unique and required: removing it is not a way to delete the "
                           "entity; use its delete() (for a user, repositories.users.delete_user)")
    if not target.attribute.null:
        raise InvalidInput(f"{target.what} is required: set it to another value instead of removing it")
    return Effect(target.name, action, known=True, value=None)


def _literal(target: _Target, operand: Value) -> tuple[Any, Any]:
    """The Python value of a literal, checked against the attribute's type and rule, and its
    serialized form as the rule writes it (an email in its canonical form, text stripped)."""
    attribute, what = target.attribute, target.what
    ((kind, serialized),) = operand.value.items()
    if kind != attribute.attr_type or not isinstance(serialized, _WIRE_TYPES.get(kind, object)):
        raise InvalidInput(f"{what} holds {attribute.attr_type} values")
    check_numbers(operand.value, what)
    try:
        value = attribute.deserialize(serialized)
        stored = attribute.serialize(value)  # the rule, also for a value serialized by hand
    except InvalidInput:
        raise
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise InvalidInput(f"{what}: the value is not a valid {attribute.attr_type}") from exc
    return value, stored


def _arithmetic(target: _Target, operand: Any, sign: int) -> Effect:
    attribute, what = target.attribute, target.what
    if not isinstance(attribute, MoneyAttribute):
        raise InvalidInput(f"{what}: arithmetic is accepted on money only; set it to a value")
    if not isinstance(operand, Value) or "N" not in operand.value:
        raise InvalidInput(f"{what}: add or subtract a literal amount, not {type(operand).__name__}")
    delta = to_decimal(operand.value["N"], what=what) * sign
    if delta.is_zero():
        raise InvalidInput(f"{what}: adding zero changes nothing")
    step = to_money(abs(delta), what, positive=True, max_digits=attribute.max_digits)
    path = Path(attribute)
    if delta < 0:
        # money - x keeps the rule while the stored amount covers x (exceeds it, for a positive one)
        bound = Value({"N": format(step, "f")})
        condition = (path > bound) if attribute.positive else (path >= bound)
        sent = attribute.set(attribute - step)
    else:
        with localcontext() as exact:
            exact.prec = 2 * attribute.max_digits
            most = Decimal(10) ** (attribute.max_digits - MAX_MONEY_DECIMAL_PLACES) - Decimal("0.01")
            room = most - step
        if room < 0:
            raise InvalidInput(f"{what}: the amount is larger than {what} can hold")
        condition = path <= Value({"N": format(room, "f")})
        sent = attribute.set(attribute + step)
    return Effect(target.name, sent, known=False, condition=condition, delta=delta)


def _copied(target: _Target, action: Action, source: Path) -> Effect:
    model, what = target.model, target.what
    other = _names(model).get(source.path[0]) if len(source.path) == 1 else None
    if other is None:
        raise InvalidInput(f"{what}: copy from a declared attribute of {model.__name__}, or set a value")
    copied = model.get_attributes()[other]
    if not _alike(target.attribute, copied):
        raise InvalidInput(f"{what} and {model.__name__}.{other} are declared differently (type or rules): "
                           f"set {what} to a value")
    if copied.null and not target.attribute.null:
        raise InvalidInput(f"{what} is required and {model.__name__}.{other} may be absent: set a value")
    return Effect(target.name, action, known=False)


def _alike(one: Attribute[Any], other: Attribute[Any]) -> bool:
    if type(one) is not type(other):
        return False
    return all(getattr(one, field, None) == getattr(other, field, None) for field in _RULE_FIELDS)


def check_action_numbers(action: Action, what: str) -> None:
    """Every number an action carries is one DynamoDB stores (``check_numbers``)."""
    for operand in action.values[1:]:
        for value in _values(operand):
            check_numbers(value.value, what)


def check_numbers(serialized: Any, what: str) -> None:
    """Every number in a serialized value (maps, lists and sets included) is one DynamoDB stores:
    at most 38 significant digits, a magnitude from 1E-130 to below 1E+126; ``InvalidInput`` if not."""
    if not isinstance(serialized, dict):
        return
    for kind, inner in serialized.items():
        if kind == "N":
            to_decimal(inner, what=what)
        elif kind == "NS":
            for number in inner:
                to_decimal(number, what=what)
        elif kind == "L":
            for item in inner:
                check_numbers(item, what)
        elif kind == "M":
            for item in inner.values():
                check_numbers(item, what)
