"""HTTP/1.1 framing for ``core.engine.wire``, by hand, on the standard library alone.

``encode`` gives a request as the bytes written in one ``sendall`` (request line, headers, body);
``Parser`` parses one answer from the bytes fed to it, without I/O (``read`` feeds it from a socket,
``core.engine.aiowire`` from an asyncio protocol): the status line, the headers (names lower-cased; a
repeated one joined with ``", "``, as urllib3's ``HTTPHeaderDict`` joins it), and the body, to
``content-length``, by ``transfer-encoding: chunked`` or to the end of the connection; 1xx answers
are skipped. It says too whether the connection can carry another request: not after
``connection: close`` (or HTTP/1.0 without keep-alive), a body delimited by the end of the
connection, or bytes that followed the answer.

The failures (``WireError``), one per botocore exception urllib3's failure of the same kind becomes
(``core.engine.transport`` maps them; urllib3 2's ``connectionpool`` is the reference):

- ``ConnectFailed``: no connection (refused, unreachable, name not resolved): nothing was sent;
- ``ConnectTimedOut``: no connection within the connect timeout: nothing was sent;
- ``TLSFailed``: the TLS layer failed (certificate, handshake, or later on the connection);
- ``ReadTimedOut``: a read (or the TLS handshake, as urllib3 has it) waited past its timeout;
- ``ConnectionBroken``: the request could not be written, or the answer was missing, cut or
  malformed (``read`` raises this one; ``core.engine.wire`` the others).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Final, NamedTuple

RECV_SIZE: Final = 65536
MAX_HEAD: Final = 65536  # http.client's limit on a header line; here on the whole head
_NO_BODY: Final = frozenset({204, 304})


class WireError(Exception):
    """A request that got no (whole) answer; the subclass says how."""


class ConnectFailed(WireError):
    """The connection could not be made: nothing was sent."""


class ConnectTimedOut(WireError):
    """The connection was not made within the connect timeout: nothing was sent."""


class TLSFailed(WireError):
    """The TLS layer failed: certificate, handshake, or a TLS error on the connection."""


class ReadTimedOut(WireError):
    """A read waited past the read timeout."""


class ConnectionBroken(WireError):
    """The request could not be written, or the answer was missing, cut short or malformed."""


class Response(NamedTuple):
    """An answer: status, headers (lower-cased names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def encode(method: str, target: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """The request as bytes on the wire, with the headers urllib3 adds: ``Accept-Encoding: identity``
    and ``Content-Length`` (unless given). Raises ``ValueError`` for a CR or LF in a header, as
    ``http.client`` does."""
    names = {name.lower() for name in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "accept-encoding" not in names:
        lines.append("Accept-Encoding: identity")
    if "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    text = "\r\n".join(lines) + "\r\n\r\n"
    breaks = len(lines) + 1
    if text.count("\n") != breaks or text.count("\r") != breaks:
        raise ValueError("a header name or value holds a CR or LF")
    return text.encode("latin-1") + body


def read(sock: socket.socket) -> tuple[Response, bool]:
    """One answer read from ``sock`` (1xx answers skipped); and whether the connection stays open."""
    parser = Parser()
    while True:
        data = sock.recv(RECV_SIZE)
        if not data:
            return parser.eof(), False
        if parser.feed(data):
            return parser.answer()


# Parser states: what the next bytes are.
_HEAD: Final = 0  # the status line and headers
_BODY: Final = 1  # ``_need`` more bytes of body (content-length) or of a chunk
_CRLF: Final = 2  # the CRLF after a chunk's data
_SIZE: Final = 3  # a chunk-size line
_TRAILER: Final = 4  # trailer lines, up to an empty one
_EOF: Final = 5  # body bytes up to the end of the connection
_DONE: Final = 6


class Parser:
    """One answer, parsed without I/O (the sync ``read`` and ``core.engine.aiowire`` feed it).

    ``feed(data)`` with each bytes received: ``True`` once the answer is whole (then ``answer()``
    gives it and whether the connection stays open). ``eof()`` when the connection ends first: the
    answer when its body is delimited by the end, else ``ConnectionBroken``. A malformed answer
    raises ``ConnectionBroken`` from ``feed``.
    """

    __slots__ = ("_chunked", "_keep", "_need", "_parts", "_pending", "_response", "_seen", "_state")

    def __init__(self) -> None:
        self._state = _HEAD
        self._pending = b""  # bytes of a head or chunk line not yet complete
        self._parts: list[bytes] = []
        self._need = 0
        self._seen = 0  # body bytes received (content-length bodies)
        self._chunked = False
        self._keep = False
        self._response: Response | None = None

    def answer(self) -> tuple[Response, bool]:
        """The whole answer and whether the connection can carry another request."""
        if self._response is None:
            raise ConnectionBroken("the answer is not complete")
        return self._response, self._keep

    def feed(self, data: bytes) -> bool:
        """Take the next bytes received; ``True`` once the answer is whole."""
        if self._state == _DONE:
            self._keep = self._keep and not data  # bytes nobody asked for: not reusable
            return True
        if self._pending:
            data, self._pending = self._pending + data, b""
        at = 0
        while self._state != _DONE:
            at = _STEPS[self._state](self, data, at)
            if at < 0:
                return False
        return self._finish(at == len(data))

    def _body(self, data: bytes, at: int) -> int:
        """Body bytes up to ``_need``: a content-length body, or a chunk's data."""
        size = len(data)
        take = min(self._need, size - at)
        if take:
            self._parts.append(data if take == size else data[at:at + take])
            at += take
            self._need -= take
            self._seen += take
        if self._need:
            return -1
        self._state = _CRLF if self._chunked else _DONE
        return at

    def _head_step(self, data: bytes, at: int) -> int:
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            return self._wait(data, at, f"got more than {MAX_HEAD} bytes of headers")
        return self._start(data[at:end].decode("latin-1"), end + 4)

    def _crlf(self, data: bytes, at: int) -> int:
        if len(data) - at < 2:
            return self._wait(data, at, "")
        if data[at:at + 2] != b"\r\n":
            raise ConnectionBroken("a chunk does not end with CRLF")
        self._state = _SIZE
        return at + 2

    def _line_step(self, data: bytes, at: int) -> int:
        """A chunk-size line, or a trailer line (dropped; the empty one ends the body)."""
        end = data.find(b"\r\n", at)
        if end < 0:
            return self._wait(data, at, "chunk line too long")
        line = data[at:end]
        if self._state == _TRAILER:
            if not line:
                self._state = _DONE
            return end + 2
        size_field = line.split(b";", 1)[0].strip()
        if not size_field or size_field.strip(b"0123456789abcdefABCDEF"):
            raise ConnectionBroken(f"invalid chunk size {line[:40]!r}")
        self._need = int(size_field, 16)
        self._state = _BODY if self._need else _TRAILER
        return end + 2

    def _to_eof(self, data: bytes, at: int) -> int:
        if at < len(data):
            self._parts.append(data[at:])
        return -1

    def eof(self) -> Response:
        """The connection ended: the answer if its body runs to the end, else ``ConnectionBroken``."""
        state = self._state
        if state == _EOF:
            self._finish(False)
            return self.answer()[0]
        if state == _HEAD:
            raise ConnectionBroken("Remote end closed connection during the headers" if self._pending
                                   or self._seen else "Remote end closed connection without response")
        if state == _BODY and not self._chunked:
            raise ConnectionBroken(f"IncompleteRead({self._seen} bytes read, {self._need} more expected)")
        if state == _DONE:
            return self.answer()[0]
        raise ConnectionBroken("Remote end closed connection in a chunked body")

    def _wait(self, data: bytes, at: int, too_long: str) -> int:
        """Keep the incomplete line (or head) from ``at`` for the next bytes."""
        rest = data[at:]
        if len(rest) > MAX_HEAD:
            raise ConnectionBroken(too_long)
        self._pending = rest
        return -1

    def _start(self, head: str, at: int) -> int:
        """Read the head; choose how the body is delimited (or skip a 1xx answer)."""
        status, headers, keep = _head(head)
        self._seen = 1  # something was received: a later end is "during the headers"
        if 100 <= status < 200 and status != 101:
            return at  # an interim answer: the real one follows
        self._seen = 0
        self._response = Response(status, headers, b"")
        self._keep = keep
        encoding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if status in _NO_BODY or status < 200:
            self._keep = keep and status >= 200
            self._state = _DONE
        elif encoding is not None and "chunked" in encoding.lower():
            self._chunked, self._state = True, _SIZE
        elif length is not None:
            self._need = _length(length)
            self._state = _BODY if self._need else _DONE
        else:
            self._keep, self._state = False, _EOF
        return at

    def _finish(self, consumed: bool) -> bool:
        parts = self._parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        response = self._response
        assert response is not None
        self._response = Response(response.status, response.headers, body)
        self._keep = self._keep and consumed
        self._state = _DONE
        self._parts = []
        return True


_STEPS: Final = (Parser._head_step, Parser._body, Parser._crlf, Parser._line_step, Parser._line_step,
                 Parser._to_eof)


def _head(text: str) -> tuple[int, dict[str, str], bool]:
    """Status, headers and keep-alive of an answer's head (status line and header lines)."""
    lines = text.split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
        raise ConnectionBroken(f"BadStatusLine({lines[0]!r})")
    headers: dict[str, str] = {}
    name = ""
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and name:  # an obsolete folded line continues the last header
            headers[name] += line
            continue
        raw, colon, value = line.partition(":")
        if not colon:
            continue  # not a header (http.client notes a defect and goes on)
        name, value = raw.rstrip().lower(), value.lstrip(" \t")
        previous = headers.get(name)
        headers[name] = value if previous is None else f"{previous}, {value}"
    tokens = headers.get("connection", "").lower()
    keep = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
    return int(code), headers, keep


def _length(value: str) -> int:
    lengths = {part.strip() for part in value.split(",")}  # urllib3 accepts repeats of one value
    if len(lengths) != 1 or not (length := lengths.pop()).isdigit():
        raise ConnectionBroken(f"invalid content-length {value!r}")
    return int(length)
