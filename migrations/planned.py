"""``PlannedCall``: one call made or planned, a wait or a note, and how ``plan`` prints it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlannedCall:
    """A call made (or, in a dry run, that would be made), a wait, a note, or (``plan``) a
    ``destroys`` line under a call that deletes a table or an index holding data."""

    operation: str
    params: dict[str, Any]

    def describe(self) -> str:
        """One line: the operation and its key parameters."""
        if self.operation in ("wait", "note"):
            return f"    {self.operation}: {self.params['what']}"
        if self.operation == "destroys":  # after a call that deletes a table or an index holding data
            return f"    DESTROYS DATA: {self.params['what']}"
        if self.operation == "revision":
            return f"{self.params['what']}"
        shown = ", ".join(f"{k}={_compact(k, v)}" for k, v in self.params.items())
        return f"  {self.operation}({shown})"


def _keys(schema: list[dict[str, str]]) -> str:
    return ", ".join(f"{k['AttributeName']} {k['KeyType']}" for k in schema)


def _index(index: dict[str, Any]) -> str:
    projection = index.get("Projection", {})
    extra = projection.get("NonKeyAttributes")
    return (
        f"{index['IndexName']} ({_keys(index['KeySchema'])}; {projection.get('ProjectionType')}"
        + (f" {', '.join(extra)}" if extra else "")
        + ")"
    )


def _compact(name: str, value: Any) -> str:
    """Render a parameter the way a reader scans it: key schemas as ``PK HASH, SK RANGE``."""
    if name in ("KeySchema",):
        return f"[{_keys(value)}]"
    if name == "AttributeDefinitions":
        return "[" + ", ".join(f"{v['AttributeName']} {v['AttributeType']}" for v in value) + "]"
    if name == "GlobalSecondaryIndexes":
        return "[" + "; ".join(_index(i) for i in value) + "]"
    if name == "GlobalSecondaryIndexUpdates":
        parts = [
            f"Create {_index(u['Create'])}"
            if "Create" in u
            else f"Delete {u['Delete']['IndexName']}"
            if "Delete" in u
            else json.dumps(u, default=str)
            for u in value
        ]
        return "[" + "; ".join(parts) + "]"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)
