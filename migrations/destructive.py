"""Steps that destroy data: deleting the table, or one of its GSIs, while it holds items.

Such a step runs only when asked: ``--destroy-data`` on the command line, ``destroy_data=True``
(or ``Options.destroy_data``) for the runner. The runner checks up front, before its first write
(not even the lock or the ledger is touched): it plans the whole run as a dry run (what ``plan``
prints), finds every ``DeleteTable`` and every ``UpdateTable`` that deletes an index, and asks the
live table what each would delete. ``DescribeTable``'s ``ItemCount`` is shown, but DynamoDB (and
DynamoDB Local) refresh it only about every six hours, so a ``Scan`` with ``Select=COUNT`` and
``Limit=1`` (one read unit) decides whether the table or index holds any item at all. One step
that would delete data unasked refuses the whole command, naming every such step; nothing is changed.

A table or index that holds no item is deleted without the flag, and so is one the run itself
creates (it is absent when the run is planned; an index only holds copies of the table's items).
``MigrationContext.delete_table`` and ``delete_global_index`` check again right before their call,
for items written since the runner's check (and for callers that skip the runner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from migrations.calls import Caller, MigrationError, error_code
from migrations.planned import PlannedCall

# Scan pages (Limit=1) read before giving up on finding an item; a page can come back empty with a
# LastEvaluatedKey (e.g. over deleted items), and one that never finds an item counts as holding data.
SCAN_PAGES = 10
DESTROY_FLAG = "--destroy-data (destroy_data=True)"


@dataclass(frozen=True)
class Deletion:
    """One step that deletes the table (``index`` is None) or one of its GSIs, and what it holds."""

    table: str
    index: str | None
    item_count: int | None  # DescribeTable's ItemCount (about six hours old); None: absent now
    holds_data: bool  # a Scan found at least one item
    step: str = ""  # the revision step that makes the call, e.g. "downgrade 0001"
    indexes: tuple[str, ...] = ()  # a deleted table's GSIs, deleted with it

    def subject(self) -> str:
        """What is deleted: ``index Email-Index of table T`` or ``table T (with its indexes ...)``."""
        if self.index is not None:
            return f"index {self.index} of table {self.table}"
        with_indexes = f" (with its indexes {', '.join(self.indexes)})" if self.indexes else ""
        return f"table {self.table}{with_indexes}"

    def describe(self) -> str:
        """One line: what is deleted, by which step, and whether it holds data."""
        by = f" by {self.step}" if self.step else ""
        if self.item_count is None:
            return f"{self.subject()}{by}: absent now (this run creates it), so it holds no data yet"
        count = f"ItemCount {self.item_count} per DescribeTable, refreshed about every 6 hours"
        if self.holds_data:
            return f"{self.subject()}{by}: holds data (a Scan found items; {count})"
        return f"{self.subject()}{by}: holds no items (a Scan found none; {count})"


class DataWouldBeDestroyed(MigrationError):
    """A step would delete a table or an index that holds data, and ``destroy_data`` was not given.
    Raised before any change (by the runner's check up front) unless ``midway`` (a delete that
    found items written since that check)."""

    def __init__(self, command: str, deletions: Sequence[Deletion], *, midway: bool = False) -> None:
        listed = "".join(f"\n  {d.describe()}" for d in deletions)
        changed = (
            "items written since the runner's check; the steps before this one ran"
            if midway
            else "nothing was changed"
        )
        super().__init__(
            f"{command} refused ({changed}): it would delete data, which takes {DESTROY_FLAG}. "
            f"It would delete:{listed}"
        )
        self.deletions = list(deletions)


def holds_items(client: Any, table_name: str, index: str | None = None) -> bool:
    """Whether the table (or its GSI ``index``) holds at least one item: a ``Scan`` with
    ``Select=COUNT, Limit=1`` per page (ItemCount is hours old). An index DynamoDB cannot scan
    yet (CREATING) holds at most the table's items, so the table is asked instead."""
    params: dict[str, Any] = {"TableName": table_name, "Select": "COUNT", "Limit": 1}
    if index is not None:
        params["IndexName"] = index
    else:
        params["ConsistentRead"] = True
    for _ in range(SCAN_PAGES):
        try:
            page = client.scan(**params)
        except ClientError as exc:
            if index is None or error_code(exc) not in ("ValidationException", "ResourceNotFoundException"):
                raise
            return holds_items(client, table_name)
        if int(page.get("Count", 0)) > 0:
            return True
        if "LastEvaluatedKey" not in page:
            return False
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return True  # pages without an item, and more to read: it cannot be shown empty cheaply


def inspect(client: Any, table_name: str, index: str | None = None, *, step: str = "") -> Deletion:
    """What deleting the table (or its GSI ``index``) would delete, as the live table is now."""
    table = Caller(client, table_name).describe()
    indexes = {i["IndexName"]: i for i in (table or {}).get("GlobalSecondaryIndexes", [])}
    if table is None or (index is not None and index not in indexes):
        return Deletion(table_name, index, None, False, step=step)
    described = table if index is None else indexes[index]
    return Deletion(
        table_name,
        index,
        int(described.get("ItemCount", 0)),
        holds_items(client, table_name, index),
        step=step,
        indexes=tuple(indexes) if index is None else (),
    )


def deleted_by(call: PlannedCall) -> list[tuple[str, str | None]]:
    """``(table, index)`` for each table (index None) or GSI that ``call`` deletes."""
    if call.operation == "DeleteTable":
        return [(str(call.params["TableName"]), None)]
    if call.operation == "UpdateTable":
        return [
            (str(call.params["TableName"]), str(update["Delete"]["IndexName"]))
            for update in call.params.get("GlobalSecondaryIndexUpdates", [])
            if "Delete" in update
        ]
    return []


def mark(client: Any, calls: list[PlannedCall]) -> tuple[list[PlannedCall], list[Deletion]]:
    """Find the deletions among planned ``calls`` (grouped under ``revision`` headers), inspect each,
    and return the calls with a line after each deletion (``DESTROYS DATA: ...`` when it holds data,
    a note otherwise) and the deletions, in order."""
    marked: list[PlannedCall] = []
    deletions: list[Deletion] = []
    step = ""
    for call in calls:
        marked.append(call)
        if call.operation == "revision":
            step = str(call.params["what"]).split(":")[0]
        for table, index in deleted_by(call):
            deletion = inspect(client, table, index, step=step)
            deletions.append(deletion)
            if deletion.holds_data:
                what = f"{deletion.describe()}; needs {DESTROY_FLAG}"
                marked.append(PlannedCall("destroys", {"what": what}))
            else:
                marked.append(PlannedCall("note", {"what": f"deletes {deletion.describe()}: no flag needed"}))
    return marked, deletions
