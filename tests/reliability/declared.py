"""What the declarations require of the stored data, checked on a raw scan (phase 4).

``Declared.check(after, before)`` lists every rule the table breaks:

- each item builds into its entity (``Model.from_raw_data``) and serializes back (``serialize()``,
  which runs every value rule and derives every key from its template) to the very form stored:
  no value outside its rule, no key that is not its template's, no attribute the entity does not
  declare, no required attribute missing;
- an ``ExpiresAt`` only on entities that declare an expiry;
- the invariants of ``tests.reliability.table``: each user's email claimed and the claim owned,
  money conserved (a balance is its opening plus its transfers), orders with their user, their
  amount above zero and GSI1 under their status, hourly aggregates that sum up their points;
- an order's status moved only along ``models.order.ORDER_MOVES``, and a new order only for a
  user who exists;
- a write moves an item's ``Version`` by one (a second application shows as two);
- no two users whose emails a person reads as the same (``reads_as``).

Items in ``excluded`` (seeded unreadable on purpose) are left out.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from models import TableModel
from models.order import ORDER_MOVES, OrderStatus
from models.rules import Expires, FoldsInto
from tests.reliability.outcomes import summarise
from tests.reliability.table import Invariants, Item, Key, Snapshot, of_type, text, version

# Letters of other scripts drawn like Latin ones (the usual ones of UTS #39's confusables).
_LOOK_ALIKES = str.maketrans({
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0445": "x",
    "\u0443": "y", "\u0456": "i", "\u0455": "s", "\u0458": "j", "\u04bb": "h", "\u0501": "d",
    "\u03bf": "o", "\u03b1": "a", "\u03b9": "i", "\u03bd": "v", "\u0131": "i", "\u0261": "g",
})
# Drawn as nothing although not of category Cf: the combining grapheme joiner, variation
# selectors, the Hangul fillers.
_INVISIBLE = {0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)}


def reads_as(email: str) -> str:
    """What a person reads in ``email``: compatibility forms, case, invisible characters, a dotted
    capital I, letters of other scripts that look Latin and punycode set aside."""
    local, _, domain = email.rpartition("@")
    return f"{_fold(local)}@{'.'.join(_fold(_unicode_label(label)) for label in domain.split('.'))}"


def _unicode_label(label: str) -> str:
    """A domain label in Unicode (``xn--mnchen-3ya`` -> ``münchen``)."""
    if label.lower().startswith("xn--"):
        try:
            return label[4:].encode("ascii").decode("punycode")
        except (UnicodeError, ValueError):
            return label
    return label


def _fold(part: str) -> str:
    part = unicodedata.normalize("NFKC", part)
    part = "".join(c for c in part if unicodedata.category(c) != "Cf" and ord(c) not in _INVISIBLE)
    part = unicodedata.normalize("NFKC", part.casefold()).replace("i\u0307", "i")
    return part.translate(_LOOK_ALIKES)


def rebuilt(item: Item) -> tuple[str, list[str]]:
    """The entity name an item builds into, and how its stored form breaks its declaration."""
    try:
        entity = TableModel.from_raw_data(item)
    except Exception as exc:  # any failure to read it is the finding
        return "?", [f"does not build into its entity ({summarise(exc)})"]
    name = type(entity).__name__
    problems: list[str] = []
    try:
        updated = getattr(entity, "updated_at", None)
        if updated is not None and hasattr(entity, "stamp"):
            entity.stamp(updated)  # serialize() stamps the time of a write: the stored one here
        form = entity.serialize()
    except Exception as exc:
        return name, [f"does not serialize back ({summarise(exc)})"]
    for attr_name in sorted(set(item) | set(form)):
        if attr_name == "UpdatedAt" and updated is None:
            continue
        if not same(item.get(attr_name), form.get(attr_name)):
            problems.append(
                f"{attr_name} is stored as {_brief(item.get(attr_name))}, its declaration makes it "
                f"{_brief(form.get(attr_name))}"
            )
    if "ExpiresAt" in item and type(entity) not in _expiring():
        problems.append("carries ExpiresAt, but declares no expiry (the item would vanish)")
    return name, problems


def _expiring() -> set[type[TableModel]]:
    """The entities that expire: those that declare an ``Expires`` rule, and what they fold into."""
    found: set[type[TableModel]] = set()
    models: list[type[TableModel]] = [TableModel]
    while models:
        model = models.pop()
        models += model.__subclasses__()
        if model.rule(Expires) is not None:
            found.add(model)
            found.update(r.aggregate for r in model.rules if isinstance(r, FoldsInto))
    return found


def same(stored: Any, declared: Any) -> bool:
    """Equal wire values, numbers compared as numbers (``12.30`` is ``12.3``)."""
    if stored is None or declared is None:
        return stored is declared
    if set(stored) != set(declared):
        return False
    (kind, one), (_, other) = next(iter(stored.items())), next(iter(declared.items()))
    if kind == "N":
        return _number(one) == _number(other)
    if kind == "NS":
        return {_number(n) for n in one} == {_number(n) for n in other}
    if kind in ("SS", "BS"):
        return set(one) == set(other)
    if kind == "M":
        return set(one) == set(other) and all(same(one[k], other[k]) for k in one)
    if kind == "L":
        return len(one) == len(other) and all(same(a, b) for a, b in zip(one, other, strict=True))
    return bool(one == other)


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None


def _brief(value: Any) -> str:
    shown = "absent" if value is None else repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


class Declared:
    """The declared rules, checked on whole-table snapshots. ``opened``: each account's opening
    balance (what the attacks gave ``open_account``); ``excluded``: keys left out."""

    def __init__(self) -> None:
        self.opened: dict[str, Decimal] = {}
        self.excluded: set[Key] = set()

    def check(self, after: Snapshot, before: Snapshot | None = None) -> list[str]:
        """Every rule ``after`` breaks (with ``before``: also the moves from it); empty when all hold."""
        after = {k: v for k, v in after.items() if k not in self.excluded}
        found: list[str] = []
        readable = dict(after)
        for key, item in sorted(after.items()):
            if before is not None and before.get(key) == item:
                continue  # unchanged since a check that passed
            name, problems = rebuilt(item)
            found += [f"{name} {key[0]}|{key[1]}: {p}" for p in problems]
            if name == "?":
                del readable[key]  # reported; the checks below read only items that build
        invariants = Invariants()
        invariants.opened.update(self.opened)
        for check in (invariants.check, _look_alike_users):
            try:
                found += list(check(readable))
            except Exception as exc:  # a value of the wrong type where a rule reads it
                found.append(f"the table cannot be read for its invariants: {summarise(exc)}")
        if before is not None:
            before = {k: v for k, v in before.items() if k not in self.excluded}
            try:
                found += list(_moves(readable, before))
            except Exception as exc:
                found.append(f"the table cannot be read for what one write may change: {summarise(exc)}")
        return found


def _moves(after: Snapshot, before: Snapshot) -> Iterable[str]:
    """What one write may change: a ``Version`` by one, a status along ``ORDER_MOVES``; and a new
    order only for a user who exists."""
    for key, item in after.items():
        old, new = version(before.get(key)), version(item)
        if old is not None and new is not None and new not in (old, old + 1):
            yield f"{key[0]}|{key[1]}: one write moved its Version from {old} to {new}"
    for order in of_type(after, "ORDER"):
        key = (order["PK"]["S"], order["SK"]["S"])
        status = text(order, "Status")
        if key not in before:
            if (f"USER#{text(order, 'UserId')}", "PROFILE") not in after:
                yield f"order {key[1]} was created for user {text(order, 'UserId')}, who does not exist"
            continue
        was = text(before[key], "Status")
        if was == status:
            continue
        allowed = {s.value for s in ORDER_MOVES.get(OrderStatus(was), ())} if was in _STATUSES else set()
        if status not in allowed:
            yield f"order {key[1]}: its status moved from {was} to {status}, not along ORDER_MOVES"


_STATUSES = {s.value for s in OrderStatus}


def _look_alike_users(snapshot: Snapshot) -> Iterable[str]:
    seen: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for user in of_type(snapshot, "USER"):
        email, user_id = text(user, "Email"), text(user, "UserId")
        if email is not None and user_id is not None:
            seen[reads_as(email)].append((user_id, email))
    for read, owners in seen.items():
        if len({user_id for user_id, _ in owners}) > 1:
            emails = ", ".join(repr(email) for _, email in owners)
            yield f"users {', '.join(u for u, _ in owners)} hold emails a person reads as {read!r}: {emails}"
