"""``make mutation``: mutmut over the packages, in copies of the tree, and the score.

    python tests/mutation/mutation.py [--paths core/client.py,repositories/cache.py] [--jobs 2]
                             [--time-limit SECONDS] [--drop 'tests/unit/test_mutants_*.py'] [--keep]

mutmut 2 writes each mutant into the source file it mutates; here it only ever does so in a copy
of the working tree (one copy per job, ``--jobs`` running side by side, the files shared out by
size), so the checkout, and whoever runs tests in it meanwhile, never sees a mutant. What is
mutated and the test command come from ``[tool.mutmut]`` in pyproject.toml; ``--paths`` narrows
it to some files or folders. Each mutant runs only the unit tests that execute its line
(``tests/mutation/mutmut_config.py``, ``tests/mutation/mutation_tests.py``). ``--drop`` leaves
files out of the copies (to score the suite as it was before some tests were added).
``--time-limit`` stops the run; mutants not reached by then are counted as untested.

Prints, per file and in all, killed / tested and every surviving mutant as a diff; the same
report is written to ``report.txt`` in the work directory (kept with ``--keep``).
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_COPIED = shutil.ignore_patterns(
    ".venv", ".local", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    ".hypothesis", ".mutmut-cache", ".coverage", "*.egg-info", "mutants",
)
DETECTED = {"ok_killed": "killed", "ok_suspicious": "killed", "bad_timeout": "timeout"}


@dataclass(frozen=True)
class Mutant:
    """One mutant as mutmut's cache records it."""

    job: Path
    id: int
    filename: str
    line_number: int  # 1-based
    line: str
    status: str


def mutmut_settings() -> dict[str, str]:
    """``[tool.mutmut]`` of pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        settings: dict[str, str] = tomllib.load(f)["tool"]["mutmut"]
    return settings


def python_files(paths: list[str]) -> list[str]:
    """The Python files under ``paths`` (files or folders, relative to the repository)."""
    files: list[str] = []
    for path in paths:
        target = ROOT / path
        if not target.exists():
            raise SystemExit(f"mutation: no such file or folder: {path}")
        found = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        files += [str(f.relative_to(ROOT)) for f in found if "__pycache__" not in f.parts]
    return list(dict.fromkeys(files))


def share_out(files: list[str], jobs: int) -> list[list[str]]:
    """Split the files into ``jobs`` groups of about the same number of lines (largest first)."""
    groups: list[list[str]] = [[] for _ in range(min(jobs, len(files)))]
    sizes = [0] * len(groups)
    for file in sorted(files, key=lambda f: -len((ROOT / f).read_text().splitlines())):
        smallest = sizes.index(min(sizes))
        groups[smallest].append(file)
        sizes[smallest] += len((ROOT / file).read_text().splitlines())
    return groups


def make_copy(destination: Path, drop: list[str]) -> None:
    """Copy the working tree (without environments and caches), minus ``drop``, plus mutmut's hook."""
    shutil.copytree(ROOT, destination, ignore=NOT_COPIED)
    for pattern in drop:
        for path in destination.glob(pattern):
            path.unlink()
    shutil.copy(ROOT / "tests" / "mutation" / "mutmut_config.py", destination / "mutmut_config.py")


def run_jobs(work: Path, groups: list[list[str]], drop: list[str], time_limit: float | None) -> list[Path]:
    """Run one mutmut per group, side by side, each in its own copy; stop them all at the time limit."""
    settings = mutmut_settings()
    runner = settings["runner"]
    if runner.startswith("python "):
        runner = f"{sys.executable} {runner.removeprefix('python ')}"
    running: list[tuple[Path, subprocess.Popen[bytes]]] = []
    for number, group in enumerate(groups):
        job = work / f"job{number}"
        make_copy(job, drop)
        command = [sys.executable, "-m", "mutmut", "run", "--paths-to-mutate", ",".join(group),
                   "--runner", runner, "--tests-dir", settings["tests_dir"],
                   "--no-progress", "--simple-output", "--CI"]
        log = (work / f"job{number}.log").open("wb")
        print(f"mutation: job{number}: {', '.join(group)} (log: {work / f'job{number}.log'})", flush=True)
        running.append((job, subprocess.Popen(command, cwd=job, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True)))
    deadline = None if time_limit is None else time.monotonic() + time_limit
    for job, process in running:
        try:
            process.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            print(f"mutation: time limit reached, stopping {job.name}", flush=True)
            subprocess.run(["kill", "-TERM", f"-{process.pid}"], check=False)  # its group: mutmut and pytest
            process.wait()
            for backup in job.rglob("*.py.bak"):  # the mutant it was testing: put the original back
                backup.replace(backup.with_suffix(""))
        if process.returncode not in (0, None) and not (job / ".mutmut-cache").exists():
            raise SystemExit(f"mutation: {job.name} failed before testing a mutant, see {job}.log")
    return [job for job, _ in running]


