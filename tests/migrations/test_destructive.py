"""Nothing destroys data unasked: a step that deletes a table or an index holding items runs only
with ``--destroy-data`` (refused up front otherwise, changing nothing), and point-in-time recovery
is never turned off before the table is deleted."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from migrations import __main__ as cli
from migrations import runner
from migrations.context import Key, MigrationContext
from migrations.declared import declared_spec
from migrations.destructive import DataWouldBeDestroyed
from migrations.ledger import Ledger
from migrations.revisions import load_revisions
from tests.migrations.helpers import READ_ONLY_PREFIXES, FakeClient, quiet, record_operations, scan_all

THING = {"PK": {"S": "THING#1"}, "SK": {"S": "A"}}
KEYS = [Key("PK", "S", "HASH")]
USER = {"PK": {"S": "USER#1"}, "SK": {"S": "PROFILE"}, "Email": {"S": "ada@example.com"}}


def _snapshot(client: Any, local: Settings) -> tuple[Any, ...]:
    """What a refused command must leave as it was: the table's keys and indexes, TTL, its items,
    the ledger's records and events, and the current revision."""
    table = client.describe_table(TableName=local.table_name)["Table"]
    ttl = client.describe_time_to_live(TableName=local.table_name)["TimeToLiveDescription"]
    ledger = Ledger(client, local.ledger_table_name)
    return (
        table["KeySchema"],
        sorted((i["IndexName"], i["IndexStatus"]) for i in table.get("GlobalSecondaryIndexes", [])),
        ttl.get("TimeToLiveStatus"),
        scan_all(client, local.table_name),
        ledger.records(),
        ledger.events(),
        runner.status(client=client)["current"],
    )


def _newest_first(down_to: str = "base") -> list[str]:
    """The ids of migrations/versions that a downgrade to ``down_to`` reverts, newest first."""
    ids = [r.revision for r in reversed(load_revisions())]
    return ids if down_to == "base" else ids[: ids.index(down_to)]


def _exists(client: Any, name: str) -> bool:
    return name in client.list_tables()["TableNames"]


