"""The operations ``make bench`` times, each with its variants and one live recording.

``seed`` stores the data through the layer's public functions (a user with 1,000 orders, two
accounts, 30 days of one device's readings). Each ``Scenario`` then runs the layer's operation
once against DynamoDB Local through the recording proxy (``benchmarks.canned.Recorder``) and keeps
every response it received; the canned server answers every variant with those responses
afterwards, so all of them decode the very same bytes. Each other variant also runs once live
against DynamoDB Local first, which proves its requests valid.

A scenario's variants are made for a ``Fixture``: the seeded ids and the baselines' clients for one
endpoint (DynamoDB Local for the live runs, the canned server for the timed ones). The layer's
variants follow the layer's own settings (``AWS_ENDPOINT_URL_DYNAMODB``, read again by the runner
when it points the layer elsewhere). The async variants run on one event loop (``LOOP``): a timed
block awaits its calls one after another in one run of the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import botocore.session
from boto3.dynamodb.conditions import Key

from benchmarks import baselines
from benchmarks import pydynox_baseline as pyd
from benchmarks.baselines import BareModels
from benchmarks.canned import Recorder, Recording
from benchmarks.pydynox_baseline import PydynoxModels
from benchmarks.timing import Variant
from core.config import Settings
from core.engine import http1
from core.engine.requests import endpoint_for, parse, serialize, signed
from core.engine.signing import TIMESTAMP_FORMAT
from core.engine.transport import direct_origin
from models import Order, Product
from repositories import accounts, batch, metrics, orders, products, users
from repositories.asyncio import accounts as aaccounts
from repositories.asyncio import batch as abatch
from repositories.asyncio import metrics as ametrics
from repositories.asyncio import orders as aorders

LAYER, LAYER_ASYNC = "layer", "layer async"
PYNAMODB, BOTOCORE, BOTO3 = "bare PynamoDB", "botocore", "boto3 Table"
PYDYNOX, PYDYNOX_ASYNC = "pydynox", "pydynox async"
FLOOR, FLOOR_CALLBACKS, FLOOR_WHOLE = "floor: awaited", "floor: callbacks", "floor: whole get"
JSON = "json.loads"
ONE_BY_ONE = "one put per item"

ORDERS = 1000
PAGE = 100
DAYS = 30
READINGS_A_DAY = 8
TOTAL = "TOTAL"
IN_FLIGHT = 64  # the concurrency row: calls in flight on one event loop
CONCURRENT_CALLS = 1000


class Loop:
    """The one event loop of the async variants (made at first use, closed by ``close``)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closers: list[Callable[[], None]] = []

    def on_close(self, closer: Callable[[], None]) -> None:
        """Have ``closer()`` run on the loop when it is closed (connections of the loop's own)."""
        self._closers.append(closer)

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Run ``awaitable`` to its end on the loop."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def close(self) -> None:
        """Close the layer's pools on the loop, then the loop."""
        if self._loop is not None:
            from repositories.asyncio import aclose

            self._loop.run_until_complete(aclose())
            closers, self._closers = self._closers, []
            for closer in closers:
                closer()
            self._loop.run_until_complete(asyncio.sleep(0))  # the transports' closing callbacks
            self._loop.close()
            self._loop = None


LOOP = Loop()


def awaited(name: str, call: Callable[[], Awaitable[Any]], **kwargs: Any) -> Variant:
    """A variant that awaits ``call()``: once per ``op``, ``n`` times in one loop run per block."""

    async def repeat(count: int) -> None:
        for _ in range(count):
            await call()

    return Variant(name, lambda _: LOOP.run(call()), many=lambda count: LOOP.run(repeat(count)), **kwargs)


def in_flight(name: str, call: Callable[[], Awaitable[Any]], *, calls: int, limit: int) -> Variant:
    """``calls`` calls of ``call()`` on the loop, at most ``limit`` in flight: one operation."""

    async def gathered() -> None:
        gate = asyncio.Semaphore(limit)

        async def one() -> None:
            async with gate:
                await call()

        await asyncio.gather(*(one() for _ in range(calls)))

    return Variant(name, lambda _: LOOP.run(gathered()), block=1)


