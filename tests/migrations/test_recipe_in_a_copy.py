"""Acceptance: the README's "Declaring a new entity", followed in a copy of the working tree,
leaves the suites that could break green.

The copy holds the project's files as they are on disk (``git ls-files``, tracked and new, never
``.venv``), and its ``.venv`` runs this interpreter. The recipe (``tests.migrations.recipe``) is
followed as written, under its own names: its files are written, its commands run in the copy
against the session's DynamoDB Local, on a table at head as ``make migrate`` leaves it. Then, in
the copy, ``ruff``, ``mypy --strict`` and the suites that read the declarations run against the
extended model. A step the recipe leaves out (a list to extend, a name to register, a revision not
written) fails here, with the output of what failed.

Of the suites that could break (``SUITES``), the files that read the declarations as a whole run:
all of ``SUITES`` take about three times as long. ``RECIPE_WHOLE_SUITES=1`` runs them all.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Settings
from core.localdb import install_dir
from migrations import runner
from tests.migrations.helpers import REPO, quiet
from tests.migrations.recipe import Recipe, read_recipe

pytestmark = pytest.mark.integration

THIS = Path(__file__).resolve().relative_to(REPO).as_posix()
# Where a new entity can break something: the unit tests, the migrations' (check, autogenerate,
# export, policy) and the policy against a live session.
SUITES = ("tests/unit", "tests/migrations", "tests/integration/test_policy_local.py")
# The part of SUITES that reads the declarations as a whole (every entity, the declared table, the
# policy, the registry stored items are read through); the rest uses named entities only.
READS_DECLARATIONS = re.compile(
    r"\bENTITIES\b|^import models\b|\bdeclared_spec\b|\bdeclared\.|_get_schema|from_raw_data|autogenerate"
    r"|\bmigrations\.(policy|export|declared)\b|^from migrations import[^\n]*\b(policy|export|declared)\b"
    r"|\"(check|export|policy)\"",
    flags=re.M,
)
WHOLE_SUITES = os.environ.get("RECIPE_WHOLE_SUITES") == "1"
WORKERS = "2"
LIMIT_SECONDS = 600


def _copy_working_tree(target: Path) -> None:
    """The project's files as they are on disk: tracked (as edited) and new, not ignored ones."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode()
    for name in sorted(set(listed.split("\0")) - {""}):
        source = REPO / name
        if name.split("/", 1)[0] == ".venv" or not source.is_file():  # the environment; or deleted
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)


def _venv(target: Path) -> None:
    """``.venv`` of the copy: this interpreter and its tools (the copy's packages come first on
    ``PYTHONPATH``), installed as far as ``make`` can tell."""
    here, there = Path(sys.executable).parent, target / ".venv" / "bin"
    there.mkdir(parents=True)
    for tool in here.iterdir():
        if tool.name.startswith("python"):
            (there / tool.name).write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
            (there / tool.name).chmod(0o755)
        else:
            (there / tool.name).symlink_to(tool)
    (target / ".venv" / ".installed-stamp").touch()  # newer than the copied pyproject.toml


def _environment(copy: Path) -> dict[str, str]:
    """This test's environment (endpoint, table names, credentials) for a process in the copy."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(copy)
    env["DYNAMODB_LOCAL_HOME"] = str(install_dir())  # installed once, not again for the copy
    return env


def _write_recipe(recipe: Recipe, copy: Path) -> None:
    assert recipe.files, "the recipe writes no file"
    for name, content in recipe.files.items():
        path = copy / name
        assert not path.exists(), f"the recipe edits {name}: a new entity must need new files only"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def _failure(what: str, done: subprocess.CompletedProcess[str]) -> str:
    return f"--- {what} (exit {done.returncode})\n{done.stdout[-20000:]}{done.stderr[-20000:]}"


def _run(command: str | list[str], copy: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=isinstance(command, str), cwd=copy, env=env, capture_output=True,
                          text=True, timeout=LIMIT_SECONDS, check=False)


# What the recipe's model modules define, and whether ENTITIES has it: without a registration step.
_REGISTERED = """
import importlib, sys
import models
from models.table import TableModel
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, TableModel) and value.__module__ == name
                and value.keys is not None):
            assert value in models.ENTITIES, f"{name}.{value.__name__} is not in models.ENTITIES"
            print(f"{name}.{value.__name__}")