def read_mutants(job: Path) -> list[Mutant]:
    """Every mutant of a job, from mutmut's cache (a SQLite file)."""
    if not (job / ".mutmut-cache").exists():
        return []
    with sqlite3.connect(job / ".mutmut-cache") as db:
        rows = db.execute(
            "SELECT m.id, f.filename, l.line_number, l.line, m.status FROM Mutant m"
            " JOIN Line l ON m.line = l.id JOIN SourceFile f ON l.sourcefile = f.id"
            " ORDER BY f.filename, l.line_number, m.id"
        ).fetchall()
    return [Mutant(job, id_, filename, number + 1, line, status)
            for id_, filename, number, line, status in rows]


def diff(mutant: Mutant) -> str:
    """The mutant as a diff (``mutmut show``), without the file headers."""
    shown = subprocess.run([sys.executable, "-m", "mutmut", "show", str(mutant.id)], cwd=mutant.job,
                           capture_output=True, text=True, check=False).stdout
    lines = [line for line in shown.splitlines() if line.startswith(("-", "+")) and
             not line.startswith(("---", "+++"))]
    return "\n".join(f"      {line}" for line in lines or [f"(mutmut show failed) {mutant.line.strip()}"])


def score(tested: Counter[str]) -> str:
    """``detected / tested (percent)``, timeouts counted as detected."""
    detected = tested["killed"] + tested["timeout"]
    total = detected + tested["survived"]
    percent = f" ({100 * detected / total:.0f}%)" if total else ""
    return f"{detected} / {total}{percent}"


def report(mutants: list[Mutant]) -> str:
    """Score per file and in all, then each survivor."""
    def outcome(m: Mutant) -> str:
        return DETECTED.get(m.status, {"bad_survived": "survived"}.get(m.status, "untested"))

    lines = ["mutation score (killed + timeout) / tested:"]
    overall: Counter[str] = Counter()
    for filename in sorted({m.filename for m in mutants}):
        counts = Counter(outcome(m) for m in mutants if m.filename == filename)
        overall += counts
        extra = ", ".join(f"{counts[k]} {k}" for k in ("timeout", "untested") if counts[k])
        lines.append(f"  {filename}: {score(counts)}" + (f" [{extra}]" if extra else ""))
    extra = f" [{overall['untested']} untested]" if overall["untested"] else ""
    lines.append(f"  all: {score(overall)}{extra}")
    survivors = [m for m in mutants if outcome(m) == "survived"]
    lines.append(f"survived ({len(survivors)}):")
    lines += [f"  {m.filename}:{m.line_number} (mutant {m.id} of {m.job.name})\n{diff(m)}" for m in survivors]
    return "\n".join(lines)


def main() -> None:
    """Parse the arguments, run the jobs, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default="", help="comma-separated files or folders (default: pyproject)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=None, help="seconds")
    parser.add_argument("--drop", action="append", default=[], help="glob of files left out of the copies")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    paths = [p.strip().rstrip("/") for p in (args.paths or mutmut_settings()["paths_to_mutate"]).split(",")]
    files = python_files([p for p in paths if p])
    dropped = [f for f in files if any(fnmatch.fnmatch(f, pattern) for pattern in args.drop)]
    groups = share_out([f for f in files if f not in dropped], max(args.jobs, 1))
    work = Path(tempfile.mkdtemp(prefix="mutation-"))
    started = time.monotonic()
    try:
        jobs = run_jobs(work, groups, args.drop, args.time_limit)
        text = report([m for job in jobs for m in read_mutants(job)])
        text += f"\n({time.monotonic() - started:.0f} s, {len(jobs)} jobs, work directory {work})"
        (work / "report.txt").write_text(text + "\n")
        print(text)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
