"""The command line on DynamoDB Local: ``upgrade +N`` / ``downgrade -N`` move from the current
revision, ``history`` marks it, and ``check`` after a downgrade names the pending revisions."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Settings
from migrations import __main__ as cli
from migrations import runner
from migrations.ledger import REVISION_PREFIX
from tests.migrations.helpers import quiet, scan_all

IDS = [rev.revision for rev in runner.history()]


def _current(client: Any, settings: Settings) -> str:
    """The last applied revision, read from the ledger table with a raw scan (``base``: none)."""
    items = scan_all(client, settings.ledger_table_name)
    applied = sorted(
        i["Revision"]["S"] for i in items
        if i["PK"]["S"].startswith(REVISION_PREFIX) and i["Status"]["S"] == "applied"
    )  # fmt: skip
    return applied[-1] if applied else "base"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(["--no-progress", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_upgrade_plus_n_and_downgrade_minus_n_move_from_the_current_revision(
    local: Settings, client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "upgrade", "+1")[0] == 0
    assert _current(client, local) == IDS[0]

    assert _run(capsys, "upgrade", "+2")[0] == 0
    assert _current(client, local) == IDS[2]

    assert _run(capsys, "downgrade", "-1")[0] == 0
    assert _current(client, local) == IDS[1]

    assert _run(capsys, "downgrade", "-2")[0] == 0
    assert _current(client, local) == "base"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["downgrade", "-3"], "-3 goes past base: the current revision is {one}; valid targets: "),
        (["upgrade", f"+{len(IDS)}"], f"+{len(IDS)} goes past head ({IDS[-1]}): the current revision is "
                                      "{one}"),
        (["upgrade", "-1"], "upgrade -1 would go down: use downgrade -1"),
        (["downgrade", "+1"], "downgrade +1 would go up: use upgrade +1"),
        (["downgrade", "last"], "unknown revision 'last'; valid targets: {ids}, head, base, +N or -N"),
    ],
)
def test_a_target_that_cannot_be_reached_is_refused_naming_the_valid_ones(
    local: Settings, client: Any, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    runner.upgrade(IDS[0], out=quiet)

    status, _, err = _run(capsys, *argv)

    assert status == 1
    assert err.startswith("error: " + says.format(one=IDS[0], ids=", ".join(IDS)))
    assert _current(client, local) == IDS[0]


def test_history_marks_the_current_revision_read_from_the_ledger(
    local: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.upgrade(IDS[1], out=quiet)

    status, out, _ = _run(capsys, "history")

    lines = out.splitlines()
    assert status == 0
    assert [line.split()[0] for line in lines[:-1]] == IDS
    assert [line.split()[0] for line in lines if "(current)" in line] == [IDS[1]]
    assert lines[len(IDS) - 1].endswith("(head)")
    ledger = f"{local.ledger_table_name} at {local.endpoint_url}"
    assert lines[-1] == f"current: {IDS[1]} (from the ledger {ledger})"


def test_check_after_a_downgrade_names_the_pending_revisions(
    local: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.upgrade(out=quiet)
    runner.downgrade(IDS[-3], out=quiet)

    _, out, _ = _run(capsys, "check")

    assert out.splitlines()[-1] == f"pending: {IDS[-2]}, {IDS[-1]} — run `make migrate`"


def test_check_reports_the_drift_and_the_pending_revisions(
    local: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    runner.upgrade(out=quiet)
    runner.downgrade("base", out=quiet)  # the table is gone: drift whatever the revisions are

    status, out, _ = _run(capsys, "check")

    assert status == 1
    assert any(line.startswith("drift: ") for line in out.splitlines())
    assert out.splitlines()[-1] == f"pending: {', '.join(IDS)} — run `make migrate`"


def test_check_at_head_names_no_pending_revision(local: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    runner.upgrade(out=quiet)

    status, out, _ = _run(capsys, "check")

    assert status == 0 and "pending" not in out
