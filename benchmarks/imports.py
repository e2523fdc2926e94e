"""Cold import: fresh ``python -c "import X"`` processes, minus the bare interpreter start.

Each round starts one process per statement (``pass`` included), first statement rotated, so the
start-up cost of the interpreter (site-packages, the editable install's path hooks) is measured in
the same round and subtracted. What is measured is the child's CPU time (user + system, from
``getrusage(RUSAGE_CHILDREN)``): on a shared machine it varies far less than wall time, and with
the files in the page cache an import waits on nothing else. Byte-code caches are warm, as in any
deployed app: "cold" means a new process, not an empty disk cache.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.timing import Samples

ROOT = Path(__file__).resolve().parent.parent
BARE = "pass"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _start(statement: str) -> float:
    """CPU seconds of one fresh interpreter running ``statement``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # byte-code is written
    before = _children_cpu()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, env=env, check=True)
    return _children_cpu() - before


def cold_imports(modules: Sequence[str], *, rounds: int) -> tuple[Samples, list[float]]:
    """CPU seconds each ``import`` adds to a fresh interpreter, one figure per round; and the bare
    start-up times."""
    statements = [BARE, *(f"import {m}" for m in modules)]
    for statement in statements:  # warm-up: byte-code written, files in the page cache
        _start(statement)
    per_op: dict[str, list[float]] = {m: [] for m in modules}
    bare: list[float] = []
    for r in range(rounds):
        shift = r % len(statements)
        took = {s: _start(s) for s in [*statements[shift:], *statements[:shift]]}
        bare.append(took[BARE])
        for module in modules:
            per_op[module].append(max(took[f"import {module}"] - took[BARE], 1e-6))
    return Samples(per_op), bare
