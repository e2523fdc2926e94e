"""The lock: concurrent runners apply each revision once; a crashed runner's lease runs out."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.client import new_client
from core.config import Settings
from migrations import runner
from migrations.context import MigrationContext
from migrations.ledger import Ledger
from migrations.lock import Lease, LockHeld, LockLost
from tests.migrations.helpers import REPO, FakeClient, quiet


def test_two_runners_at_once_apply_each_revision_once(
    local: Settings, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table", "test:0002_email_index")
    clients = [new_client(local), new_client(local)]
    start = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run(client: Any) -> None:
        start.wait()
        try:
            results.append(runner.upgrade(out=quiet, client=client, versions_dir=versions))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sorted(results) == [[], ["0001", "0002"]]
    events = Ledger(clients[0], local.ledger_table_name).events()
    assert Counter((e["Revision"], e["Outcome"]) for e in events) == Counter(
        {("0001", "applied"): 1, ("0002", "applied"): 1}
    )


def test_a_runner_that_may_not_wait_refuses_clearly_and_changes_nothing(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table")
    ledger = Ledger(client, local.ledger_table_name)
    ledger.ensure()

    with ledger.lock.hold(lease_seconds=30) as lease:
        with pytest.raises(LockHeld, match=lease.owner):
            runner.upgrade(out=quiet, client=client, versions_dir=versions, lock_wait_seconds=0)
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "migrations",
                "--versions-dir",
                str(versions),
                "--lock-wait",
                "0",
                "upgrade",
            ],
            cwd=REPO,
            env={**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": str(local.endpoint_url)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert cli.returncode == 1
    assert f"locked by {lease.owner}" in cli.stderr
    assert ledger.records() == {}
    assert local.table_name not in client.list_tables()["TableNames"]


def test_a_crashed_runners_lease_runs_out_and_the_next_runner_takes_over(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table")
    ledger = Ledger(client, local.ledger_table_name)
    ledger.ensure()
    assert ledger.lock.acquire("crashed-runner", lease_seconds=2.0)  # and never renews it
    lines: list[str] = []

    assert runner.upgrade(out=lines.append, client=client, versions_dir=versions, lock_wait_seconds=30) == [
        "0001"
    ]

    assert lines[0].startswith("waiting for the migrations lock, held by crashed-runner")
    assert ledger.lock.holder() is None  # released after the run


def test_the_heartbeat_renews_the_lease_while_the_holder_works(local: Settings, client: Any) -> None:
    ledger = Ledger(client, local.ledger_table_name)
    ledger.ensure()

    with ledger.lock.hold(lease_seconds=3.0) as lease:  # renewed every second
        first = ledger.lock.holder()
        assert first is not None
        deadline = time.monotonic() + 30
        while (held := ledger.lock.holder()) is not None and held[1] <= first[1]:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.1)
        assert not ledger.lock.acquire("someone-else", lease_seconds=5)
        lease.check()


def test_a_holder_whose_lease_was_taken_over_learns_it_before_its_next_step(
    local: Settings, client: Any
) -> None:
    ledger = Ledger(client, local.ledger_table_name)
    ledger.ensure()

    with ledger.lock.hold(lease_seconds=3.0) as lease:
        client.put_item(
            TableName=local.ledger_table_name,  # another runner took the lock over
            Item={"PK": {"S": "LOCK"}, "Owner": {"S": "usurper"}, "ExpiresAt": {"N": "9999999999"}},
        )
        assert lease.lost.wait(timeout=30)
        with pytest.raises(LockLost):
            lease.check()

    assert ledger.lock.holder() == ("usurper", 9999999999.0)  # not released by the loser


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_counts_as_lost_a_margin_before_it_runs_out_even_if_the_heartbeat_stalls() -> None:
    clock = FakeClock()
    lease = Lease("me", lease_seconds=40.0, clock=clock)
    lease.renewed(clock.now)

    clock.now += 29.9  # lease 40 s, margin 10 s: valid for 30 s after the renewal started
    lease.check()
    clock.now += 0.1
    with pytest.raises(LockLost):
        lease.check()
    lease.renewed(clock.now)  # a late renewal does not revive a lease once it was found lost
    with pytest.raises(LockLost):
        lease.check()


def test_a_lost_lease_stops_a_wait_before_its_next_describe(local: Settings, client: Any) -> None:
    clock = FakeClock()
    lease = Lease("me", lease_seconds=40.0, clock=clock)
    lease.renewed(clock.now - 60)  # ran out while the runner was stalled
    described: list[dict[str, Any]] = []

    def describe_table(**params: Any) -> Any:
        described.append(params)
        return client.describe_table(**params)

    ctx = MigrationContext(
        FakeClient(client, describe_table=describe_table), local.table_name, out=quiet, lease=lease
    )

    with pytest.raises(LockLost):
        ctx.wait_until_active()
    assert described == []


@pytest.mark.parametrize("fails", [False, True], ids=["revision-succeeds", "revision-raises"])
def test_a_runner_that_lost_the_lock_mid_revision_writes_nothing_more_to_the_ledger(
    local: Settings,
    client: Any,
    make_versions: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    fails: bool,
) -> None:
    if fails:
        monkeypatch.setenv("USURP_THEN_RAISE", "1")
    versions = make_versions("test:0001_plain_table", "test:0002_usurp_lock")
    ledger = Ledger(client, local.ledger_table_name)

    with pytest.raises(LockLost):
        runner.upgrade(out=quiet, client=client, versions_dir=versions)

    records = ledger.records()
    assert records["0001"]["Status"] == "applied"
    assert records["0002"]["Status"] == "running"  # written before the lock was lost; never after
    assert [e["Revision"] for e in ledger.events()] == ["0001"]
    assert ledger.lock.holder() == ("usurper", 9999999999.0)


def test_a_fenced_ledger_write_is_refused_once_another_runner_holds_the_lock(
    local: Settings, client: Any
) -> None:
    ledger = Ledger(client, local.ledger_table_name)
    ledger.ensure()

    with ledger.lock.hold(lease_seconds=30.0) as lease:
        ledger.fence(lease)
        ledger.record("0001", "applied", "mine")
        assert ledger.lock.acquire("usurper", lease_seconds=30.0) is False
        client.put_item(
            TableName=local.ledger_table_name,
            Item={"PK": {"S": "LOCK"}, "Owner": {"S": "usurper"}, "ExpiresAt": {"N": "9999999999"}},
        )
        with pytest.raises(LockLost):  # the heartbeat has not noticed yet: the condition refuses it
            ledger.record("0002", "applied", "mine too")

    assert set(ledger.records()) == {"0001"}


def test_lock_wait_seconds_given_with_options_overrides_the_wait_in_options(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions("test:0001_plain_table")
    ledger = Ledger(client, local.ledger_table_name)
    ledger.ensure()
    lines: list[str] = []

    with ledger.lock.hold(lease_seconds=30), pytest.raises(LockHeld):
        runner.upgrade(
            out=lines.append,
            client=client,
            versions_dir=versions,
            lock_wait_seconds=0,
            options=runner.Options(lock_wait_seconds=60),
        )

    assert not any(line.startswith("waiting for the migrations lock") for line in lines)  # did not wait
