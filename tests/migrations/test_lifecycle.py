"""The real revisions on DynamoDB Local: empty -> head -> base -> head, with check, plan and status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.client import new_client
from core.config import Settings
from migrations import runner
from migrations.context import MigrationContext
from migrations.declared import declared_spec
from migrations.ledger import Ledger
from migrations.planned import PlannedCall
from migrations.runner import RevisionFailed
from migrations.schema import Difference
from tests.migrations.helpers import READ_ONLY_PREFIXES, quiet, record_operations

# What revisions 0001 and 0002 create; later revisions (and the entities they serve) may add more.
INDEXES_AT_0002 = {"GSI1", "Email-Index"}


def _chain() -> list[str]:
    """The real revision ids, base first."""
    return [rev.revision for rev in runner.history()]


def _after(revision: str) -> list[str]:
    """The real revisions after ``revision``, oldest first."""
    chain = _chain()
    return chain[chain.index(revision) + 1 :]


def _assert_only_ttl_and_later_indexes_differ(drift: list[Difference]) -> None:
    """At 0002 the table lacks 0003's TTL and every declared index a later revision creates."""
    assert [d.kind for d in drift if d.kind != "index-missing"] == ["ttl"]
    declared = {i.name for i in declared_spec().indexes}
    assert {d.subject for d in drift if d.kind == "index-missing"} == declared - INDEXES_AT_0002


def _operations_by_revision(calls: list[PlannedCall]) -> dict[str, list[str]]:
    """The planned operations (waits included, notes left out) under the revision that makes them."""
    grouped: dict[str, list[str]] = {}
    operations: list[str] = []
    for call in calls:
        if call.operation == "revision":  # "upgrade 0001: <message>"
            operations = grouped.setdefault(call.params["what"].split()[1].rstrip(":"), [])
        elif call.operation != "note":
            operations.append(call.operation)
    return grouped


def _table(client: Any, name: str) -> dict[str, Any] | None:
    try:
        table: dict[str, Any] = client.describe_table(TableName=name)["Table"]
        return table
    except client.exceptions.ResourceNotFoundException:
        return None


def test_upgrade_downgrade_to_base_and_upgrade_again_ends_in_sync_with_the_models(
    local: Settings, client: Any
) -> None:
    head = [rev.revision for rev in runner.history()]
    lines: list[str] = []

    assert runner.upgrade(out=lines.append) == head
    assert runner.check() == []
    assert any("point-in-time recovery is not supported" in line for line in lines)

    assert runner.downgrade("base", out=quiet) == list(reversed(head))
    assert _table(client, local.table_name) is None
    assert Ledger(client, local.ledger_table_name).records() == {}
    assert [d.kind for d in runner.check()] == ["table"]

    assert runner.upgrade(out=quiet) == head
    assert runner.check() == []
    assert runner.status()["current"].startswith(head[-1])


