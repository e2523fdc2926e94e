"""``make bench``: the client's cost of the data layer, next to bare PynamoDB, botocore, boto3 and pydynox.

1. Starts an in-memory DynamoDB Local on a free 127.0.0.1 port, migrates a fresh table with the
   migrations runner and stores the data through the layer's public functions.
2. Runs each operation once live through the layer, by way of a recording proxy
   (``benchmarks.canned.Recorder``) that keeps the HTTP responses DynamoDB Local gave; every other
   variant runs once live too.
3. Live section: put, get and query 100 against DynamoDB Local, wall time per operation.
4. Stops DynamoDB Local and starts the canned server (``benchmarks.canned``): a separate process on
   127.0.0.1 that answers every request with the recorded bytes, over keep-alive HTTP/1.1. Every
   variant (the layer sync and async, bare PynamoDB, raw botocore, boto3, pydynox sync and async)
   is pointed at it and timed in client CPU (``time.process_time`` of this process: the server's
   CPU is not in it), variants interleaved in blocks, the first rotated each round
   (``benchmarks.timing``). ``get_metrics`` and the concurrency row are wall time, each answer given
   after a fixed delay standing for the network.
5. Cold import in fresh interpreters (``benchmarks.imports``).

Prints one Markdown table (``benchmarks.report``) with the goals met or missed; exits 0 either way.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import statistics
import sys
import time
import uuid
from dataclasses import dataclass

from benchmarks import scenarios
from benchmarks.canned import CannedServer, Recorder
from benchmarks.imports import cold_imports
from benchmarks.report import Goal, Row, summary, table
from benchmarks.scenarios import (
    BOTO3,
    BOTOCORE,
    CONCURRENT_CALLS,
    FLOOR,
    FLOOR_CALLBACKS,
    FLOOR_WHOLE,
    IN_FLIGHT,
    JSON,
    LAYER,
    LAYER_ASYNC,
    LOOP,
    ONE_BY_ONE,
    PYDYNOX,
    PYDYNOX_ASYNC,
    PYNAMODB,
    Fixture,
    Scenario,
)
from benchmarks.timing import CPU, WALL, Samples, Variant, interleaved
from core.config import Settings
from core.engine.sync import TWIN_MAX_CONNECTIONS

LATENCY = 0.005
BATCH = 1000  # items of one batch write
# The goals of the table before pydynox (bare PynamoDB, boto3, json.loads), kept: nothing slower.
CLIENT_CPU = Goal("<=", 1.10)
# The goals against pydynox and of the async API.
VS_PYDYNOX = Goal("<=", 1.0)
VS_PYDYNOX_READS = Goal("<=", 0.6)
ASYNC_VS_SYNC = Goal("<=", 1.2)
IN_FLIGHT_VS_IDEAL = Goal("<=", 1.3)
# What an app that places orders imports, and the whole public API (every repositories module).
PUBLIC_API = ", ".join(f"repositories.{name}" for name in (
    "orders", "users", "accounts", "products", "metrics", "batch", "streams", "query"))
LAYER_MODULES = {"repositories.orders": "repositories.orders", "every repositories module": PUBLIC_API}
IMPORT_ROUNDS = 15  # a fresh interpreter is cheap: more rounds than the rest
Profiles = list[tuple[str, str]]  # (title, pstats text)


@dataclass(frozen=True)
class Size:
    """How much work a run does: full, or ``--quick`` (a smoke run)."""

    quick: bool

    @property
    def batches(self) -> int:
        """Batch writes of ``BATCH`` items a block."""
        return 1 if self.quick else 4

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
    for name in ("DATALAYER_CACHE_TTL_SECONDS", "AWS_PROFILE", "AWS_SESSION_TOKEN", "DATALAYER_TRANSPORT"):
        os.environ.pop(name, None)
    logging.getLogger("pydynox").setLevel(logging.ERROR)  # its "slow operation" warnings, as LOG_LEVEL


def _point_layer_at(endpoint: str) -> Settings:
    """Have the layer send to ``endpoint`` (it reads its settings again; its clients follow)."""
    from core.config import reload_settings

    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    return reload_settings()


@dataclass
class Prepared:
    """The seeded data, the recorded scenarios, and the rows of the live section."""

    fixture: Fixture
    put: Scenario
    get: Scenario
    page: Scenario
    transfer: Scenario
    read: Scenario
    buckets: Scenario
    batch: Scenario
    live: list[Row]

    @property
    def recorded(self) -> list[Scenario]:
        """Every scenario with a recording of its own."""
        return [self.put, self.get, self.page, self.transfer, self.read, self.buckets, self.batch]


def _live(scenario: Scenario, fx: Fixture, rounds: int, block: int) -> Row:
    """Wall time per operation against DynamoDB Local: layer, bare PynamoDB, botocore, pydynox."""
    _say(f"  {scenario.name}")
    variants = scenarios.live_variants(scenario, fx, (LAYER, PYNAMODB, BOTOCORE, PYDYNOX))
    samples = interleaved(variants, rounds=rounds, block=block, clock=WALL)
    return Row(f"live: {scenario.name}", "µs wall/op", {n: samples.median(n) * 1e6 for n in samples.per_op},
               "layer / bare PynamoDB", samples.ratio(LAYER, PYNAMODB))


def prepare(rounds: int, size: Size, live: bool = True) -> Prepared:
    """Start DynamoDB Local, seed it, record every scenario once, time the live section (unless not
    ``live``); stop it."""
    from core.localdb import LocalDynamoDB
    from migrations import runner

    server = LocalDynamoDB().start()
    recorder: Recorder | None = None
    try:
        settings = _point_layer_at(server.endpoint)
        _say(f"DynamoDB Local at {server.endpoint}; migrating and seeding")
        runner.upgrade(out=lambda _: None)
        fx = scenarios.seed(settings)
        _say("recording one live run of each operation (the layer through the recording proxy)")
        recorder = Recorder(server.endpoint)
        _point_layer_at(recorder.endpoint)
        put, get, page = scenarios.put_order(fx, recorder), scenarios.get_order(fx, recorder), \
            scenarios.query_page(fx, recorder)
        prepared = Prepared(
            fixture=fx, put=put, get=get, page=page, transfer=scenarios.transfer(fx, recorder),
            read=scenarios.read_orders(fx, recorder), buckets=scenarios.get_metrics(fx, recorder, LATENCY),
            batch=scenarios.batch_write(fx, recorder, BATCH, size.batches, size.singles), live=[],
        )
        _point_layer_at(server.endpoint)
        if not live:
            return prepared
        _say("live on DynamoDB Local")
        prepared.live = [_live(put, fx, rounds, size.block(12)), _live(get, fx, rounds, size.block(12)),
                         _live(page, fx, rounds, size.block(4))]
        return prepared
    finally:
        if recorder is not None:
            recorder.close()
        server.stop()


class Canned:
    """The canned server and what every timed scenario needs of it."""

    def __init__(self, prepared: Prepared) -> None:
        self.server = CannedServer({s.name: s.recording for s in prepared.recorded})
        self.fixture = prepared.fixture.on(_point_layer_at(self.server.endpoint))

    def time(self, scenario: Scenario, rounds: int, block: int, *, wall: bool = False) -> Samples:
        """``scenario``'s variants on its recording: client CPU (wall time with ``wall``)."""
        variants = scenario.variants(self.fixture)
        _say(f"  {scenario.name} ({', '.join(v.name for v in variants)})")
        self.server.use(scenario.answers or scenario.name, delay=scenario.delay)
        self.server.counts()
        counts = scenario.recording.counts()

        def check(variant: Variant) -> None:
            """Every variant must be answered with whole recordings: the same pages, in the same order.
            A variant of one operation per call sends exactly the requests the layer's was recorded
            with, per call; one of many items (a batch) a whole number of the recorded ones."""
            served, missed = self.server.counts()
            if missed:
                raise AssertionError(f"{variant.name}: requests the recording has no answer to: {missed[:3]}")
            if not variant.sends:
                return
            if not served:
                raise AssertionError(f"{variant.name}: no request was answered by the canned server")
            calls = block if variant.block == 0 and variant.items == 1 else None
            for operation, number in served.items():
                expected = counts.get(operation, 0)
                wrong = not expected or (number != expected * calls if calls else number % expected)
                if wrong:
                    raise AssertionError(f"{variant.name}: {number} {operation} requests, the recording has "
                                         f"{expected}" + (f" (x {calls} calls)" if calls else ""))

        warmup = scenario.warmup(self.fixture) if scenario.warmup is not None else None
        return interleaved(variants, rounds=rounds, block=block, clock=WALL if wall else CPU, after=check,
                           warmup=warmup)

    def stop(self) -> None:
        """Close the async clients, stop the server."""
        LOOP.close()
        self.server.stop()


