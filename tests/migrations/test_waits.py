"""Waits wait for the state they expect: DescribeTable is eventually consistent, so right after a
change it may not show it yet (a fake client wrapping DynamoDB Local plays AWS's lag)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from migrations import runner
from migrations.calls import MigrationError
from migrations.context import Key, MigrationContext
from tests.migrations.helpers import FakeClient, client_error, quiet


def test_a_new_table_not_found_for_a_moment_after_create_table_is_waited_for(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table")
    created: list[str] = []
    lagging = iter(range(3))

    def create_table(**params: Any) -> Any:
        created.append(params["TableName"])
        return client.create_table(**params)

    def describe_table(**params: Any) -> Any:
        if params["TableName"] == local.table_name and created and next(lagging, None) is not None:
            raise client_error("ResourceNotFoundException", "Requested resource not found", "DescribeTable")
        return client.describe_table(**params)

    lines: list[str] = []
    fake = FakeClient(client, create_table=create_table, describe_table=describe_table)

    assert runner.upgrade(out=lines.append, client=fake, versions_dir=versions) == ["0001"]
    assert any(f"table {local.table_name} not found yet" in line for line in lines)
    assert next(lagging, None) is None  # every lagging answer was seen and waited through


def test_a_table_still_not_found_after_the_grace_period_is_an_error(local: Settings, client: Any) -> None:
    ctx = MigrationContext(client, local.table_name, out=quiet, not_found_grace=0.3, wait_timeout=30)

    with pytest.raises(MigrationError, match="disappeared while waiting"):
        ctx.wait_until_active()


def test_a_new_index_not_listed_yet_after_update_table_is_waited_for(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)
    updated: list[dict[str, Any]] = []
    lagging = iter(range(3))

    def update_table(**params: Any) -> Any:
        updated.append(params)
        return client.update_table(**params)

    def describe_table(**params: Any) -> Any:
        answer = client.describe_table(**params)
        if params["TableName"] == local.table_name and updated and next(lagging, None) is not None:
            answer["Table"].pop("GlobalSecondaryIndexes", None)  # AWS has not listed it yet
        return answer

    lines: list[str] = []
    fake = FakeClient(client, update_table=update_table, describe_table=describe_table)

    assert runner.upgrade(out=lines.append, client=fake, versions_dir=versions) == ["0002"]
    assert any("Email-Index not listed yet" in line for line in lines)
    assert next(lagging, None) is None
    indexes = client.describe_table(TableName=local.table_name)["Table"]["GlobalSecondaryIndexes"]
    assert [(i["IndexName"], i["IndexStatus"]) for i in indexes] == [("Email-Index", "ACTIVE")]


def test_creating_an_index_that_is_still_being_deleted_waits_until_it_is_gone_then_creates_it(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    runner.upgrade("0001", out=quiet, client=client, versions_dir=make_versions("test:0001_plain_table"))
    deleting = iter(range(3))
    creates: list[Any] = []

    def describe_table(**params: Any) -> Any:
        answer = client.describe_table(**params)
        if next(deleting, None) is not None:  # a previous drop of Email-Index is still going on
            answer["Table"]["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": "Email-Index",
                    "KeySchema": [{"AttributeName": "Email", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                    "IndexStatus": "DELETING",
                }
            ]
        return answer

    def update_table(**params: Any) -> Any:
        creates.extend(u["Create"]["IndexName"] for u in params["GlobalSecondaryIndexUpdates"])
        return client.update_table(**params)

    lines: list[str] = []
    fake = FakeClient(client, describe_table=describe_table, update_table=update_table)
    MigrationContext(fake, local.table_name, out=lines.append).create_global_index(
        "Email-Index", [Key("Email", "S", "HASH")]
    )

    assert "  index Email-Index is being deleted: waiting until it is gone, then creating it" in lines
    assert creates == ["Email-Index"]
    indexes = client.describe_table(TableName=local.table_name)["Table"]["GlobalSecondaryIndexes"]
    assert [(i["IndexName"], i["IndexStatus"]) for i in indexes] == [("Email-Index", "ACTIVE")]


def test_an_existing_index_with_another_projection_is_an_error_not_a_no_op(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade(out=quiet, client=client, versions_dir=versions)
    ctx = MigrationContext(client, local.table_name, out=quiet)

    with pytest.raises(MigrationError, match="Email-Index exists already with another projection"):
        ctx.create_global_index("Email-Index", [Key("Email", "S", "HASH")], projection="KEYS_ONLY")
    with pytest.raises(MigrationError, match="Email-Index exists already with another projection"):
        ctx.create_global_index(
            "Email-Index", [Key("Email", "S", "HASH")], projection="INCLUDE", non_key_attributes=["Name"]
        )
