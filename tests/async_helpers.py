"""Helpers for tests of the async API: a loop per test (``arun``); a watch on the models' client that
tells whether each request was awaited while the loop ran on (``Requests``); and a relay in front of
DynamoDB Local that applies requests and withholds their answers (``Relay``), to cancel a task whose
request really reached the table."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

from core.config import Settings
from core.engine import bridge
from models import TableModel
from repositories.asyncio import aclose
from tests.helpers import models_client, on, raw_scan

T = TypeVar("T")


def arun(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` on a new loop; close the async API's pools on it at the end."""

    async def closing() -> T:
        try:
            return await main()
        finally:
            await aclose()

    return asyncio.run(closing())


class Requests:
    """The requests sent through the models' client: each operation and whether it was sent from
    inside ``bridge.run`` (a blocking send on the loop's thread); the most in flight at once; and
    how often a ticker task of the loop ran between each request and its answer."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bool]] = []
        self.in_flight = self.most_in_flight = self.ticks = 0
        self.ticks_during: list[int] = []
        self._started: list[int] = []

    def before_send(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        self.sent.append((target.decode().rpartition(".")[2], bridge.active()))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self._started.append(self.ticks)

    def after_call(self, **_: Any) -> None:
        self.in_flight -= 1
        self.ticks_during.append(self.ticks - self._started.pop(0))

    def count(self, operation: str) -> int:
        return sum(op == operation for op, _ in self.sent)

    async def ticking(self, work: Awaitable[T]) -> T:
        """Await ``work`` while a task of this loop counts its turns."""
        done = False

        async def ticker() -> None:
            while not done:
                self.ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        try:
            return await work
        finally:
            done = True
            await task


def stored(settings: Settings, entity_type: str) -> list[dict[str, Any]]:
    """The items of one entity type in the table, read with a raw client."""
    return [item for item in raw_scan(settings) if item["EntityType"]["S"] == entity_type]


def watched() -> Iterator[Requests]:
    """Watch the requests of the models' client (its loop twins share its hooks) until closed: the
    body of a fixture."""
    watch = Requests()
    client = models_client(TableModel)
    # The removers ``on`` returns: ``off`` looks a handler up by id(), and a bound method is a new
    # object at each attribute access.
    removers = [on(client, "before-send.dynamodb", watch.before_send),
                on(client, "after-call.dynamodb", watch.after_call)]
    yield watch
    for remove in removers:
        remove()


async def _message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message (its body sized by Content-Length), or ``None`` at the end of the stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return head + (await reader.readexactly(int(found.group(1))) if found else b"")


class Relay:
    """A relay on 127.0.0.1 in front of DynamoDB Local: every request is passed on (and applied);
    the answers to the first ``hold`` requests are read and withheld until the client hangs up."""

    def __init__(self, upstream: str, *, hold: int, on_start: Callable[[str], None]) -> None:
        url = urlsplit(upstream)
        self.on_start = on_start
        self.upstream = (url.hostname, url.port)
        self.hold = hold
        self.operations: list[str] = []
        self.withheld = 0
        self.held = asyncio.Event()  # set when the answer of a request is withheld
        self._server: asyncio.Server | None = None
        self._streams: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self.url = ""

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        self.on_start(self.url)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for stream in self._streams:
            stream.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        self._streams.append(writer)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._streams.append(up_writer)
        try:
            while (request := await _message(reader)) is not None:
                target = re.search(rb"(?im)^x-amz-target:\s*DynamoDB_\d+\.(\w+)", request)
                self.operations.append(target.group(1).decode() if target else "?")
                up_writer.write(request)
                await up_writer.drain()
                answer = await _message(up_reader)
                if self.withheld < self.hold:
                    self.withheld += 1
                    self.held.set()
                    await reader.read()  # until the client gives up on it
                    return
                writer.write(answer or b"")
                await writer.drain()
        finally:
            writer.close()
            up_writer.close()