def test_downgrade_to_base_of_a_table_holding_an_item_is_refused_without_the_flag_and_changes_nothing(
    local: Settings, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.upgrade(out=quiet, client=client)
    client.put_item(TableName=local.table_name, Item=THING)
    before = _snapshot(client, local)
    capsys.readouterr()

    assert cli.main(["downgrade", "base"]) == cli.EXIT_DESTROYS_DATA == 2

    err = capsys.readouterr().err
    listed = re.search(rf"table {re.escape(local.table_name)} \(with its indexes ([^)]*)\)", err)
    assert listed is not None
    assert set(listed.group(1).split(", ")) == {i.name for i in declared_spec().indexes}
    assert "holds data" in err and "--destroy-data" in err and "nothing was changed" in err
    assert "ItemCount" in err
    assert _snapshot(client, local) == before  # table, indexes, TTL, the item, the ledger
    assert Ledger(client, local.ledger_table_name).lock.holder() is None

    sent = record_operations(client)  # the runner makes no write at all before refusing
    with pytest.raises(DataWouldBeDestroyed) as refused:
        runner.downgrade("base", out=quiet, client=client)
    assert sent and all(op.startswith(READ_ONLY_PREFIXES) for op in sent), sent
    assert [(d.index, d.holds_data) for d in refused.value.deletions] == [(None, True)]

    assert cli.main(["downgrade", "base", "--destroy-data"]) == 0
    assert not _exists(client, local.table_name)
    assert Ledger(client, local.ledger_table_name).records() == {}


def test_dropping_an_index_that_holds_an_item_is_refused_naming_the_index_and_runs_with_the_flag(
    local: Settings, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.upgrade(out=quiet, client=client)
    client.put_item(TableName=local.table_name, Item=USER)  # in Email-Index, not in GSI1
    before = _snapshot(client, local)
    capsys.readouterr()

    assert cli.main(["downgrade", "0001"]) == 2

    err = capsys.readouterr().err
    assert f"index Email-Index of table {local.table_name} by downgrade 0002: holds data" in err
    assert "GSI1" not in err and "DeleteTable" not in err
    assert _snapshot(client, local) == before  # the later revisions (0003's TTL) did not run either

    planned = [call.describe() for call in runner.plan("0001", client=client)]
    destroys = [line for line in planned if "DESTROYS DATA" in line]
    assert len(destroys) == 1 and "index Email-Index" in destroys[0]
    assert _snapshot(client, local) == before

    assert runner.downgrade("0001", out=quiet, client=client, destroy_data=True) == _newest_first("0001")
    indexes = client.describe_table(TableName=local.table_name)["Table"].get("GlobalSecondaryIndexes", [])
    assert [i["IndexName"] for i in indexes] == ["GSI1"]
    assert scan_all(client, local.table_name) == [USER]


def test_an_empty_table_and_its_indexes_are_dropped_without_the_flag(
    local: Settings, client: Any, make_versions: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade(out=quiet, client=client, versions_dir=versions)
    capsys.readouterr()

    assert cli.main(["--versions-dir", str(versions), "plan", "base"]) == 0
    out = capsys.readouterr().out
    assert "DESTROYS DATA" not in out and "holds no items" in out

    assert cli.main(["--versions-dir", str(versions), "downgrade", "base"]) == 0
    assert not _exists(client, local.table_name)


def test_a_delete_checks_again_for_items_written_since_the_runners_check(
    local: Settings, client: Any
) -> None:
    ctx = MigrationContext(client, local.table_name, out=quiet)
    ctx.create_table(KEYS)  # created by this context: dropping it destroys nothing that was there
    ctx.delete_table()
    assert not _exists(client, local.table_name)

    MigrationContext(client, local.table_name, out=quiet).create_table(KEYS)
    client.put_item(TableName=local.table_name, Item={"PK": {"S": "x"}})
    ctx = MigrationContext(client, local.table_name, out=quiet)
    with pytest.raises(DataWouldBeDestroyed, match=f"table {local.table_name}: holds data"):
        ctx.delete_table()
    assert _exists(client, local.table_name)

    ctx.destroy_data = True
    ctx.delete_table()
    assert not _exists(client, local.table_name)


def test_point_in_time_recovery_stays_on_until_the_table_is_deleted(local: Settings, client: Any) -> None:
    runner.upgrade(out=quiet, client=client)
    sent = record_operations(client)  # real calls, and below the ones the fake answers itself

    def describe_continuous_backups(**_: Any) -> Any:  # PITR on, as on AWS (Local lacks it)
        sent.append("DescribeContinuousBackups")
        backups = {"ContinuousBackupsStatus": "ENABLED"}
        pitr = {"PointInTimeRecoveryStatus": "ENABLED"}
        return {"ContinuousBackupsDescription": {**backups, "PointInTimeRecoveryDescription": pitr}}

    def update_continuous_backups(**params: Any) -> Any:
        on = params["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        sent.append(f"UpdateContinuousBackups(PointInTimeRecoveryEnabled={on})")
        return {}

    fake = FakeClient(
        client,
        describe_continuous_backups=describe_continuous_backups,
        update_continuous_backups=update_continuous_backups,
    )
    disable = "UpdateContinuousBackups(PointInTimeRecoveryEnabled=False)"

    planned = [call.describe() for call in runner.plan("base", client=fake)]
    assert not any("UpdateContinuousBackups" in line for line in planned), planned
    assert any("point-in-time recovery stays enabled" in line for line in planned)

    lines: list[str] = []
    assert runner.downgrade("base", out=lines.append, client=fake) == _newest_first()

    assert "DeleteTable" in sent
    assert disable not in sent[: sent.index("DeleteTable")]
    assert disable not in sent
    assert any("point-in-time recovery stays enabled" in line for line in lines)


def test_a_downgrade_that_keeps_the_table_still_turns_point_in_time_recovery_off(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "0003_ttl_and_pitr")
    pitr_revision = versions / "0003_ttl_and_pitr.py"
    pitr_revision.write_text(pitr_revision.read_text().replace('"0002"', '"0001"'))  # right after 0001
    runner.upgrade(out=quiet, client=client, versions_dir=versions)
    pitr: list[bool] = []

    def describe_continuous_backups(**_: Any) -> Any:
        pitr_on = {"PointInTimeRecoveryStatus": "ENABLED"}
        return {"ContinuousBackupsDescription": {"PointInTimeRecoveryDescription": pitr_on}}

    fake = FakeClient(
        client,
        describe_continuous_backups=describe_continuous_backups,
        update_continuous_backups=lambda **p: pitr.append(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        ),
    )

    assert runner.downgrade("0001", out=quiet, client=fake, versions_dir=versions) == ["0003"]
    assert pitr == [False]