def _figures(samples: Samples, scale: float = 1e6) -> dict[str, float]:
    return {n: samples.median(n) * scale for n in samples.per_op}


def single_rows(canned: Canned, p: Prepared, rounds: int, size: Size) -> list[Row]:
    """Put, get, query 100 and transfer: client CPU per operation on the canned server."""
    rows: list[Row] = []
    for scenario, label in ((p.put, "put order"), (p.get, "get order"), (p.page, "query 1 page of 100"),
                            (p.transfer, "transfer (1 put + 2 updates)")):
        samples = canned.time(scenario, rounds, size.block(scenario.block))
        rows.append(Row(label, "µs CPU/op", _figures(samples), "layer / bare PynamoDB",
                        samples.ratio(LAYER, PYNAMODB), CLIENT_CPU))
        goal = VS_PYDYNOX_READS if scenario is p.page else VS_PYDYNOX
        rows.append(Row(label, "", {}, "layer / pydynox", samples.ratio(LAYER, PYDYNOX), goal))
        if scenario in (p.put, p.get):
            rows.append(Row(label, "", {}, "layer async / layer", samples.ratio(LAYER_ASYNC, LAYER),
                            ASYNC_VS_SYNC))
            rows.append(Row(label, "", {}, "layer async / pydynox async",
                            samples.ratio(LAYER_ASYNC, PYDYNOX_ASYNC), VS_PYDYNOX))
    return rows


