"""mutmut 2's hook (copied to the root of the copy a mutation run works in): which tests to run.

Running all 900+ unit tests for each mutant takes minutes; only the tests that execute the mutated
line can tell it from the original. The baseline run recorded, per line, the tests that ran it
(``.coverage`` with pytest-cov contexts, see ``mutation_tests.py``). A line no test runs is
reported as surviving without running anything.

A line run while the modules were imported (a constant, a default, a decorator, a declaration) is
run by no test in particular; its mutant runs the tests whose body (not only their fixtures) runs
some of the module's code, which reads what the line defines, or every test for a module none of
whose code runs in a test (a declaration read by PynamoDB only). A name defined at import and read
only by other modules, in a test that runs none of the defining module's code, escapes this; the
price of running every test for such lines was minutes per mutant.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

SELECTION = Path(".mutmut-selected-tests")


@functools.cache
def _contexts_by_line(filename: str) -> dict[int, list[str]]:
    from coverage import CoverageData

    data = CoverageData(".coverage")
    data.read()
    return data.contexts_by_lineno(str(Path(filename).resolve()))


@functools.cache
def _statements(filename: str) -> list[ast.stmt]:
    # Read before the first mutant is written: the hook runs before mutmut mutates the file.
    tree = ast.parse(Path(filename).read_text(), filename)
    return [node for node in ast.walk(tree) if isinstance(node, ast.stmt)]


def _innermost(filename: str, line: int, kinds: tuple[type[ast.stmt], ...]) -> ast.stmt | None:
    holding = [s for s in _statements(filename)
               if isinstance(s, kinds) and s.lineno <= line <= (s.end_lineno or s.lineno)]
    return max(holding, key=lambda s: (s.lineno, -(s.end_lineno or s.lineno)), default=None)


def tests_for_line(filename: str, line: int) -> list[str] | None:
    """The test ids to run for a mutant of ``line`` (1-based), ``None`` for every test.

    First the tests that ran the statement (coverage may record only its first line), then the
    others that ran its function: a line run once per process (a client built on first use and
    cached) is recorded for whichever test came first, yet a later test may be the one to notice.
    """
    by_line = _contexts_by_line(filename)
    statement = _innermost(filename, line, (ast.stmt,))
    first = line if statement is None else statement.lineno  # None: a module-level decorator
    contexts = [c for n in range(first, line + 1) for c in by_line.get(n, [])]
    if "" in contexts:  # run while importing: the tests whose own body runs some of the module's code
        contexts = [c for cs in by_line.values() for c in cs if c.endswith("|run")]
        if not contexts:
            return None
    function = _innermost(filename, line, (ast.FunctionDef, ast.AsyncFunctionDef))
    if function is not None and contexts:
        body = range(function.body[0].lineno, (function.end_lineno or function.lineno) + 1)
        contexts += [c for n in body for c in by_line.get(n, [])]
    return list(dict.fromkeys(c.rsplit("|", 1)[0] for c in contexts if c))


def pre_mutation(context: Any) -> None:
    """Point the test command at the tests that run the mutated line."""
    ids = tests_for_line(context.filename, context.current_line_index + 1)
    if ids is None:
        return  # the default command: every unit test
    SELECTION.write_text("".join(f"{test_id}\n" for test_id in ids))
    context.config.test_command = f"{context.config.test_command} {SELECTION}"
