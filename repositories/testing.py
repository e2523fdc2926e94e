"""Test helpers for applications: hold access patterns to their cost budgets.

``assert_within_budget`` is a context manager: every page run in the block that exceeds its budget
makes the block fail with an ``AssertionError`` naming the pattern, the bound and the value measured
(in production the same overrun only logs a ``dynamodb.budget_exceeded`` WARNING)::

    with assert_within_budget(Order.of_user):
        get_user_orders(user_id, limit=100)

    with assert_within_budget("Order.in_status", Budget(max_read_units_per_page=4)):
        orders_by_status("PAID")   # a pattern that declares no budget, or a tighter one

    with assert_within_budget():   # every page of a pattern that declares a budget
        run_the_checkout()

The ``query_budgets`` pytest fixture runs a whole test inside ``assert_within_budget()``. Register
it in a ``conftest.py``: ``pytest_plugins = ["repositories.testing"]``, or import it there.

Pages are seen in this thread or task and the tasks it starts; a thread pool sees the block only
when the work is submitted in a copy of the context (``contextvars.copy_context().run``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import pytest

from core.budgets import Budget, Watch, describe, watching

__all__ = ["Budget", "assert_within_budget", "query_budgets"]


class DeclaredQuery(Protocol):
    """A declared access pattern (``models.queries.Query``): its name, and its budget if it has one."""

    @property
    def qualified_name(self) -> str:
        """``Entity.query_name``."""
        ...


@contextmanager
def assert_within_budget(
    pattern_or_query: str | DeclaredQuery | None = None, budget: Budget | None = None
) -> Iterator[Watch]:
    """Fail the block with an ``AssertionError`` if a page run in it exceeds its budget.

    - no pattern: every page of every pattern, against ``budget`` if given, else its declared one
      (a pattern that declares none is not checked);
    - a pattern (``"Order.of_user"`` or the declared query itself): the pages of that pattern only,
      against ``budget`` if given, else the declared one; the block also fails when the pattern ran
      no page in it, or ran with no budget to check. A declared query that states no budget needs
      ``budget`` (``ValueError`` otherwise).

    Yields the ``core.budgets.Watch`` (its ``overruns`` and ``pages``). An exception raised in the
    block propagates unchanged.
    """
    pattern: str | None
    if pattern_or_query is None or isinstance(pattern_or_query, str):
        pattern = pattern_or_query
    else:
        pattern = pattern_or_query.qualified_name
        if budget is None:
            budget = getattr(pattern_or_query, "budget", None)
            if budget is None:
                raise ValueError(f"{pattern} declares no budget: pass budget=Budget(...)")
    with watching(pattern, budget) as watch:
        yield watch
    _fail_on(watch)


def _fail_on(watch: Watch) -> None:
    problems = [f"over budget: {overrun}" for overrun in watch.overruns]
    if watch.pattern is not None:
        if watch.unbudgeted:
            problems.append(f"{watch.pattern} declares no budget: pass budget=Budget(...)")
        elif not watch.pages:
            problems.append(f"no page of {watch.pattern} ran in the block")
    if problems:
        against = f" (checked against {describe(watch.budget)})" if watch.budget is not None else ""
        raise AssertionError("; ".join(problems) + against)


@pytest.fixture
def query_budgets() -> Iterator[Watch]:
    """Run the test inside ``assert_within_budget()``: a page over its declared budget fails it."""
    with assert_within_budget() as watch:
        yield watch
