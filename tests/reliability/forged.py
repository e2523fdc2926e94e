"""Writes that try to get around the declarations (phase 4, attack 1): a fixed list, and a seeded
generator of update actions like them over every entity.

Each is a ``Forged``: the entity it aims at (picked from what the table holds), and the actions or
the write, built only when the attack calls it (building an action already runs the attribute's
own checks, which may refuse it). ``PATHS`` sends an update the three ways an app can: the
entity's ``update()``, ``models.transaction()`` and PynamoDB's ``TransactWrite``; ``DELETES`` a
delete likewise.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.attributes import Attribute, MapAttribute
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from models import (
    Account,
    EmailClaim,
    Metric,
    MetricAggregate,
    Order,
    OrderStatus,
    Product,
    RetiredUserId,
    TableModel,
    Transfer,
    User,
    transaction,
)


def own_update(entity: TableModel, actions: list[Action]) -> Any:
    """``entity.update(actions)``."""
    return entity.update(actions)


def composed_update(entity: TableModel, actions: list[Action]) -> Any:
    """``with models.transaction() as t: t.update(entity, actions)``."""
    with transaction() as composed:
        composed.update(entity, actions)


def pynamodb_update(entity: TableModel, actions: list[Action]) -> Any:
    """PynamoDB's own ``TransactWrite``, on the entity's connection."""
    with TransactWrite(connection=type(entity)._get_connection().connection) as raw:
        raw.update(entity, actions)


PATHS: dict[str, Callable[[TableModel, list[Action]], Any]] = {
    "update()": own_update,
    "transaction()": composed_update,
    "TransactWrite": pynamodb_update,
}


def _own_delete(entity: TableModel) -> Any:
    return entity.delete()


def _composed_delete(entity: TableModel) -> Any:
    with transaction() as composed:
        composed.delete(entity)


def _pynamodb_delete(entity: TableModel) -> Any:
    with TransactWrite(connection=type(entity)._get_connection().connection) as raw:
        raw.delete(entity)


DELETES: dict[str, Callable[[TableModel], Any]] = {
    "delete()": _own_delete,
    "transaction().delete": _composed_delete,
    "TransactWrite.delete": _pynamodb_delete,
}


@dataclass
class Fixture:
    """The ids of what attack 1 set up (other users' values make some attacks)."""

    user: str
    other_user: str
    other_email: str
    order: str
    account: str
    other_account: str


@dataclass
class Forged:
    """An update that must keep the rules or be refused: ``model``'s item ``pick`` chooses (from
    the stored items of that entity), and its actions."""

    label: str
    model: type[TableModel]
    actions: Callable[[Fixture], list[Action]]
    pick: Callable[[TableModel, Fixture], bool] = lambda entity, fixture: True


def _n(value: str) -> Value:
    return Value({"N": value})


def _s(value: str) -> Value:
    return Value({"S": value})


def _later() -> Value:
    return _n(str(int(time.time()) + 60))


def _the_order(entity: TableModel, fixture: Fixture) -> bool:
    return getattr(entity, "order_id", None) == fixture.order


def _the_user(entity: TableModel, fixture: Fixture) -> bool:
    return getattr(entity, "user_id", None) == fixture.user


def _the_account(entity: TableModel, fixture: Fixture) -> bool:
    return getattr(entity, "account_id", None) == fixture.account


def _its_claim(entity: TableModel, fixture: Fixture) -> bool:
    return getattr(entity, "user_id", None) == fixture.user


A = Forged  # the list below reads as a table
FIXED: list[Forged] = [
    # arithmetic that takes money below its rule
    A("Order.amount.set(Order.amount - 1000)", Order,
      lambda f: [Order.amount.set(Order.amount - 1000)], _the_order),
    A("Order.amount.set(Order.amount - Order.amount)", Order,
      lambda f: [Order.amount.set(Order.amount - Order.amount)], _the_order),
    A("Order.amount.add(-1000)", Order, lambda f: [Order.amount.add(-1000)], _the_order),
    A("Order.amount.add(Value(-1000))", Order, lambda f: [Order.amount.add(_n("-1000"))], _the_order),
    A("Order.amount.set(Order.amount + Order.amount)", Order,
      lambda f: [Order.amount.set(Order.amount + Order.amount)], _the_order),
    A("Product.price.set(Product.price - 1000)", Product,
      lambda f: [Product.price.set(Product.price - 1000)]),
    A("Product.price.add(-1000)", Product, lambda f: [Product.price.add(-1000)]),
    A("Product.price.set(Product.price - Value(1000))", Product,
      lambda f: [Product.price.set(Product.price - _n("1000"))]),
    A("Account.balance.add(100)", Account, lambda f: [Account.balance.add(100)], _the_account),
    A("Account.balance.set(Account.balance - Account.balance)", Account,
      lambda f: [Account.balance.set(Account.balance - Account.balance)], _the_account),
    A("MetricAggregate.sample_count.add(5)", MetricAggregate,
      lambda f: [MetricAggregate.sample_count.add(5)]),
    A("Transfer.amount.add(1)", Transfer, lambda f: [Transfer.amount.add(1)]),
    # REMOVE of required and unique attributes
    A("User.email.remove()", User, lambda f: [User.email.remove()], _the_user),
    A("User.name.remove()", User, lambda f: [User.name.remove()], _the_user),
    A("Order.amount.remove()", Order, lambda f: [Order.amount.remove()], _the_order),
    A("Order.status.remove()", Order, lambda f: [Order.status.remove()], _the_order),
    A("Product.price.remove()", Product, lambda f: [Product.price.remove()]),
    A("Account.balance.remove()", Account, lambda f: [Account.balance.remove()], _the_account),
    A("Order.created_at.remove()", Order, lambda f: [Order.created_at.remove()], _the_order),
    A("User.email.set(Value(NULL))", User, lambda f: [User.email.set(Value({"NULL": True}))], _the_user),
    # SET from another attribute
    A("Order.amount.set(Order.user_id)", Order, lambda f: [Order.amount.set(Order.user_id)], _the_order),
    A("Product.price.set(Product.name)", Product, lambda f: [Product.price.set(Product.name)]),
    A("User.email.set(User.name)", User, lambda f: [User.email.set(User.name)], _the_user),
    A("User.name.set(User.email)", User, lambda f: [User.name.set(User.email)], _the_user),
    A("Order.status.set(Order.user_id)", Order, lambda f: [Order.status.set(Order.user_id)], _the_order),
    A("Transfer.amount.set(Transfer.from_account)", Transfer,
      lambda f: [Transfer.amount.set(Transfer.from_account)]),
    # raw values that lie about the rule or the type
    A('Order.amount.set(Value({"N": "-5"}))', Order, lambda f: [Order.amount.set(_n("-5"))], _the_order),
    A('Order.amount.set(Value({"S": "x"}))', Order, lambda f: [Order.amount.set(_s("x"))], _the_order),
    A('Order.amount.set(Value({"N": "1E+200"}))', Order,
      lambda f: [Order.amount.set(_n("1E+200"))], _the_order),
    A('Order.amount.set(Value({"N": "0.001"}))', Order,
      lambda f: [Order.amount.set(_n("0.001"))], _the_order),
    A('Product.price.set(Value({"N": "-5"}))', Product, lambda f: [Product.price.set(_n("-5"))]),
    A('Order.status.set(Value({"S": "LOST"}))', Order, lambda f: [Order.status.set(_s("LOST"))], _the_order),
    A("Order.status.set(DELIVERED) from PENDING", Order,
      lambda f: [Order.status.set(OrderStatus.DELIVERED)], _the_order),
    A('Account.balance.set(Value({"N": "1000"}))', Account,
      lambda f: [Account.balance.set(_n("1000"))], _the_account),
    A('Transfer.amount.set(Value({"N": "0.01"}))', Transfer, lambda f: [Transfer.amount.set(_n("0.01"))]),
    A('User.email.set(Value({"S": <other user\'s email, upper-cased>}))', User,
      lambda f: [User.email.set(_s(f.other_email.upper()))], _the_user),
    A('User.email.set(Value({"S": "Mixed.Case@Example.COM"}))', User,
      lambda f: [User.email.set(_s("Mixed.Case@Example.COM"))], _the_user),
    A('User.name.set(Value({"S": "a\\u202eb"}))', User, lambda f: [User.name.set(_s("a\u202eb"))], _the_user),
    A('User.name.set(Value({"S": "  Ada  "}))', User, lambda f: [User.name.set(_s("  Ada  "))], _the_user),
    A('Product.name.set(Value({"S": "  Lamp  "}))', Product, lambda f: [Product.name.set(_s("  Lamp  "))]),
    A('Order.status.set(Value({"S": "paid"}))', Order, lambda f: [Order.status.set(_s("paid"))], _the_order),
    A('Order.amount.set(Value({"N": "12.340"}))', Order,
      lambda f: [Order.amount.set(_n("12.340"))], _the_order),
    A('Product.name.set(Value({"S": 2000 chars}))', Product, lambda f: [Product.name.set(_s("x" * 2000))]),
    A("Product.attributes['n'].set(Value({'N': '1E+200'}))", Product,
      lambda f: [Path(Product.attributes)["n"].set(_n("1E+200"))]),
    A('Metric.value.set(Value({"N": "99"}))', Metric, lambda f: [Metric.value.set(_n("99"))]),
    A('MetricAggregate.total.set(Value({"N": "0"}))', MetricAggregate,
      lambda f: [MetricAggregate.total.set(_n("0"))]),
    A('EmailClaim.user_id.set(<another user>)', EmailClaim,
      lambda f: [EmailClaim.user_id.set(_s(f.other_user))], _its_claim),
    A('Path("Amount").set(Value({"S": "x"}))', Order, lambda f: [Path("Amount").set(_s("x"))], _the_order),
    A('Path("Shadow").set(Value({"N": "1"}))', Order, lambda f: [Path("Shadow").set(_n("1"))], _the_order),
    # TTL, keys, type and version
    A("Order.expires_at.set(<a minute from now>)", Order,
      lambda f: [Order.expires_at.set(_later())], _the_order),
    A("Account.expires_at.set(<a minute from now>)", Account,
      lambda f: [Account.expires_at.set(_later())], _the_account),
    A("Metric.expires_at.remove()", Metric, lambda f: [Metric.expires_at.remove()]),
    A("Metric.expires_at.set(1)", Metric, lambda f: [Metric.expires_at.set(_n("1"))]),
    A('Order.gsi1pk.set("STATUS#DELIVERED")', Order,
      lambda f: [Order.gsi1pk.set(_s("STATUS#DELIVERED"))], _the_order),
    A("Order.pk.set(<another user's partition>)", Order,
      lambda f: [Order.pk.set(_s(f"USER#{f.other_user}"))], _the_order),
    A("Order.sk.set(ORDER#x)", Order, lambda f: [Order.sk.set(_s("ORDER#x"))], _the_order),
    A("Order.user_id.set(<another user>)", Order,
      lambda f: [Order.user_id.set(_s(f.other_user))], _the_order),
    A("User.user_id.set(<another user>)", User, lambda f: [User.user_id.set(_s(f.other_user))], _the_user),
    A("Account.account_id.set(<another account>)", Account,
      lambda f: [Account.account_id.set(_s(f.other_account))], _the_account),
    A("Transfer.from_account.set(<another account>)", Transfer,
      lambda f: [Transfer.from_account.set(_s(f.other_account))]),
    A('Order.entity_type.set("USER")', Order, lambda f: [Path("EntityType").set(_s("USER"))], _the_order),
    A("Order.version.set(1)", Order, lambda f: [Order.version.set(_n("1"))], _the_order),
    A("Order.version.add(5)", Order, lambda f: [Order.version.add(_n("5"))], _the_order),
    A("Order.version.remove()", Order, lambda f: [Order.version.remove()], _the_order),
    A("Product.write_token.set(x)", Product, lambda f: [Product.write_token.set(_s("x"))]),
    A("RetiredUserId.user_id.set(x)", RetiredUserId, lambda f: [RetiredUserId.user_id.set(_s("x"))]),
]
del A

# Entities whose delete a rule forbids (each of the three ways), or whose rule it would break.
UNDELETABLE: tuple[type[TableModel], ...] = (
    Account, Transfer, EmailClaim, Metric, MetricAggregate, RetiredUserId,
)


# --- the generator ---------------------------------------------------------------------------------

_NUMBERS = ("-5", "0", "1", "12.34", "-1000", "1000000", "1E+200", "0.001", "1E-140", "9" * 39, "-0.01")
_STRINGS = ("x", "", " ", "  padded  ", "a#b", "a\u202eb", "a\x00b", "x" * 2000, "STATUS#DELIVERED", "USER#x",
            "PAID", "LOST", "DELIVERED", "2025-06-01T12:00:00.000000Z", "not a date", "Upper@Example.COM",
            "r@example.com")
_OTHER_TYPES: tuple[dict[str, Any], ...] = (
    {"S": "x"}, {"N": "-5"}, {"BOOL": True}, {"NULL": True}, {"M": {}}, {"L": []}, {"SS": ["a"]},
    {"NS": ["1"]}, {"M": {"n": {"N": "1E+200"}}},
)
KINDS = ("literal", "other type", "from attribute", "minus", "plus", "add", "remove", "if_not_exists",
         "nested", "raw path", "plausible", "plausible", "plausible")
_DELTAS = ("0.01", "1", "5", "12.34", "100", "5000")
_NAMES = ("Ada", "  Ada  ", "Grace Hopper", "Émile", "Lamp\u00a0Pro")


def random_forged(rng: random.Random, model: type[TableModel], fixture: Fixture) -> Forged:
    """One update of ``model`` drawn by ``rng``: an attribute (its own or one every entity shares)
    and what is done to it, with values near and across its rule."""
    attributes = model.get_attributes()
    kind = rng.choice(KINDS)
    # what an app would send names the entity's own data; the rest aims at anything
    own = sorted(set(attributes) - set(TableModel.get_attributes())) if kind == "plausible" else []
    name = rng.choice(own or sorted(attributes))
    attribute = attributes[name]
    value = _value_for(rng, attribute, fixture)
    other = attributes[rng.choice(sorted(attributes))]
    amount = rng.choice(_NUMBERS)
    wrong = rng.choice(_OTHER_TYPES)
    stored_name = attribute.attr_name
    seed = rng.random()  # drawn now, so that building the actions twice builds the same ones

    def actions(_: Fixture) -> list[Action]:
        path = Path(attribute)
        # PynamoDB refuses arithmetic on a typed path of another type as it is built; a path by
        # stored name is untyped, as an app could write it.
        untyped = Path(stored_name)
        number = path if attribute.attr_type == "N" else untyped
        if kind == "literal":
            return [path.set(value)]
        if kind == "other type":
            return [path.set(Value(wrong))]
        if kind == "from attribute":
            return [path.set(Path(other))]
        if kind == "minus":
            return [number.set(number - _n(amount))]
        if kind == "plus":
            return [number.set(number + (Path(other) if amount == "0" else _n(amount)))]
        if kind == "add":
            return [number.add(_n(amount))]
        if kind == "remove":
            return [path.remove()]
        if kind == "if_not_exists":
            return [path.set(path | value)]
        if kind == "nested":
            return [untyped["n"].set(Value(wrong))]
        if kind == "plausible":
            return [_plausible(random.Random(seed), attribute, fixture)]
        return [untyped.set(Value(wrong))]

    shown = f"{Value(wrong).value}" if kind in ("other type", "nested", "raw path") else value.value
    operand = other.attr_name if kind == "from attribute" else shown
    label = f"{model.__name__}.{name} {kind} ({operand}, {amount})"
    return Forged(label, model, actions)


def _plausible(rng: random.Random, attribute: Attribute[Any], fixture: Fixture) -> Action:
    """What an app would send: money moved by an amount (up or down, as the rule allows or not), a
    status, a name, a new email, extras; through the typed attribute, so its own rule applies."""
    kind = type(attribute).__name__
    if kind == "MoneyAttribute":
        delta = Decimal(rng.choice(_DELTAS))
        return rng.choice((lambda: attribute.set(attribute + delta), lambda: attribute.set(attribute - delta),
                           lambda: attribute.add(delta), lambda: attribute.add(-delta)))()
    if kind == "EnumAttribute":
        return attribute.set(rng.choice(list(OrderStatus)))
    if kind == "EmailAttribute":
        return attribute.set(rng.choice((f"p{rng.randrange(10**6)}@example.com", fixture.other_email,
                                         f"P{rng.randrange(10**6)}@Example.COM")))
    if kind == "TextAttribute":
        return attribute.set(rng.choice(_NAMES))
    if isinstance(attribute, MapAttribute):
        return attribute.set({"colour": rng.choice(("red", "blue")), "n": rng.randrange(100)})
    if kind == "TTLAttribute":
        return attribute.set(datetime.now(UTC) + timedelta(minutes=rng.choice((-1, 1, 60))))
    if attribute.attr_type == "N":
        return attribute.set(attribute + rng.choice((1, 5, -1)))
    return attribute.set(_value_for(rng, attribute, fixture))


def _value_for(rng: random.Random, attribute: Attribute[Any], fixture: Fixture) -> Value:
    """A literal of the attribute's wire type: valid for it or not."""
    kind = attribute.attr_type
    if kind == "N":
        return _n(rng.choice((*_NUMBERS, str(int(time.time()) + 60))))
    if kind == "S":
        choices = (*_STRINGS, fixture.other_user, fixture.other_email, fixture.other_email.upper(),
                   f"r{rng.randrange(10**6)}@example.com", "2025-06-01T12:00:00+02:00")
        return _s(rng.choice(choices))
    if isinstance(attribute, MapAttribute):
        return Value({"M": {"n": {"N": rng.choice(_NUMBERS)}, "s": {"S": "v"}}})
    if kind == "BOOL":
        return Value({"BOOL": rng.random() < 0.5})
    return Value(rng.choice(_OTHER_TYPES))
