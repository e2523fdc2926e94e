"""DynamoDB's rules that DynamoDB Local does not enforce, played by a fake client wrapping the real
one: TTL's one change an hour, LimitExceededException, busy tables, an index stuck CREATING."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.config import Settings
from migrations import runner
from migrations.calls import MigrationError, WaitTimeout
from migrations.context import MigrationContext, TTLCooldown
from migrations.ledger import Ledger
from migrations.runner import Options, RevisionFailed
from tests.migrations.helpers import FakeClient, client_error, quiet

COOLDOWN = "Time to live has been modified multiple times within a fixed interval"


def test_a_second_ttl_change_within_the_hour_names_when_it_becomes_possible_and_changes_nothing_else(
    local: Settings, client: Any
) -> None:
    changes: list[dict[str, Any]] = []

    def update_time_to_live(**params: Any) -> Any:
        changes.append(params)
        if len(changes) > 1:  # what AWS answers to a second change inside the hour
            raise client_error("ValidationException", COOLDOWN, "UpdateTimeToLive")
        return client.update_time_to_live(**params)

    pitr: list[dict[str, Any]] = []

    def update_continuous_backups(**params: Any) -> Any:
        pitr.append(params)
        return client.update_continuous_backups(**params)

    fake = FakeClient(
        client, update_time_to_live=update_time_to_live, update_continuous_backups=update_continuous_backups
    )
    runner.upgrade("0003", out=quiet, client=fake)
    table = client.describe_table(TableName=local.table_name)["Table"]
    first = Ledger(client, local.ledger_table_name).last_ttl_change(
        local.table_name, str(table["CreationDateTime"])
    )
    assert first is not None and first.revision == "0003" and first.enabled

    with pytest.raises(RevisionFailed) as failed:
        runner.downgrade("0002", out=quiet, client=fake)

    cause = failed.value.__cause__
    assert isinstance(cause, TTLCooldown) and isinstance(cause.__cause__, ClientError)
    assert [p for p in pitr if not p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]] == []
    possible = first.at + timedelta(hours=1)
    assert f"becomes possible at {possible:%Y-%m-%d %H:%M:%S} UTC" in str(cause)
    assert f"last changed at {first.at:%Y-%m-%d %H:%M:%S} UTC (by revision 0003)" in str(cause)
    assert runner.status(client=client)["current"].startswith("0003")  # the downgrade did not go through


def test_where_the_endpoint_enforces_the_hourly_rule_a_change_the_ledger_knows_is_refused_before_any_call(
    local: Settings, client: Any
) -> None:
    runner.upgrade("0003", out=quiet, client=client)
    calls: list[dict[str, Any]] = []
    fake = FakeClient(client, update_time_to_live=calls.append)
    ledger = Ledger(client, local.ledger_table_name)
    ctx = MigrationContext(fake, local.table_name, out=quiet, ledger=ledger, enforce_ttl_cooldown=True)

    with pytest.raises(TTLCooldown, match="disabling TTL becomes possible at"):
        ctx.set_ttl("ExpiresAt", enabled=False)
    assert calls == []


def test_a_ttl_change_refused_for_a_change_the_ledger_never_saw_says_so(local: Settings, client: Any) -> None:
    runner.upgrade("0002", out=quiet, client=client)

    def update_time_to_live(**params: Any) -> Any:
        raise client_error("ValidationException", COOLDOWN, "UpdateTimeToLive")

    with pytest.raises(RevisionFailed, match="not by this runner"):
        runner.upgrade(out=quiet, client=FakeClient(client, update_time_to_live=update_time_to_live))
    assert runner.status(client=client)["failed"] == ["0003"]


def test_limit_exceeded_is_waited_out_and_retried(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)
    refusals = iter(range(2))

    def update_table(**params: Any) -> Any:
        if next(refusals, None) is not None:
            raise client_error(
                "LimitExceededException",
                "Subscriber limit exceeded: Only 1 online index can be "
                "created or deleted simultaneously per table",
                "UpdateTable",
            )
        return client.update_table(**params)

    lines: list[str] = []
    runner.upgrade(
        out=lines.append, client=FakeClient(client, update_table=update_table), versions_dir=versions
    )

    assert sum("LimitExceededException" in line for line in lines) == 2
    indexes = client.describe_table(TableName=local.table_name)["Table"]["GlobalSecondaryIndexes"]
    assert [(i["IndexName"], i["IndexStatus"]) for i in indexes] == [("Email-Index", "ACTIVE")]


def test_a_hard_limit_fails_at_once_with_dynamodbs_reason(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)
    calls: list[dict[str, Any]] = []

    def update_table(**params: Any) -> Any:
        calls.append(params)
        raise client_error(
            "LimitExceededException",
            "Subscriber limit exceeded: There is a limit of 20 global secondary indexes per table",
            "UpdateTable",
        )

    with pytest.raises(RevisionFailed, match=r"refused: .*limit of 20 global secondary indexes"):
        runner.upgrade(
            out=quiet,
            client=FakeClient(client, update_table=update_table),
            versions_dir=versions,
            options=Options(wait_timeout=600.0),  # not waited for: the test would time out
        )
    assert len(calls) == 1
    assert runner.status(client=client, versions_dir=versions)["failed"] == ["0002"]


def test_a_limit_on_simultaneous_changes_that_never_lifts_fails_after_the_timeout(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)

    def update_table(**params: Any) -> Any:
        raise client_error(
            "LimitExceededException",
            "Subscriber limit exceeded: Only 10 tables can be created, updated, or deleted simultaneously",
            "UpdateTable",
        )

    with pytest.raises(RevisionFailed, match=r"still refused after .*deleted simultaneously"):
        runner.upgrade(
            out=quiet,
            client=FakeClient(client, update_table=update_table),
            versions_dir=versions,
            options=Options(wait_timeout=1.0),
        )
    assert runner.status(client=client, versions_dir=versions)["failed"] == ["0002"]


def test_pitr_refused_while_backups_are_being_set_up_on_a_new_table_is_retried(
    local: Settings, client: Any
) -> None:
    runner.upgrade("0001", out=quiet, client=client)
    refusals = iter(range(2))
    calls: list[dict[str, Any]] = []

    def update_continuous_backups(**params: Any) -> Any:
        calls.append(params)
        if next(refusals, None) is not None:
            raise client_error(
                "ContinuousBackupsUnavailableException",
                f"Backups are being enabled for the table: {local.table_name}. Please retry later",
                "UpdateContinuousBackups",
            )
        return {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED"}}  # as AWS does

    def describe_continuous_backups(**params: Any) -> Any:
        return {
            "ContinuousBackupsDescription": {
                "ContinuousBackupsStatus": "ENABLED",
                "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
            }
        }

    lines: list[str] = []
    fake = FakeClient(
        client,
        update_continuous_backups=update_continuous_backups,
        describe_continuous_backups=describe_continuous_backups,
    )
    ctx = MigrationContext(fake, local.table_name, out=lines.append)
    ctx.enable_point_in_time_recovery()

    assert len(calls) == 3
    assert sum(line.startswith("  ContinuousBackupsUnavailableException") for line in lines) == 2
    assert calls[-1]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert not any("warning" in line for line in lines)


def test_a_busy_table_is_waited_for_then_the_call_is_retried(local: Settings, client: Any) -> None:
    runner.upgrade("0001", out=quiet, client=client)
    refusals = iter(range(1))

    def update_table(**params: Any) -> Any:
        if next(refusals, None) is not None:
            raise client_error(
                "ResourceInUseException", "Attempt to change a resource which is still in use", "UpdateTable"
            )
        return client.update_table(**params)

    lines: list[str] = []
    ctx = MigrationContext(FakeClient(client, update_table=update_table), local.table_name, out=lines.append)
    ctx.set_stream("KEYS_ONLY")

    assert any(line.startswith("  ResourceInUseException") for line in lines)
    assert any("view type cannot change in place" in line and "reach no stream" in line for line in lines)
    assert any("new ARN" in line and "consumers" in line for line in lines)
    spec = client.describe_table(TableName=local.table_name)["Table"]["StreamSpecification"]
    assert spec == {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}


def test_an_index_stuck_creating_times_out_with_a_clear_error_and_the_next_upgrade_resumes(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)

    def describe_table(**params: Any) -> Any:
        answer = client.describe_table(**params)
        for index in answer["Table"].get("GlobalSecondaryIndexes", []):
            index.update(IndexStatus="CREATING", Backfilling=True)
        return answer

    lines: list[str] = []
    with pytest.raises(RevisionFailed) as failed:
        runner.upgrade(
            out=lines.append,
            client=FakeClient(client, describe_table=describe_table),
            versions_dir=versions,
            options=Options(wait_timeout=1.0),
        )

    cause = failed.value.__cause__
    assert isinstance(cause, WaitTimeout)
    assert "Email-Index CREATING (backfilling)" in str(cause) and "run `upgrade` again" in str(cause)
    assert any(line.startswith("  waiting (0s): Email-Index CREATING (backfilling)") for line in lines)
    assert runner.status(client=client, versions_dir=versions)["failed"] == ["0002"]

    lines.clear()
    assert runner.upgrade(out=lines.append, client=client, versions_dir=versions) == ["0002"]
    assert "  index Email-Index exists already: waiting until it is ACTIVE" in lines


def test_more_than_one_index_change_in_one_update_table_is_refused_before_any_call(local: Settings) -> None:
    calls: list[Any] = []
    ctx = MigrationContext(FakeClient(object(), update_table=calls.append), local.table_name, out=quiet)

    with pytest.raises(MigrationError, match="one index creation or deletion per UpdateTable"):
        ctx.call(
            "UpdateTable",
            TableName=local.table_name,
            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "A"}}, {"Delete": {"IndexName": "B"}}],
        )
    assert calls == []
