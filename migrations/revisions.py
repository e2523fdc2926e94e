"""Revision files: ``migrations/versions/NNNN_slug.py``, loaded and ordered into a chain."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from migrations.context import MigrationError

VERSIONS_DIR = Path(__file__).parent / "versions"
FILE_PATTERN = re.compile(r"^(\d{4})_[a-z0-9_]+\.py$")


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
    message = (module.__doc__ or path.stem).strip().splitlines()[0]
    return Revision(module.revision, module.down_revision, message, path, module.upgrade, module.downgrade)


def load_revisions(directory: Path = VERSIONS_DIR) -> list[Revision]:
    """Every revision in ``directory``, base first; the chain must be linear and unbroken."""
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


def resolve(chain: list[Revision], target: str) -> int:
    """Index in ``chain`` of ``target`` (``head``, ``base`` -> -1, or a revision id)."""
    if target == "head":
        return len(chain) - 1
    if target == "base":
        return -1
    for i, rev in enumerate(chain):
        if rev.revision == target:
            return i
    raise MigrationError(f"unknown revision {target!r}")