def read_rows(canned: Canned, p: Prepared, rounds: int, size: Size) -> list[Row]:
    """1,000 orders, page by page: client CPU per read."""
    samples = canned.time(p.read, rounds, size.block(p.read.block))
    label = f"read 1,000 orders ({len(p.read.recording.responses['Query'])} pages)"
    return [
        Row(label, "ms CPU/op", _figures(samples, scale=1e3), "layer / boto3 Table",
            samples.ratio(LAYER, BOTO3), Goal("<=", 0.5)),
        Row(label, "", {}, "layer / json.loads", samples.ratio(LAYER, JSON), Goal("<=", 4)),
        Row(label, "", {}, "layer / pydynox", samples.ratio(LAYER, PYDYNOX), VS_PYDYNOX_READS),
    ]


def wall_rows(canned: Canned, p: Prepared, rounds: int) -> list[Row]:
    """get_metrics at ``LATENCY`` a request, and ``CONCURRENT_CALLS`` gets ``IN_FLIGHT`` at a time."""
    samples = canned.time(p.buckets, rounds, p.buckets.block, wall=True)
    label = f"{p.buckets.name} at {LATENCY * 1e3:g} ms"
    rows = [
        Row(label, "ms wall/op", _figures(samples, scale=1e3), "sequential loop / layer",
            samples.ratio(PYNAMODB, LAYER), Goal(">=", 2.1)),
        Row(label, "", {}, "8 threads botocore / layer", samples.ratio(BOTOCORE, LAYER)),
    ]
    concurrent = scenarios.concurrent_gets(p.get, LATENCY)
    samples = canned.time(concurrent, rounds, 1, wall=True)
    ideal = CONCURRENT_CALLS / IN_FLIGHT * LATENCY
    label = f"{concurrent.name}, {LATENCY * 1e3:g} ms answers (ideal {ideal * 1e3:.0f} ms)"
    clients = (LAYER_ASYNC, PYDYNOX_ASYNC)
    rows += [
        Row(label, "ms wall/op", {n: samples.median(n) * 1e3 for n in clients}, "layer async / ideal",
            samples.over(LAYER_ASYNC, ideal), IN_FLIGHT_VS_IDEAL),
        Row(label, "", {}, "pydynox async / ideal", samples.over(PYDYNOX_ASYNC, ideal)),
    ]
    # The floors have no column of their own: their figures are in the ratio's name.
    rows += [Row(label, "", {}, f"{floor} / ideal ({samples.median(floor) * 1e3:.0f} ms wall)",
                 samples.over(floor, ideal)) for floor in (FLOOR, FLOOR_CALLBACKS, FLOOR_WHOLE)]
    # CPU of a block (the CONCURRENT_CALLS calls) over the ideal: CPU a call over ideal / calls.
    cpu = Samples(samples.cpu)
    budget = f"{ideal / CONCURRENT_CALLS * 1e6:.0f} µs"

    def per_call(name: str) -> float:
        return cpu.median(name) / CONCURRENT_CALLS * 1e6

    rows.append(Row(label, "µs CPU/call", {n: per_call(n) for n in clients},
                    f"layer async CPU / {budget} (ideal / calls)", cpu.over(LAYER_ASYNC, ideal)))
    rows += [Row(label, "", {}, f"{floor} CPU / {budget} ({per_call(floor):.0f} µs/call)",
                 cpu.over(floor, ideal)) for floor in (FLOOR, FLOOR_CALLBACKS, FLOOR_WHOLE)]
    return rows


