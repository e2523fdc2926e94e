"""Data migrations: resumable after SIGKILL, each item processed once, failures reported and retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from migrations import runner
from migrations.context import Item, ItemUpdate, MigrationContext, Put
from migrations.ledger import Ledger
from migrations.runner import RevisionFailed
from tests.migrations.helpers import (
    REPO,
    FakeClient,
    claim_item,
    client_error,
    get_raw,
    quiet,
    scan_all,
    seed,
    user_item,
)

THINGS = 800


def _things(count: int) -> list[dict[str, Any]]:
    return [
        {"PK": {"S": f"THING#{n:05d}"}, "SK": {"S": "THING"}, "EntityType": {"S": "THING"}}
        for n in range(count)
    ]


def _segments(ledger: Ledger, revision: str) -> list[dict[str, Any]]:
    return [b for b in ledger.backfills(revision) if "Segment" in b]


def _cli(local: Settings, versions: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "migrations",
        "--versions-dir",
        str(versions),
        "--lease-seconds",
        "2",
        "--lock-wait",
        "30",
        "upgrade",
    ]
    environment = {
        **os.environ,
        "AWS_ENDPOINT_URL_DYNAMODB": str(local.endpoint_url),
        "TABLE_NAME": local.table_name,
        **env,
    }
    with log.open("wb") as sink:
        return subprocess.Popen(command, cwd=REPO, env=environment, stdout=sink, stderr=subprocess.STDOUT)


def test_a_backfill_killed_halfway_resumes_from_its_checkpoints_and_processes_every_item_once(
    local: Settings, client: Any, make_versions: Callable[..., Path], tmp_path: Path
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_count_things")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)
    seed(client, local.table_name, _things(THINGS))
    ledger = Ledger(client, local.ledger_table_name)
    hung = tmp_path / "hung"

    first = _cli(
        local,
        versions,
        tmp_path / "first.log",
        TEST_HANG_AFTER_ITEMS=str(THINGS // 2),
        TEST_HUNG_FLAG=str(hung),
    )
    deadline = time.monotonic() + 60
    while not (hung.exists() and sum(int(s["Scanned"]) for s in _segments(ledger, "0002")) > 0):
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        assert time.monotonic() < deadline, "the backfill never got going"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    checkpointed = sum(int(s["Scanned"]) for s in _segments(ledger, "0002"))
    assert 0 < checkpointed < THINGS
    assert ledger.records()["0002"]["Status"] == "running"

    second = _cli(local, versions, tmp_path / "second.log")
    assert second.wait(timeout=120) == 0, (tmp_path / "second.log").read_text()

    output = (tmp_path / "second.log").read_text()
    assert "resuming backfill count-things" in output
    counts = Counter(item.get("Processed", {}).get("N") for item in scan_all(client, local.table_name))
    assert counts == Counter({"1": THINGS})
    segments = _segments(ledger, "0002")
    assert sum(int(s["Scanned"]) for s in segments) == THINGS  # resumed, not started over
    assert all(s["Done"] for s in segments)
    assert ledger.records()["0002"]["Status"] == "applied"



def test_revision_0004_lower_cases_emails_claims_them_and_retries_only_the_item_that_failed(
    local: Settings, client: Any
) -> None:
    runner.upgrade("0003", out=quiet, client=client)
    table = local.table_name
    seed(
        client,
        table,
        [
            user_item("alice", "Alice@Example.COM"),  # no claim yet
            user_item("bob", "bob@example.com"),
            claim_item("bob@example.com", "bob"),  # already right
            user_item("carol", "Carol@Example.com"),
            claim_item("carol@example.com", "mallory"),  # taken
            {
                "PK": {"S": "USER#alice"},
                "SK": {"S": "ORDER#1"},
                "EntityType": {"S": "ORDER"},
                "Email": {"S": "Not@A.User"},
            },  # not a user: left alone
        ],
    )
    lines: list[str] = []

    with pytest.raises(RevisionFailed) as failed:
        runner.upgrade("0004", out=lines.append, client=client)

    assert failed.value.revision == "0004"
    assert any('"USER#carol"' in line and "claimed by another user" in line for line in lines)
    assert runner.status(client=client)["failed"] == ["0004"]
    alice = get_raw(client, table, "USER#alice", "PROFILE")
    assert (
        alice is not None and alice["Email"] == {"S": "alice@example.com"} and alice["Version"] == {"N": "2"}
    )
    assert get_raw(client, table, "EMAIL#alice@example.com", "EMAIL")["UserId"] == {"S": "alice"}  # type: ignore[index]
    assert get_raw(client, table, "USER#bob", "PROFILE")["Version"] == {"N": "1"}  # type: ignore[index]
    assert get_raw(client, table, "USER#alice", "ORDER#1")["Email"] == {"S": "Not@A.User"}  # type: ignore[index]

    client.delete_item(TableName=table, Key={"PK": {"S": "EMAIL#carol@example.com"}, "SK": {"S": "EMAIL"}})
    lines.clear()
    assert runner.upgrade("0004", out=lines.append, client=client) == ["0004"]

    assert any("resuming backfill lower-case-emails" in line for line in lines)
    carol = get_raw(client, table, "USER#carol", "PROFILE")
    assert carol is not None and carol["Email"] == {"S": "carol@example.com"}
    assert get_raw(client, table, "EMAIL#carol@example.com", "EMAIL")["UserId"] == {"S": "carol"}  # type: ignore[index]
    assert get_raw(client, table, "USER#alice", "PROFILE")["Version"] == {"N": "2"}  # type: ignore[index]
    runner.upgrade(out=quiet, client=client)  # the revisions after 0004, if any
    assert runner.check(client=client) == []


def test_revision_0004_deletes_the_users_claim_under_the_old_spelling_with_the_change(
    local: Settings, client: Any
) -> None:
    runner.upgrade("0003", out=quiet, client=client)
    table = local.table_name
    seed(
        client,
        table,
        [
            user_item("dave", "Dave@Example.com"),
            claim_item("Dave@Example.com", "dave"),  # his claim under the old spelling
            user_item("erin", "Erin@Example.com"),
            claim_item("Erin@Example.com", "someone-else"),  # not hers: left alone
        ],
    )

    assert runner.upgrade("0004", out=quiet, client=client) == ["0004"]

    assert get_raw(client, table, "EMAIL#Dave@Example.com", "EMAIL") is None
    assert get_raw(client, table, "EMAIL#dave@example.com", "EMAIL")["UserId"] == {"S": "dave"}  # type: ignore[index]
    assert get_raw(client, table, "EMAIL#Erin@Example.com", "EMAIL")["UserId"] == {"S": "someone-else"}  # type: ignore[index]
    assert get_raw(client, table, "EMAIL#erin@example.com", "EMAIL")["UserId"] == {"S": "erin"}  # type: ignore[index]


def test_a_write_still_throttled_after_botocores_retries_is_not_retried_again_and_the_next_run_finishes(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_count_things")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)
    seed(client, local.table_name, _things(60))
    attempts: Counter[str] = Counter()

    def update_item(**params: Any) -> Any:
        if params["TableName"] != local.table_name:
            return client.update_item(**params)
        attempts[params["Key"]["PK"]["S"]] += 1  # what reaches us: botocore's attempts are spent
        raise client_error("ProvisionedThroughputExceededException", "Rate of requests exceeds", "UpdateItem")

    with pytest.raises(RevisionFailed, match="still throttled after every retry"):
        runner.upgrade(out=quiet, client=FakeClient(client, update_item=update_item), versions_dir=versions)

    assert attempts and set(attempts.values()) == {1}  # not retried on top of botocore
    assert runner.upgrade(out=quiet, client=client, versions_dir=versions) == ["0002"]
    counts = Counter(item.get("Processed", {}).get("N") for item in scan_all(client, local.table_name))
    assert counts == Counter({"1": 60})


def test_a_transaction_cancelled_by_a_conflict_is_retried_and_applied_once(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    runner.upgrade("0001", out=quiet, client=client, versions_dir=make_versions("test:0001_plain_table"))
    seed(client, local.table_name, _things(5))
    conflicts = iter(range(3))

    def transact_write_items(**params: Any) -> Any:
        if next(conflicts, None) is not None:
            error = client_error(
                "TransactionCanceledException", "Transaction cancelled", "TransactWriteItems"
            )
            error.response["CancellationReasons"] = [{"Code": "TransactionConflict"}, {"Code": "None"}]
            raise error
        return client.transact_write_items(**params)

    def claim(item: Item) -> ItemUpdate:
        number = item["PK"]["S"].split("#")[1]
        return ItemUpdate(
            add={"Processed": {"N": "1"}},
            puts=[Put({"PK": {"S": f"CLAIM#{number}"}, "SK": {"S": "CLAIM"}})],
        )

    fake = FakeClient(client, transact_write_items=transact_write_items)
    ledger = Ledger(client, local.ledger_table_name)
    stats = MigrationContext(fake, local.table_name, out=quiet, ledger=ledger, revision="t").backfill(
        "claim", claim, segments=1, where={"EntityType": {"S": "THING"}}
    )

    assert next(conflicts, None) is None  # every conflict was met, and retried
    assert stats is not None and stats.updated == 5 and stats.failures == []
    items = scan_all(client, local.table_name)
    assert sorted(i["PK"]["S"] for i in items if i["SK"]["S"] == "CLAIM") == [
        f"CLAIM#{n:05d}" for n in range(5)
    ]
    assert Counter(i["Processed"]["N"] for i in items if i["SK"]["S"] == "THING") == Counter({"1": 5})


def test_a_transform_that_raises_fails_the_revision_and_the_current_revision_stays_before_it(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_count_things")
    runner.upgrade("0001", out=quiet, client=client, versions_dir=versions)
    seed(client, local.table_name, _things(3))

    def update_item(**params: Any) -> Any:
        if params["TableName"] != local.table_name:  # the ledger's own writes go through
            return client.update_item(**params)
        raise client_error(
            "ValidationException", "Item size has exceeded the maximum allowed size", "UpdateItem"
        )

    lines: list[str] = []
    with pytest.raises(RevisionFailed, match="3 item"):
        runner.upgrade(
            out=lines.append, client=FakeClient(client, update_item=update_item), versions_dir=versions
        )

    assert sum("failed: " in line and "ValidationException" in line for line in lines) == 3
    status = runner.status(client=client, versions_dir=versions)
    assert status["current"].startswith("0001")
    assert status["failed"] == ["0002"]
    assert runner.upgrade(out=quiet, client=client, versions_dir=versions) == ["0002"]
    counts = Counter(item.get("Processed", {}).get("N") for item in scan_all(client, local.table_name))
    assert counts == Counter({"1": 3})
