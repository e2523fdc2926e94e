"""How a backfill changes one item: ``ItemUpdate`` (and ``Put``), and the conditional write it
becomes.

Items travel in DynamoDB's wire format (``{"Email": {"S": "a@b.c"}}``), exactly as revision files
write them out. Every write is conditional: the item must still exist, and either still hold the
values the update ``expect``s, or (``mark``) not carry this backfill run's id in
``MigrationRun`` yet, which the write sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MARK_ATTRIBUTE = "MigrationRun"
AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


class ItemFailed(Exception):
    """Raised by a transform: this item cannot be migrated; the message (no values) says why."""


@dataclass(frozen=True)
class Put:
    """Another item written with the scanned one, in the same transaction; it must not exist yet."""

    item: Item


@dataclass(frozen=True)
class ItemUpdate:
    """How a backfill changes one item (attribute names and wire-format values)."""

    set: Mapping[str, AttributeValue] = field(default_factory=dict)
    add: Mapping[str, AttributeValue] = field(default_factory=dict)
    remove: Sequence[str] = ()
    expect: Mapping[str, AttributeValue | None] = field(default_factory=dict)  # None: must be absent
    puts: Sequence[Put] = ()


Transform = Callable[[Item], ItemUpdate | None]


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
    if not update.puts:
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
    return "transact_write_items", {"TransactItems": [first, *puts]}
