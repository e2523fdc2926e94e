"""The one table ``make bench`` prints (Markdown, so the README can hold it as printed)."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.timing import Spread

COLUMNS = ("layer", "layer async", "bare PynamoDB", "botocore", "boto3 Table", "pydynox", "pydynox async",
           "json.loads")


@dataclass(frozen=True)
class Goal:
    """A ratio the layer should reach: ``<= limit`` or ``>= limit``."""

    comparison: str  # "<=" or ">="
    limit: float

    def met(self, value: float) -> bool:
        """Whether ``value`` reaches the goal."""
        return value <= self.limit if self.comparison == "<=" else value >= self.limit

    def __str__(self) -> str:
        return f"{self.comparison} {self.limit:g}"


@dataclass
class Row:
    """One line: the figures of each variant, one ratio over the rounds, and its goal if any."""

    operation: str
    unit: str
    values: dict[str, float] = field(default_factory=dict)  # column -> figure
    ratio_name: str = ""
    ratio: Spread | None = None
    goal: Goal | None = None

    @property
    def status(self) -> str:
        """``met``, ``missed`` or ``-`` (no goal)."""
        if self.goal is None or self.ratio is None:
            return "-"
        return "met" if self.goal.met(self.ratio.median) else "**missed**"


def _figure(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(spread: Spread | None) -> str:
    if spread is None:
        return ""
    return f"{spread.median:.2f} ({spread.low:.2f}-{spread.high:.2f})"


def table(rows: list[Row]) -> str:
    """``rows`` as a Markdown table."""
    header = ["operation", "unit", *COLUMNS, "ratio", "median (min-max)", "goal", "result"]
    lines = [header, ["---"] * len(header)]
    for row in rows:
        lines.append([
            row.operation, row.unit, *(_figure(row.values.get(c)) for c in COLUMNS),
            row.ratio_name, _ratio(row.ratio), str(row.goal) if row.goal else "-", row.status,
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        if n == 1:
            cells = ["-" * w for w in widths]
        else:
            cells = [cell.ljust(w) for cell, w in zip(line, widths, strict=True)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def summary(rows: list[Row]) -> str:
    """``N of M goals met`` and the missed ones by name."""
    goals = [r for r in rows if r.goal is not None and r.ratio is not None]
    missed = [f"{r.operation} ({r.ratio_name})" for r in goals if r.status != "met"]
    text = f"{len(goals) - len(missed)} of {len(goals)} goals met"
    return text + (f"; missed: {', '.join(missed)}" if missed else "")
