"""The asyncio HTTP/1.1 keep-alive client of ``AsyncLeanClient``, on asyncio and the standard library.

``AsyncPool.exchange(payload, attempt)`` writes one request, already encoded
(``core.engine.http1.encode``), with ONE ``transport.write`` on an idle connection to the pool's
origin (or a new one: ``loop.create_connection``, TCP_NODELAY on; TLS for ``https``, the
certificate verified against ``cafile``, SNI sent), and awaits its answer, parsed as the bytes
arrive by the sync client's own parser (``core.engine.http1.Parser``). ``attempt.sent`` turns
``True`` just before the write: until then no byte of the attempt can have left.

At most ``max_connections`` connections are in use at once: a call that finds them all busy waits
for a free slot (bounded by the caller's own timeout, as aiohttp's ``limit``). The connect timeout
bounds the connection and its TLS handshake; the read timeout, the whole answer after the write.
A connection goes back to the pool (idle ones reused most recent first) only when its answer was
read whole and nothing says to close it; one the server closed, or that received bytes nobody asked
for, while idle is dropped before use. A connection whose answer was abandoned (cancelled, timed
out, failed) is closed, never reused. The failures are ``core.engine.http1``'s ``WireError``s, as
``core.engine.wire`` raises them (``core.engine.transport.transport_error`` maps both).

No proxy: as the aiohttp session it replaces (which did not read the environment) and as the
synchronous client's urllib3 fallback (a ``PoolManager``, not a ``ProxyManager``), it connects
directly to the endpoint.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import ssl
from typing import Protocol

from core.engine.http1 import (
    ConnectFailed,
    ConnectionBroken,
    ConnectTimedOut,
    Parser,
    ReadTimedOut,
    Response,
    TLSFailed,
    WireError,
)
from core.engine.wire import Origin

__all__ = ["AsyncPool", "Sent"]


class Sent(Protocol):
    """What ``exchange`` marks when it writes an attempt (``sent = True``)."""

    sent: bool


class _Connection(asyncio.Protocol):
    """One connection: feeds the bytes received to the parser of the answer awaited, if any.

    The read timeout bounds each read, as a socket timeout does for the sync client: one timer per
    connection, not one per request; each request and each bytes received move the deadline
    (``_deadline``, loop time), and the timer, when it fires, fails the answer awaited if
    its deadline has passed, or waits again until that deadline (none: the timer stops). A
    keep-alive connection thus schedules a timer about once per read timeout, not at every call.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.dropped = False  # closed, or bytes received that no request asked for
        self._parser: Parser | None = None
        self._waiter: asyncio.Future[tuple[Response, bool]] | None = None
        self._deadline = 0.0  # when the answer awaited is late (loop time)
        self._read_timeout = 0.0  # the timeout that set it, for the error's message
        self._timer: asyncio.TimerHandle | None = None  # fires at or before _deadline

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; Nagle off (asyncio's default for TCP, made sure of here)."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; resolve the answer once it is whole."""
        parser = self._parser
        if parser is None:  # nothing asked: the connection cannot be trusted with a request
            self._drop()
            return
        self._deadline = self._loop.time() + self._read_timeout  # each read waits at most the timeout
        try:
            whole = parser.feed(data)
        except WireError as exc:
            self._fail(exc)
            return
        if whole:
            self._resolve(parser.answer())

    def eof_received(self) -> bool:
        """The server ended its side: the answer, if delimited by the end, or a failure."""
        parser = self._parser
        self.dropped = True
        if parser is not None:
            try:
                self._resolve((parser.eof(), False))
            except WireError as exc:
                self._fail(exc)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: an awaited answer fails."""
        self.dropped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._parser is not None:
            if isinstance(exc, ssl.SSLError):
                self._fail(TLSFailed(str(exc)))
            elif exc is None:
                self._fail(ConnectionBroken("Remote end closed connection without response"))
            else:
                self._fail(ConnectionBroken(f"Connection aborted: {exc!r}"))

    def send(self, payload: bytes, attempt: Sent,
             read_timeout: float) -> asyncio.Future[tuple[Response, bool]]:
        """Write ``payload``; the future of its answer, and whether the connection can serve another.
        The caller awaits it, then calls ``finished()``."""
        transport = self.transport
        if self.dropped or transport is None or transport.is_closing():
            raise ConnectionBroken("Remote end closed connection without response")  # nothing written
        loop = self._loop
        waiter: asyncio.Future[tuple[Response, bool]] = loop.create_future()
        self._waiter = waiter
        self._parser = Parser()
        attempt.sent = True
        deadline = self._deadline = loop.time() + read_timeout
        self._read_timeout = read_timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._check_deadline)
        transport.write(payload)
        return waiter

    def finished(self) -> None:
        """The answer awaited was read, or abandoned: the connection awaits none."""
        self._parser = self._waiter = None

    def close(self) -> None:
        """Close at once (an abandoned answer's connection is never reused)."""
        self._drop()

    def _check_deadline(self) -> None:
        """The timer: fail the answer awaited if it is late, else wait until its deadline."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # idle: the next request starts the timer again
        if self._loop.time() >= self._deadline:
            seconds = self._read_timeout
            self._fail(ReadTimedOut(f"Read timed out. (read timeout={seconds})"))
        else:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)

    def _resolve(self, answer: tuple[Response, bool]) -> None:
        waiter = self._waiter
        self._parser = None
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def _fail(self, exc: WireError) -> None:
        waiter = self._waiter
        self._parser = None
        self._drop()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _drop(self) -> None:
        self.dropped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()


class AsyncPool:
    """Keep-alive connections to one origin, for one event loop (see the module docstring).

    ``tls``: the context that verifies the origin's certificate (required for ``https``).
    """

    def __init__(self, origin: Origin, *, connect_timeout: float, read_timeout: float,
                 max_connections: int, tls: ssl.SSLContext | None = None) -> None:
        if origin.scheme == "https" and tls is None:
            raise ValueError("an https origin needs a TLS context")
        self.origin = origin
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.opened = 0  # connections made so far
        self._tls = tls if origin.scheme == "https" else None
        # The slots, as an asyncio.Semaphore(max_connections) without its coroutines per call: a
        # freed slot passes straight to the first waiter, so there are waiters only when all are busy.
        self._busy = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._idle: list[_Connection] = []
        self._closed = False

    async def exchange(self, payload: bytes, attempt: Sent) -> Response:
        """Send ``payload`` (one request, ``core.engine.http1.encode``); its answer, or a
        ``core.engine.http1.WireError``. ``attempt.sent`` is set just before the request is written."""
        if self._busy < self.max_connections:
            self._busy += 1
        else:
            await self._slot()
        try:
            connection = self._take() or await self._connect()
            try:
                response, reusable = await connection.send(payload, attempt, self.read_timeout)
            except BaseException:
                connection.close()
                raise
            finally:
                connection.finished()
            if reusable and not self._closed:
                self._idle.append(connection)
            else:
                connection.close()
            return response
        finally:
            self._release()

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when their answer is read."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        if idle:
            await asyncio.sleep(0)  # let the transports finish closing

    async def _slot(self) -> None:
        """Wait for a slot, first come first served (``_release`` hands it over)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot as it was cancelled: the next waiter gets it
            else:
                with contextlib.suppress(ValueError):  # already skipped by _release
                    self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        """Free a slot: to the first waiter still waiting, if any."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot is its now: still busy
                return
        self._busy -= 1

    def _take(self) -> _Connection | None:
        idle = self._idle
        while idle:
            connection = idle.pop()
            if not connection.dropped:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        origin = self.origin
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop), origin.host, origin.port, ssl=self._tls,
                    server_hostname=origin.host if self._tls is not None else None)
        except TimeoutError as exc:
            raise ConnectTimedOut(f"Connection to {origin.host} timed out. "
                                  f"(connect timeout={self.connect_timeout})") from exc
        except ssl.SSLError as exc:  # a certificate refused too (SSLCertVerificationError)
            raise TLSFailed(str(exc)) from exc
        except OSError as exc:  # refused, unreachable, name not resolved
            raise ConnectFailed(f"Failed to establish a new connection: {exc}") from exc
        self.opened += 1
        return connection
