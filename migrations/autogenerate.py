"""``new --autogenerate``: the operations that turn the live table into what ``models/`` declares.

Each difference found by ``check`` becomes a step (an upgrade line and the downgrade line that
undoes it). Steps are grouped into revisions with at most one index change and one TTL change
each, DynamoDB's own limits, so one ``check`` may yield several numbered revision files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from migrations.calls import MigrationError
from migrations.schema import Difference, IndexSpec, TableSpec


@dataclass(frozen=True)
class Step:
    """One change: its upgrade line, the downgrade line undoing it, and what it touches."""

    upgrade: str
    downgrade: str
    kind: str  # index, ttl or table


def _q(text: str | None) -> str:
    return "None" if text is None else json.dumps(text)


def _create(index: IndexSpec) -> str:
    keys = ", ".join(f"Key({_q(k.name)}, {_q(k.type)}, {_q(k.role)})" for k in index.keys)
    extra = ""
    if index.projection != "ALL":
        extra += f", projection={_q(index.projection)}"
    if index.non_key_attributes:
        extra += f", non_key_attributes=[{', '.join(_q(a) for a in index.non_key_attributes)}]"
    return f"ctx.create_global_index({_q(index.name)}, [{keys}]{extra})"


def _delete(index: IndexSpec) -> str:
    return f"ctx.delete_global_index({_q(index.name)})"


def _ttl(attribute: str, enabled: bool) -> str:
    return f"ctx.set_ttl({_q(attribute)})" if enabled else f"ctx.set_ttl({_q(attribute)}, enabled=False)"


def _billing(spec: TableSpec) -> str:
    if spec.billing_mode != "PROVISIONED":
        return f"ctx.set_billing({_q(spec.billing_mode)})"
    read = spec.provisioned.get("ReadCapacityUnits", 5)
    write = spec.provisioned.get("WriteCapacityUnits", 5)
    return f'ctx.set_billing("PROVISIONED", read_capacity={read}, write_capacity={write})'


def steps(differences: list[Difference], declared: TableSpec, live: TableSpec) -> list[Step]:
    """The steps that remove ``differences``; raise for what no operation can change in place."""
    out: list[Step] = []
    for d in differences:
        if d.kind == "table":
            raise MigrationError(f"{d}: run upgrade first (autogenerate compares with the live table)")
        if d.kind in ("keys", "lsi"):
            raise MigrationError(
                f"{d}: DynamoDB cannot change this on a live table; it takes a new table "
                "and a copy, which autogenerate does not write"
            )
        if d.kind == "index-missing":
            out.append(Step(_create(d.declared), _delete(d.declared), "index"))
        elif d.kind == "index-extra":
            out.append(Step(_delete(d.live), _create(d.live), "index"))
        elif d.kind == "index-changed":  # an index cannot be altered: drop it, then create it anew
            out.append(Step(_delete(d.live), _create(d.live), "index"))
            out.append(Step(_create(d.declared), _delete(d.declared), "index"))
        elif d.kind == "ttl":
            if d.live:
                out.append(Step(_ttl(d.live, False), _ttl(d.live, True), "ttl"))
            if d.declared:
                out.append(Step(_ttl(d.declared, True), _ttl(d.declared, False), "ttl"))
        elif d.kind == "stream":
            out.append(Step(f"ctx.set_stream({_q(d.declared)})", f"ctx.set_stream({_q(d.live)})", "table"))
        elif d.kind == "billing":
            out.append(Step(_billing(declared), _billing(live), "table"))
    return out


def group(all_steps: list[Step]) -> list[list[Step]]:
    """Steps in revision-sized groups: at most one index change and one TTL change in each, in
    their order; table-wide settings (stream, billing) go into the first."""
    groups: list[list[Step]] = [[]]
    last = {"index": -1, "ttl": -1}
    for step in all_steps:
        if step.kind == "table":
            groups[0].append(step)
            continue
        position = last[step.kind] + 1
        while len(groups) <= position:
            groups.append([])
        groups[position].append(step)
        last[step.kind] = position
    return [g for g in groups if g]


def bodies(steps_of_one_revision: list[Step]) -> tuple[list[str], list[str]]:
    """The upgrade and downgrade bodies of one revision (downgrade undoes in reverse order)."""
    up = [s.upgrade for s in steps_of_one_revision]
    down = [s.downgrade for s in reversed(steps_of_one_revision)]
    if sum(s.kind == "ttl" for s in steps_of_one_revision):
        up.insert(0, "# DynamoDB allows one TTL change per table per hour: run within an hour of another")
        up.insert(1, "# TTL change, this fails with an error that says when it becomes possible.")
    return up, down
