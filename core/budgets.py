"""Cost budgets of access patterns: what one page of a declared query may cost.

A declared query states its budget (``Budget``); the page engine (``repositories.paging``) measures
each page of it and checks the page against the budget. A ``Budget`` has up to three bounds, each
``None`` (unbounded) or a positive number, and at least one of them set:

- ``max_read_units_per_page``: the read capacity units one page consumed, all its requests
  together, the table's and every index's (DynamoDB's ``ConsumedCapacity.CapacityUnits``). A page
  of ``limit`` items reads ``limit + 1`` (the extra one says whether more follow), so bound it
  for the largest ``limit`` the pattern is called with.
- ``max_items_read_per_item_returned``: the items DynamoDB read for the page (the sum of its
  ``ScannedCount``) over the items the page used: the items it returns plus the one it read ahead.
  It measures waste: items a filter dropped (another entity type that shares the sort-key prefix,
  a filtered attribute), unreadable items skipped, items read past what the page needed. A page
  that used no item compares the items read to 1. A query whose key condition selects exactly its
  items measures 1.0.
- ``max_requests_per_page``: the requests one page sent. A page normally sends one; a filter
  that drops most items makes it send more to fill the page.

What a page costs is measured only when a budget applies to it: otherwise checking costs the page
one context variable lookup. ``core.logs`` collects the cost of each call from DynamoDB's answer
(every data call asks for ``ReturnConsumedCapacity``); a bound whose value the answers did not
report (an endpoint that returns no capacity, a caller that asked for ``NONE``) is not checked.

A page over its budget is served as usual; the overrun logs one WARNING event per exceeded bound on
the ``"dynamodb"`` logger: ``dynamodb.budget_exceeded`` with the ``pattern`` (``Order.of_user``),
the ``bound`` (``max_read_units_per_page``), its ``limit`` and the ``measured`` value; never a key or
an item value. Inside ``watching(...)`` (what ``repositories.testing.assert_within_budget`` builds
on) the overruns are also collected, so that a test can fail on them. A watch may name a pattern
and a budget of its own, which decides the watch's verdict in place of the declared one (whose
overruns are still logged).

A read of every page (``repositories.paging.read_all``) is checked response by response: each
DynamoDB response is one page of one request, the items it returned being the items used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from typing import Any

from core.logs import get_logger, metering

__all__ = ["Budget", "BudgetCheck", "Overrun", "PageCost", "PageUse", "Watch", "checked_page", "checks_for",
           "watching"]

BUDGET_EXCEEDED = "dynamodb.budget_exceeded"


@dataclass(frozen=True)
class Budget:
    """What one page of an access pattern may cost; see the module docstring for each bound.

    ``ValueError`` unless every bound given is a positive finite number (``max_requests_per_page`` an
    ``int``) and at least one is given.
    """

    max_read_units_per_page: float | None = None
    max_items_read_per_item_returned: float | None = None
    max_requests_per_page: int | None = None

    def __post_init__(self) -> None:
        given = [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]
        if not given:
            raise ValueError("a Budget needs at least one bound")
        for name, value in given:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {type(value).__name__}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if self.max_requests_per_page is not None and not isinstance(self.max_requests_per_page, int):
            raise ValueError(f"max_requests_per_page must be an integer, got {self.max_requests_per_page!r}")

    def overruns(self, pattern: str, cost: PageCost) -> list[Overrun]:
        """The bounds ``cost`` exceeds, for one page of ``pattern``."""
        measured: list[tuple[str, float | None, float | None]] = [
            ("max_read_units_per_page", self.max_read_units_per_page, cost.read_units),
            ("max_items_read_per_item_returned", self.max_items_read_per_item_returned,
             cost.items_read_per_item_returned),
            ("max_requests_per_page", self.max_requests_per_page, cost.requests),
        ]
        return [Overrun(pattern, bound, limit, value) for bound, limit, value in measured
                if limit is not None and value is not None and value > limit]


@dataclass(frozen=True)
class PageCost:
    """What one page cost: its requests, read units (``None``: not reported), items read and used."""

    requests: int
    read_units: float | None
    items_read: int | None
    items_returned: int

    @property
    def items_read_per_item_returned(self) -> float | None:
        """Items read over items used (at least 1); ``None`` when the answers did not say."""
        if self.items_read is None:
            return None
        return self.items_read / max(self.items_returned, 1)


@dataclass(frozen=True)
class Overrun:
    """One bound one page exceeded."""

    pattern: str
    bound: str
    limit: float
    measured: float

    def __str__(self) -> str:
        return f"{self.pattern}: {self.bound} is {self.limit:g}, a page measured {self.measured:g}"


@dataclass(eq=False)
class Watch:
    """A ``watching`` block: the overruns of the pages it saw (with ``pattern``: of that pattern only).

    ``budget`` applies to those pages in place of (and, for the event, besides) the declared one.
    ``pages``: the pattern and cost of each page it saw (a test may read them to choose a budget);
    ``unbudgeted``: the patterns it saw that no budget applied to.
    """

    pattern: str | None = None
    budget: Budget | None = None
    overruns: list[Overrun] = field(default_factory=list)
    pages: list[tuple[str, PageCost]] = field(default_factory=list)
    unbudgeted: set[str] = field(default_factory=set)

    def sees(self, pattern: str) -> bool:
        """Whether a page of ``pattern`` is this watch's."""
        return self.pattern is None or self.pattern == pattern


