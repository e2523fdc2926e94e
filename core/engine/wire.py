"""A minimal HTTP/1.1 keep-alive client for ``LeanClient``, on the standard library alone.

``Pool.exchange(origin, payload)`` writes one request, already encoded (``core.engine.http1.encode``:
request line, headers and body), with ONE ``sendall`` (a request over ``SEND_SLICE`` bytes: one per
slice) on an idle connection to ``origin`` (or a new one, TCP_NODELAY on; TLS for ``https``, the
certificate verified against ``cafile``, SNI sent), and reads the answer
(``core.engine.http1.read``). Connect timeout: ``socket.create_connection``'s (the TLS handshake and
each write's too, as urllib3's); read timeout: each ``recv``'s.

A connection goes back to the pool (at most ``max_idle`` idle per origin, the most recent reused
first; the pool is shared by threads) only when its answer was read whole and nothing says to
close it. An idle connection the server closed meanwhile (readable while idle, as urllib3's
``is_connection_dropped`` sees it) is dropped before use and another one taken. A failure after
that is reported, never hidden by a silent re-send, on a reused connection as on a new one: a
request that was written may have been applied, so only the retry policy
(``core.engine.retries``) sends it again. The failures are ``core.engine.http1``'s ``WireError``s.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import ssl
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Final

from core.engine.http1 import (
    ConnectFailed,
    ConnectionBroken,
    ConnectTimedOut,
    ReadTimedOut,
    Response,
    TLSFailed,
    read,
)

# A request up to this size is written with one sendall; a larger one (a BatchWriteItem can reach
# 16 MB) slice by slice, since a plain socket's sendall has ONE deadline for all it writes, and
# urllib3 bounds each 16 KB block: a slow link must not turn a big write into a timeout.
SEND_SLICE: Final = 1 << 16
_TCP_NODELAY: Final = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
_ANSWER_MAY_FOLLOW: Final = frozenset({errno.EPROTOTYPE, errno.ECONNRESET})  # urllib3 reads on after these


@dataclass(frozen=True, slots=True)
class Origin:
    """Where connections go: ``scheme`` (``http``/``https``), the ``host`` to dial and its ``port``."""

    scheme: str
    host: str
    port: int


class _Connection:
    """One socket, and what tells whether the server closed it while it was idle."""

    __slots__ = ("_poll", "generation", "sock")

    def __init__(self, sock: socket.socket, generation: int) -> None:
        self.sock = sock
        self.generation = generation
        self._poll = select.poll() if hasattr(select, "poll") else None  # no poll on Windows
        if self._poll is not None:
            self._poll.register(sock, select.POLLIN)

    def dropped(self) -> bool:
        """Readable while idle: closed by the server (or holding bytes nobody asked for)."""
        if self._poll is None:
            return bool(select.select([self.sock], [], [], 0)[0])
        return bool(self._poll.poll(0))

    def close(self) -> None:
        """Close the socket (errors ignored)."""
        with contextlib.suppress(OSError):
            self.sock.close()


class Pool:
    """Keep-alive connections per origin, shared by threads (see the module docstring).

    ``cafile``: the CA bundle that verifies TLS servers (the system's default when ``None``).
    """

    def __init__(self, *, connect_timeout: float, read_timeout: float, max_idle: int,
                 cafile: str | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self.opened = 0  # connections made so far
        self._cafile = cafile
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        weakref.finalize(self, _close_idle, self._idle)  # as urllib3's pools: no socket left to the GC

    def exchange(self, origin: Origin, payload: bytes) -> Response:
        """Send ``payload`` (one request, ``core.engine.http1.encode``) to ``origin``; its answer, or a
        ``core.engine.http1.WireError``."""
        connection = self._take(origin) or self._connect(origin)
        try:
            response, reusable = self._round_trip(connection.sock, payload)
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._give_back(origin, connection)
        else:
            connection.close()
        return response

    def close(self) -> None:
        """Close the idle connections; those in use are closed when their answer is read."""
        with self._lock:
            self._generation += 1
            idle = dict(self._idle)
            self._idle.clear()
        _close_idle(idle)

    # --- connections ----------------------------------------------------------------------------

    def _take(self, origin: Origin) -> _Connection | None:
        while True:
            with self._lock:
                connections = self._idle.get(origin)
                connection = connections.pop() if connections else None
            if connection is None or not connection.dropped():
                return connection
            connection.close()

    def _give_back(self, origin: Origin, connection: _Connection) -> None:
        with self._lock:
            connections = self._idle.get(origin)
            if connections is None:
                connections = self._idle[origin] = deque()
            if connection.generation == self._generation and len(connections) < self.max_idle:
                connections.append(connection)
                return
        connection.close()

    def _connect(self, origin: Origin) -> _Connection:
        try:
            sock = socket.create_connection((origin.host, origin.port), timeout=self.connect_timeout)
        except TimeoutError as exc:
            raise ConnectTimedOut(f"Connection to {origin.host} timed out. "
                                  f"(connect timeout={self.connect_timeout})") from exc
        except OSError as exc:
            raise ConnectFailed(f"Failed to establish a new connection: {exc}") from exc
        try:
            for option in _TCP_NODELAY:
                sock.setsockopt(*option)
            if origin.scheme == "https":
                sock = self._context().wrap_socket(sock, server_hostname=origin.host)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, TimeoutError):  # urllib3: a handshake that times out is a read timeout
                raise ReadTimedOut(f"Read timed out. (read timeout={self.connect_timeout})") from exc
            if isinstance(exc, ssl.SSLError):  # a certificate refused too (SSLCertVerificationError)
                raise TLSFailed(str(exc)) from exc
            if isinstance(exc, OSError):
                raise ConnectionBroken(f"Connection aborted: {exc!r}") from exc
            raise
        with self._lock:
            self.opened += 1
            return _Connection(sock, self._generation)

    def _context(self) -> ssl.SSLContext:
        context = self._tls
        if context is None:  # made at the first https connection: loading a CA bundle takes milliseconds
            try:
                context = ssl.create_default_context(cafile=self._cafile)
            except OSError as exc:  # a CA bundle that cannot be read: an SSL error, as urllib3 says
                raise TLSFailed(f"could not load the CA bundle {self._cafile!r}: {exc}") from exc
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return context

    # --- one request, one answer ----------------------------------------------------------------

    def _round_trip(self, sock: socket.socket, payload: bytes) -> tuple[Response, bool]:
        """Write ``payload`` and read its answer; and whether the connection can serve another."""
        sock.settimeout(self.connect_timeout)  # urllib3 writes under the connect timeout
        try:
            if len(payload) <= SEND_SLICE:
                sock.sendall(payload)
            else:
                with memoryview(payload) as view:
                    for start in range(0, len(view), SEND_SLICE):
                        sock.sendall(view[start:start + SEND_SLICE])
        except TimeoutError as exc:
            raise ConnectionBroken(f"Connection aborted: {exc!r}") from exc
        except ssl.SSLError as exc:
            raise TLSFailed(str(exc)) from exc
        except OSError as exc:
            if not isinstance(exc, BrokenPipeError) and exc.errno not in _ANSWER_MAY_FOLLOW:
                raise ConnectionBroken(f"Connection aborted: {exc!r}") from exc
            # as urllib3: the server may have answered before it closed; the read tells
        sock.settimeout(self.read_timeout)
        try:
            return read(sock)
        except TimeoutError as exc:
            raise ReadTimedOut(f"Read timed out. (read timeout={self.read_timeout})") from exc
        except ssl.SSLError as exc:
            raise TLSFailed(str(exc)) from exc
        except OSError as exc:
            raise ConnectionBroken(f"Connection aborted: {exc!r}") from exc


def _close_idle(idle: dict[Origin, deque[_Connection]]) -> None:
    for connections in list(idle.values()):
        while connections:
            connections.pop().close()