def test_downgrade_one_step_reverts_only_that_revision(local: Settings, client: Any) -> None:
    runner.upgrade(out=quiet)

    assert runner.downgrade("0002", out=quiet) == list(reversed(_after("0002")))

    ttl = client.describe_time_to_live(TableName=local.table_name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"
    indexes = _table(client, local.table_name)["GlobalSecondaryIndexes"]  # type: ignore[index]
    assert {i["IndexName"] for i in indexes} == INDEXES_AT_0002
    status = runner.status()
    assert status["current"].startswith("0002")
    assert status["pending"] == _after("0002")
    _assert_only_ttl_and_later_indexes_differ(runner.check())


def test_the_ledger_logs_each_apply_and_revert_once(local: Settings, client: Any) -> None:
    runner.upgrade("0002", out=quiet)
    runner.upgrade(out=quiet)
    runner.upgrade(out=quiet)  # a no-op
    runner.downgrade("0003", out=quiet)

    events = [
        (e["Revision"], e["Action"], e["Outcome"]) for e in Ledger(client, local.ledger_table_name).events()
    ]
    reverted = list(reversed(_after("0003")))
    assert reverted  # 0004 at least: the downgrade had something to revert
    assert events == [
        *((revision, "upgrade", "applied") for revision in _chain()),
        *((revision, "downgrade", "reverted") for revision in reverted),
    ]


def test_plan_on_an_empty_endpoint_lists_the_calls_in_order_and_makes_none(
    local: Settings, client: Any
) -> None:
    sent = record_operations(client)

    calls = runner.plan(client=client)

    assert sent and all(op.startswith(READ_ONLY_PREFIXES) for op in sent), sent

    by_revision = _operations_by_revision(calls)
    assert list(by_revision) == _chain()  # every revision, in order
    assert {revision: by_revision[revision] for revision in ("0001", "0002", "0003", "0004")} == {
        "0001": ["CreateTable", "wait"],
        "0002": ["wait", "UpdateTable", "wait"],
        "0003": ["UpdateTimeToLive", "UpdateContinuousBackups"],
        "0004": ["Scan", "UpdateItem", "PutItem"],
    }
    create = next(c for c in calls if c.operation == "CreateTable")
    assert create.params["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert (
        "Create Email-Index (Email HASH; ALL)"
        in next(c for c in calls if c.operation == "UpdateTable").describe()
    )
    assert _table(client, local.table_name) is None
    assert _table(client, local.ledger_table_name) is None


def test_plan_skips_what_is_already_there_and_downgrade_plans_the_reverse(local: Settings) -> None:
    runner.upgrade("0002", out=quiet)
    client = new_client(local)
    sent = record_operations(client)

    ahead = [c.operation for c in runner.plan(client=client) if c.operation not in ("revision", "note")]
    behind = [
        c.operation for c in runner.plan("0001", client=client) if c.operation not in ("revision", "note")
    ]

    assert sent and all(op.startswith(READ_ONLY_PREFIXES) for op in sent), sent

    assert ahead[0] == "UpdateTimeToLive"
    assert behind == ["wait", "UpdateTable", "wait"]
    assert "Delete Email-Index" in runner.plan("0001")[2].describe()


def test_status_reports_revisions_table_indexes_and_settings(local: Settings) -> None:
    before = runner.status()
    runner.upgrade(out=quiet)
    after = runner.status()

    assert before["current"] == "base"
    assert before["table_status"] == "absent"
    assert before["pending"] == _chain()
    assert after["pending"] == []
    assert after["indexes"] == {index.name: "ACTIVE" for index in declared_spec().indexes}
    assert {"GSI1", "Email-Index"} <= set(after["indexes"])
    assert (after["ttl"], after["stream"], after["billing"]) == (
        "on ExpiresAt",
        "NEW_AND_OLD_IMAGES",
        "PAY_PER_REQUEST",
    )
    assert after["lock"] == "nobody"


def _revision(directory: Path, number: int, body: str) -> None:
    parent = "None" if number == 1 else f'"{number - 1:04d}"'
    (directory / f"{number:04d}_step.py").write_text(
        f'"""Step {number}."""\n\nrevision = "{number:04d}"\ndown_revision = {parent}\n\n\n'
        f"def upgrade(ctx):\n    {body}\n\n\ndef downgrade(ctx):\n    pass\n"
    )


def test_a_failed_revision_is_recorded_and_nothing_after_it_runs_until_it_succeeds(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table")
    _revision(versions, 2, 'raise RuntimeError("boom")')
    _revision(versions, 3, 'ctx.note("three")')
    lines: list[str] = []

    with pytest.raises(RevisionFailed, match="upgrade of 0002 failed: boom") as failed:
        runner.upgrade(out=lines.append, client=client, versions_dir=versions)

    assert isinstance(failed.value.__cause__, RuntimeError)
    records = Ledger(client, local.ledger_table_name).records()
    assert records["0002"]["Status"] == "failed" and "RuntimeError: boom" in records["0002"]["Error"]
    assert "0003" not in records
    status = runner.status(client=client, versions_dir=versions)
    assert status["current"].startswith("0001") and status["pending"] == ["0002", "0003"]
    assert "applying 0003: Step 3." not in lines

    _revision(versions, 2, 'ctx.note("fixed")')
    lines.clear()
    assert runner.upgrade(out=lines.append, client=client, versions_dir=versions) == ["0002", "0003"]
    assert any("its last run (failed" in line for line in lines)
    outcomes = [(e["Revision"], e["Outcome"]) for e in Ledger(client, local.ledger_table_name).events()]
    assert outcomes == [("0001", "applied"), ("0002", "failed"), ("0002", "applied"), ("0003", "applied")]


def test_point_in_time_recovery_is_enabled_where_the_endpoint_supports_it(moto_table: Settings) -> None:
    client = new_client(moto_table)

    backups = client.describe_continuous_backups(TableName=moto_table.table_name)[
        "ContinuousBackupsDescription"
    ]

    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_billing_switches_to_provisioned_with_capacity_for_every_index_and_back(
    local: Settings, client: Any
) -> None:
    runner.upgrade("0002", out=quiet, client=client)
    lines: list[str] = []
    ctx = MigrationContext(client, local.table_name, out=lines.append)

    ctx.set_billing("PROVISIONED", read_capacity=3, write_capacity=2)

    table = client.describe_table(TableName=local.table_name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    assert {
        i["IndexName"]: i["ProvisionedThroughput"]["ReadCapacityUnits"]
        for i in table["GlobalSecondaryIndexes"]
    } == {"GSI1": 3, "Email-Index": 3}
    ctx.set_billing("PROVISIONED", read_capacity=3, write_capacity=2)
    assert lines == ["  billing already PROVISIONED: nothing to change"]
    ctx.set_billing("PAY_PER_REQUEST")
    _assert_only_ttl_and_later_indexes_differ(runner.check(client=client))
