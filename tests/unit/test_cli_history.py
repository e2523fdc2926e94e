"""``history`` marks the current revision when it can read the ledger (moto here), and still lists
every revision, saying the current one is unknown, when it cannot; it never starts a DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from core import localdb
from core.localdb import free_port
from migrations import __main__ as cli
from migrations import runner
from migrations.revisions import load_revisions

CHAIN = load_revisions()


def quiet(_: str) -> None:
    """A printer that prints nothing."""


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in place of AWS, for ``--aws``."""
    with mock_aws():
        yield


def _history(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert cli.main([*argv, "history"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


def test_history_marks_the_current_revision_and_head(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    current = CHAIN[len(CHAIN) // 2]
    runner.upgrade(current.revision, out=quiet)

    lines = _history(capsys, "--aws")

    assert [line.split()[0] for line in lines[:-1]] == [rev.revision for rev in CHAIN]
    marked = [line for line in lines if "(current)" in line]
    assert marked == [f"{current.revision}  {current.message}  (current)"]
    assert lines[len(CHAIN) - 1].endswith("  (head)")
    assert lines[-1].startswith(f"current: {current.revision} (from the ledger ")


def test_history_at_head_marks_the_last_revision_current_and_head(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.upgrade(out=quiet)

    lines = _history(capsys, "--aws")

    assert lines[len(CHAIN) - 1].endswith("  (current)  (head)")


def test_history_without_a_ledger_says_the_current_revision_is_base(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _history(capsys, "--aws")

    assert not any("(current)" in line for line in lines)
    assert lines[-1].startswith("current: base (no ledger table ")


def test_history_with_dynamodb_unreachable_lists_the_revisions_and_says_current_is_unknown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")

    lines = _history(capsys)

    assert len(lines) == len(CHAIN) + 1 and lines[len(CHAIN) - 1].endswith("  (head)")
    assert lines[-1].startswith("current: unknown (cannot read the ledger at http://127.0.0.1:")


def test_history_with_no_endpoint_and_no_local_dynamodb_running_starts_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(localdb, "status", lambda data_dir=None: None)

    def refuse(*_: object, **__: object) -> tuple[str, bool]:
        raise AssertionError("history started a DynamoDB Local")

    monkeypatch.setattr(localdb, "ensure_running", refuse)

    lines = _history(capsys)

    assert [line.split()[0] for line in lines[:-1]] == [rev.revision for rev in CHAIN]
    assert lines[-1] == (
        "current: unknown (no endpoint is set and the local DynamoDB is not running; make db-start starts it)"
    )
