"""Adding a GSI to a table that holds data: the runner waits until it is ACTIVE and backfilled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import Settings
from migrations import runner
from tests.migrations.helpers import quiet, seed

ITEMS = 10_000


def _index_count(client: Any, table: str, index: str) -> int:
    pages = client.get_paginator("scan").paginate(TableName=table, IndexName=index, Select="COUNT")
    return sum(page["Count"] for page in pages)


def test_a_gsi_added_to_a_table_of_10000_items_answers_queries_as_soon_as_upgrade_returns(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)
    seed(
        client,
        local.table_name,
        [
            {"PK": {"S": f"USER#{n}"}, "SK": {"S": "PROFILE"}, "Email": {"S": f"user{n}@example.com"}}
            for n in range(ITEMS)
        ],
        threads=8,
    )
    lines: list[str] = []

    assert runner.upgrade(out=lines.append, client=client, versions_dir=versions) == ["0002"]

    found = client.query(
        TableName=local.table_name,
        IndexName="Email-Index",
        KeyConditionExpression="Email = :e",
        ExpressionAttributeValues={":e": {"S": f"user{ITEMS - 1}@example.com"}},
    )
    assert found["Count"] == 1
    assert _index_count(client, local.table_name, "Email-Index") == ITEMS
    assert any("waiting" in line and "Email-Index CREATING" in line for line in lines)


def test_dropping_an_index_waits_until_it_is_gone_and_dropping_it_again_is_a_no_op(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade(out=quiet, client=client, versions_dir=versions)

    runner.downgrade("0001", out=quiet, client=client, versions_dir=versions)

    table = client.describe_table(TableName=local.table_name)["Table"]
    assert "GlobalSecondaryIndexes" not in table or table["GlobalSecondaryIndexes"] == []
    lines: list[str] = []
    from migrations.context import MigrationContext

    MigrationContext(client, local.table_name, out=lines.append).delete_global_index("Email-Index")
    assert lines == ["  index Email-Index does not exist: nothing to drop"]
