"""Interleaved timing: every variant runs a block of operations each round, the first rotated.

A round runs one block of each variant back to back, starting with a different variant each
round, so drift in the machine (another process, frequency changes) hits them alike. Ratios are
taken within a round, then summarised over the rounds as median (min-max).

What exists before the timing starts (modules, clients, the recorded responses, the seeded ids)
is moved to the garbage collector's permanent generation (``gc.freeze``), as a long-running app's
start-up state is in effect: collections during a block then scan what the variants allocate,
not the benchmark's own set-up, and a collection between blocks is cheap.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]
CPU: Clock = time.process_time
WALL: Clock = time.perf_counter


@dataclass(frozen=True)
class Variant:
    """One way of doing the operation: ``op(i)`` does it once (``i`` numbers the calls).

    ``many(n)``, when given, does it ``n`` times in one go and is what a timed block runs (an async
    variant awaits its ``n`` calls in one run of the event loop, as an app's loop would).
    """

    name: str
    op: Callable[[int], Any]
    block: int = 0  # operations a block (0: the scenario's)
    items: int = 1  # items one operation handles: figures are per item
    sends: bool = True  # makes requests (json.loads only decodes the recorded bodies)
    many: Callable[[int], Any] | None = None


@dataclass(frozen=True)
class Spread:
    """The median and the range of per-round figures."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise ``values`` (one per round)."""
        return cls(statistics.median(values), min(values), max(values))


@dataclass
class Samples:
    """Seconds per operation (per item, for variants that handle several) of each variant, one
    figure per round."""

    per_op: dict[str, list[float]]
    # CPU seconds (``time.process_time``) per operation of the same blocks, whatever the clock timed:
    # what a wall-time block cost the process.
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        """The median seconds per operation of ``name``."""
        return statistics.median(self.per_op[name])

    def ratio(self, numerator: str, denominator: str, *, invert: bool = False) -> Spread:
        """``numerator``'s time over ``denominator``'s, round by round (``invert``: the other way,
        which is the ratio of throughputs)."""
        pairs = zip(self.per_op[numerator], self.per_op[denominator], strict=True)
        return Spread.of([(d / n) if invert else (n / d) for n, d in pairs])

    def over(self, name: str, reference: float) -> Spread:
        """``name``'s time over a fixed ``reference`` (an ideal), round by round."""
        return Spread.of([value / reference for value in self.per_op[name]])


def _block(variant: Variant, count: int, clock: Clock,
           after: Callable[[Variant], None] | None) -> tuple[float, float]:
    """Seconds per operation (per item) of one block on ``clock``, and on the CPU clock."""
    gc.collect()
    cpu, start = CPU(), clock()
    if variant.many is not None:
        variant.many(count)
    else:
        for i in range(count):
            variant.op(i)
    elapsed, cpu = clock() - start, CPU() - cpu
    if after is not None:
        after(variant)
    operations = count * variant.items
    return elapsed / operations, cpu / operations


def interleaved(
    variants: Sequence[Variant],
    *,
    rounds: int,
    block: int,
    clock: Clock = CPU,
    after: Callable[[Variant], None] | None = None,
    warmup: Sequence[Variant] | None = None,
) -> Samples:
    """Time ``variants`` in interleaved blocks of ``block`` operations, after one warm-up block of
    each (or of each of ``warmup``, smaller stand-ins for long operations). ``after(variant)`` runs
    after each block, outside the timing (the canned server's checks).
    """
    per_op: dict[str, list[float]] = {v.name: [] for v in variants}
    cpu: dict[str, list[float]] = {v.name: [] for v in variants}
    gc.collect()
    gc.freeze()
    for variant in warmup or variants:  # imports, connections, caches
        _block(variant, variant.block or block, clock, after)
    for r in range(rounds):
        shift = r % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            timed, spent = _block(variant, variant.block or block, clock, after)
            per_op[variant.name].append(timed)
            cpu[variant.name].append(spent)
    return Samples(per_op, cpu)