def batch_rows(canned: Canned, p: Prepared, rounds: int, size: Size) -> list[Row]:
    """Batch writes of ``BATCH`` items, and one put per item: items per CPU second."""
    samples = canned.time(p.batch, rounds, size.batches)
    rates = {n: 1 / samples.median(n) for n in samples.per_op}
    singles = rates.pop(ONE_BY_ONE)
    label = f"batch_write {BATCH:,} items"
    return [
        Row(label, "items/s CPU", rates, "layer / bare PynamoDB", samples.ratio(LAYER, PYNAMODB, invert=True),
            Goal(">=", 1.0)),
        Row(label, "", {}, "layer / pydynox CPU", samples.ratio(LAYER, PYDYNOX), VS_PYDYNOX),
        Row(f"one put_product per item ({size.singles:,})", "items/s CPU", {LAYER: singles},
            "batch_write / one put per item", samples.ratio(LAYER, ONE_BY_ONE, invert=True), Goal(">=", 5)),
    ]


def profiles(canned: Canned, p: Prepared, calls: int, top: int = 25) -> Profiles:
    """cProfile of the layer's get, put, transfer and batch write on the canned server: the ``top``
    lines by cumulative and by own time, over ``calls`` calls each (a batch of ``BATCH`` items
    counts as ``BATCH / 10`` calls). (Not of the async API: cProfile counts every resumption of a
    coroutine as a call of its own, and its cumulative times add up past the whole.)"""
    found = []
    for scenario, weight in ((p.get, 1), (p.put, 1), (p.transfer, 1), (p.batch, BATCH // 10)):
        variant = next(v for v in scenario.variants(canned.fixture) if v.name == LAYER)
        canned.server.use(scenario.name)
        count = max(1, calls // weight)

        def run(count: int, variant: Variant = variant) -> None:
            for i in range(count):
                variant.op(i)

        run(max(1, count // 10))  # warm
        profile = cProfile.Profile()  # wall time: a socket's recv includes the wait for the server
        profile.enable()
        run(count)
        profile.disable()
        _, missed = canned.server.counts()
        if missed:
            raise AssertionError(f"profile of {scenario.name}: unanswered requests {missed[:3]}")
        for order in ("cumulative", "tottime"):
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats(order).print_stats(top)
            found.append((f"layer: {scenario.name}, {count:,} calls, sorted by {order}",
                          text.getvalue().strip()))
    return found


def canned_rows(p: Prepared, rounds: int, size: Size, profile: int,
                only_profile: bool = False) -> tuple[list[Row], Profiles]:
    """Every scenario on the canned server (none when ``only_profile``); and the profiles asked for
    (``profile`` calls each)."""
    canned = Canned(p)
    try:
        _say(f"canned server at {canned.server.endpoint}")
        if only_profile:
            return [], profiles(canned, p, profile)
        rows = single_rows(canned, p, rounds, size)
        rows += read_rows(canned, p, rounds, size)
        rows += wall_rows(canned, p, rounds)
        rows += batch_rows(canned, p, rounds, size)
        if profile:
            _say("profiles")
        return rows, profiles(canned, p, profile) if profile else []
    finally:
        canned.stop()


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
        "async columns: the same operation awaited on one event loop, one call after another "
        "(`repositories.asyncio`; pydynox's `get`, `query`, `Transaction`, `BatchWriter`)",
        "pydynox: its `Model` API (`sync_get`, `sync_query`, `SyncTransaction.save_model` plus "
        "`condition_check`/`update`, `SyncBatchWriter` of `Model.to_dict()`), on its own client (the AWS SDK "
        "for Rust); its CPU on its runtime's threads is in the process's CPU time",
        f"concurrency: {CONCURRENT_CALLS:,} gets on one event loop, at most {IN_FLIGHT} in flight "
        "(a semaphore), every answer after the delay; ideal = calls / in flight x delay. The layer's async "
        f"client keeps up to {TWIN_MAX_CONNECTIONS} connections a loop (`core.engine.sync."
        "TWIN_MAX_CONNECTIONS`). The layer's calls are bound by their client CPU (its µs CPU/call "
        "row against the 78 µs a call the ideal leaves, one thread's CPU alone); the floors' rows show "
        "what the bench itself allows a client that does almost nothing (the canned server's delays and "
        "its handling of each burst of requests included)",
        f"concurrency floors: the least a Python asyncio client does for the same requests: {IN_FLIGHT} "
        "keep-alive connections (a bare `asyncio.Protocol`), every request the same bytes: the GetItem body "
        "the layer sent (from the recording) with the layer's headers, signed ONCE for all (`core.engine."
        "requests.signed`, `core.engine.http1.encode`); each answer parsed by `core.engine.http1.Parser`, "
        "its body not decoded. `floor: awaited` runs in the layer's harness (a task a call, the semaphore, a "
        "future a request), `floor: callbacks` without (each answer's callback writes the next request); "
        "`floor: whole get` is `floor: awaited` doing what a get cannot skip: its body serialized, signed at "
        "the time of the call (`core.engine.requests.serialize`, `signed`), the answer decoded "
        "(`core.engine.requests.parse`) and its item built into an `Order` (`from_raw_data`): no PynamoDB, "
        "no retry, no observation. "
        "µs CPU/call: `time.process_time` over the block / calls; ideal / calls is the CPU a call at which "
        "one thread's CPU alone fills the ideal",
        f"cold import: CPU of fresh `python -c` processes ({max(rounds, IMPORT_ROUNDS)} rounds), minus "
        f"the bare interpreter start ({bare_start * 1e3:.0f} ms CPU, median); the bare PynamoDB column is "
        "`import pynamodb.models`; `repositories.orders` is what an app that places orders pays, "
        "`every repositories module` the whole public API",
        "get_metrics: bare PynamoDB is a sequential loop over the bucket queries the layer made, botocore "
        f"is 8 threads over raw botocore; every request answered after a {LATENCY * 1e3:g} ms delay",
        f"batch_write: {size.batches} batch(es) of {BATCH:,} items a block; bare PynamoDB is "
        "`Model.batch_write()`, botocore is `BatchWriteItem`; one put per item is the layer's `put_product` "
        f"(an upsert), timed over {size.singles:,} items a round",
        "live: DynamoDB Local on 127.0.0.1, on the same machine (its CPU time is in the wall time)",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the table; exit 0 whether the goals are met or not."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9,
                        help="rounds of interleaved blocks (default 9; fewer than 7 only for a smoke run)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller blocks, one batch of 1,000 items a block: a smoke run, not figures "
                             "to publish")
    parser.add_argument("--profile", type=int, nargs="?", const=2000, default=0, metavar="CALLS",
                        help="after the table, cProfile the layer's get and put on the canned server, "
                             "CALLS calls each (default 2,000): the top 25 lines by cumulative time")
    parser.add_argument("--profile-only", action="store_true",
                        help="only the profiles (of --profile calls, default 2,000), no table")
    args = parser.parse_args(argv)
    if args.profile_only and not args.profile:
        args.profile = 2000
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.profile < 0:
        parser.error("--profile takes a number of calls")
    _environment()
    size = Size(args.quick)
    prepared = prepare(args.rounds, size, live=not args.profile_only)
    _say("timing on the canned server")
    rows, profiled = canned_rows(prepared, args.rounds, size, args.profile, args.profile_only)
    if args.profile_only:
        for title, text in profiled:
            print(f"\ncProfile of the {title} (canned server):\n\n```\n{text}\n```")
        return 0
    imports, bare_start = import_rows(args.rounds)
    rows += imports + prepared.live
    print(f"CPU rows: client CPU (time.process_time of the benchmark process) against a canned DynamoDB: a "
          f"separate process on 127.0.0.1 answering every request over keep-alive HTTP with the bytes "
          f"DynamoDB Local answered the layer. Wall rows: get_metrics and the concurrency row (each answer "
          f"after {LATENCY * 1e3:g} ms), and live (DynamoDB Local). {args.rounds} rounds of interleaved "
          "blocks, first variant rotated; figures are medians over the rounds, ratios are taken per round "
          "and shown as median (min-max).\n")
    print(table(rows))
    print()
    for note in _notes(args.rounds, size, bare_start):
        print(f"- {note}")
    print(f"\n{summary(rows)} ({time.perf_counter() - _STARTED:.0f} s)")
    for title, text in profiled:
        print(f"\ncProfile of the {title} (canned server):\n\n```\n{text}\n```")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

