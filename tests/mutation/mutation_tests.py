"""The test command mutmut runs for each mutant (``[tool.mutmut] runner`` in pyproject.toml).

Only the fast unit tests (``tests/unit``, on moto), stopping at the first failure, each test given
``TEST_TIMEOUT_SECONDS`` (a mutant that loops forever fails its test instead of hanging the run).

- ``mutation_tests.py``: every unit test. The first such run (mutmut's baseline, unmutated code)
  records line coverage per test (``.coverage``, pytest-cov contexts) for ``mutmut_config.py``.
- ``mutation_tests.py FILE``: only the test ids listed in ``FILE`` (those that run the mutated
  line, chosen by ``mutmut_config.pre_mutation``); an empty list runs nothing and passes.

Exit status 0 when the tests pass, 1 otherwise: mutmut 2 counts any status but 1 as "survived",
which would score a mutant that breaks the import (pytest's status 2) as a survivor.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = "tests/unit"
TEST_TIMEOUT_SECONDS = 30
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
          f"--timeout={TEST_TIMEOUT_SECONDS}", "--no-header", "-o", "addopts=--strict-markers"]
COVERAGE = ["--cov=core", "--cov=models", "--cov=repositories", "--cov-context=test", "--cov-report="]


def main(argv: list[str]) -> int:
    """Run the unit tests (all, or those listed in ``argv[0]``); 0 if they pass, else 1."""
    if argv:
        ids = [line for line in Path(argv[0]).read_text().splitlines() if line]
        if not ids:
            print("no unit test runs the mutated line")
            return 0
        command = [*PYTEST, *ids]
    else:
        command = [*PYTEST, *([] if Path(".coverage").exists() else COVERAGE), TESTS]
    return 0 if subprocess.run(command, check=False).returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
