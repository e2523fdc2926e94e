"""Phase 4: attacks on the declared rules, through the documented paths only.

1. bypass: writes that would take an item outside its declaration (arithmetic below a money
   rule, REMOVE of required or unique attributes, SET from another attribute, raw ``Value``s,
   TTL, keys, type and version; deletes of what is never deleted), each through the entity's
   ``update()``, ``models.transaction()`` and PynamoDB's ``TransactWrite``
   (``tests.reliability.forged``), then ``--attacks`` more drawn by the seed over every entity;
2. dropped checks: composed transactions whose checks a merge could drop (a failing
   ``condition_check`` on an item the transaction writes, an order saved with the deletion of its
   user, two writes of one item) must not commit, and ones whose checks hold must;
3. look-alikes: two spellings of one email that a person reads as the same, given to two users
   (``create_user`` twice, and ``update_user``): the second must be ``AlreadyExists`` or
   ``InvalidInput``;
4. poisoned item: unreadable orders seeded by a raw ``put_item`` beside good ones: every page
   reader returns every good one and lists the bad ones in ``Page.unreadable``; ``get_order``
   returns a good one and raises ``UnreadableItem`` for a bad one;
5. retry-after-unknown: each creating function with an ``idempotency_key``, its answer lost on
   every attempt (the write applied) or its connection reset (nothing sent): after
   ``WriteOutcomeUnknown``, ``resolve()`` must tell which, and calling again with the same key must
   succeed with the same ids and leave exactly one entity (no money moved twice).

Every call is an attempt. Its outcome is true or false (a success reported for something not
written, an error reported for something written, a refusal of what the rules allow, a wrong
answer) or a raw exception (anything that is not a ``DataLayerError``; counted there only). After
each, a raw scan is checked against the declarations (``tests.reliability.declared``): an attempt
after which the table breaks one or more rules counts once under broken rules (the findings list
every rule), and the table is then put back as it was, so the next attempt starts from a table
that keeps them. One row per attack; an attack the code under test lacks an
API for says "not available" and fails the phase, as any broken rule, false outcome or raw
exception does.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import random
import signal
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

import core.errors
from core.config import get_settings
from core.engine import bridge
from core.errors import AlreadyExists, DataLayerError, InvalidInput, WriteOutcomeUnknown
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
    new_order_id,
    transaction,
)
from repositories import accounts, metrics, orders, products, users
from repositories.asyncio import aclose
from tests.reliability.declared import Declared, same
from tests.reliability.faults import FaultInjector
from tests.reliability.forged import DELETES, FIXED, PATHS, UNDELETABLE, Fixture, Forged, random_forged
from tests.reliability.outcomes import describe, summarise
from tests.reliability.report import PhaseResult
from tests.reliability.table import (
    Diff,
    Item,
    Key,
    Snapshot,
    diff,
    fresh_table,
    key_of,
    raw_client,
    scan,
    version,
)

TIMEOUT_SECONDS = 20
ATTEMPTS = 3  # botocore's attempts of one request with DYNAMODB_MAX_RETRY_ATTEMPTS=2 (the runner sets it)
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


class _Hung(BaseException):
    """The alarm went off: the call took longer than ``TIMEOUT_SECONDS``."""


def _alarm(*_: Any) -> None:
    raise _Hung()


@dataclass
class Outcome:
    """What a call returned or raised, and the table after it."""

    value: Any = None
    error: BaseException | None = None
    changes: Diff = field(default_factory=dict)
    after: Snapshot = field(default_factory=dict)

    @property
    def raw(self) -> bool:
        """Raised something that is not a ``DataLayerError`` (a hang included)."""
        return self.error is not None and not isinstance(self.error, DataLayerError)


Judge = Callable[[Outcome], str | None]  # None: the outcome told the truth; else what was false


class Harness:
    """Runs each attempt: the call, a raw scan, the judge, the declarations checked, the table put
    back when a rule broke. Counts into the ``result`` it is given."""

    def __init__(self, drive: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        self.declared = Declared()
        self.snapshot: Snapshot = {}
        self.drive = drive  # how an attempt's call is made (None: called; the async API: awaited)

    def refresh(self) -> None:
        """Read the table again (after writes that are not attempts: a fixture)."""
        self.snapshot = scan()

    def run(self, result: PhaseResult, label: str, call: Callable[[], Any], judge: Judge,
            learn: Callable[[Outcome], None] | None = None) -> Outcome:
        """One attempt, counted into ``result``."""
        before = self.snapshot
        drive = self.drive
        outcome = _call(call if drive is None else lambda: drive(call))
        outcome.after = scan()
        outcome.changes = diff(before, outcome.after)
        result.operations += 1
        if outcome.raw:
            result.raw += 1
            shows = describe(outcome.changes)
            result.finding(f"RAW EXCEPTION: {label}: {_told(outcome)}; the table shows {shows}")
        else:
            try:
                problem = judge(outcome)
            except Exception as exc:  # what it returned is not what the API documents
                problem = f"{_told(outcome)}, which cannot be judged: {summarise(exc)}{_where(exc)}"
            if problem is None:
                result.true += 1
            else:
                result.false += 1
                result.finding(f"FALSE OUTCOME: {label}: {problem}")
        if learn is not None:
            learn(outcome)
        try:
            broken = self.declared.check(outcome.after, before)
        except Exception as exc:
            broken = [f"the table cannot be checked: {summarise(exc)}{_where(exc)}"]
        if broken:
            result.broken += 1
            for line in broken:
                result.finding(f"BROKEN RULE: {label} ({_told(outcome)}): {line}")
            self.restore(before, outcome.after, result)
        else:
            self.snapshot = outcome.after
        return outcome

    def restore(self, before: Snapshot, after: Snapshot, result: PhaseResult) -> None:
        """Put back every item that changed from ``before`` (raw writes)."""
        client, table = raw_client(), get_settings().table_name
        for key, (old, _) in diff(before, after).items():
            if old is None:
                client.delete_item(TableName=table, Key={"PK": {"S": key[0]}, "SK": {"S": key[1]}})
            else:
                client.put_item(TableName=table, Item=old)
        self.refresh()
        for key, (old, new) in diff(before, self.snapshot).items():
            was, now = old or {}, new or {}
            names = sorted(n for n in {*was, *now} if not same(was.get(n), now.get(n)))
            if names or old is None or new is None:  # DynamoDB Local may write 3.10 back as 3.1
                shown = {n: (was.get(n), now.get(n)) for n in names}
                result.notes.append(f"the item {key} could not be put back as it was: {shown}"[:400])

    def stored(self, model: type[TableModel], pick: Callable[[TableModel], bool] = lambda _: True
               ) -> list[TableModel]:
        """The stored entities of ``model`` that ``pick`` accepts, read from the last scan."""
        found = []
        for key, item in sorted(self.snapshot.items()):
            if key in self.declared.excluded:
                continue
            try:
                entity = TableModel.from_raw_data(item)
            except Exception:  # unreadable: not a target
                continue
            if type(entity) is model and pick(entity):
                found.append(entity)
        return found


def _call(call: Callable[[], Any]) -> Outcome:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_SECONDS)
    try:
        return Outcome(value=call())
    except _Hung as exc:
        return Outcome(error=exc)
    except Exception as exc:  # judged by the caller
        return Outcome(error=exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _where(exc: BaseException) -> str:
    """Where ``exc`` was raised (any file: the attack's own code included)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (raised at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""


def _told(outcome: Outcome) -> str:
    if isinstance(outcome.error, _Hung):
        return f"no answer within {TIMEOUT_SECONDS} s"
    if outcome.error is not None:
        return summarise(outcome.error)
    return f"returned {type(outcome.value).__name__}"


def _refused_or_kept(key: Key | None = None, entity: TableModel | None = None,
                     names: tuple[str, ...] = ()) -> Judge:
    """An error must leave the table as it was; a success must have written the item at ``key``
    (one version on) and left ``entity``'s ``names`` as stored."""

    def judge(outcome: Outcome) -> str | None:
        if outcome.error is not None:
            if outcome.changes:
                return f"{_told(outcome)}, but the table shows {describe(outcome.changes)}"
            return None
        if key is None:
            return None
        if key not in outcome.changes:
            return f"success reported, but the item {key} did not change ({describe(outcome.changes)})"
        before, after = outcome.changes[key]
        if after is not None and version(after) != (version(before) or 0) + 1:
            return f"success reported, but the item's version went {version(before)} -> {version(after)}"
        if entity is not None and names and after is not None:
            try:
                stored = TableModel.from_raw_data(after)
            except Exception:  # written, and unreadable: the declarations' check reports that
                return None
            wrong = [n for n in names if _form(entity, n) != _form(stored, n)]
            if wrong:
                return f"success reported, but the entity's {', '.join(wrong)} differ from the stored ones"
        return None

    return judge


def _form(entity: TableModel, name: str) -> Any:
    """``name``'s value in the form it is stored in (an email in memory keeps what was assigned)."""
    value = getattr(entity, name, None)
    as_dict = getattr(value, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    try:
        return None if value is None else type(entity).get_attributes()[name].serialize(value)
    except Exception:  # a value no rule accepts: compared as it is
        return value


def _expect_refusal(why: str, errors: tuple[type[BaseException], ...] = (DataLayerError,)) -> Judge:
    def judge(outcome: Outcome) -> str | None:
        if outcome.error is None:
            return f"success reported, although {why} (the table shows {describe(outcome.changes)})"
        if outcome.changes:
            return f"{_told(outcome)}, but the table shows {describe(outcome.changes)}"
        if not isinstance(outcome.error, errors):
            return f"want {'/'.join(e.__name__ for e in errors)}, got {_told(outcome)}"
        return None

    return judge


def _expect_commit(why: str) -> Judge:
    def judge(outcome: Outcome) -> str | None:
        if outcome.error is not None:
            return f"refused although {why}: {_told(outcome)} (the table shows {describe(outcome.changes)})"
        if not outcome.changes:
            return "success reported, but nothing was written"
        return None

    return judge


def _names(actions: list[Action], model: type[TableModel]) -> tuple[str, ...]:
    """The Python names of the attributes ``actions`` set as a whole."""
    by_stored = {a.attr_name: n for n, a in model.get_attributes().items()}
    names = []
    for action in actions:
        path = getattr(action.values[0], "path", [])
        if len(path) == 1 and path[0] in by_stored:
            names.append(by_stored[path[0]])
    return tuple(names)


# --- 1. bypass -----------------------------------------------------------------------------------


def bypass(h: Harness, result: PhaseResult, rng: random.Random, count: int) -> None:
    """Attack 1 (see the module docstring)."""
    fixture = _bypass_fixture(h)
    built = Counter[str]()
    for forged in FIXED:
        for path_name, path in PATHS.items():
            _forge(h, result, forged, path_name, path, fixture, built)
    for model in UNDELETABLE:
        for name, delete in DELETES.items():
            for entity in h.stored(model)[:1]:
                label = f"{name} of {model.__name__} {entity.pk}|{entity.sk}"
                h.run(result, label, lambda e=entity, d=delete: d(e), _refused_or_kept())
    _pynamodb_writes(h, result, fixture)
    models = [m for m in (User, EmailClaim, RetiredUserId, Order, Account, Transfer, Metric, MetricAggregate,
                          Product) if h.stored(m)]
    for _ in range(count):
        model = rng.choice(models)
        path_name = rng.choice(sorted(PATHS))
        _forge(h, result, random_forged(rng, model, fixture), path_name, PATHS[path_name], fixture, built,
               rng=rng)
    result.notes.append(
        f"{len(FIXED)} fixed updates x {len(PATHS)} paths, deletes of {len(UNDELETABLE)} entities x "
        f"{len(DELETES)} paths, {count} drawn by the seed; " + ", ".join(f"{k} {v}" for k, v in built.items())
    )


def _bypass_fixture(h: Harness) -> Fixture:
    user = users.create_user(f"buyer-{uuid.uuid4().hex[:8]}@example.com", "Buyer")
    other = users.create_user(f"other-{uuid.uuid4().hex[:8]}@example.com", "Other")
    gone = users.create_user(f"gone-{uuid.uuid4().hex[:8]}@example.com", "Gone")
    order = orders.place_order(user.user_id, Decimal("12.34"), created_at=NOW)
    orders.place_order(user.user_id, Decimal("50.00"), status="PAID", created_at=NOW + timedelta(seconds=1))
    orders.place_order(other.user_id, Decimal("5.00"), created_at=NOW + timedelta(seconds=2))
    orders.place_order(gone.user_id, Decimal("7.00"), created_at=NOW + timedelta(seconds=3))
    users.delete_user(users.get_user(gone.user_id))
    source = accounts.open_account(balance=Decimal("100.00"))
    target = accounts.open_account(balance=Decimal("5.00"))
    h.declared.opened.update({source.account_id: Decimal("100.00"), target.account_id: Decimal("5.00")})
    accounts.transfer_funds(source.account_id, target.account_id, Decimal("1.50"))
    products.put_product(f"p-{uuid.uuid4().hex[:8]}", "Lamp", Decimal("3.10"), color="red", n=1)
    metrics.record_metric("dev-attack", "temp", Decimal("21.5"), at=NOW)
    h.refresh()
    broken = h.declared.check(h.snapshot)
    if broken:
        raise AssertionError(f"the fixture itself breaks a rule: {broken[0]}")
    return Fixture(user=user.user_id, other_user=other.user_id, other_email=other.email, order=order.order_id,
                   account=source.account_id, other_account=target.account_id)


def _forge(h: Harness, result: PhaseResult, forged: Forged, path_name: str,
           path: Callable[[TableModel, list[Action]], Any], fixture: Fixture, built: Counter[str],
           rng: random.Random | None = None) -> None:
    candidates = h.stored(forged.model, lambda e: forged.pick(e, fixture))
    if not candidates:
        built["no target"] += 1
        return
    entity = rng.choice(candidates) if rng is not None else candidates[0]
    label = f"{forged.label} via {path_name} on {entity.pk}|{entity.sk}"
    try:
        actions = forged.actions(fixture)
    except DataLayerError as exc:  # the attribute's own rule refused the value as the action was built
        built["refused while built"] += 1
        h.run(result, label, lambda e=exc: _raise(e), _refused_or_kept())
        return
    except Exception:  # PynamoDB cannot build it at all: nothing to send
        built["not buildable"] += 1
        return
    if rng is not None:  # drawn: say what was sent
        label = f"{label}: {actions}"
    names = () if path_name == "TransactWrite" else _names(actions, forged.model)
    outcome = h.run(result, label, lambda: path(entity, actions),
                    _refused_or_kept((entity.pk, entity.sk), entity, names))
    built["accepted" if outcome.error is None else "refused"] += 1


def _raise(exc: BaseException) -> None:
    raise exc


def _pynamodb_writes(h: Harness, result: PhaseResult, fixture: Fixture) -> None:
    """PynamoDB's ``TransactWrite`` with whole-entity writes: a user deleted without its claim, an
    account saved with money from nowhere, a check."""
    def delete_user() -> None:
        (user,) = h.stored(User, lambda e: e.user_id == fixture.other_user)
        with TransactWrite(connection=User._get_connection().connection) as raw:
            raw.delete(user)

    def save_account() -> None:
        (account,) = h.stored(Account, lambda e: e.account_id == fixture.account)
        account.balance = account.balance + 100
        with TransactWrite(connection=Account._get_connection().connection) as raw:
            raw.save(account)

    def check_then_update() -> None:
        (order,) = h.stored(Order, lambda e: e.order_id == fixture.order)
        with TransactWrite(connection=Order._get_connection().connection) as raw:
            raw.condition_check(Order, order.pk, order.sk, condition=Order.amount > Decimal("1.00"))
            raw.update(order, [Order.amount.set(Order.amount - 1000)])

    for label, call in (("TransactWrite.delete(user)", delete_user),
                        ("TransactWrite.save(account with 100 more)", save_account),
                        ("TransactWrite.condition_check + update(amount - 1000)", check_then_update)):
        h.run(result, label, call, _refused_or_kept())


# --- 2. dropped checks ---------------------------------------------------------------------------


@dataclass
class _Scene:
    """What one dropped-checks scenario writes: a user, one of its orders, a product."""

    user: User
    order: Order
    product: Product


def dropped_checks(h: Harness, result: PhaseResult, rounds: int) -> None:
    """Attack 2 (see the module docstring)."""
    for _ in range(rounds):
        for label, commits, compose in _SCENARIOS:
            scene = _scene()
            h.refresh()

            def call(c: Callable[[Any, _Scene], object] = compose, s: _Scene = scene) -> None:
                with transaction() as t:
                    c(t, s)

            judge = _expect_commit(label) if commits else _expect_refusal(label)
            h.run(result, f"transaction: {label}", call, judge)
    result.notes.append(f"{len(_SCENARIOS)} composed transactions x {rounds} rounds")


def _scene() -> _Scene:
    user = users.create_user(f"tx-{uuid.uuid4().hex[:10]}@example.com", "Composer")
    order = orders.place_order(user.user_id, Decimal("20.00"))
    product = products.put_product(f"tx-{uuid.uuid4().hex[:10]}", "Chair", Decimal("40.00"))
    return _Scene(users.get_user(user.user_id), orders.get_order(user.user_id, order.order_id),
                  products.get_product(product.product_id))


def _order_of(s: _Scene) -> dict[str, Any]:
    return {"user_id": s.order.user_id, "order_id": s.order.order_id}


def _new_order(s: _Scene) -> Order:
    return Order(user_id=s.user.user_id, order_id=new_order_id(), amount=Decimal("5.00"),
                 status=OrderStatus.PENDING)


def _renamed(p: Product) -> Product:
    copied = copy.deepcopy(p)
    copied.name = "Renamed"
    return copied




def _paid() -> list[Action]:
    return [Order.status.set(OrderStatus.PAID)]


# Conditions compare with a valid amount: a value in a condition is held to the attribute's rule too
# (``Order.amount > 0`` is refused as it is built, an amount being above zero).
_ONE = Decimal("1.00")
_SCENARIOS: list[tuple[str, bool, Callable[[Any, _Scene], object]]] = [
    ("the order moves to PAID while a check on its own amount (> 1,000,000) fails", False,
     lambda t, s: (t.update(s.order, _paid()),
                   t.condition_check(Order, Order.amount > 1_000_000, **_order_of(s)))),
    ("the order moves to PAID while a check on its user (name == 'nobody') fails", False,
     lambda t, s: (t.update(s.order, _paid()),
                   t.condition_check(User, User.name == "nobody", user_id=s.user.user_id))),
    ("the user is deleted and an order saved for it", False,
     lambda t, s: (t.delete(s.user), t.save(_new_order(s)))),
    ("an order is saved for the user and the user deleted", False,
     lambda t, s: (t.save(_new_order(s)), t.delete(s.user))),
    ("one order is updated twice (two writes of one item)", False,
     lambda t, s: (t.update(s.order, [Order.amount.set(Decimal("30.00"))]),
                   t.update(copy.deepcopy(s.order), _paid()))),
    ("one product is saved and deleted (two writes of one item)", False,
     lambda t, s: (t.save(_renamed(s.product)), t.delete(s.product))),
    ("the order is deleted while a check on its amount (> 1,000,000) fails", False,
     lambda t, s: (t.delete(s.order), t.condition_check(Order, Order.amount > 1_000_000, **_order_of(s)))),
    ("the product is saved while a check on its price (> 1,000,000) fails", False,
     lambda t, s: (t.save(_renamed(s.product)),
                   t.condition_check(Product, Product.price > 1_000_000, product_id=s.product.product_id))),
    ("a product is renamed while one of two checks on an order fails", False,
     lambda t, s: (t.update(s.product, [Product.name.set("Renamed")]),
                   t.condition_check(Order, Order.amount > _ONE, **_order_of(s)),
                   t.condition_check(Order, Order.amount > 1_000_000, **_order_of(s)))),
    ("the user's email changes while a check on the user (name == 'nobody') fails", False,
     lambda t, s: (t.update(s.user, [User.email.set(f"moved-{uuid.uuid4().hex[:8]}@example.com")]),
                   t.condition_check(User, User.name == "nobody", user_id=s.user.user_id))),
    ("the order moves to PAID with a check on its own amount (> 1.00) that holds", True,
     lambda t, s: (t.update(s.order, _paid()),
                   t.condition_check(Order, Order.amount > _ONE, **_order_of(s)))),
    ("the order moves to PAID with a check on its user (exists) that holds", True,
     lambda t, s: (t.update(s.order, _paid()),
                   t.condition_check(User, User.user_id.exists(), user_id=s.user.user_id))),
    ("the product is saved with a check on its price (>= 0) that holds", True,
     lambda t, s: (t.save(_renamed(s.product)),
                   t.condition_check(Product, Product.price >= 0, product_id=s.product.product_id))),
    ("an order is saved with a check on its user (name == 'Composer') that holds", True,
     lambda t, s: (t.save(_new_order(s)),
                   t.condition_check(User, User.name == "Composer", user_id=s.user.user_id))),
    ("a product is renamed with two checks on an order that hold", True,
     lambda t, s: (t.update(s.product, [Product.name.set("Renamed")]),
                   t.condition_check(Order, Order.amount > _ONE, **_order_of(s)),
                   t.condition_check(Order, Order.status == OrderStatus.PENDING, **_order_of(s)))),
]


# --- 3. look-alikes ------------------------------------------------------------------------------

# Pairs of spellings a person reads as one address; {t} is a tag that keeps each run's apart.
LOOK_ALIKES: list[tuple[str, str, str]] = [
    ("fullwidth a", "\uff41lice{t}@example.com", "alice{t}@example.com"),
    ("NFD e + U+0301 vs NFC \u00e9", "e\u0301mile{t}@example.com", "\u00e9mile{t}@example.com"),
    ("\u00df vs ss", "stra\u00dfe{t}@example.com", "strasse{t}@example.com"),
    ("zero-width space", "ali\u200bce{t}@example.com", "alice{t}@example.com"),
    ("soft hyphen", "ali\u00adce{t}@example.com", "alice{t}@example.com"),
    ("IDN vs punycode domain", "m{t}@m\u00fcnchen.de", "m{t}@xn--mnchen-3ya.de"),
    ("\u0130 vs i", "\u0130nes{t}@example.com", "ines{t}@example.com"),
    ("Cyrillic \u0430 vs Latin a", "\u0430lice{t}@example.com", "alice{t}@example.com"),
    ("upper vs lower case", "Alice{t}@Example.COM", "alice{t}@example.com"),
    ("ligature \ufb01", "\ufb01ona{t}@example.com", "fiona{t}@example.com"),
    ("Kelvin sign", "\u212aim{t}@example.com", "kim{t}@example.com"),
    ("zero-width joiner", "al\u200dice{t}@example.com", "alice{t}@example.com"),
    ("byte order mark", "\ufeffalice{t}@example.com", "alice{t}@example.com"),
    ("combining grapheme joiner", "ali\u034fce{t}@example.com", "alice{t}@example.com"),
    ("fullwidth domain", "d{t}@\uff45xample.com", "d{t}@example.com"),
    ("upper-case IDN domain", "m{t}@M\u00dcNCHEN.DE", "m{t}@m\u00fcnchen.de"),
    ("NFD domain", "c{t}@cafe\u0301.fr", "c{t}@caf\u00e9.fr"),
    ("Greek omicron", "b\u03bfb{t}@example.com", "bob{t}@example.com"),
]


def look_alikes(h: Harness, result: PhaseResult, rng: random.Random) -> None:
    """Attack 3 (see the module docstring)."""
    for what, one, other in LOOK_ALIKES:
        for spelled_first, spelled_second in ((one, other), (other, one)):
            tag = f"{rng.randrange(16**6):06x}"
            first, second = spelled_first.format(t=tag), spelled_second.format(t=tag)
            made = h.run(result, f"create_user({first!r}) [{what}]",
                         lambda e=first: users.create_user(e, "First"),
                         _created_or_refused())
            h.run(result, f"create_user({second!r}) after {first!r} [{what}]",
                  lambda e=second: users.create_user(e, "Second"),
                  _expect_refusal_or_written((AlreadyExists, InvalidInput)))
            if made.error is None:
                someone = users.create_user(f"z{uuid.uuid4().hex[:10]}@example.com", "Third")
                h.refresh()
                h.run(result, f"update_user(email={second!r}) while {first!r} is taken [{what}]",
                      lambda u=someone, e=second: users.update_user(u, email=e),
                      _expect_refusal_or_written((AlreadyExists, InvalidInput)))
    result.notes.append(f"{len(LOOK_ALIKES)} pairs, each way round, by create_user and update_user")


def _created_or_refused() -> Judge:
    """A creation that wrote, or an ``InvalidInput`` that wrote nothing."""
    return _expect_refusal_or_written((InvalidInput,))


def _expect_refusal_or_written(errors: tuple[type[BaseException], ...]) -> Judge:
    """A refusal with one of ``errors`` that wrote nothing, or a success that wrote (whether it may
    have is for the declarations' check: two users who read the same)."""
    def judge(outcome: Outcome) -> str | None:
        if outcome.error is None:
            return None if outcome.changes else "success reported, but nothing was written"
        if outcome.changes:
            return f"{_told(outcome)}, but the table shows {describe(outcome.changes)}"
        if not isinstance(outcome.error, errors):
            return f"want {'/'.join(e.__name__ for e in errors)}, got {_told(outcome)}"
        return None

    return judge


# --- 4. poisoned item ----------------------------------------------------------------------------

POISONS: dict[str, Callable[[Item], None]] = {
    "Amount is a string": lambda item: item.update(Amount={"S": "12.00"}),
    'Version is "1.5"': lambda item: item.update(Version={"N": "1.5"}),
    "Status is unknown": lambda item: item.update(Status={"S": "LOST"}),
    "CreatedAt is not a time": lambda item: item.update(CreatedAt={"S": "yesterday"}),
    "Amount is a list": lambda item: item.update(Amount={"L": [{"N": "1"}]}),
}


def poisoned(h: Harness, result: PhaseResult) -> None:
    """Attack 4 (see the module docstring)."""
    unreadable_error = getattr(core.errors, "UnreadableItem", None)
    missing = []
    if unreadable_error is None:
        missing.append("core.errors.UnreadableItem")
    user = users.create_user(f"poisoned-{uuid.uuid4().hex[:8]}@example.com", "Poisoned")
    good: list[Order] = []
    bad: dict[Key, str] = {}
    client, table = raw_client(), get_settings().table_name
    start = NOW + timedelta(minutes=5)
    for n in range(6):
        at = start + timedelta(seconds=2 * n)
        good.append(orders.place_order(user.user_id, Decimal("10.00") + n, created_at=at))
    h.refresh()
    template = dict(h.snapshot[(good[0].pk, good[0].sk)])
    for n, (what, poison) in enumerate(POISONS.items()):
        order_id = new_order_id(start + timedelta(seconds=2 * n + 1))
        item = {k: v for k, v in template.items() if k not in ("WriteToken", "PriorWriteToken")}
        item.update(SK={"S": f"ORDER#{order_id}"}, OrderId={"S": order_id}, GSI1PK={"S": "STATUS#PENDING"})
        poison(item)
        client.put_item(TableName=table, Item=item)
        bad[key_of(item)] = what
    h.declared.excluded.update(bad)
    h.refresh()
    try:
        pages = _page_fields()
        if "unreadable" not in pages:
            missing.append("Page.unreadable")
        good_keys = {(o.pk, o.sk) for o in good}
        for newest_first in (True, False):
            h.run(result, f"get_user_orders(limit=2, newest_first={newest_first}) to the end",
                  lambda nf=newest_first: _all_pages(
                      lambda c: orders.get_user_orders(user.user_id, limit=2, cursor=c, newest_first=nf)),
                  _listed(good_keys, set(bad)))
        h.run(result, "orders_by_status(PENDING, limit=2) to the end",
              lambda: _all_pages(lambda c: orders.orders_by_status("PENDING", limit=2, cursor=c)),
              _listed(good_keys, set(bad)))
        for order in good:
            h.run(result, f"get_order(good {order.order_id})",
                  lambda o=order: orders.get_order(o.user_id, o.order_id),
                  _got(order))
        wanted = (unreadable_error,) if unreadable_error is not None else (DataLayerError,)
        for key, what in bad.items():
            order_id = key[1].removeprefix("ORDER#")
            h.run(result, f"get_order(poisoned: {what})",
                  lambda i=order_id: orders.get_order(user.user_id, i),
                  _expect_refusal(f"the stored order is unreadable ({what})", wanted))
    finally:
        for key in bad:
            client.delete_item(TableName=table, Key={"PK": {"S": key[0]}, "SK": {"S": key[1]}})
        h.declared.excluded.difference_update(bad)
        h.refresh()
    if missing:
        result.unavailable = f"the code under test has no {' and no '.join(missing)}"
    result.notes.append(f"{len(good)} good orders beside {len(bad)} poisoned ones: " + ", ".join(POISONS))


def _page_fields() -> set[str]:
    from repositories.paging import Page

    return {f.name for f in dataclasses.fields(Page)} if dataclasses.is_dataclass(Page) else set(dir(Page))


def _all_pages(read: Callable[[str | None], Any]) -> tuple[list[Any], list[Key]]:
    """Every item of a listing, page after page, and every key its pages say they skipped."""
    items: list[Any] = []
    skipped: list[Key] = []
    cursor = None
    for _ in range(100):
        page = read(cursor)
        items += page.items
        skipped += [tuple(k) for k in getattr(page, "unreadable", [])]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    return items, skipped


def _listed(good: set[Key], bad: set[Key]) -> Judge:
    """Every good order listed once; none of the bad ones; every bad one (all in the listing's
    range) reported as skipped in ``Page.unreadable``."""
    def judge(outcome: Outcome) -> str | None:
        if outcome.error is not None:
            return f"the listing failed ({_told(outcome)}): the good orders were not returned"
        items, skipped = outcome.value
        keys = [(o.pk, o.sk) for o in items]
        problems = []
        if good - set(keys):
            problems.append(f"lost {len(good - set(keys))} good orders")
        if len(keys) != len(set(keys)):
            problems.append("listed an order twice")
        if bad & set(keys):
            problems.append(f"returned {len(bad & set(keys))} unreadable items as orders")
        if bad - set(skipped):
            problems.append(f"did not report {len(bad - set(skipped))} skipped items in Page.unreadable")
        return "; ".join(problems) or None

    return judge


def _got(order: Order) -> Judge:
    def judge(outcome: Outcome) -> str | None:
        if outcome.error is not None:
            return f"a good order next to unreadable ones was not returned: {_told(outcome)}"
        got = outcome.value
        if (got.pk, got.sk, got.amount) != (order.pk, order.sk, order.amount):
            return f"returned {got.pk}|{got.sk} {got.amount}, stored is {order.pk}|{order.sk} {order.amount}"
        return None

    return judge


# --- 5. retry-after-unknown ----------------------------------------------------------------------


@dataclass
class _Creator:
    """A creating function called with an idempotency key, and the items one call creates."""

    name: str
    call: Callable[[str], Any]
    main: str  # the EntityType of the entity it returns
    creates: dict[str, int]  # EntityType -> items created (the main one included)
    changes: dict[str, int]  # EntityType -> existing items changed
    function: Callable[..., Any]  # the repository function (its signature says what it takes)


def retry_after_unknown(h: Harness, result: PhaseResult, injector: FaultInjector, rounds: int) -> None:
    """Attack 5 (see the module docstring)."""
    creators = _creators(h)
    missing = [c.name for c in creators if "idempotency_key" not in inspect.signature(c.function).parameters]
    resolvable = callable(getattr(WriteOutcomeUnknown, "resolve", None))
    reasons = []
    if missing:
        reasons.append(f"no idempotency_key on {', '.join(missing)}")
    if not resolvable:
        reasons.append("no WriteOutcomeUnknown.resolve()")
    if reasons:
        result.unavailable = "; ".join(reasons)
    seen: Counter[str] = Counter()
    for n in range(rounds):
        for creator in creators:
            if creator.name in missing:
                continue
            for kind in ("lost", "reset"):
                key = f"attack-{creator.name}-{kind}-{n}-{uuid.uuid4().hex[:6]}"
                seen[_retry(h, result, injector, creator, kind, key, resolvable)] += 1
    result.notes.append("first calls: " + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))


def _creators(h: Harness) -> list[_Creator]:
    owner = users.create_user(f"retry-{uuid.uuid4().hex[:8]}@example.com", "Retry")
    source = accounts.open_account(balance=Decimal("1000.00"))
    target = accounts.open_account(balance=Decimal("0.00"))
    h.declared.opened.update({source.account_id: Decimal("1000.00"), target.account_id: Decimal("0.00")})
    h.refresh()
    times: dict[str, datetime] = {}  # one reading time per key: a call again is the same call
    return [
        _Creator("create_user", lambda k: users.create_user(f"r-{k}@example.com", "Retry", idempotency_key=k),
                 "USER", {"USER": 1, "EMAIL": 1}, {}, users.create_user),
        _Creator("place_order",
                 lambda k: orders.place_order(owner.user_id, Decimal("7.50"), idempotency_key=k),
                 "ORDER", {"ORDER": 1}, {}, orders.place_order),
        _Creator("open_account", lambda k: accounts.open_account(balance=Decimal("10.00"), idempotency_key=k),
                 "ACCOUNT", {"ACCOUNT": 1}, {}, accounts.open_account),
        _Creator("put_product",
                 lambda k: products.put_product(f"r-{k}", "Retry", Decimal("2.50"), idempotency_key=k),
                 "PRODUCT", {"PRODUCT": 1}, {}, products.put_product),
        _Creator("record_metric",
                 lambda k: metrics.record_metric(
                     "dev-retry", "load", Decimal("1.5"), idempotency_key=k,
                     at=times.setdefault(k, NOW + timedelta(seconds=len(times)))),
                 "METRIC", {"METRIC": 1}, {"METRIC_AGG": 1}, metrics.record_metric),
        _Creator("transfer_funds",
                 lambda k: accounts.transfer_funds(source.account_id, target.account_id, Decimal("1.25"),
                                                   idempotency_key=k),
                 "TRANSFER", {"TRANSFER": 1}, {"ACCOUNT": 2}, accounts.transfer_funds),
    ]


def _retry(h: Harness, result: PhaseResult, injector: FaultInjector, creator: _Creator, kind: str, key: str,
           resolvable: bool) -> str:
    """One round: the first call under ``kind`` on every attempt, ``resolve()``, the call again."""
    start = h.snapshot

    def learn(outcome: Outcome) -> None:  # an account a call opened was opened with its balance
        if creator.name == "open_account":
            for k, (old, new) in outcome.changes.items():
                if old is None and new is not None and new.get("EntityType") == {"S": "ACCOUNT"}:
                    h.declared.opened[k[0].removeprefix("ACCOUNT#")] = Decimal("10.00")

    def arm_and_call() -> Any:
        injector.refill_retry_quota()
        injector.arm([kind] * ATTEMPTS)
        try:
            return creator.call(key)
        finally:
            injector.disarm()

    first = h.run(result, f"{creator.name}: first call, every answer {kind}", arm_and_call,
                  _first_call(creator, start), learn)
    landed = _created(start, h.snapshot, creator.main)  # as the table is now (put back if a rule broke)
    resolved: Key | None = None
    told = "success" if first.error is None else type(first.error).__name__
    written = "written" if landed else "not written"
    if isinstance(first.error, WriteOutcomeUnknown) and resolvable:
        error = first.error
        outcome = h.run(result, f"{creator.name}: resolve() after {kind} answers", error.resolve,
                        _resolved(landed))
        if outcome.error is None and outcome.value is not None:
            resolved = (outcome.value.pk, outcome.value.sk)
    h.run(result, f"{creator.name}: called again with the same idempotency_key after {told}",
          lambda: creator.call(key), _again(creator, start, first.value, resolved), learn)
    return f"{kind} -> {told} ({written})"


def _created(start: Snapshot, after: Snapshot, entity_type: str) -> list[Key]:
    return sorted(k for k in after.keys() - start.keys() if after[k].get("EntityType") == {"S": entity_type})


def _first_call(creator: _Creator, start: Snapshot) -> Judge:
    def judge(outcome: Outcome) -> str | None:
        if isinstance(outcome.error, WriteOutcomeUnknown):
            named = {tuple(k) for k in outcome.error.keys}
            if set(outcome.changes) - named:
                shows = describe(outcome.changes)
                return f"{_told(outcome)} names {len(named)} keys, but others changed: {shows}"
            return _exactly(creator, start, outcome.after) if outcome.changes else None
        if outcome.error is not None:
            if outcome.changes:
                return f"{_told(outcome)}, but the table shows {describe(outcome.changes)}"
            return None
        return _exactly(creator, start, outcome.after)

    return judge


def _resolved(landed: list[Key]) -> Judge:
    def judge(outcome: Outcome) -> str | None:
        if outcome.error is not None:
            return f"resolve() did not tell: {_told(outcome)}"
        if outcome.value is None:
            return f"resolve() said nothing was written, but {landed[0]} is stored" if landed else None
        if not landed:
            return "resolve() returned an entity, but none was written"
        got = (outcome.value.pk, outcome.value.sk)
        return None if got == landed[0] else f"resolve() returned {got}, the write stored {landed[0]}"

    return judge


def _again(creator: _Creator, start: Snapshot, first: Any, resolved: Key | None) -> Judge:
    def judge(outcome: Outcome) -> str | None:
        if outcome.error is not None:
            return f"calling again with the same idempotency_key failed: {_told(outcome)}"
        got = (outcome.value.pk, outcome.value.sk)
        problem = _exactly(creator, start, outcome.after)
        if problem is not None:
            return f"after calling again: {problem}"
        stored = _created(start, outcome.after, creator.main)
        if got != stored[0]:
            return f"returned {got}, but the entity stored is {stored[0]}"
        for earlier, what in ((resolved, "resolve()"), (_key(first), "the first call")):
            if earlier is not None and earlier != got:
                return f"returned {got}, {what} gave {earlier}: not the same ids"
        return None

    return judge


def _key(entity: Any) -> Key | None:
    return None if entity is None else (entity.pk, entity.sk)


def _exactly(creator: _Creator, start: Snapshot, after: Snapshot) -> str | None:
    """The table holds exactly one call's effect since ``start``: ``creates`` new items and
    ``changes`` changed ones (an idempotency key's record aside), none twice."""
    created: Counter[str] = Counter()
    changed: Counter[str] = Counter()
    for key, (old, new) in diff(start, after).items():
        entity_type = (new or old or {}).get("EntityType", {}).get("S", "?")
        if entity_type == "IDEMPOTENCY":
            continue
        if old is None:
            created[entity_type] += 1
        else:
            changed[entity_type] += 1
            if new is not None and version(new) != (version(old) or 0) + 1:
                return f"{key} moved from version {version(old)} to {version(new)}: applied twice"
    wanted_created, wanted_changed = Counter(creator.creates), Counter(creator.changes)
    if creator.name == "record_metric" and created["METRIC_AGG"] == 1:  # the hour's first reading
        wanted_created["METRIC_AGG"], wanted_changed["METRIC_AGG"] = 1, 0
    if +created != +wanted_created or +changed != +wanted_changed:
        return (f"the table shows created {dict(created)} and changed {dict(changed)} since the first call, "
                f"one call creates {dict(+wanted_created)} and changes {dict(+wanted_changed)}")
    return None


# --- the phase -----------------------------------------------------------------------------------


ATTACKS = ("bypass", "dropped checks", "look-alikes", "poisoned item", "retry-after-unknown")


def run(seed: int, random_actions: int = 1000, rounds: int = 2, *, api: str = "sync",
        suffix: str = "") -> list[PhaseResult]:
    """Phase 4, on a table of its own: one ``PhaseResult`` per attack (named ``4 <attack><suffix>``).

    ``api="async"``: every attempt's call is awaited on one event loop through
    ``core.engine.bridge.run``, which is what every function of ``repositories.asyncio``, the
    entities' ``asave()``/``aupdate()``/``adelete()``, ``models.atransaction()``'s commit and
    ``WriteOutcomeUnknown.aresolve()`` are: the same code, its calls on the loop's ``AsyncLeanClient``
    (fixtures are written synchronously)."""
    if api not in ("sync", "async"):
        raise ValueError(f"api must be sync or async, got {api!r}")
    fresh_table("rel-attacks")
    rng = random.Random(seed)
    runner = asyncio.Runner() if api == "async" else None
    h = Harness(None if runner is None else lambda call: runner.run(bridge.run(call)))
    injector = FaultInjector(seed + 4, faults_reads=False)
    steps: dict[str, Callable[[PhaseResult], None]] = {
        "bypass": lambda r: bypass(h, r, rng, random_actions),
        "dropped checks": lambda r: dropped_checks(h, r, rounds),
        "look-alikes": lambda r: look_alikes(h, r, rng),
        "poisoned item": lambda r: poisoned(h, r),
        "retry-after-unknown": lambda r: retry_after_unknown(h, r, injector, rounds),
    }
    results = []
    with _installed(injector), _closed(runner):
        for name in ATTACKS:
            result = PhaseResult(f"4 {name}{suffix}")
            started, injected = time.monotonic(), injector.injected_total()
            try:
                steps[name](result)
            except Exception as exc:  # the attack itself could not go on: say so, go on with the next
                result.unavailable = f"the attack stopped: {summarise(exc)}{_where(exc)}"
                h.refresh()
            result.seconds = time.monotonic() - started
            result.faults = injector.injected_total() - injected
            results.append(result)
    return results


@contextmanager
def _closed(runner: asyncio.Runner | None) -> Iterator[None]:
    """Close the loop's connection pools (``repositories.asyncio.aclose``), then the loop."""
    try:
        yield
    finally:
        if runner is not None:
            runner.run(aclose())
            runner.close()


@contextmanager
def _installed(injector: FaultInjector) -> Iterator[None]:
    injector.install()
    try:
        yield
    finally:
        injector.uninstall()
