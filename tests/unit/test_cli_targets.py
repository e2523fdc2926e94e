"""Targets (``head``, ``base``, ids, ``+N``/``-N`` from the current revision) and revision messages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from migrations.calls import MigrationError
from migrations.revisions import Revision, load_revisions, resolve


def _nothing(_: Any) -> None:
    return None


CHAIN = [
    Revision(f"000{i}", f"000{i - 1}" if i > 1 else None, f"step {i}", Path(f"000{i}_x.py"),
             _nothing, _nothing)
    for i in range(1, 5)
]


def _at(index: int) -> dict[str, dict[str, Any]]:
    """Ledger records with the first ``index + 1`` revisions applied."""
    return {rev.revision: {"Status": "applied"} for rev in CHAIN[: index + 1]}


@pytest.mark.parametrize(
    ("target", "now", "goal"),
    [("+1", -1, 0), ("+2", 0, 2), ("-1", 3, 2), ("-4", 3, -1), ("+0", 1, 1), ("-1", 0, -1)],
)
def test_a_relative_target_counts_from_the_current_revision(target: str, now: int, goal: int) -> None:
    assert resolve(CHAIN, target, _at(now)) == goal


@pytest.mark.parametrize(
    ("target", "now", "bound"), [("-1", -1, "base"), ("+2", 2, "head"), ("-5", 3, "base")]
)
def test_a_relative_target_past_base_or_head_is_refused(target: str, now: int, bound: str) -> None:
    with pytest.raises(MigrationError, match=rf"^{re.escape(target)} goes past {bound}") as raised:
        resolve(CHAIN, target, _at(now))
    assert "valid targets: 0001, 0002, 0003, 0004, head, base, +N or -N" in str(raised.value)


@pytest.mark.parametrize("target", ["nope", "1", "0005", "+", "-x", "HEAD"])
def test_an_unknown_target_names_the_valid_ones(target: str) -> None:
    with pytest.raises(MigrationError) as raised:
        resolve(CHAIN, target, _at(1))

    assert str(raised.value) == (
        f"unknown revision {target!r}; valid targets: 0001, 0002, 0003, 0004, head, base, "
        "+N or -N (N revisions up or down from the current one)"
    )


def test_absolute_targets_need_no_ledger() -> None:
    assert [resolve(CHAIN, t) for t in ("head", "base", "0002")] == [3, -1, 1]


def test_a_revision_message_is_its_whole_first_paragraph_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "0001_wrapped.py").write_text(
        '"""Lower-case every stored Email and write its claim item where it is missing; the old\n'
        "    claim under the original spelling is deleted in the same transaction.\n"
        "\n"
        'A second paragraph: details that stay out of the message.\n"""\n'
        'revision = "0001"\ndown_revision = None\n\n\ndef upgrade(ctx):\n    pass\n\n\n'
        "def downgrade(ctx):\n    pass\n"
    )

    [rev] = load_revisions(tmp_path)

    assert rev.message == (
        "Lower-case every stored Email and write its claim item where it is missing; the old "
        "claim under the original spelling is deleted in the same transaction."
    )


def test_no_real_revision_message_is_cut_at_a_line_break() -> None:
    for rev in load_revisions():
        first_paragraph = rev.path.read_text().split('"""')[1].strip().split("\n\n")[0]
        assert rev.message == " ".join(first_paragraph.split()), rev.revision
