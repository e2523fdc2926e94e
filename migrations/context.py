"""Operations for revision files, obeying DynamoDB's rules so revisions do not have to.

A revision's ``upgrade(ctx)`` and ``downgrade(ctx)`` call these. Each looks at the table first and
does nothing when it is already as asked (so a revision interrupted half-way can run again), makes
its calls in the order DynamoDB accepts them (one index change per ``UpdateTable``) and waits
until the table and every index are ACTIVE and no index is backfilling. With ``dry_run`` the calls
are recorded, not made (``plan``, and the runner's check before every ``upgrade``/``downgrade``
of what the run would delete): a revision acts on DynamoDB only through these operations, or
checks ``ctx.dry_run`` first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrations.backfill import Backfill, BackfillStats
from migrations.calls import Key, MigrationError, Printer, attribute_definitions, key_schema
from migrations.destructive import DataWouldBeDestroyed, holds_items, inspect
from migrations.items import AttributeValue, Delete, Item, ItemFailed, ItemUpdate, Put, Transform
from migrations.lock import Lease
from migrations.planned import PlannedCall
from migrations.table_settings import TableSettings, TTLCooldown, billing_mode

__all__ = [
    "AttributeValue",
    "BackfillStats",
    "DataWouldBeDestroyed",
    "Delete",
    "Item",
    "ItemFailed",
    "ItemUpdate",
    "Key",
    "MigrationContext",
    "MigrationError",
    "PlannedCall",
    "Printer",
    "Put",
    "TTLCooldown",
]


@dataclass
class MigrationContext(TableSettings):
    """What a revision's ``upgrade``/``downgrade`` receives (the settings operations, ``set_ttl``,
    ``set_stream``, ``enable_point_in_time_recovery`` and ``set_billing``, come from
    ``TableSettings``)."""

    lease: Lease | None = None
    progress: bool = False
    # Delete a table or index even while it holds items (``--destroy-data``); see ``migrations.destructive``.
    destroy_data: bool = False
    # What this context created ("" for the table, else index names): deleting them destroys nothing
    # that was there before the run.
    created: set[str] = field(default_factory=set)

    def keep_going(self) -> None:
        """Raise ``LockLost`` if this runner's lease ran out or was taken over."""
        if self.lease is not None:
            self.lease.check()

    # -- the table ------------------------------------------------------------------------------

    def create_table(
        self,
        keys: Sequence[Key],
        *,
        global_indexes: Sequence[tuple[str, Sequence[Key]]] = (),
        billing_mode: str = "PAY_PER_REQUEST",
        stream_view_type: str | None = None,
    ) -> None:
        """Create the table with its keys, GSIs (projection ALL), billing and stream."""
        existing = self.table()
        if existing is not None:
            if existing.get("KeySchema") != key_schema(keys):
                raise MigrationError(f"table {self.table_name} exists already with other keys")
            self.note(f"table {self.table_name} exists already with these keys: using it")
            self.wait_until_active()
            return
        all_keys = list(keys) + [k for _, idx in global_indexes for k in idx]
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeySchema": key_schema(keys),
            "AttributeDefinitions": attribute_definitions(all_keys),
            "BillingMode": billing_mode,
        }
        if global_indexes:
            params["GlobalSecondaryIndexes"] = [
                {"IndexName": name, "KeySchema": key_schema(idx), "Projection": {"ProjectionType": "ALL"}}
                for name, idx in global_indexes
            ]
        if stream_view_type:
            params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view_type}
        self.call("CreateTable", **params)
        self.created.add("")
        self.wait_until_active()

    def delete_table(self) -> None:
        """Delete the table and wait until it is gone. While it holds items, only with
        ``destroy_data`` (the runner checks every delete of a run before its first change; this
        checks again, for items written since)."""
        if self.table() is None:
            self.note(f"table {self.table_name} does not exist: nothing to delete")
            return
        self._refuse_destroying_data(None)
        self.call("DeleteTable", TableName=self.table_name)
        self.deletes_table_later = False
        self.wait_until_deleted()

    # -- indexes --------------------------------------------------------------------------------

    def create_global_index(
        self,
        name: str,
        keys: Sequence[Key],
        *,
        projection: str = "ALL",
        non_key_attributes: Sequence[str] = (),
    ) -> None:
        """Add one GSI to the live table; wait until it is ACTIVE and backfilled."""
        table = self._require_table()
        existing = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
        index: dict[str, Any] = {
            "IndexName": name,
            "KeySchema": key_schema(keys),
            "Projection": {"ProjectionType": projection},
        }
        if non_key_attributes:
            index["Projection"]["NonKeyAttributes"] = list(non_key_attributes)
        if name in existing:
            if existing[name].get("IndexStatus") == "DELETING":
                self.note(f"index {name} is being deleted: waiting until it is gone, then creating it")
                self.wait_until_active(without_index=name)
                table = self._require_table()
            else:
                _same_index(existing[name], index)
                self.note(f"index {name} exists already: waiting until it is ACTIVE")
                self.wait_until_active(index=name)
                return
        if billing_mode(table) == "PROVISIONED":  # a provisioned table's index needs its own capacity
            throughput = table.get("ProvisionedThroughput", {})
            index["ProvisionedThroughput"] = {
                "ReadCapacityUnits": throughput.get("ReadCapacityUnits", 5),
                "WriteCapacityUnits": throughput.get("WriteCapacityUnits", 5),
            }
        self.wait_until_active()
        self.call(
            "UpdateTable",
            TableName=self.table_name,
            AttributeDefinitions=attribute_definitions(keys),
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        self.created.add(name)
        self.wait_until_active(index=name)

    def delete_global_index(self, name: str) -> None:
        """Drop one GSI; wait until it is gone. While it holds items, only with ``destroy_data``
        (as for ``delete_table``)."""
        table = self._require_table()
        existing = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
        if name not in existing:
            self.note(f"index {name} does not exist: nothing to drop")
            return
        if existing[name].get("IndexStatus") == "DELETING":
            self.note(f"index {name} is being deleted already: waiting until it is gone")
            self.wait_until_active(without_index=name)
            return
        self.wait_until_active()
        self._refuse_destroying_data(name)
        self.call(
            "UpdateTable",
            TableName=self.table_name,
            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": name}}],
        )
        self.wait_until_active(without_index=name)

    def _refuse_destroying_data(self, index: str | None) -> None:
        """Raise ``DataWouldBeDestroyed`` if deleting the table (``index`` None) or ``index`` would
        delete items and ``destroy_data`` is not set (one Scan, Select=COUNT, Limit=1)."""
        if self.dry_run or self.destroy_data or (index or "") in self.created:
            return
        if holds_items(self.client, self.table_name, index):
            step = f"revision {self.revision}" if self.revision else ""
            raise DataWouldBeDestroyed(
                f"deleting {'table ' + self.table_name if index is None else 'index ' + index}",
                [inspect(self.client, self.table_name, index, step=step)],
                midway=True,
            )

    # -- TTL, stream, PITR, billing -------------------------------------------------------------
    def get_item(self, key: Mapping[str, AttributeValue]) -> Item | None:
        """One item by its key (wire format), read consistently; ``None`` if absent."""
        item: Item | None = self.client.get_item(
            TableName=self.table_name, Key=dict(key), ConsistentRead=True
        ).get("Item")
        return item

    def backfill(
        self,
        name: str,
        transform: Transform,
        *,
        segments: int = 4,
        page_size: int = 100,
        where: Mapping[str, AttributeValue] | None = None,
        mark: bool = True,
        max_failures: int = 100,
    ) -> BackfillStats | None:
        """Run ``transform`` over every item (those matching ``where``); see ``migrations.backfill``."""
        if self.dry_run:
            self.calls.append(
                PlannedCall(
                    "Scan",
                    {
                        "TableName": self.table_name,
                        "TotalSegments": segments,
                        "Segment": f"0..{segments - 1} in parallel",
                        "Limit": page_size,
                        "ConsistentRead": True,
                        "where": dict(where or {}),
                    },
                )
            )
            self.calls.append(
                PlannedCall(
                    "UpdateItem",
                    {
                        "TableName": self.table_name,
                        "per": "item the transform changes (TransactWriteItems when it also puts items)",
                        "condition": "MigrationRun <> run id" if mark else "the values it expects",
                    },
                )
            )
            self.calls.append(
                PlannedCall(
                    "PutItem",
                    {
                        "TableName": f"{self.table_name}-migrations",
                        "per": "page",
                        "what": f"checkpoint of backfill {name}",
                    },
                )
            )
            return None
        if self.ledger is None:
            raise MigrationError("a backfill needs the ledger for its checkpoints")
        key_names = [k["AttributeName"] for k in self._require_table()["KeySchema"]]
        job = Backfill(
            client=self.client,
            table_name=self.table_name,
            key_names=key_names,
            ledger=self.ledger,
            revision=self.revision,
            name=name,
            transform=transform,
            segments=segments,
            page_size=page_size,
            where=dict(where or {}),
            mark=mark,
            max_failures=max_failures,
            out=self.out,
            progress=self.progress,
            lease=self.lease,
        )
        return job.run()


def _same_index(live: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Raise unless the live index has the keys and projection asked for."""
    name = wanted["IndexName"]
    if live.get("KeySchema") != wanted["KeySchema"]:
        raise MigrationError(f"index {name} exists already with other keys: drop it first")

    def shape(projection: dict[str, Any]) -> tuple[str, list[str]]:
        return projection.get("ProjectionType", "ALL"), sorted(projection.get("NonKeyAttributes", []))

    if shape(live.get("Projection", {})) != shape(wanted["Projection"]):
        raise MigrationError(
            f"index {name} exists already with another projection ({shape(live.get('Projection', {}))}, "
            f"not {shape(wanted['Projection'])}): drop it first"
        )
