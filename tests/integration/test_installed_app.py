"""The layer installed into an app's own virtual environment, as ``pip install`` of the repository does.

A wheel is built from a copy of the project's sources (pip's own isolated build, as ``pip install
<repository>`` runs it) and installed with ``pip install --no-deps --no-index`` into a fresh virtual
environment outside the repository. Its run-time dependencies are not downloaded again: the
distributions that satisfy the wheel's own ``Requires-Dist`` (and theirs, recursively) are linked
from this test's environment into a folder the new environment reads through a ``.pth`` file, so
the app sees exactly what the wheel declares and nothing of the development tools (no pytest, no
moto). From an empty directory the app migrates its table on the session's DynamoDB Local, uses
the repositories and runs ``python -m migrations status``: nothing appears under ``site-packages``.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from core.localdb import LocalDynamoDB

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.cfg", "README.md", "core", "models", "repositories", "migrations")
PACKAGES = {"core", "models", "repositories", "migrations"}
DEVELOPMENT = {"pytest", "moto", "mypy", "ruff", "hypothesis", "boto3", "cfn-lint", "mutmut", "coverage"}

APP = textwrap.dedent(
    """
    import json, sys, uuid
    from repositories.accounts import open_account, transfer_funds
    from repositories.orders import get_order, place_order
    from repositories.users import create_user, find_user_by_email, get_user

    email = f"{uuid.uuid4().hex[:10]}@example.com"
    user = create_user(email, "Ada")
    assert find_user_by_email(email.upper()).user_id == user.user_id
    assert get_user(user.user_id).name == "Ada"
    order = place_order(user.user_id, "12.50")
    assert get_order(user.user_id, order.order_id).amount == order.amount
    source, target = open_account(balance=10), open_account()
    transfer_funds(source.account_id, target.account_id, 3, idempotency_key="first")

    development = sorted({"migrations", "core.localdb"} & set(sys.modules))
    import core, repositories
    from core import localdb
    print(json.dumps({
        "packages": [core.__file__, repositories.__file__],
        "development_loaded": development,
        "local_dir": str(localdb.local_dir()),
    }))
    """
)


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                         check=False)
    assert run.returncode == 0, f"{' '.join(command)}:\n{run.stdout}\n{run.stderr}"
    return run


def _build_wheel(workdir: Path) -> Path:
    """A wheel of the project, built from a copy of what an sdist holds (no stale build folder)."""
    source = workdir / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
          str(workdir / "wheels"), str(source)], cwd=workdir, timeout=300)
    [wheel] = (workdir / "wheels").glob("dynamo_datalayer-*.whl")
    return wheel


def _requirements(metadata: str) -> list[Requirement]:
    """The run-time requirements of a METADATA text (those of no extra)."""
    message = email.parser.Parser().parsestr(metadata)
    found = [Requirement(line) for line in message.get_all("Requires-Dist") or []]
    return [r for r in found if r.marker is None or r.marker.evaluate({"extra": ""})]


def _runtime_closure(requirements: list[Requirement]) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions that satisfy ``requirements``, and theirs, recursively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    waiting = [(requirement, "") for requirement in requirements]
    while waiting:
        requirement, extra = waiting.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = requirement.name.lower().replace("_", "-")
        dist = importlib.metadata.distribution(name)
        assert requirement.specifier.contains(dist.version, prereleases=True), (requirement, dist.version)
        if name in found:
            continue
        found[name] = dist
        for line in dist.requires or []:
            for wanted in ("", *requirement.extras):
                waiting.append((Requirement(line), wanted))
    return found


def _link_dependencies(dists: dict[str, importlib.metadata.Distribution], folder: Path) -> None:
    """Symlink each distribution's top-level files and folders (its code and metadata) into ``folder``."""
    folder.mkdir()
    for dist in dists.values():
        for top in {file.parts[0] for file in dist.files or [] if file.parts[0] != ".."}:
            target = folder / top
            if not target.exists():
                target.symlink_to(Path(str(dist.locate_file(top))))


def _tree(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.mark.timeout(240)
def test_an_app_that_installed_the_layer_writes_nothing_under_site_packages(
    dynamodb_local: LocalDynamoDB, tmp_path: Path
) -> None:
    wheel = _build_wheel(tmp_path)

    # The wheel: the four packages and their metadata, nothing of development.
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    assert {name.split("/")[0] for name in names} == PACKAGES | {metadata_name.split("/")[0]}
    assert any(name.startswith("migrations/versions/0001_") for name in names)
    runtime = _runtime_closure(_requirements(metadata))
    assert not set(runtime) & DEVELOPMENT

    # A fresh virtual environment of the app's own, outside the repository.
    venv = tmp_path / "app-venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
          "--no-index", str(wheel)], cwd=tmp_path)
    site_packages = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              cwd=tmp_path).stdout.strip())
    _link_dependencies(runtime, tmp_path / "dependencies")
    (site_packages / "app-dependencies.pth").write_text(f"{tmp_path / 'dependencies'}\n")
    installed = _tree(site_packages)
    assert {"core", "models", "repositories", "migrations"} <= installed

    # The app: an empty directory, the session's DynamoDB Local, a table of its own.
    app = tmp_path / "app"
    app.mkdir()
    home = tmp_path / "home"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "PYTHONNOUSERSITE": "1",
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "TABLE_NAME": f"app-{uuid.uuid4().hex[:12]}",
    }
    upgrade = _run([str(python), "-m", "migrations", "upgrade", "head"], cwd=app, env=env)
    assert f"table: {env['TABLE_NAME']}" in upgrade.stdout

    used_run = _run([str(python), "-c", APP], cwd=app, env=env)
    assert used_run.stderr == ""
    used = json.loads(used_run.stdout)
    assert all(Path(path).is_relative_to(site_packages) for path in used["packages"])
    assert used["development_loaded"] == []  # an app that calls repositories never loads the runner
    assert used["local_dir"] == str(home / "cache" / "dynamo-datalayer")

    status = _run([str(python), "-m", "migrations", "status"], cwd=app, env=env)
    assert "pending: none" in status.stdout, status.stdout
    # Without an endpoint the local database's folder is the user cache, never the package's.
    local = _run([str(python), "-m", "core.localdb", "status"], cwd=app,
                 env={k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL_DYNAMODB"})
    assert "not running" in local.stdout
    assert (home / "cache" / "dynamo-datalayer" / "dynamodb-data").is_dir()

    assert _tree(site_packages) == installed
    assert list(app.iterdir()) == []