@dataclass
class Clients:
    """The baselines' clients for one endpoint."""

    settings: Settings
    bare: BareModels
    raw: Any
    table: Any
    pydynox: PydynoxModels


def clients(settings: Settings) -> Clients:
    """Every baseline's client for ``settings``' endpoint and table."""
    return Clients(settings, baselines.bare_models(settings), baselines.raw_client(settings),
                   baselines.boto3_table(settings), pyd.pydynox_models(settings))


@dataclass
class Fixture:
    """The seeded data and the clients of the baselines."""

    clients: Clients
    user_id: str  # holds the 1,000 orders that are read
    order_id: str
    writer_id: str  # the user new orders are placed for
    source: str
    target: str
    device_id: str
    start: datetime
    end: datetime

    @property
    def table_name(self) -> str:
        """The benchmark's table."""
        return self.clients.settings.table_name

    @property
    def bare(self) -> BareModels:
        """Bare PynamoDB models."""
        return self.clients.bare

    @property
    def raw(self) -> Any:
        """The raw botocore client."""
        return self.clients.raw

    @property
    def table(self) -> Any:
        """boto3's ``Table``."""
        return self.clients.table

    @property
    def pyd(self) -> PydynoxModels:
        """pydynox models."""
        return self.clients.pydynox

    def on(self, settings: Settings) -> Fixture:
        """The same data, with the baselines' clients for ``settings``' endpoint."""
        return dataclasses.replace(self, clients=clients(settings))


Make = Callable[[Fixture], list[Variant]]


@dataclass
class Scenario:
    """One operation: how to make its variants (the layer first), and the responses they are all
    answered with. ``floor``: the operation whose recorded bodies ``json.loads`` decodes, if any."""

    name: str
    make: Make
    recording: Recording = field(default_factory=Recording)
    block: int = 100
    delay: float = 0.0  # seconds the canned server waits before each answer
    floor: str | None = None
    warmup: Make | None = None  # stand-ins for the warm-up, when the variants are long
    answers: str = ""  # the scenario whose recording the canned server answers with (its own: "")

    def variants(self, fx: Fixture) -> list[Variant]:
        """The variants for ``fx``'s clients, and ``json.loads`` of the recorded bodies."""
        made = self.make(fx)
        if self.floor is not None:
            bodies = self.recording.bodies(self.floor)
            made.append(Variant(JSON, lambda _: [json.loads(body) for body in bodies], sends=False))
        return made


def _parallel(fn: Callable[[int], Any], count: int, workers: int = 4) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, range(count)))


