"""The help a newcomer reads: ``make help`` lists every target with what it does, and
``python -m migrations --help`` is plain text (no reST quoting)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from migrations import __main__ as cli

REPO = Path(__file__).resolve().parents[2]
# The targets someone types; the Makefile may add more, and each of those needs a `##` comment too.
USER_FACING = ["install", "migrate", "test", "unit", "lint", "db-start", "db-stop", "db-status",
               "bench", "demo", "mutation", "reliability", "clean", "help"]  # fmt: skip


def _make_help() -> dict[str, str]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    run = subprocess.run(["make", "--no-print-directory", "-s", "help"], cwd=REPO, check=True,
                         capture_output=True, text=True)  # fmt: skip
    lines = [line.split(None, 1) for line in run.stdout.splitlines() if line.strip()]
    return {parts[0]: parts[1] if len(parts) > 1 else "" for parts in lines}


def test_make_help_lists_every_user_facing_target_with_what_it_does() -> None:
    listed = _make_help()

    for target in USER_FACING:
        assert listed.get(target, "").strip(), f"make help does not describe {target}"


def test_every_target_of_the_makefile_has_a_help_comment() -> None:
    declared = re.findall(r"^([a-z][a-z0-9_-]*):", (REPO / "Makefile").read_text(), flags=re.MULTILINE)

    assert set(declared) == set(_make_help())


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_parsers(sub))
    return found


def test_the_cli_help_has_no_rest_quoting() -> None:
    for parser in _parsers(cli._parser()):
        text = parser.format_help()
        assert "``" not in text, f"{parser.prog} --help shows reST quoting"


def test_the_cli_help_explains_relative_targets() -> None:
    text = cli._parser().format_help()

    assert "upgrade +1" in text and "downgrade -1" in text
