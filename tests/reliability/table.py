"""The table as it really is: raw scans and the invariants every phase checks.

Everything here reads through a raw botocore client of its own (``core.client.new_client``), never
through the code under test and never through the client faults are injected into.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.client import new_client
from core.config import get_settings, reload_settings
from migrations import runner

Item = dict[str, Any]
Key = tuple[str, str]
Snapshot = dict[Key, Item]
Diff = dict[Key, tuple[Item | None, Item | None]]

_clients: dict[tuple[str | None, str], Any] = {}
_made: list[str] = []  # the tables fresh_table made in this process and drop_tables has not dropped


def fresh_table(prefix: str) -> str:
    """Point the data layer at a new table at head (migrated by the real runner); return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    os.environ["TABLE_NAME"] = name
    reload_settings()
    _made.append(name)
    runner.upgrade(out=lambda _: None)
    return name


def drop_tables() -> None:
    """Delete the tables ``fresh_table`` made in this process, and the migrations' tables beside
    them, once a phase is done with them.

    DynamoDB Local runs the expiry job of every table with TTL enabled on a thread of one small
    fixed pool, which also builds new indexes: with seven or eight such tables alive no index is
    ever built, and a migration that adds one waits for it in vain. The phases run per transport
    would get there; tables dropped after each phase never do.
    """
    client = raw_client()
    names = [n for page in client.get_paginator("list_tables").paginate() for n in page["TableNames"]]
    for name in names:
        if name in _made or any(name.startswith(f"{made}-") for made in _made):
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):  # dropped already
                client.delete_table(TableName=name)
    _made.clear()


def raw_client() -> Any:
    """A raw botocore client for the current endpoint (faults are never injected into it)."""
    settings = get_settings()
    key = (settings.endpoint_url, settings.region or "")
    if key not in _clients:
        _clients[key] = new_client(settings)
    return _clients[key]


def key_of(item: Mapping[str, Any]) -> Key:
    """``(PK, SK)`` of a wire-format item."""
    return item["PK"]["S"], item["SK"]["S"]


def scan() -> Snapshot:
    """Every item of the current table, strongly consistent, by key."""
    pages = (
        raw_client().get_paginator("scan").paginate(TableName=get_settings().table_name, ConsistentRead=True)
    )
    return {key_of(item): item for page in pages for item in page["Items"]}


def get(key: Key) -> Item | None:
    """One item, strongly consistent."""
    response = raw_client().get_item(
        TableName=get_settings().table_name,
        Key={"PK": {"S": key[0]}, "SK": {"S": key[1]}},
        ConsistentRead=True,
    )
    item: Item | None = response.get("Item")
    return item


def diff(before: Snapshot, after: Snapshot) -> Diff:
    """The keys whose item changed (created, replaced or deleted), with both sides."""
    return {
        k: (before.get(k), after.get(k))
        for k in before.keys() | after.keys()
        if before.get(k) != after.get(k)
    }


def of_type(snapshot: Snapshot, entity_type: str) -> list[Item]:
    """The items of one ``EntityType``."""
    return [item for item in snapshot.values() if item.get("EntityType", {}).get("S") == entity_type]


def text(item: Item | None, name: str) -> str | None:
    """A string attribute, or ``None``."""
    return None if item is None or name not in item else item[name].get("S")


def number(item: Item | None, name: str) -> Decimal | None:
    """A number attribute, or ``None``."""
    return None if item is None or name not in item else Decimal(item[name]["N"])


def version(item: Item | None) -> int | None:
    """The item's ``Version``."""
    found = number(item, "Version")
    return None if found is None else int(found)


# --- invariants ------------------------------------------------------------------------------------


