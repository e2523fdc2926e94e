"""A backfill with ``mark=True`` must not overwrite a live write that landed between its scan and
its write with a result computed from the stale item."""

from __future__ import annotations

from typing import Any

from core.config import Settings
from migrations import runner
from migrations.context import Item, ItemUpdate, MigrationContext
from migrations.ledger import Ledger
from tests.migrations.helpers import quiet, scan_all, seed


def _ctx(local: Settings, client: Any) -> MigrationContext:
    runner.upgrade("0001", out=quiet, client=client)  # the real table (PK/SK)
    ledger = Ledger(client, local.ledger_table_name)
    return MigrationContext(client, local.table_name, out=quiet, ledger=ledger, revision="test")


def test_a_live_change_to_an_attribute_the_transform_read_makes_it_transform_the_fresh_item(
    local: Settings, client: Any
) -> None:
    ctx = _ctx(local, client)
    seed(client, local.table_name, [{"PK": {"S": "THING#1"}, "SK": {"S": "THING"}, "Status": {"S": "new"}}])
    seen: list[str] = []

    def label(item: Item) -> ItemUpdate:
        status = item["Status"]["S"]
        seen.append(status)
        if len(seen) == 1:  # a live writer changes Status after the scan read the item
            client.update_item(
                TableName=local.table_name,
                Key={"PK": {"S": "THING#1"}, "SK": {"S": "THING"}},
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "Status"},
                ExpressionAttributeValues={":s": {"S": "shipped"}},
            )
        return ItemUpdate(set={"Label": {"S": f"status {status}"}})

    stats = ctx.backfill("label", label, segments=1)

    assert seen == ["new", "shipped"]
    [item] = scan_all(client, local.table_name)
    assert item["Status"] == {"S": "shipped"} and item["Label"] == {"S": "status shipped"}
    assert stats is not None and stats.updated == 1 and stats.failures == []


def test_an_item_with_a_version_is_guarded_by_it_even_for_attributes_the_transform_did_not_read(
    local: Settings, client: Any
) -> None:
    ctx = _ctx(local, client)
    key = {"PK": {"S": "THING#2"}, "SK": {"S": "THING"}}
    seed(client, local.table_name, [{**key, "Name": {"S": "a"}, "Other": {"S": "x"}, "Version": {"N": "1"}}])
    calls: list[str] = []

    def copy_name(item: Item) -> ItemUpdate:
        calls.append(item["Name"]["S"])
        if len(calls) == 1:  # a live writer (optimistic lock) changes another attribute
            client.update_item(
                TableName=local.table_name,
                Key=key,
                UpdateExpression="SET #o = :o, Version = :v2",
                ExpressionAttributeNames={"#o": "Other"},
                ExpressionAttributeValues={":o": {"S": "y"}, ":v2": {"N": "2"}},
            )
        return ItemUpdate(set={"Copy": item["Name"]})

    ctx.backfill("copy-name", copy_name, segments=1)

    assert len(calls) == 2  # transformed again from the fresh item
    [item] = scan_all(client, local.table_name)
    assert item["Other"] == {"S": "y"} and item["Version"] == {"N": "2"} and item["Copy"] == {"S": "a"}


def test_a_transform_that_reads_nothing_it_depends_on_writes_without_extra_conditions(
    local: Settings, client: Any
) -> None:
    ctx = _ctx(local, client)
    key = {"PK": {"S": "THING#3"}, "SK": {"S": "THING"}}
    seed(client, local.table_name, [{**key, "Status": {"S": "new"}}])
    calls = 0

    def stamp(item: Item) -> ItemUpdate:
        nonlocal calls
        calls += 1
        client.update_item(  # a live change to an attribute the transform does not look at
            TableName=local.table_name,
            Key=key,
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "Status"},
            ExpressionAttributeValues={":s": {"S": f"changed {calls}"}},
        )
        return ItemUpdate(set={"Stamped": {"BOOL": True}})

    ctx.backfill("stamp", stamp, segments=1)

    assert calls == 1
    [item] = scan_all(client, local.table_name)
    assert item["Stamped"] == {"BOOL": True} and item["Status"] == {"S": "changed 1"}
