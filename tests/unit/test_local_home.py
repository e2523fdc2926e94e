"""Where the local database lives: a checkout's ``.local/``, else the user cache, never the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import localdb

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``core.localdb`` as if installed in a ``site-packages``; no folder set; the cache in tmp_path."""
    site_packages = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site_packages / "core").mkdir(parents=True)
    monkeypatch.setattr(localdb, "__file__", str(site_packages / "core" / "localdb.py"))
    for name in ("DATALAYER_LOCAL_DIR", "DYNAMODB_LOCAL_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return site_packages


def test_an_installed_copy_run_outside_a_checkout_uses_the_user_cache(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text('[project]\nname = "my-app"\n')
    monkeypatch.chdir(app)
    cache = tmp_path / "cache" / "dynamo-datalayer"
    assert localdb.local_dir() == cache
    assert localdb.data_dir() == cache / "dynamodb-data"
    assert localdb.install_dir() == cache / "dynamodb-local"


def test_without_xdg_cache_home_the_cache_is_under_home(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert localdb.local_dir() == tmp_path / "home" / ".cache" / "dynamo-datalayer"


@pytest.mark.parametrize("where", [".", "tests/unit"])
def test_in_a_checkout_of_this_project_it_is_the_checkouts_local_folder(
    installed: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT / where)
    assert localdb.local_dir() == ROOT / ".local"


def test_an_editable_install_run_from_elsewhere_uses_its_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATALAYER_LOCAL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert localdb.local_dir() == ROOT / ".local"


def test_the_environment_overrides_both_folders(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DATALAYER_LOCAL_DIR", str(tmp_path / "db"))
    assert localdb.data_dir() == tmp_path / "db" / "dynamodb-data"
    assert localdb.install_dir() == tmp_path / "db" / "dynamodb-local"
    monkeypatch.setenv("DYNAMODB_LOCAL_HOME", str(tmp_path / "jar"))
    assert localdb.install_dir() == tmp_path / "jar"


def test_starting_a_server_says_which_data_folder_it_uses(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(localdb, "_command", lambda *_args, **_kw: ["java"])
    monkeypatch.setattr(localdb.os, "posix_spawnp", lambda *_args, **_kw: 0)  # nothing is started
    monkeypatch.setattr(localdb, "_wait_ready", lambda *_args: None)
    monkeypatch.setattr(localdb, "_is_server", lambda _pid: False)
    endpoint, started = localdb.ensure_running(preferred_port=localdb.free_port())
    folder = tmp_path / "cache" / "dynamo-datalayer" / "dynamodb-data"
    assert started and endpoint.startswith("http://127.0.0.1:")
    assert capsys.readouterr().err == f"starting DynamoDB Local on {endpoint[7:]}, data in {folder}\n"
    assert not any(installed.rglob("*.json")) and not (installed.parent / ".local").exists()
