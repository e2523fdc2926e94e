"""Revision files: ``NNNN_slug.py`` in a versions directory, loaded and ordered into a chain.

The directory is ``migrations/versions`` unless a caller names another (``--versions-dir``).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from migrations.calls import MigrationError

VERSIONS_DIR = Path(__file__).parent / "versions"
FILE_PATTERN = re.compile(r"^(\d{4})_[a-z0-9_]+\.py$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
RELATIVE = re.compile(r"^([+-])(\d+)$")


@dataclass(frozen=True)
class Revision:
    """One revision file: its id, parent, message and functions."""

    revision: str
    down_revision: str | None
    message: str
    path: Path
    upgrade: Callable[[Any], None]
    downgrade: Callable[[Any], None]


def _load(path: Path) -> Revision:
    spec = importlib.util.spec_from_file_location(f"migrations.versions.r{path.stem}", path)
    if spec is None or spec.loader is None:
        raise MigrationError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("revision", "down_revision", "upgrade", "downgrade"):
        if not hasattr(module, name):
            raise MigrationError(f"{path.name} has no {name!r}")
    # The whole first paragraph, on one line: a message wrapped over several lines is not cut.
    paragraph = _PARAGRAPH_BREAK.split((module.__doc__ or path.stem).strip(), maxsplit=1)[0]
    message = " ".join(line.strip() for line in paragraph.splitlines())
    return Revision(module.revision, module.down_revision, message, path, module.upgrade, module.downgrade)


def load_revisions(directory: Path | None = None) -> list[Revision]:
    """Every revision in ``directory``, base first; the chain must be linear and unbroken."""
    directory = directory or VERSIONS_DIR
    if not directory.is_dir():
        raise MigrationError(f"no versions directory at {directory}")
    found = [_load(p) for p in sorted(directory.glob("*.py")) if FILE_PATTERN.match(p.name)]
    by_parent: dict[str | None, Revision] = {}
    for rev in found:
        if rev.down_revision in by_parent:
            other = by_parent[rev.down_revision].path.name
            raise MigrationError(f"{rev.path.name} and {other} both follow {rev.down_revision}")
        by_parent[rev.down_revision] = rev
    chain: list[Revision] = []
    parent: str | None = None
    while parent in by_parent:
        chain.append(by_parent[parent])
        parent = chain[-1].revision
    if len(chain) != len(found):
        orphans = sorted({r.path.name for r in found} - {r.path.name for r in chain})
        raise MigrationError(f"revisions not reachable from base: {', '.join(orphans)}")
    return chain


def relative(target: str) -> int | None:
    """The step of a relative target (``+2`` -> 2, ``-1`` -> -1); ``None`` for any other target."""
    match = RELATIVE.match(target)
    return None if match is None else int(match[2]) * (1 if match[1] == "+" else -1)


def targets(chain: list[Revision]) -> str:
    """The targets ``resolve`` accepts for ``chain``, for an error message."""
    ids = ", ".join(rev.revision for rev in chain) or "no revision files"
    return f"{ids}, head, base, +N or -N (N revisions up or down from the current one)"


def resolve(chain: list[Revision], target: str, records: dict[str, dict[str, Any]] | None = None) -> int:
    """Index in ``chain`` of ``target``: ``head``, ``base`` (-1), a revision id, or ``+N``/``-N``
    relative to the current revision that the ledger's ``records`` give."""
    if target == "head":
        return len(chain) - 1
    if target == "base":
        return -1
    for i, rev in enumerate(chain):
        if rev.revision == target:
            return i
    step = relative(target)
    if step is None:
        raise MigrationError(f"unknown revision {target!r}; valid targets: {targets(chain)}")
    if records is None:
        raise MigrationError(f"{target} is relative to the current revision: it needs the ledger")
    now = position(chain, records)
    goal = now + step
    if not -1 <= goal < len(chain):
        bound = "base" if step < 0 else f"head ({chain[-1].revision})" if chain else "head"
        at = "base" if now < 0 else chain[now].revision
        raise MigrationError(
            f"{target} goes past {bound}: the current revision is {at}; valid targets: {targets(chain)}"
        )
    return goal


def current(chain: list[Revision], applied: set[str]) -> int:
    """Index of the last revision of the unbroken applied prefix of ``chain`` (-1 for none)."""
    index = -1
    for i, rev in enumerate(chain):
        if rev.revision not in applied:
            break
        index = i
    return index


def position(chain: list[Revision], records: dict[str, dict[str, Any]]) -> int:
    """The current revision's index in ``chain`` given the ledger's ``records``; a ledger that
    names revisions the chain lacks, or applied revisions after one that is not, is refused (the
    runner would run revisions again, or against a table it does not understand)."""
    unknown = sorted(set(records) - {r.revision for r in chain})
    if unknown:
        raise MigrationError(
            f"the ledger records revisions that are not in the versions directory: {', '.join(unknown)}; "
            "restore their files (or point --versions-dir at the right directory) before going on"
        )
    applied = {r for r, rec in records.items() if rec.get("Status") == "applied"}
    index = current(chain, applied)
    beyond = [r.revision for r in chain[index + 1 :] if r.revision in applied]
    if beyond:
        missing = chain[index + 1].revision
        raise MigrationError(
            f"the ledger has a gap: {', '.join(beyond)} applied but {missing} not; "
            "the runner will not guess which is right: inspect the table and fix the ledger"
        )
    return index


def name(chain: list[Revision], index: int) -> str:
    """``base``, or the revision at ``index`` with its message."""
    return "base" if index < 0 else f"{chain[index].revision} ({chain[index].message})"


def slugify(message: str) -> str:
    """A file-name slug for ``message``: lower-case words joined by ``_``, at most 40 characters."""
    words = re.findall(r"[a-z0-9]+", message.lower())
    slug = "_".join(words)[:40].strip("_")
    return slug or "revision"


def write_revision(
    directory: Path, chain: list[Revision], message: str, upgrade_body: list[str], downgrade_body: list[str]
) -> Path:
    """Write the next numbered revision after ``chain``'s head; return its path."""
    if not message.strip() or '"""' in message:
        raise MigrationError("a revision needs a message (without triple quotes)")
    number = int(chain[-1].revision) + 1 if chain else 1
    revision = f"{number:04d}"
    uses_key = any("Key(" in line for line in upgrade_body + downgrade_body)
    imports = [
        "from migrations.context import Key, MigrationContext"
        if uses_key
        else "from migrations.context import MigrationContext"
    ]
    parent = repr(chain[-1].revision) if chain else "None"
    text = "\n".join(
        [
            f'"""{message.strip()}"""',
            "",
            "from __future__ import annotations",
            "",
            *imports,
            "",
            f'revision = "{revision}"',
            f"down_revision = {parent}".replace("'", '"'),
            "",
            "",
            "def upgrade(ctx: MigrationContext) -> None:",
            *[f"    {line}" for line in (upgrade_body or ["pass"])],
            "",
            "",
            "def downgrade(ctx: MigrationContext) -> None:",
            *[f"    {line}" for line in (downgrade_body or ["pass"])],
            "",
        ]
    )
    path = directory / f"{revision}_{slugify(message)}.py"
    if path.exists():
        raise MigrationError(f"{path} exists already")
    path.write_text(text)
    return path
