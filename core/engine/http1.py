"""HTTP/1.1 framing for ``core.engine.wire``, by hand, on the standard library alone.

``encode`` gives a request as the bytes written in one ``sendall`` (request line, headers, body);
``read`` reads one answer from a socket: the status line, the headers (names lower-cased; a
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
    data = sock.recv(RECV_SIZE)
    if not data:
        raise ConnectionBroken("Remote end closed connection without response")
    while True:
        end = data.find(b"\r\n\r\n")
        while end < 0:
            if len(data) > MAX_HEAD:
                raise ConnectionBroken(f"got more than {MAX_HEAD} bytes of headers")
            data = _more(sock, data, "Remote end closed connection during the headers")
            end = data.find(b"\r\n\r\n")
        status, headers, keep = _head(data[:end].decode("latin-1"))
        data = data[end + 4:]
        if status >= 200 or status == 101:  # 101: no body, and the connection is not HTTP any more
            break
    encoding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if status in _NO_BODY or status < 200:
        body, keep = b"", keep and status >= 200
    elif encoding is not None and "chunked" in encoding.lower():
        body, data = _chunked(sock, data)
    elif length is not None:
        body, data = _exactly(sock, data, _length(length))
    else:  # delimited by the end of the connection
        parts = [data]
        while chunk := sock.recv(RECV_SIZE):
            parts.append(chunk)
        body, data, keep = b"".join(parts), b"", False
    return Response(status, headers, body), keep and not data


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


def _more(sock: socket.socket, data: bytes, eof: str) -> bytes:
    chunk = sock.recv(RECV_SIZE)
    if not chunk:
        raise ConnectionBroken(eof)
    return data + chunk


def _exactly(sock: socket.socket, data: bytes, length: int) -> tuple[bytes, bytes]:
    """``length`` bytes: those in ``data`` first, then read; and what followed them."""
    have = len(data)
    if have >= length:
        return data[:length], data[length:]
    buffer = bytearray(length)
    buffer[:have] = data
    view = memoryview(buffer)
    while have < length:
        read = sock.recv_into(view[have:])
        if not read:
            raise ConnectionBroken(f"IncompleteRead({have} bytes read, {length - have} more expected)")
        have += read
    return bytes(buffer), b""


def _line(sock: socket.socket, data: bytes, at: int) -> tuple[bytes, bytes, int]:
    """The CRLF-ended line at ``at`` in ``data`` (read more until there is one); the data and where
    the line ends (``data`` is cut to what is unread only when more must be read)."""
    end = data.find(b"\r\n", at)
    while end < 0:
        if len(data) - at > MAX_HEAD:
            raise ConnectionBroken("chunk line too long")
        data, at = _more(sock, data[at:], "Remote end closed connection in a chunked body"), 0
        end = data.find(b"\r\n")
    return data[at:end], data, end + 2


def _chunked(sock: socket.socket, data: bytes) -> tuple[bytes, bytes]:
    """A chunked body (chunk extensions ignored, trailers read and dropped); and what followed it."""
    parts: list[bytes] = []
    at = 0
    while True:
        line, data, at = _line(sock, data, at)
        size_field = line.split(b";", 1)[0].strip()
        if not size_field or size_field.strip(b"0123456789abcdefABCDEF"):
            raise ConnectionBroken(f"invalid chunk size {line[:40]!r}")
        size = int(size_field, 16)
        if size == 0:
            while line:  # trailers, up to an empty line
                line, data, at = _line(sock, data, at)
            return b"".join(parts), data[at:]
        if len(data) - at >= size + 2:
            chunk, at = data[at:at + size + 2], at + size + 2
        else:
            chunk, data = _exactly(sock, data[at:], size + 2)
            at = 0
        if chunk[size:] != b"\r\n":
            raise ConnectionBroken("a chunk does not end with CRLF")
        parts.append(chunk[:size])
