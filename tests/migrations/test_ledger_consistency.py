"""The ledger and the chain must agree: gaps and unknown revisions are refused; a downgrade undoes
unfinished runs above its target too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from migrations import runner
from migrations.calls import MigrationError
from migrations.ledger import Ledger
from tests.migrations.helpers import quiet


def test_a_gap_in_the_applied_chain_is_refused_and_nothing_runs(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions()
    ledger = Ledger(client, local.ledger_table_name)
    ledger.ensure()
    ledger.record("0001", "applied", "create the table")
    ledger.record("0003", "applied", "TTL and PITR")  # 0002 never applied

    with pytest.raises(MigrationError, match=r"gap: 0003 applied but 0002 not"):
        runner.upgrade(out=quiet, client=client, versions_dir=versions)
    with pytest.raises(MigrationError, match=r"gap: 0003 applied but 0002 not"):
        runner.plan(client=client, versions_dir=versions)

    assert set(ledger.records()) == {"0001", "0003"}
    assert local.table_name not in client.list_tables()["TableNames"]
    assert "gap" in runner.status(client=client, versions_dir=versions)["ledger"]


def test_a_revision_in_the_ledger_but_not_in_the_versions_directory_is_refused(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table")
    runner.upgrade(out=quiet, client=client, versions_dir=versions)
    Ledger(client, local.ledger_table_name).record("0002", "applied", "from another branch")

    with pytest.raises(MigrationError, match="not in the versions directory: 0002"):
        runner.upgrade(out=quiet, client=client, versions_dir=versions)
    with pytest.raises(MigrationError, match="not in the versions directory: 0002"):
        runner.downgrade("base", out=quiet, client=client, versions_dir=versions)

    assert local.table_name in client.list_tables()["TableNames"]


def test_a_downgrade_runs_the_downgrade_of_an_unfinished_revision_above_its_target(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade(out=quiet, client=client, versions_dir=versions)
    ledger = Ledger(client, local.ledger_table_name)
    ledger.record("0002", "failed", "add Email-Index", error="it failed after creating the index")

    planned = [c.describe() for c in runner.plan("base", client=client, versions_dir=versions)]
    assert any("Delete Email-Index" in line for line in planned)  # plan shows the same steps

    assert runner.downgrade("0001", out=quiet, client=client, versions_dir=versions) == ["0002"]

    table = client.describe_table(TableName=local.table_name)["Table"]
    assert table.get("GlobalSecondaryIndexes", []) == []
    assert set(ledger.records()) == {"0001"}
