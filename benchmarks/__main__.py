"""``make bench``: the client's cost of the data layer, next to bare PynamoDB, botocore and boto3.

1. Starts an in-memory DynamoDB Local on a free 127.0.0.1 port, migrates a fresh table with the
   migrations runner and stores the data through the layer's public functions.
2. Runs each operation once live through the layer and records the HTTP responses botocore
   received (``benchmarks.replay``); every other variant runs once live too.
3. Live section: put, get and query 100 against DynamoDB Local, wall time per operation.
4. Stops the server. Replays the recorded responses to every variant through a botocore
   ``before-send`` handler (no server, no socket) and measures client CPU (``time.process_time``),
   variants interleaved in blocks, the first rotated each round (``benchmarks.timing``).
   ``get_metrics`` is timed in wall time with a sleep per request standing for the network.
5. Cold import in fresh interpreters (``benchmarks.imports``).

Prints one Markdown table (``benchmarks.report``) with the goals met or missed; exits 0 either way.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass

from benchmarks import replay

replay.install()  # before any botocore session exists: sessions copy the handlers when made

from benchmarks import scenarios  # noqa: E402  (after the handlers are installed)
from benchmarks.imports import cold_imports  # noqa: E402
from benchmarks.report import Goal, Row, summary, table  # noqa: E402
from benchmarks.scenarios import ONE_BY_ONE, Scenario  # noqa: E402
from benchmarks.timing import CPU, WALL, Samples, interleaved  # noqa: E402

LAYER, PYNAMODB, BOTOCORE, BOTO3, JSON = "layer", "bare PynamoDB", "botocore", "boto3 Table", "json.loads"
LATENCY = 0.005
CLIENT_CPU = Goal("<=", 1.10)
# What an app that places orders imports, and the whole public API (every repositories module).
PUBLIC_API = ", ".join(f"repositories.{name}" for name in (
    "orders", "users", "accounts", "products", "metrics", "batch", "streams", "query"))
LAYER_MODULES = {"repositories.orders": "repositories.orders", "every repositories module": PUBLIC_API}
IMPORT_ROUNDS = 15  # a fresh interpreter is cheap: more rounds than the rest


@dataclass(frozen=True)
class Size:
    """How much work a run does: full, or ``--quick`` (a smoke run)."""

    quick: bool

    @property
    def batch_items(self) -> int:
        """Items of one batch write."""
        return 2_000 if self.quick else 20_000

    @property
    def singles(self) -> int:
        """Items written one put each, a round."""
        return 200 if self.quick else 1_000

    def block(self, full: int) -> int:
        """Operations a block."""
        return max(1, full // 4) if self.quick else full


_STARTED = time.perf_counter()


def _say(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


def _environment() -> None:
    os.environ.setdefault("LOG_LEVEL", "ERROR")  # the per-call DEBUG events are off, as in production
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["TABLE_NAME"] = f"bench-{uuid.uuid4().hex[:8]}"
    for name in ("DATALAYER_CACHE_TTL_SECONDS", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)


def _environment_changed() -> None:
    """Have the layer read its settings again (it keeps them once read)."""
    from core.config import reload_settings

    reload_settings()


@dataclass
class Prepared:
    """The recorded scenarios, and the rows of the live section."""

    put: Scenario
    get: Scenario
    page: Scenario
    transfer: Scenario
    read: Scenario
    buckets: Scenario
    batch: Scenario
    live: list[Row]


def _live(scenario: Scenario, rounds: int, block: int) -> Row:
    """Wall time per operation against DynamoDB Local: layer, bare PynamoDB, botocore."""
    _say(f"  {scenario.name}")
    variants = [scenario.variant(name) for name in (LAYER, PYNAMODB, BOTOCORE)]
    samples = interleaved(variants, rounds=rounds, block=block, clock=WALL)
    return Row(f"live: {scenario.name}", "µs wall/op", {n: samples.median(n) * 1e6 for n in samples.per_op},
               "layer / bare PynamoDB", samples.ratio(LAYER, PYNAMODB))


def prepare(rounds: int, size: Size) -> Prepared:
    """Start DynamoDB Local, seed it, record every scenario once, time the live section; stop it."""
    from core.config import get_settings
    from core.localdb import LocalDynamoDB
    from migrations import runner

    server = LocalDynamoDB().start()
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.endpoint
    _environment_changed()
    try:
        _say(f"DynamoDB Local at {server.endpoint}; migrating and seeding")
        runner.upgrade(out=lambda _: None)
        fx = scenarios.seed(get_settings())
        _say("recording one live run of each operation")
        put, get, page = scenarios.put_order(fx), scenarios.get_order(fx), scenarios.query_page(fx)
        prepared = Prepared(
            put=put, get=get, page=page, transfer=scenarios.transfer(fx), read=scenarios.read_orders(fx),
            buckets=scenarios.get_metrics(fx, LATENCY),
            batch=scenarios.batch_write(fx, size.batch_items, size.singles), live=[],
        )
        _say("live on DynamoDB Local")
        prepared.live = [_live(put, rounds, size.block(12)), _live(get, rounds, size.block(12)),
                         _live(page, rounds, size.block(4))]
        return prepared
    finally:
        server.stop()


def _replayed(scenario: Scenario, rounds: int, block: int, *, wall: bool = False) -> Samples:
    _say(f"  {scenario.name} ({', '.join(v.name for v in scenario.variants)})")
    return interleaved(scenario.variants, rounds=rounds, block=block, clock=WALL if wall else CPU,
                       replay=scenario.recording, latency=scenario.latency, warmup=scenario.warmup)


def replayed_rows(p: Prepared, rounds: int, size: Size) -> list[Row]:
    """Every scenario on its recorded responses: client CPU (wall time for get_metrics)."""
    rows: list[Row] = []
    for scenario, label in ((p.put, "put order"), (p.get, "get order"), (p.page, "query 1 page of 100"),
                            (p.transfer, "transfer (1 put + 2 updates)")):
        samples = _replayed(scenario, rounds, size.block(scenario.block))
        rows.append(Row(label, "µs CPU/op", {n: samples.median(n) * 1e6 for n in samples.per_op},
                        "layer / bare PynamoDB", samples.ratio(LAYER, PYNAMODB), CLIENT_CPU))

    samples = _replayed(p.read, rounds, size.block(p.read.block))
    label = f"read 1,000 orders ({len(p.read.recording.responses['Query'])} pages)"
    rows.append(Row(label, "ms CPU/op", {n: samples.median(n) * 1e3 for n in samples.per_op},
                    "layer / boto3 Table", samples.ratio(LAYER, BOTO3), Goal("<=", 0.5)))
    rows.append(Row(label, "", {}, "layer / json.loads", samples.ratio(LAYER, JSON), Goal("<=", 6)))

    samples = _replayed(p.buckets, rounds, p.buckets.block, wall=True)
    label = f"{p.buckets.name} at {LATENCY * 1e3:g} ms"
    rows.append(Row(label, "ms wall/op", {n: samples.median(n) * 1e3 for n in samples.per_op},
                    "sequential loop / layer", samples.ratio(PYNAMODB, LAYER), Goal(">=", 2.1)))
    rows.append(Row(label, "", {}, "8 threads botocore / layer", samples.ratio(BOTOCORE, LAYER)))

    samples = _replayed(p.batch, rounds, 1)
    rates = {n: 1 / samples.median(n) for n in samples.per_op}
    singles = rates.pop(ONE_BY_ONE)
    rows.append(Row(f"batch_write {size.batch_items:,} items", "items/s CPU", rates, "layer / bare PynamoDB",
                    samples.ratio(LAYER, PYNAMODB, invert=True), Goal(">=", 1.0)))
    rows.append(Row(f"one put_product per item ({size.singles:,})", "items/s CPU", {LAYER: singles},
                    "batch_write / one put per item", samples.ratio(LAYER, ONE_BY_ONE, invert=True),
                    Goal(">=", 5)))
    return rows


def import_rows(rounds: int) -> tuple[list[Row], float]:
    """Cold import of the layer against ``pynamodb.models``; and the bare interpreter start (s)."""
    _say("cold imports")
    modules = [*LAYER_MODULES.values(), "pynamodb.models"]
    imports, bare_start = cold_imports(modules, rounds=max(rounds, IMPORT_ROUNDS))
    baseline = imports.median("pynamodb.models") * 1e3
    rows = [Row(f"cold import {label}", "ms CPU over start", {LAYER: imports.median(module) * 1e3,
                                                          PYNAMODB: baseline},
                "layer / pynamodb.models", imports.ratio(module, "pynamodb.models"), Goal("<=", 1.3))
            for label, module in LAYER_MODULES.items()]
    return rows, statistics.median(bare_start)


def _notes(rounds: int, size: Size, bare_start: float) -> list[str]:
    """What the table's rows compare, where a column means something else than its name."""
    return [
        f"cold import: CPU of fresh `python -c` processes ({max(rounds, IMPORT_ROUNDS)} rounds), minus "
        f"the bare interpreter start ({bare_start * 1e3:.0f} ms CPU, median); the bare PynamoDB column is "
        "`import pynamodb.models`; `repositories.orders` is what an app that places orders pays, "
        "`every repositories module` the whole public API",
        "get_metrics: bare PynamoDB is a sequential loop over the bucket queries the layer made, botocore "
        f"is 8 threads over raw botocore; every request answered after a {LATENCY * 1e3:g} ms sleep",
        "batch_write: bare PynamoDB is `Model.batch_write()`, botocore is `BatchWriteItem`; one put per item "
        f"is the layer's `put_product` (an upsert), timed over {size.singles:,} items a round",
        "live: DynamoDB Local on 127.0.0.1, on the same machine (its CPU time is in the wall time)",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the table; exit 0 whether the goals are met or not."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9,
                        help="rounds of interleaved blocks (default 9; fewer than 7 only for a smoke run)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller blocks, 2,000 items a batch: a smoke run, not figures to publish")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    _environment()
    size = Size(args.quick)
    prepared = prepare(args.rounds, size)
    _say("replaying the recorded responses (no server)")
    rows = replayed_rows(prepared, args.rounds, size)
    imports, bare_start = import_rows(args.rounds)
    rows += imports + prepared.live
    print(f"CPU rows: client CPU (time.process_time) on recorded DynamoDB responses replayed in-process, "
          f"no server. Wall rows: get_metrics (a sleep per request) and live (DynamoDB Local). {args.rounds} "
          "rounds of interleaved blocks, first variant rotated; figures are medians over the rounds, "
          "ratios are taken per round and shown as median (min-max).\n")
    print(table(rows))
    print()
    for note in _notes(args.rounds, size, bare_start):
        print(f"- {note}")
    print(f"\n{summary(rows)} ({time.perf_counter() - _STARTED:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
