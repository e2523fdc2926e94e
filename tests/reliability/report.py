"""What each phase counted, and the one table ``make reliability`` prints at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

COLUMNS = (
    ("phase", "phase"),
    ("operations", "operations run"),
    ("faults", "faults injected"),
    ("true", "outcomes true"),
    ("false", "outcomes false"),
    ("broken", "broken rules"),
    ("raw", "raw exceptions"),
    ("violations", "invariant violations"),
    ("refused", "bad inputs refused"),
    ("written", "bad inputs written"),
    ("mishandled", "bad inputs mishandled"),
)


@dataclass
class PhaseResult:
    """The counts of one phase, and the findings behind every bad count (one line each)."""

    phase: str
    operations: int = 0
    faults: int = 0
    true: int = 0
    false: int = 0
    violations: int = 0
    refused: int = 0
    written: int = 0
    mishandled: int = 0  # refused with the wrong error, accepted, or crashed (not a DataLayerError)
    broken: int = 0  # phase 4: attempts after which the stored data broke a declared rule
    raw: int = 0  # phase 4: exceptions that are not a DataLayerError (PynamoDB's, botocore's, ...)
    unavailable: str | None = None  # phase 4: what the attack needs and the code under test lacks
    seconds: float = 0.0
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def finding(self, line: str) -> None:
        """Record one false outcome, violation or bad input handled wrongly."""
        self.findings.append(line)

    def violation(self, lines: list[str], when: str) -> None:
        """Record invariant violations found at ``when`` (each distinct one counted once)."""
        for line in lines:
            entry = f"invariant violated ({when}): {line}"
            if entry not in self.findings:
                self.violations += 1
                self.findings.append(entry)

    @property
    def failed(self) -> bool:
        """Whether this phase makes the run fail."""
        return bool(
            self.false or self.violations or self.written or self.mishandled or self.broken or self.raw
            or self.unavailable
        )

    @property
    def label(self) -> str:
        """The row's name in the table (saying so when the attack could not run in full)."""
        return self.phase if self.unavailable is None else f"{self.phase} (not available)"


def render(results: list[PhaseResult], seconds: float) -> str:
    """The findings (capped per phase), then the table, with a total row."""
    lines: list[str] = []
    for result in results:
        if result.unavailable is not None:
            lines.append(f"[{result.phase}] NOT AVAILABLE: {result.unavailable}")
        for note in result.notes:
            lines.append(f"[{result.phase}] {note}")
        for finding in result.findings[:40]:
            lines.append(f"[{result.phase}] FINDING: {finding[:600]}")
        if len(result.findings) > 40:
            lines.append(f"[{result.phase}] ... and {len(result.findings) - 40} more findings")
    total = PhaseResult("total", seconds=seconds)
    for result in results:
        for name, _ in COLUMNS[1:]:
            setattr(total, name, getattr(total, name) + getattr(result, name))
    rows = [[title for _, title in COLUMNS] + ["seconds"]]
    for result in [*results, total]:
        cells = [result.label] + [str(getattr(result, name)) for name, _ in COLUMNS[1:]]
        rows.append([*cells, f"{result.seconds:.0f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    table = [line(rows[0]), rule, *(line(row) for row in rows[1:-1]), rule, line(rows[-1])]
    verdict = "FAIL" if any(r.failed for r in results) else "PASS"
    return "\n".join([*lines, "", *table, "", f"reliability: {verdict}"])
