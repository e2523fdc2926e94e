"""Phase 3: a catalogue of bad inputs to every public repository function (and the entities' own
writes); each must be refused with its typed error and leave the table exactly as it was.

For each case: scan the whole table, call (with a 10-second alarm), scan again. The case is
*refused* when the call raised the expected error (``InvalidInput`` unless the case names another
typed ``DataLayerError``, such as ``NotFound`` for an unknown account) and the table is unchanged;
*written* when the table changed, whatever was raised; *mishandled* otherwise: the wrong error, a
crash with something that is not a ``DataLayerError``, no error at all, or a hang.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from tests.reliability.catalogue import OPENED, Case, Fixture, catalogue
from tests.reliability.outcomes import describe, summarise
from tests.reliability.report import PhaseResult
from tests.reliability.table import Invariants, diff, fresh_table, scan

TIMEOUT_SECONDS = 10


class _Hung(BaseException):
    """The alarm went off: the call took longer than ``TIMEOUT_SECONDS``."""


def _alarm(*_: Any) -> None:
    raise _Hung()


def run(seed: int) -> PhaseResult:
    """Phase 3, on a table of its own. (``seed`` is unused: the catalogue is fixed.)"""
    result = PhaseResult("3 hostile input")
    started = time.monotonic()
    fresh_table("rel-hostile")
    fixture = Fixture()
    previous = signal.signal(signal.SIGALRM, _alarm)
    functions: set[str] = set()
    try:
        for case in catalogue(fixture):
            functions.add(case.function)
            _run_case(case, result)
    finally:
        signal.signal(signal.SIGALRM, previous)
    invariants = Invariants()
    invariants.opened.update({fixture.source.account_id: OPENED[0], fixture.target.account_id: OPENED[1]})
    result.violation(invariants.check(scan()), "after the catalogue")
    result.notes.append(f"{result.operations} bad inputs to {len(functions)} functions and entity methods")
    result.seconds = time.monotonic() - started
    return result


def _run_case(case: Case, result: PhaseResult) -> None:
    before = scan()
    outcome: object
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_SECONDS)
    try:
        outcome = case.call()
    except _Hung as exc:
        outcome = exc
    except Exception as exc:  # judged below
        outcome = exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    changes = diff(before, scan())
    result.operations += 1
    label = f"{case.function} <- {case.what}"
    if changes:
        result.written += 1
        raised = summarise(outcome) if isinstance(outcome, BaseException) else "returned normally"
        result.finding(f"bad input WRITTEN: {label}: {raised}; the table shows {describe(changes)}")
    elif isinstance(outcome, case.expected):
        result.refused += 1
    else:
        result.mishandled += 1
        if isinstance(outcome, _Hung):
            got = f"no answer within {TIMEOUT_SECONDS} s"
        elif isinstance(outcome, BaseException):
            got = summarise(outcome)
        else:
            got = f"accepted, returned {type(outcome).__name__}"
        want = "/".join(e.__name__ for e in case.expected)
        result.finding(f"bad input mishandled: {label}: want {want}, got {got}")