def seed(settings: Settings) -> Fixture:
    """Store the benchmark's data through the layer's public functions."""
    user = users.create_user(f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench")
    writer = users.create_user(f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench writer")
    placed = _parallel(lambda _: orders.place_order(user.user_id, Decimal("10.50")), ORDERS)
    source = accounts.open_account(balance=Decimal("1000000"))
    target = accounts.open_account()
    device = f"dev-{uuid.uuid4().hex[:8]}"
    # Future days: the readings' TTL has not passed.
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)

    def day_of_readings(day: int) -> None:
        for n in range(READINGS_A_DAY):
            at = first + timedelta(days=day, hours=n * 24 // READINGS_A_DAY, minutes=7)
            metrics.record_metric(device, "temperature", Decimal(20 + n) / 4, at=at)

    _parallel(day_of_readings, DAYS)
    return Fixture(
        clients=clients(settings), user_id=user.user_id, order_id=placed[0].order_id,
        writer_id=writer.user_id, source=source.account_id, target=target.account_id, device_id=device,
        start=first, end=first + timedelta(days=DAYS) - timedelta(microseconds=1),
    )


def record(scenario: Scenario, fx: Fixture, recorder: Recorder,
           check: Callable[[str, Any], None] | None = None) -> Scenario:
    """Run the layer's operation live through ``recorder`` and keep its responses; then each other
    variant live once (on ``fx``'s clients). ``check(name, result)`` is called with what each returned."""
    layer, *others = scenario.make(fx)
    with recorder.recording() as recording:
        result = layer.op(0)
    if check is not None:
        check(layer.name, result)
    for variant in others:
        result = variant.op(0)
        if check is not None:
            check(variant.name, result)
    scenario.recording = recording
    return scenario


# --- single operations ----------------------------------------------------------------------


def put_order(fx: Fixture, recorder: Recorder) -> Scenario:
    """Place one order: a put only if new, with a check that the user exists, in one transaction."""
    amount = Decimal("10.50")

    def make(fx: Fixture) -> list[Variant]:
        return [
            Variant(LAYER, lambda _: orders.place_order(fx.writer_id, amount)),
            awaited(LAYER_ASYNC, lambda: aorders.place_order(fx.writer_id, amount)),
            Variant(PYNAMODB, lambda _: baselines.pynamodb_place_order(fx.bare, fx.writer_id, 10.5)),
            Variant(BOTOCORE, lambda _: baselines.botocore_place_order(fx.raw, fx.table_name, fx.writer_id,
                                                                       "10.50")),
            Variant(PYDYNOX, lambda _: pyd.place_order(fx.pyd, fx.writer_id, amount)),
            awaited(PYDYNOX_ASYNC, lambda: pyd.aplace_order(fx.pyd, fx.writer_id, amount)),
        ]

    return record(Scenario("put order", make, floor="TransactWriteItems"), fx, recorder)


def get_order(fx: Fixture, recorder: Recorder) -> Scenario:
    """Read one order by its key."""

    def make(fx: Fixture) -> list[Variant]:
        pk, sk = f"USER#{fx.user_id}", f"ORDER#{fx.order_id}"
        wire = {"PK": {"S": pk}, "SK": {"S": sk}}
        return [
            Variant(LAYER, lambda _: orders.get_order(fx.user_id, fx.order_id)),
            awaited(LAYER_ASYNC, lambda: aorders.get_order(fx.user_id, fx.order_id)),
            Variant(PYNAMODB, lambda _: fx.bare.Order.get(pk, sk)),
            Variant(BOTOCORE, lambda _: fx.raw.get_item(TableName=fx.table_name, Key=wire,
                                                        ReturnConsumedCapacity=TOTAL)),
            Variant(BOTO3, lambda _: fx.table.get_item(Key={"PK": pk, "SK": sk},
                                                       ReturnConsumedCapacity=TOTAL)),
            Variant(PYDYNOX, lambda _: pyd.get_order(fx.pyd, fx.user_id, fx.order_id)),
            awaited(PYDYNOX_ASYNC, lambda: pyd.aget_order(fx.pyd, fx.user_id, fx.order_id)),
        ]

    def found(name: str, result: Any) -> None:
        if result is None:
            raise AssertionError(f"{name} did not find the order live")

    return record(Scenario("get order", make, floor="GetItem"), fx, recorder, found)


# --- the floor of the concurrency row: the least a Python asyncio client does per request ------


def presigned(operation: str, body: bytes, settings: Settings) -> tuple[str, int, bytes]:
    """Host, port and the whole request (``core.engine.http1.encode``) carrying ``body`` (the one the
    layer sent, from the recording), signed ONCE as the layer's async client signs it
    (``core.engine.requests.signed``, the same credentials and endpoint), to be sent as is every time."""
    host, port, sign = signer(operation, settings)
    return host, port, sign(body, datetime.now(UTC).strftime(TIMESTAMP_FORMAT))


def signer(operation: str, settings: Settings) -> tuple[str, int, Callable[[bytes, str], bytes]]:
    """Host, port and what makes the whole request (``core.engine.http1.encode``) of ``operation``
    carrying a body, signed at a time (``YYYYMMDDTHHMMSSZ``) as the layer's async client signs it
    (``core.engine.requests.signed``, the same credentials and endpoint)."""
    session = botocore.session.Session()
    endpoint = endpoint_for(settings.endpoint_url, settings.region or session.get_config_variable("region"))
    direct = direct_origin(endpoint.url)
    if direct is None:
        raise ValueError(f"not an http(s) endpoint: {endpoint.url!r}")
    origin, target = direct
    found = session.get_credentials()
    if found is None:
        raise RuntimeError("no AWS credentials to sign the floor's request with")
    credentials = found.get_frozen_credentials()

    def sign(body: bytes, amz_date: str) -> bytes:
        request, _ = signed(operation, body, endpoint=endpoint, credentials=credentials, amz_date=amz_date)
        return http1.encode(request.method, target, request.headers, request.body)

    return origin.host, origin.port, sign


class _FloorConnection(asyncio.Protocol):
    """One keep-alive connection of the floor: each answer fed to ``http1.Parser`` as its bytes come,
    its status checked; its body is not decoded (no JSON, no item)."""

    def __init__(self, floor: Floor) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = http1.Parser()
        self.waiter: asyncio.Future[None] | None = None
        self._floor = floor

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.parser.feed(data):
            return
        response, keep = self.parser.answer()
        self.parser = http1.Parser()
        if response.status == 200 and keep:
            self._floor.answered(self, response)
        else:
            self._floor.failed(f"answer {response.status} {response.body[:200]!r} (keep-alive: {keep})")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.transport = None
            self._floor.failed(f"connection lost ({exc!r})")


class Floor:
    """The least a Python asyncio client can do for one request: ``limit`` keep-alive connections to
    ``host:port`` (opened at the first run on the loop and kept), each request the same ``payload``
    written as is, the answer parsed by ``http1.Parser``. No serialising, no signing, no decoding.

    ``get()`` is one awaited request (an idle connection, one write, one future the answer resolves):
    what an ``await`` per call costs at the least. ``run(calls)`` sends ``calls`` requests with no
    task or future per request: each answer's callback writes the next request on its connection."""

    def __init__(self, host: str, port: int, payload: bytes, limit: int) -> None:
        self.host, self.port, self.payload, self.limit = host, port, payload, limit
        self._connections: list[_FloorConnection] = []
        self._idle: list[_FloorConnection] = []
        self._left = 0  # requests ``run`` has still to write
        self._pending = 0  # answers ``run`` still waits for
        self._finished: asyncio.Future[None] | None = None
        self._opening: asyncio.Future[None] | None = None

    async def _open(self) -> None:
        """Open the connections (once: the first calls of a run all wait for the same opening)."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._connect())
        await self._opening

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.limit):
            _, connection = await loop.create_connection(lambda: _FloorConnection(self), self.host, self.port)
            self._connections.append(connection)
        self._idle = list(self._connections)

    def failed(self, why: str) -> None:
        """A connection got an error answer or was lost: the runs and calls waiting fail with it."""
        for waiter in [self._finished, *(c.waiter for c in self._connections)]:
            if waiter is not None and not waiter.done():
                waiter.set_exception(AssertionError(f"floor: {why}"))

    def answered(self, connection: _FloorConnection, response: http1.Response) -> None:
        """The answer on ``connection`` is whole (a 200)."""
        waiter = connection.waiter
        if waiter is not None:  # get(): the awaiting call resumes; the connection is idle again
            connection.waiter = None
            self._idle.append(connection)
            waiter.set_result(response)
            return
        self._pending -= 1  # run(): the next request on this connection, if any
        if self._left:
            self._left -= 1
            assert connection.transport is not None
            connection.transport.write(self.payload)
        elif not self._pending and self._finished is not None:
            self._finished.set_result(None)

    async def get(self) -> None:
        """One request, awaited (callers keep at most ``limit`` in flight: an idle connection is there)."""
        await self.exchange(self.payload)

    async def exchange(self, payload: bytes) -> http1.Response:
        """``payload`` sent on an idle connection, its answer awaited."""
        if not self._idle:
            await self._open()
        connection = self._idle.pop()
        waiter = connection.waiter = asyncio.get_running_loop().create_future()
        assert connection.transport is not None
        connection.transport.write(payload)
        return await waiter

    async def run(self, calls: int) -> None:
        """``calls`` requests, ``limit`` in flight, driven by the connections' callbacks alone."""
        await self._open()
        self._finished = asyncio.get_running_loop().create_future()
        first = min(self.limit, calls)
        self._left, self._pending = calls - first, calls
        for connection in self._connections[:first]:
            assert connection.transport is not None
            connection.transport.write(self.payload)
        await self._finished
        self._finished = None

    def close(self) -> None:
        """Close the connections."""
        connections, self._connections, self._idle, self._opening = self._connections, [], [], None
        for connection in connections:
            transport, connection.transport = connection.transport, None
            if transport is not None:
                transport.close()


class WholeGet:
    """The least a get does that it cannot skip, awaited on ``Floor``'s connections: its body
    serialized from the parameters (``core.engine.requests.serialize``), signed at the time of the
    call, the answer decoded as botocore's parser would (``core.engine.requests.parse``) and its item
    built into an ``Order`` (``from_raw_data``). No PynamoDB, no retry, no observation."""

    def __init__(self, floor: Floor, params: dict[str, Any], sign: Callable[[bytes, str], bytes]) -> None:
        self._floor, self._params, self._sign = floor, params, sign

    async def get(self) -> Order:
        """One get of the order."""
        body = serialize("GetItem", self._params)
        payload = self._sign(body, datetime.now(UTC).strftime(TIMESTAMP_FORMAT))
        response = await self._floor.exchange(payload)
        parsed = parse("GetItem", response.status, response.headers, response.body)
        return Order.from_raw_data(parsed["Item"])


def concurrent_gets(get: Scenario, delay: float) -> Scenario:
    """``CONCURRENT_CALLS`` gets of the order, ``IN_FLIGHT`` at a time on one event loop, each answered
    after ``delay``: the layer's async API and pydynox's (wall time; the get's recording); and the floor
    (``Floor``): the request the layer sent, pre-signed once, on ``IN_FLIGHT`` connections."""
    [body] = get.recording.requests["GetItem"]

    def make(fx: Fixture) -> list[Variant]:
        floor = Floor(*presigned("GetItem", body, fx.clients.settings), limit=IN_FLIGHT)
        LOOP.on_close(floor.close)
        host, port, sign = signer("GetItem", fx.clients.settings)
        whole = Floor(host, port, b"", limit=IN_FLIGHT)
        LOOP.on_close(whole.close)
        whole_get = WholeGet(whole, json.loads(body), sign)
        return [
            in_flight(LAYER_ASYNC, lambda: aorders.get_order(fx.user_id, fx.order_id),
                      calls=CONCURRENT_CALLS, limit=IN_FLIGHT),
            in_flight(PYDYNOX_ASYNC, lambda: pyd.aget_order(fx.pyd, fx.user_id, fx.order_id),
                      calls=CONCURRENT_CALLS, limit=IN_FLIGHT),
            in_flight(FLOOR, floor.get, calls=CONCURRENT_CALLS, limit=IN_FLIGHT),
            Variant(FLOOR_CALLBACKS, lambda _: LOOP.run(floor.run(CONCURRENT_CALLS)), block=1),
            in_flight(FLOOR_WHOLE, whole_get.get, calls=CONCURRENT_CALLS, limit=IN_FLIGHT),
        ]

    return Scenario(f"{CONCURRENT_CALLS:,} gets, {IN_FLIGHT} in flight", make, get.recording, block=1,
                    delay=delay, answers=get.name)


def _boto3_page(fx: Fixture, start_key: dict[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "KeyConditionExpression": Key("PK").eq(f"USER#{fx.user_id}") & Key("SK").begins_with("ORDER#"),
        "ScanIndexForward": False, "Limit": PAGE, "ReturnConsumedCapacity": TOTAL,
    }
    if start_key is not None:
        params["ExclusiveStartKey"] = start_key
    result: dict[str, Any] = fx.table.query(**params)
    return result


def query_page(fx: Fixture, recorder: Recorder) -> Scenario:
    """One page of 100 of a user's orders, newest first."""

    def make(fx: Fixture) -> list[Variant]:
        model = fx.bare.Order
        return [
            Variant(LAYER, lambda _: orders.get_user_orders(fx.user_id, limit=PAGE)),
            awaited(LAYER_ASYNC, lambda: aorders.get_user_orders(fx.user_id, limit=PAGE)),
            Variant(PYNAMODB, lambda _: list(model.query(
                f"USER#{fx.user_id}", model.sk.startswith("ORDER#"), scan_index_forward=False, limit=PAGE))),
            Variant(BOTOCORE, lambda _: fx.raw.query(**baselines.order_query(fx.table_name, fx.user_id,
                                                                             PAGE, None))),
            Variant(BOTO3, lambda _: _boto3_page(fx, None)),
            Variant(PYDYNOX, lambda _: pyd.query_orders(fx.pyd, fx.user_id, limit=PAGE, page_size=PAGE)),
            awaited(PYDYNOX_ASYNC, lambda: pyd.aquery_orders(fx.pyd, fx.user_id, limit=PAGE, page_size=PAGE)),
        ]

    def hundred(name: str, result: Any) -> None:
        items = result.items if hasattr(result, "items") and not isinstance(result, dict) else result
        items = items["Items"] if isinstance(items, dict) else items
        if len(items) != PAGE:
            raise AssertionError(f"{name} read {len(items)} orders live, not {PAGE}")

    return record(Scenario("query 100", make, block=20, floor="Query"), fx, recorder, hundred)


def transfer(fx: Fixture, recorder: Recorder) -> Scenario:
    """Move money: one transaction of the transfer record and two conditioned balance updates."""

    def make(fx: Fixture) -> list[Variant]:
        return [
            Variant(LAYER, lambda _: accounts.transfer_funds(fx.source, fx.target, Decimal(1))),
            awaited(LAYER_ASYNC, lambda: aaccounts.transfer_funds(fx.source, fx.target, Decimal(1))),
            Variant(PYNAMODB, lambda _: baselines.pynamodb_transfer(fx.bare, fx.source, fx.target, 1)),
            Variant(BOTOCORE, lambda _: baselines.botocore_transfer(fx.raw, fx.table_name, fx.source,
                                                                    fx.target, "1")),
            Variant(PYDYNOX, lambda _: pyd.transfer(fx.pyd, fx.source, fx.target, Decimal(1))),
            awaited(PYDYNOX_ASYNC, lambda: pyd.atransfer(fx.pyd, fx.source, fx.target, Decimal(1))),
        ]

    return record(Scenario("transfer", make, floor="TransactWriteItems"), fx, recorder)


# --- 1,000 items through the public API -------------------------------------------------------


def _layer_read(fx: Fixture) -> int:
    page = orders.get_user_orders(fx.user_id, limit=PAGE)
    count = len(page.items)
    while page.has_more:
        page = orders.get_user_orders(fx.user_id, limit=PAGE, cursor=page.next_cursor)
        count += len(page.items)
    return count


async def _alayer_read(fx: Fixture) -> int:
    page = await aorders.get_user_orders(fx.user_id, limit=PAGE)
    count = len(page.items)
    while page.has_more:
        page = await aorders.get_user_orders(fx.user_id, limit=PAGE, cursor=page.next_cursor)
        count += len(page.items)
    return count


def read_orders(fx: Fixture, recorder: Recorder) -> Scenario:
    """All 1,000 orders of the user, page by page (the layer through its cursors)."""

    def make(fx: Fixture) -> list[Variant]:
        model = fx.bare.Order

        def raw(_: int) -> int:
            count, start_key = 0, None
            while True:
                result = fx.raw.query(**baselines.order_query(fx.table_name, fx.user_id, PAGE, start_key))
                count += len(result["Items"])
                start_key = result.get("LastEvaluatedKey")
                if start_key is None:
                    return count

        def resource(_: int) -> int:
            count, start_key = 0, None
            while True:
                result = _boto3_page(fx, start_key)
                count += len(result["Items"])
                start_key = result.get("LastEvaluatedKey")
                if start_key is None:
                    return count

        return [
            Variant(LAYER, lambda _: _layer_read(fx)),
            awaited(LAYER_ASYNC, lambda: _alayer_read(fx)),
            Variant(PYNAMODB, lambda _: list(model.query(
                f"USER#{fx.user_id}", model.sk.startswith("ORDER#"), scan_index_forward=False,
                limit=ORDERS, page_size=PAGE))),
            Variant(BOTOCORE, raw),
            Variant(BOTO3, resource),
            Variant(PYDYNOX, lambda _: pyd.query_orders(fx.pyd, fx.user_id, limit=None, page_size=PAGE)),
            awaited(PYDYNOX_ASYNC, lambda: pyd.aquery_orders(fx.pyd, fx.user_id, limit=None, page_size=PAGE)),
        ]

    def thousand(name: str, result: Any) -> None:
        count = len(result) if isinstance(result, list) else result
        if count != ORDERS:
            raise AssertionError(f"{name} read {count} orders live, not the {ORDERS} seeded")

    return record(Scenario("read 1,000", make, block=4, floor="Query"), fx, recorder, thousand)


# --- get_metrics: 30 day buckets, concurrently -------------------------------------------------

_KEY_CONDITION = re.compile(r"(#\w+) = (:\w+)")


def _partition_of(body: bytes) -> str:
    """The partition key value a recorded ``Query`` asked for."""
    request = json.loads(body)
    names = request.get("ExpressionAttributeNames", {})
    for name, value in _KEY_CONDITION.findall(request["KeyConditionExpression"]):
        if names.get(name, name) == "PK":
            partition: str = request["ExpressionAttributeValues"][value]["S"]
            return partition
    raise AssertionError("a metrics query without a PK condition")


def get_metrics(fx: Fixture, recorder: Recorder, delay: float) -> Scenario:
    """30 days of a device's readings: the layer's ``get_metrics`` (threads; and awaited: tasks)
    against a loop over the buckets (bare PynamoDB) and 8 threads over raw botocore, each request
    answered after ``delay`` by the canned server."""
    with recorder.recording() as recording:
        found = metrics.get_metrics(fx.device_id, fx.start, fx.end)
    if len(found) != DAYS * READINGS_A_DAY:
        raise AssertionError(f"get_metrics found {len(found)} readings, not {DAYS * READINGS_A_DAY}")
    # The baselines query exactly the partitions the layer queried, with the same range.
    partitions = [_partition_of(body) for body in recording.requests["Query"]]
    low = f"METRIC#{fx.start.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#"
    high = f"METRIC#{(fx.end + timedelta(microseconds=1)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#"

    def make(fx: Fixture) -> list[Variant]:
        model = fx.bare.Metric

        def sequential(_: int) -> list[Any]:
            found: list[Any] = []
            for pk in partitions:
                found.extend(model.query(pk, model.sk.between(low, high)))
            return found

        def bucket(pk: str) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            params: dict[str, Any] = {
                "TableName": fx.table_name, "KeyConditionExpression": "PK = :pk AND SK BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": {":pk": {"S": pk}, ":lo": {"S": low}, ":hi": {"S": high}},
                "ReturnConsumedCapacity": TOTAL,
            }
            while True:
                result = fx.raw.query(**params)
                items.extend(result["Items"])
                if "LastEvaluatedKey" not in result:
                    return items
                params["ExclusiveStartKey"] = result["LastEvaluatedKey"]

        def threaded(_: int) -> list[Any]:
            with ThreadPoolExecutor(max_workers=8) as pool:
                return [item for items in pool.map(bucket, partitions) for item in items]

        return [
            Variant(LAYER, lambda _: metrics.get_metrics(fx.device_id, fx.start, fx.end)),
            Variant(LAYER_ASYNC, lambda _: LOOP.run(ametrics.get_metrics(fx.device_id, fx.start, fx.end))),
            Variant(PYNAMODB, sequential),
            Variant(BOTOCORE, threaded),
        ]

    for variant in make(fx)[1:]:
        if len(variant.op(0)) != len(found):
            raise AssertionError(f"{variant.name} read another number of readings than get_metrics")
    return Scenario(f"get_metrics {len(partitions)} buckets", make, recording, block=2, delay=delay)


# --- batch writes ------------------------------------------------------------------------------


def _products(prefix: str, count: int) -> list[tuple[str, str, Decimal]]:
    return [(f"{prefix}-{n:06d}", f"Product {n}", Decimal(n % 5000) / 100) for n in range(count)]


def _batch_variants(fx: Fixture, items: list[tuple[str, str, Decimal]], singles: int) -> list[Variant]:
    """Write ``items``: the layer's ``batch_write`` (and awaited), PynamoDB's ``Model.batch_write()``,
    raw ``BatchWriteItem``, pydynox's batch writers; and the layer's ``put_product`` for the first
    ``singles`` of them."""

    def entities() -> list[Product]:
        return [Product(product_id=p, name=name, price=price) for p, name, price in items]

    def bare(_: int) -> None:
        when = baselines.now()
        with fx.bare.Product.batch_write() as writer:
            for p, name, price in items:
                writer.save(baselines.pynamodb_product(fx.bare, p, name, float(price), when))

    def raw(_: int) -> None:
        when = baselines.stamp(baselines.now())
        wire = [baselines.botocore_product(p, name, str(price), when) for p, name, price in items]
        baselines.botocore_batch_write(fx.raw, fx.table_name, wire)

    def one_by_one(_: int) -> None:
        for p, name, price in items[:singles]:
            products.put_product(p, name, price)

    count = len(items)
    return [
        Variant(LAYER, lambda _: batch.batch_write(entities()), items=count),
        awaited(LAYER_ASYNC, lambda: abatch.batch_write(entities()), items=count),
        Variant(PYNAMODB, bare, items=count),
        Variant(BOTOCORE, raw, items=count),
        Variant(PYDYNOX, lambda _: pyd.batch_write(fx.pyd, items), items=count),
        awaited(PYDYNOX_ASYNC, lambda: pyd.abatch_write(fx.pyd, items), items=count),
        Variant(ONE_BY_ONE, one_by_one, block=1, items=singles),
    ]


def batch_write(fx: Fixture, recorder: Recorder, count: int, block: int, singles: int) -> Scenario:
    """Batches of ``count`` new products, ``block`` a timed block (and ``singles`` of them one put each)."""
    live = [_batch_variants(fx, _products(f"live{n}", 100), 1) for n in range(6)]
    with recorder.recording() as recording:
        live[0][0].op(0)  # the layer's batch_write
        live[0][6].op(0)  # and one put_product
    for n in range(1, 6):
        live[n][n].op(0)

    def make(fx: Fixture) -> list[Variant]:
        return _batch_variants(fx, _products("p", count), singles)

    def warmup(fx: Fixture) -> list[Variant]:
        return [dataclasses.replace(v, block=1) for v in _batch_variants(fx, _products("w", 100), 20)]

    return Scenario(f"batch_write {count:,}", make, recording, block=block, warmup=warmup)


def live_variants(scenario: Scenario, fx: Fixture, names: Sequence[str]) -> list[Variant]:
    """``scenario``'s variants called ``names``, for ``fx``'s clients."""
    made = {v.name: v for v in scenario.make(fx)}
    return [made[name] for name in names]