_WATCHES: ContextVar[tuple[Watch, ...]] = ContextVar("datalayer_budget_watches", default=())


@contextmanager
def watching(pattern: str | None = None, budget: Budget | None = None) -> Iterator[Watch]:
    """Collect the overruns of the pages run in the block (this thread or task, and tasks it starts).

    ``pattern`` limits the watch to one access pattern; ``budget`` replaces the declared budget for
    the watch (the declared one still logs its own overruns). Nothing is raised here.
    """
    if budget is not None and not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget, got {type(budget).__name__}")
    watch = Watch(pattern, budget)
    token = _WATCHES.set((*_WATCHES.get(), watch))
    try:
        yield watch
    finally:
        _WATCHES.reset(token)


@dataclass(frozen=True)
class BudgetCheck:
    """The budgets one page of ``pattern`` is to be checked against (made by ``checks_for``)."""

    pattern: str
    declared: Budget | None
    watches: Sequence[Watch]

    def check(self, cost: PageCost) -> list[Overrun]:
        """Check one page: log each overrun, hand it to the watches; return every overrun found."""
        budgets = [] if self.declared is None else [self.declared]
        budgets += [w.budget for w in self.watches if w.budget is not None and w.budget not in budgets]
        found = {budget: budget.overruns(self.pattern, cost) for budget in budgets}
        every = [overrun for overruns in found.values() for overrun in overruns]
        if every:
            logger = get_logger()
            for overrun in every:
                logger.warning(BUDGET_EXCEEDED, pattern=overrun.pattern, bound=overrun.bound,
                               limit=overrun.limit, measured=overrun.measured)
        for watch in self.watches:
            watch.pages.append((self.pattern, cost))
            budget = watch.budget or self.declared
            if budget is None:
                watch.unbudgeted.add(self.pattern)
            else:
                watch.overruns.extend(found[budget])
        return every


def checks_for(pattern: str | None, declared: Budget | None) -> BudgetCheck | None:
    """What a page of ``pattern`` with the ``declared`` budget is checked against; ``None`` (nothing to
    measure) when no budget and no watch applies. Costs one context variable lookup when none is
    declared and nothing watches."""
    watches: tuple[Watch, ...] = _WATCHES.get()
    if pattern is None or (declared is None and not watches):
        return None
    mine = [w for w in watches if w.sees(pattern)]
    if declared is None and not any(w.budget is not None or w.pattern is not None for w in mine):
        return None
    return BudgetCheck(pattern, declared, mine)


@dataclass(eq=False)
class PageUse:
    """What the code in a ``checked_page`` block reports: the items the page used."""

    items: int = 0


@contextmanager
def checked_page(pattern: str | None, budget: Budget | None) -> Iterator[PageUse]:
    """Measure the block's calls as one page of ``pattern`` and check them when it ends (for a read
    that does not go through ``repositories.paging``); set ``PageUse.items`` in the block.

    When no budget applies, nothing is measured. A block that raises is not checked.
    """
    use = PageUse()
    check = checks_for(pattern, budget)
    if check is None:
        yield use
        return
    with metering() as meter:
        yield use
    check.check(PageCost(requests=meter.requests, read_units=meter.read_units,
                         items_read=meter.items_read, items_returned=use.items))


def describe(budget: Any) -> str:
    """A budget's bounds, as ``name=value`` pairs (for messages)."""
    if not isinstance(budget, Budget):
        return repr(budget)
    return ", ".join(f"{f.name}={getattr(budget, f.name):g}" for f in fields(budget)
                     if getattr(budget, f.name) is not None)