"""


def _suites(copy: Path) -> list[str]:
    """What pytest runs in the copy: SUITES, or the files of SUITES that read the declarations."""
    if WHOLE_SUITES:
        return list(SUITES)
    files = sorted(
        path.relative_to(copy).as_posix()
        for suite in SUITES
        for path in ((copy / suite).rglob("test_*.py") if (copy / suite).is_dir() else [copy / suite])
        if READS_DECLARATIONS.search(path.read_text(encoding="utf-8"))
    )
    return [name for name in files if name != THIS]


@pytest.mark.timeout(LIMIT_SECONDS + 120)
def test_the_readme_recipe_followed_in_a_copy_keeps_lint_types_and_suites_green(
    local: Settings, tmp_path: Path
) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("the working tree is copied by `git ls-files`: not a git checkout")
    recipe = read_recipe()
    copy = tmp_path / "project"
    _copy_working_tree(copy)
    _venv(copy)
    env = _environment(copy)
    runner.upgrade(out=quiet, versions_dir=copy / "migrations" / "versions")  # the user's table, at head
    revisions_before = {p.name for p in (copy / "migrations" / "versions").glob("*.py")}

    # The recipe, word for word: its files, then its commands.
    _write_recipe(recipe, copy)
    for command in recipe.commands:
        done = _run(command, copy, env)
        assert done.returncode == 0, _failure(f"the recipe's `{command}`", done)

    # Afterwards: the table matches the extended model, and its entities are registered.
    done = _run([sys.executable, "-m", "migrations", "check"], copy, env)
    assert done.returncode == 0, _failure("`python -m migrations check` after the recipe", done)
    written = {p.name for p in (copy / "migrations" / "versions").glob("*.py")} - revisions_before
    assert written, "the recipe's commands wrote no revision: the model it declares is not the table's"
    modules = [name.removesuffix(".py").replace("/", ".") for name in recipe.files
               if name.startswith("models/")]
    done = _run([sys.executable, "-c", _REGISTERED, *modules], copy, env)
    assert done.returncode == 0 and done.stdout.strip(), _failure("the recipe's entities in ENTITIES", done)

    # What could break, against the extended model: side by side, then every failure reported.
    suites = _suites(copy)
    checks = {
        "ruff check": [sys.executable, "-m", "ruff", "check", "--no-cache", "models", "repositories",
                       "migrations", "core", "tests"],
        "mypy --strict": [sys.executable, "-m", "mypy", "--strict", "models", "repositories", "migrations",
                          "core"],
        f"pytest -n {WORKERS} {' '.join(suites)}": [
            sys.executable, "-m", "pytest", "-q", "--no-header", "-p", "no:cacheprovider", "-n", WORKERS,
            "--ignore", THIS, *suites,
        ],
    }
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    started = {}
    for number, (name, command) in enumerate(checks.items()):
        with (outputs / f"{number}.out").open("w") as out, (outputs / f"{number}.err").open("w") as err:
            started[name] = (number, subprocess.Popen(command, cwd=copy, env=env, stdout=out, stderr=err))
    failures = []
    try:
        for name, (number, process) in started.items():
            process.wait(timeout=LIMIT_SECONDS)
            if process.returncode != 0:
                done = subprocess.CompletedProcess(process.args, process.returncode,
                                                   (outputs / f"{number}.out").read_text(),
                                                   (outputs / f"{number}.err").read_text())
                failures.append(_failure(name, done))
    finally:
        for _, process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    assert not failures, "after the recipe, in the copy:\n" + "\n".join(failures)
