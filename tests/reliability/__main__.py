"""``python -m tests.reliability`` (``make reliability``): the reliability suite, against DynamoDB Local.

1. faults: every write path under injected faults (throttling, 5xx, reset connections, lost
   answers, delayed delivery), each outcome judged true or false against the table, invariants
   checked after every call (``tests.reliability.faulted``);
2. processes: several worker processes writing at once, some SIGKILLed mid-write, and a backfill
   SIGKILLed mid-run and resumed; invariants checked after (``tests.reliability.processes``);
3. hostile input: a catalogue of bad inputs to every public repository function; each must be
   refused with a typed error and leave the table unchanged (``tests.reliability.hostile``);
4. attacks: writes that try to get around the declarations (update actions on every path,
   composed transactions whose checks could be dropped, look-alike emails, unreadable items
   among good ones, a retry after an unknown outcome); one row per attack, counting broken rules,
   false outcomes and raw exceptions (``tests.reliability.attacks``).

Phases 1 and 4 run once per transport/API (``--transports``, default all three,
``tests.reliability.transports``): ``lean`` (the synchronous API on the default ``LeanClient``),
``botocore`` (the synchronous API with ``DATALAYER_TRANSPORT=botocore``) and ``async`` (the same
write paths awaited through ``repositories.asyncio`` on an event loop, with one fault more: the
task cancelled mid-write); one row (phase 4: one group) per transport. They run side by side in
spawned processes (``--jobs``; 1: one after another in this process), before phases 2 and 3.

One in-memory DynamoDB Local on a free 127.0.0.1 port serves every phase; each phase has a table
of its own. Prints one table at the end; exits 1 when any outcome was false, any invariant
violated or rule broken, any bad input written or mishandled, any exception raw, or an attack not
available. Not part of ``make test``: pytest collects ``test_*.py`` only, and none of these
modules is named so.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from core.config import reload_settings
from core.localdb import LocalDynamoDB
from tests.reliability import transports
from tests.reliability.report import PhaseResult, render
from tests.reliability.table import drop_tables

ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "reliability",
    "AWS_SECRET_ACCESS_KEY": "reliability",
    "LOG_LEVEL": "CRITICAL",  # failed calls log at WARNING; thousands are expected here
    # Three attempts a request (botocore's standard mode), so "every attempt failed" is reachable
    # without waiting out five backoffs each time.
    "DYNAMODB_MAX_RETRY_ATTEMPTS": "2",
}


def main(argv: list[str] | None = None) -> int:
    """Run the phases asked for; print the findings and the table; 0 only when all is true."""
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--rounds", type=int, default=5, help="phase 1: rounds of every path x every fault")
    parser.add_argument("--workers", type=int, default=4, help="phase 2: concurrent worker processes")
    parser.add_argument("--worker-ops", type=int, default=150, help="phase 2: operations per worker")
    parser.add_argument("--kills", type=int, default=4, help="phase 2: workers SIGKILLed mid-write")
    parser.add_argument("--attacks", type=int, default=1000, help="phase 4: update actions drawn by the seed")
    parser.add_argument("--phases", default="1,2,3,4", help="which phases to run, e.g. 1,3")
    parser.add_argument(
        "--transports",
        default=",".join(transports.APIS),
        help=f"phases 1 and 4 through each of these ({', '.join(transports.APIS)})",
    )
    parser.add_argument(
        "--jobs", type=int, default=0, help="transports run side by side (default: one each; 1: in turn)"
    )
    args = parser.parse_args(argv)
    chosen = [name for name in args.transports.split(",") if name]
    unknown = [name for name in chosen if name not in transports.APIS]
    if unknown or not chosen:
        parser.error(f"--transports: choose from {', '.join(transports.APIS)} (got {args.transports!r})")
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "DYNAMODB_TARGET",
        "DATALAYER_CACHE_TTL_SECONDS",
    ):
        os.environ.pop(name, None)
    os.environ.update(ENVIRONMENT)
    wanted = set(args.phases.split(","))
    started = time.monotonic()
    results: list[PhaseResult] = []
    with LocalDynamoDB() as server:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.endpoint
        reload_settings()  # the data layer reads its settings once; they changed
        phases: list[tuple[str, Callable[[], PhaseResult | list[PhaseResult]]]] = []
        per_transport = [p for p in transports.PHASES if p in wanted]
        if per_transport:
            phases.append(
                (
                    f"{' and '.join(per_transport)} on {', '.join(chosen)}",
                    lambda: _per_transport(chosen, per_transport, args),
                )
            )
        if "2" in wanted:
            from tests.reliability import processes

            phases.append(("2", lambda: processes.run(args.seed, args.workers, args.worker_ops, args.kills)))
        if "3" in wanted:
            from tests.reliability import hostile

            phases.append(("3", lambda: hostile.run(args.seed)))
        for name, phase in phases:
            print(f"reliability: phase {name} ...", flush=True)
            begun = time.monotonic()
            try:
                found = phase()
            finally:
                drop_tables()  # DynamoDB Local builds no index once seven or so tables have TTL
            rows = found if isinstance(found, list) else [found]
            print(f"reliability: phase {name} done in {time.monotonic() - begun:.0f}s", flush=True)
            results.extend(rows)
    results.sort(key=lambda row: row.phase.split()[0])  # by phase; each transport's rows stay together
    print(render(results, time.monotonic() - started))
    return 1 if any(result.failed for result in results) else 0


def _per_transport(chosen: list[str], phases: list[str], args: argparse.Namespace) -> list[PhaseResult]:
    """Phases 1 and 4 once per transport/API: side by side in spawned processes (each gets this
    process's environment, the endpoint included), or one after another here with ``--jobs 1``."""
    environment = dict(os.environ)
    jobs = min(args.jobs or len(chosen), len(chosen))
    work = [(name, phases, args.seed, args.rounds, args.attacks, environment) for name in chosen]
    results: list[PhaseResult] = []
    if jobs == 1:
        try:
            for job in work:
                results.extend(transports.run(*job))
        finally:
            os.environ.clear()
            os.environ.update(environment)
            reload_settings()
        return results
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for found in [pool.submit(transports.run, *job) for job in work]:
            results.extend(found.result())
    return results


if __name__ == "__main__":
    sys.exit(main())
