"""How a backfill changes one item: ``ItemUpdate`` (and ``Put``), and the conditional write it
becomes.

Items travel in DynamoDB's wire format (``{"Email": {"S": "a@b.c"}}``), exactly as revision files
write them out. Every write is conditional: the item must still exist, and either still hold the
values the update ``expect``s, or (``mark``) not carry this backfill run's id in
``MigrationRun`` yet, which the write sets, and still be as the transform saw it (``guard``).
"""

from __future__ import annotations

import dataclasses
from _collections_abc import dict_items, dict_keys, dict_values
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MARK_ATTRIBUTE = "MigrationRun"
VERSION_ATTRIBUTE = "Version"  # the models' optimistic-lock counter (models/table.py)
AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


class ItemFailed(Exception):
    """Raised by a transform: this item cannot be migrated; the message (no values) says why."""


@dataclass(frozen=True)
class Put:
    """Another item written with the scanned one, in the same transaction; it must not exist yet."""

    item: Item


@dataclass(frozen=True)
class Delete:
    """Another item deleted with the scanned one, in the same transaction, on the condition that it
    still holds the values it ``expect``s (so it is deleted only while it is what the transform saw)."""

    key: Item
    expect: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemUpdate:
    """How a backfill changes one item (attribute names and wire-format values)."""

    set: Mapping[str, AttributeValue] = field(default_factory=dict)
    add: Mapping[str, AttributeValue] = field(default_factory=dict)
    remove: Sequence[str] = ()
    expect: Mapping[str, AttributeValue | None] = field(default_factory=dict)  # None: must be absent
    puts: Sequence[Put] = ()
    deletes: Sequence[Delete] = ()


Transform = Callable[[Item], ItemUpdate | None]


class ReadTracker(dict[str, Any]):
    """An item (wire format) that remembers which attributes its reader looked at; iterating over
    it counts as reading every attribute."""

    def __init__(self, item: Item) -> None:
        super().__init__(item)
        self.read: set[str] = set()

    def _all(self) -> None:
        self.read.update(super().keys())

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._all()
        return super().__iter__()

    def keys(self) -> dict_keys[str, Any]:
        self._all()
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        self._all()
        return super().values()

    def items(self) -> dict_items[str, Any]:
        self._all()
        return super().items()


def guard(update: ItemUpdate, item: Item, read: set[str], key_names: Sequence[str]) -> ItemUpdate:
    """``update`` made conditional on the item still being as the transform saw it: on its
    ``Version`` when it has one (every writer bumps it), else on every attribute the transform
    read (absent ones must still be absent), so a live write between the scan and this write
    fails the condition and the item is read and transformed again instead of being overwritten
    with a stale result."""
    watched = {VERSION_ATTRIBUTE} if VERSION_ATTRIBUTE in item else read - {*key_names, MARK_ATTRIBUTE}
    expect = dict(update.expect)
    for attribute in sorted(watched):
        expect.setdefault(attribute, item.get(attribute))
    return dataclasses.replace(update, expect=expect)


def check_update(update: ItemUpdate, key_names: Sequence[str], *, marked: bool) -> str | None:
    """Why ``update`` may not be written (a mistake in the revision), or ``None``."""
    touched = set(update.set) | set(update.add) | set(update.remove)
    if touched & {*key_names, MARK_ATTRIBUTE}:
        return f"an ItemUpdate may not change the keys or {MARK_ATTRIBUTE}"
    if not marked and not update.expect:
        return (
            "with mark=False every ItemUpdate must `expect` values, so that its write is "
            "conditional and never applied twice"
        )
    return None


def conditional_write(
    table: str, key_names: Sequence[str], key: Item, update: ItemUpdate, run_id: str | None
) -> tuple[str, dict[str, Any]] | None:
    """The client method and parameters that apply ``update`` to the item at ``key`` (a
    transaction when it also puts items); ``None`` when there is nothing to write."""
    names: dict[str, str] = {}
    values: dict[str, AttributeValue] = {}

    def name(attribute: str) -> str:
        names[f"#n{len(names)}"] = attribute
        return f"#n{len(names) - 1}"

    def value(wire: AttributeValue) -> str:
        values[f":v{len(values)}"] = wire
        return f":v{len(values) - 1}"

    sets = [f"{name(a)} = {value(v)}" for a, v in update.set.items()]
    conditions = [f"attribute_exists({name(key_names[0])})"]
    if run_id is not None:
        mark, run = name(MARK_ATTRIBUTE), value({"S": run_id})
        sets.append(f"{mark} = {run}")
        conditions.append(f"(attribute_not_exists({mark}) OR {mark} <> {run})")
    for attribute, wire in update.expect.items():
        conditions.append(
            f"attribute_not_exists({name(attribute)})"
            if wire is None
            else f"{name(attribute)} = {value(wire)}"
        )
    clauses = [
        ("SET", sets),
        ("ADD", [f"{name(a)} {value(v)}" for a, v in update.add.items()]),
        ("REMOVE", [name(a) for a in update.remove]),
    ]
    expression = " ".join(f"{verb} {', '.join(parts)}" for verb, parts in clauses if parts)
    write: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
    }
    if values:
        write["ExpressionAttributeValues"] = values
    if not update.puts and not update.deletes:
        return ("update_item", {**write, "UpdateExpression": expression}) if expression else None
    first = {"Update": {**write, "UpdateExpression": expression}} if expression else {"ConditionCheck": write}
    puts = [
        {
            "Put": {
                "TableName": table,
                "Item": put.item,
                "ConditionExpression": "attribute_not_exists(#k)",
                "ExpressionAttributeNames": {"#k": key_names[0]},
            }
        }
        for put in update.puts
    ]
    deletes = [{"Delete": _delete(table, delete)} for delete in update.deletes]
    return "transact_write_items", {"TransactItems": [first, *puts, *deletes]}


def _delete(table: str, delete: Delete) -> dict[str, Any]:
    request: dict[str, Any] = {"TableName": table, "Key": delete.key}
    if delete.expect:
        names = {f"#d{i}": attribute for i, attribute in enumerate(delete.expect)}
        request["ConditionExpression"] = " AND ".join(f"#d{i} = :d{i}" for i in range(len(names)))
        request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = {f":d{i}": v for i, v in enumerate(delete.expect.values())}
    return request