class Invariants:
    """The invariants of the data model, checked on a whole-table snapshot.

    ``opened`` maps each account id to the balance it was opened with (what the workload gave), so
    a balance is checked against its opening plus the recorded transfers, which proves at once that
    money is conserved and that every moved amount has exactly one record. Versions are remembered
    from one check to the next, per key, and must never go down (a deleted key starts over).
    """

    def __init__(self) -> None:
        self.opened: dict[str, Decimal] = {}
        self._versions: dict[Key, int] = {}

    def check(self, snapshot: Snapshot) -> list[str]:
        """Every violation found (empty: all hold)."""
        checks: list[Callable[[Snapshot], Iterable[str]]] = [
            self._money,
            _emails,
            _orders,
            _aggregates,
            self._monotonic_versions,
        ]
        return [violation for check in checks for violation in check(snapshot)]

    def _money(self, snapshot: Snapshot) -> Iterable[str]:
        accounts = {text(a, "AccountId"): a for a in of_type(snapshot, "ACCOUNT")}
        expected = {account_id: self.opened.get(str(account_id)) for account_id in accounts}
        for account_id, opened in expected.items():
            if opened is None:
                yield f"money: account {account_id} exists but was never opened by the workload"
        moved: dict[str, Decimal] = defaultdict(Decimal)
        for record in of_type(snapshot, "TRANSFER"):
            amount = number(record, "Amount") or Decimal(0)
            source, target = text(record, "FromAccount"), text(record, "ToAccount")
            if amount <= 0 or source == target or source not in accounts or target not in accounts:
                yield f"money: transfer {text(record, 'TransferId')} is malformed or names an unknown account"
                continue
            moved[str(source)] -= amount
            moved[str(target)] += amount
        for account_id, account in accounts.items():
            balance = number(account, "Balance")
            opened = expected[account_id]
            if balance is None or balance < 0:
                yield f"money: account {account_id} has balance {balance}"
            elif opened is not None and balance != opened + moved[str(account_id)]:
                yield (
                    f"money: account {account_id} holds {balance}, but it was opened with {opened} and "
                    f"its transfer records move {moved[str(account_id)]}"
                )
        total = sum((number(a, "Balance") or Decimal(0) for a in accounts.values()), Decimal(0))
        opened_total = sum((v for v in expected.values() if v is not None), Decimal(0))
        if total != opened_total:
            yield f"money: the balances sum to {total}, the accounts were opened with {opened_total}"

    def _monotonic_versions(self, snapshot: Snapshot) -> Iterable[str]:
        for key in [k for k in self._versions if k not in snapshot]:
            del self._versions[key]  # deleted: a later item at this key starts again
        for key, item in snapshot.items():
            now = version(item)
            if now is None:
                continue
            before = self._versions.get(key)
            if before is not None and now < before:
                yield f"version: {key} went back from {before} to {now}"
            self._versions[key] = max(now, before or now)


def _emails(snapshot: Snapshot) -> Iterable[str]:
    users = of_type(snapshot, "USER")
    claims = {text(c, "ClaimedEmail"): c for c in of_type(snapshot, "EMAIL")}
    for user in users:
        email, user_id = text(user, "Email"), text(user, "UserId")
        claim = snapshot.get((f"EMAIL#{email}", "EMAIL"))
        if claim is None or text(claim, "UserId") != user_id:
            yield f"email: user {user_id} has no claim of its email"
        if email is not None and email != email.lower():
            yield f"email: user {user_id} stores an email that is not lower-cased"
    owners = {(text(u, "UserId"), text(u, "Email")) for u in users}
    for email, claim in claims.items():
        if (text(claim, "UserId"), email) not in owners:
            yield f"email: orphan claim {key_of(claim)} (no user with that id holds that email)"
        if key_of(claim) != (f"EMAIL#{email}", "EMAIL"):
            yield f"email: claim {key_of(claim)} is filed under another email"


def _orders(snapshot: Snapshot) -> Iterable[str]:
    for order in of_type(snapshot, "ORDER"):
        status, order_id = text(order, "Status"), text(order, "OrderId")
        if text(order, "GSI1PK") != f"STATUS#{status}":
            yield f"order: {order_id} has GSI1PK {text(order, 'GSI1PK')} but status {status}"
        user_id = text(order, "UserId")
        if (f"USER#{user_id}", "PROFILE") not in snapshot and (f"USER#{user_id}", "RETIRED") not in snapshot:
            yield f"order: {order_id} belongs to user {user_id}, who never existed"
        amount = number(order, "Amount")
        if amount is None or amount <= 0:
            yield f"order: {order_id} has amount {amount}"


def _hour(stamp: str) -> str:
    return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%dT%H")


def _aggregates(snapshot: Snapshot) -> Iterable[str]:
    points: dict[tuple[str, str, str], list[Decimal]] = defaultdict(list)
    for point in of_type(snapshot, "METRIC"):
        group = (key_of(point)[0], _hour(str(text(point, "Timestamp"))), str(text(point, "MetricName")))
        points[group].append(number(point, "Value") or Decimal(0))
    seen = set()
    for aggregate in of_type(snapshot, "METRIC_AGG"):
        group = (key_of(aggregate)[0], str(text(aggregate, "Hour")), str(text(aggregate, "MetricName")))
        seen.add(group)
        values = points.get(group, [])
        stored = (
            number(aggregate, "Count"),
            number(aggregate, "Sum"),
            number(aggregate, "Min"),
            number(aggregate, "Max"),
        )
        wanted = (
            Decimal(len(values)),
            sum(values, Decimal(0)),
            min(values, default=None),
            max(values, default=None),
        )
        if stored != wanted:
            yield f"aggregate: {key_of(aggregate)} holds (count, sum, min, max) {stored}, its points {wanted}"
    for group in points.keys() - seen:
        yield f"aggregate: points of {group} have no hourly aggregate"
