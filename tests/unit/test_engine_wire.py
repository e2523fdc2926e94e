"""``core.engine.wire``: LeanClient's own HTTP/1.1 keep-alive client, against small servers on 127.0.0.1.

Each server is a thread accepting on a free port and a thread per connection playing one script
(answer everything, close while idle, reset after reading, never answer, answer chunked, ...). What
a test checks is what ``LeanClient`` reports: the answer, or the botocore exception urllib3's failure
of the same kind becomes, and whether the call counts as sent (``core.error_codes.nothing_sent``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from binascii import crc32
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
    SSLError,
)
from botocore.session import Session

from core import engine
from core.config import Settings
from core.engine import http1, wire
from core.engine.retries import RetryPolicy, RetryQuota
from core.engine.sync import LeanClient
from core.engine.transport import URLLib3Sender, WireSender
from core.error_codes import nothing_sent

# --- servers -------------------------------------------------------------------------------------------


class Peer:
    """The server's side of one connection: requests read whole, answers written."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def request(self) -> bytes | None:
        """The next whole request (head and body), or ``None`` at the end of the connection."""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        end = self._buffer.index(b"\r\n\r\n") + 4
        head = self._buffer[:end].decode("latin-1").lower()
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        while len(self._buffer) < end + length:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        request, self._buffer = self._buffer[:end + length], self._buffer[end + length:]
        return request

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


Script = Callable[[Peer, "Server"], None]


class Server:
    """Accepts connections on a free 127.0.0.1 port (TLS with ``tls``); each is played by ``script``."""

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self.script, self.tls = script, tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.requests: list[bytes] = []
        self.closed_idle = threading.Event()  # set by scripts that close a connection on their own
        self.stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            self.accepted += 1
            self._sockets.append(sock)
            thread = threading.Thread(target=self._play, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _play(self, sock: socket.socket) -> None:
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
                self._sockets.append(sock)
            self.script(Peer(sock), self)
        except (OSError, ssl.SSLError):
            pass  # the client went away, or refused the certificate: the script ends there
        finally:
            sock.close()

    def close(self) -> None:
        self.stop.set()
        for sock in self._sockets:  # wakes the scripts waiting for a request
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self.listener.close()
        for sock in self._sockets:
            sock.close()


def document(request: bytes) -> dict[str, Any]:
    """The JSON body of a request."""
    return json.loads(request.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


def answer(doc: dict[str, Any], *, headers: str = "", status: str = "200 OK") -> bytes:
    """An answer as DynamoDB gives it: ``content-length``, ``x-amz-crc32``, a request id."""
    body = json.dumps(doc).encode()
    return (f"HTTP/1.1 {status}\r\nx-amzn-RequestId: REQ\r\nx-amz-crc32: {crc32(body)}\r\n"
            f"Content-Type: application/x-amz-json-1.0\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
            ).encode() + body


def echo(request: bytes) -> bytes:
    """The answer to a GetItem: the item whose key was asked for."""
    return answer({"Item": document(request)["Key"]})


def keep_alive(peer: Peer, server: Server) -> None:
    """Answers every request on the connection, until the client closes it."""
    while (request := peer.request()) is not None:
        server.requests.append(request)
        peer.send(echo(request))


def answer_once_then_close(peer: Peer, server: Server) -> None:
    """Answers the first request, then closes the connection (an idle connection the server ended)."""
    request = peer.request()
    if request is not None:
        peer.send(echo(request))
    peer.sock.close()
    server.closed_idle.set()


def chunked(peer: Peer, server: Server) -> None:
    """Answers every request with a chunked body: chunks of 7 bytes with an extension, one write
    each, and a trailer."""
    while (request := peer.request()) is not None:
        body = json.dumps({"Item": document(request)["Key"]}).encode()
        peer.send(f"HTTP/1.1 200 OK\r\nx-amzn-RequestId: REQ\r\nx-amz-crc32: {crc32(body)}\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        for start in range(0, len(body), 7):
            piece = body[start:start + 7]
            peer.send(b"%x;ext=1\r\n%b\r\n" % (len(piece), piece))
        peer.send(b"0\r\nx-trailer: t\r\n\r\n")


clients: list[LeanClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while clients:
        clients.pop().close()


def client_for(endpoint: str, *, attempts: int = 1, read_timeout: float = 10, connect_timeout: float = 2,
               session: Session | None = None, pool: urllib3.PoolManager | None = None) -> LeanClient:
    settings = Settings(table_name="t", endpoint_url=endpoint, region="us-east-1",
                        max_retry_attempts=attempts - 1, connect_timeout_seconds=connect_timeout,
                        read_timeout_seconds=read_timeout)
    retry = RetryPolicy(attempts, quota=RetryQuota(), random=lambda: 0.0)
    client = LeanClient(settings, session=session, pool=pool, sleep=lambda _: None, retry=retry,
                        clock=lambda: 1_750_000_000.0)
    clients.append(client)
    return client


def get(client: LeanClient, key: str = "a") -> dict[str, Any]:
    return client.call("GetItem", {"TableName": "t", "Key": {"PK": {"S": key}}})


def opened(client: LeanClient) -> int:
    sender = client._sender
    assert isinstance(sender, WireSender)
    return sender.pool.opened


# --- keep-alive, and the request on the wire -----------------------------------------------------------


def test_many_calls_share_one_connection(serve: Callable[..., Server]) -> None:
    server = serve(keep_alive)
    client = client_for(server.endpoint)
    for number in range(20):
        assert get(client, f"k{number}")["Item"] == {"PK": {"S": f"k{number}"}}
    assert (server.accepted, opened(client), len(server.requests)) == (1, 1, 20)


def test_the_request_is_urllib3s_byte_for_byte_and_one_sendall(
        serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(keep_alive)
    through_urllib3 = client_for(server.endpoint, pool=urllib3.PoolManager(retries=False))
    assert isinstance(through_urllib3._sender, URLLib3Sender)
    expected = get(through_urllib3)
    sendalls: list[bytes] = []
    create = socket.create_connection

    def counting(*args: Any, **kwargs: Any) -> socket.socket:
        class Counted(socket.socket):
            def sendall(self, data: Any, flags: int = 0) -> None:
                sendalls.append(bytes(data))
                super().sendall(data, flags)

        made = create(*args, **kwargs)
        counted = Counted(made.family, made.type, made.proto, fileno=made.detach())
        counted.settimeout(kwargs.get("timeout"))
        return counted

    monkeypatch.setattr(socket, "create_connection", counting)
    answered = get(client_for(server.endpoint))
    assert answered == expected  # the result, ResponseMetadata and its lower-cased HTTPHeaders included
    assert answered["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == "REQ"
    urllib3_request, wire_request = server.requests
    assert wire_request == urllib3_request  # the clock is fixed: the same signature
    assert sendalls == [wire_request]  # request line, headers and body: one sendall
    assert wire_request.startswith(b"POST / HTTP/1.1\r\nAccept-Encoding: identity\r\nContent-Length: ")


def test_a_large_request_is_written_whole(serve: Callable[..., Server]) -> None:
    def record(peer: Peer, server: Server) -> None:
        while (request := peer.request()) is not None:
            server.requests.append(request)
            peer.send(answer({}))

    server = serve(record)
    client = client_for(server.endpoint)
    big = "x" * (5 * wire.SEND_SLICE + 123)  # written slice by slice
    client.call("PutItem", {"TableName": "t", "Item": {"PK": {"S": "a"}, "Big": {"S": big}}})
    client.call("PutItem", {"TableName": "t", "Item": {"PK": {"S": "b"}}})
    assert document(server.requests[0])["Item"]["Big"]["S"] == big
    assert document(server.requests[1])["Item"] == {"PK": {"S": "b"}}
    assert opened(client) == 1


def test_a_crlf_in_a_header_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        http1.encode("POST", "/", {"X-Amz-Target": "a\r\nInjected: yes"}, b"{}")


def test_close_closes_the_idle_connections(serve: Callable[..., Server]) -> None:
    ended = threading.Event()

    def until_the_end(peer: Peer, server: Server) -> None:
        keep_alive(peer, server)
        ended.set()

    server = serve(until_the_end)
    client = client_for(server.endpoint)
    get(client)
    client.close()
    assert ended.wait(5)
    get(client)  # a closed client opens a new connection when asked again
    assert opened(client) == 2


# --- connections that end ------------------------------------------------------------------------------


def test_an_idle_connection_the_server_closed_is_replaced_before_sending(
        serve: Callable[..., Server], observations: list[engine.Observation]) -> None:
    server = serve(answer_once_then_close)
    client = client_for(server.endpoint)  # one attempt: a failure would be raised, not retried
    get(client)
    assert server.closed_idle.wait(5)
    time.sleep(0.05)  # the FIN reaches the idle connection
    assert get(client, "b")["Item"] == {"PK": {"S": "b"}}  # on a fresh connection, no error
    assert (server.accepted, opened(client)) == (2, 2)
    assert [seen.attempts for seen in observations] == [1, 1]


def test_a_request_written_to_a_connection_closed_without_answer_is_connection_closed(
        serve: Callable[..., Server], observations: list[engine.Observation]) -> None:
    """Reused, the connection looked alive; the request was written, the server read it and closed:
    DynamoDB may have applied it, so it is ``ConnectionClosedError``, sent (never nothing sent)."""
    def answer_once_then_drop_the_next(peer: Peer, server: Server) -> None:
        first = peer.request()
        if first is None:
            return
        peer.send(echo(first))
        second = peer.request()
        if second is not None:
            server.requests.append(second)

    server = serve(answer_once_then_drop_the_next)
    client = client_for(server.endpoint)
    get(client)
    with pytest.raises(ConnectionClosedError) as raised:
        get(client, "b")
    assert not nothing_sent(raised.value)
    assert len(server.requests) == 1  # it was written, and read
    retried = client_for(server.endpoint, attempts=2)  # the retry policy sends it again
    get(retried)
    assert get(retried, "c")["ResponseMetadata"]["RetryAttempts"] == 1
    assert observations[-1].attempts == 2


def test_a_reset_after_the_request_was_read_is_connection_closed_and_sent(
        serve: Callable[..., Server]) -> None:
    def reset(peer: Peer, server: Server) -> None:
        request = peer.request()
        if request is None:
            return
        server.requests.append(request)
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.sock.close()  # an RST, not a FIN

    server = serve(reset)
    with pytest.raises(ConnectionClosedError) as raised:
        get(client_for(server.endpoint))
    assert not nothing_sent(raised.value)
    assert len(server.requests) == 1


def test_a_refused_connection_is_endpoint_connection_error_with_nothing_sent() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()  # nothing listens there any more
    with pytest.raises(EndpointConnectionError) as raised:
        get(client_for(endpoint, attempts=2))
    assert nothing_sent(raised.value)


def test_a_connect_timeout_is_connect_timeout_error_with_nothing_sent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def too_slow(*_: Any, **__: Any) -> socket.socket:
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", too_slow)
    with pytest.raises(ConnectTimeoutError) as raised:
        get(client_for("http://127.0.0.1:9"))
    assert nothing_sent(raised.value)


def test_a_tls_handshake_that_never_ends_is_a_read_timeout_as_urllib3_has_it(
        serve: Callable[..., Server]) -> None:
    server = serve(lambda peer, server: server.stop.wait(10))  # accepts, never speaks TLS
    with pytest.raises(ReadTimeoutError):
        get(client_for(server.endpoint.replace("http:", "https:"), connect_timeout=0.2))


def test_an_answer_that_never_comes_is_a_read_timeout(serve: Callable[..., Server]) -> None:
    def never_answer(peer: Peer, server: Server) -> None:
        server.requests.append(peer.request() or b"")
        server.stop.wait(10)

    server = serve(never_answer)
    with pytest.raises(ReadTimeoutError) as raised:
        get(client_for(server.endpoint, read_timeout=0.2))
    assert not nothing_sent(raised.value)


def test_an_answer_cut_short_is_connection_closed_and_the_connection_dropped(
        serve: Callable[..., Server]) -> None:
    def cut(peer: Peer, server: Server) -> None:
        while (request := peer.request()) is not None:
            whole = echo(request)
            if server.requests:
                peer.send(whole)
                continue
            server.requests.append(request)
            peer.send(whole[:-5])
            return

    server = serve(cut)
    client = client_for(server.endpoint)
    with pytest.raises(ConnectionClosedError):
        get(client)
    get(client)
    assert opened(client) == 2


# --- framing -------------------------------------------------------------------------------------------


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(serve: Callable[..., Server]) -> None:
    server = serve(chunked)
    client = client_for(server.endpoint)
    for key in ("a", "b", "c"):
        answered = get(client, key)
        assert answered["Item"] == {"PK": {"S": key}}
    assert answered["ResponseMetadata"]["HTTPHeaders"]["transfer-encoding"] == "chunked"
    assert opened(client) == 1


def test_a_connection_close_answer_is_read_and_the_connection_not_reused(
        serve: Callable[..., Server]) -> None:
    def close_after_each(peer: Peer, server: Server) -> None:
        request = peer.request()
        if request is None:
            return
        peer.send(answer({"Item": document(request)["Key"]}, headers="Connection: close\r\n"))

    server = serve(close_after_each)
    client = client_for(server.endpoint)
    assert get(client, "a")["Item"] == {"PK": {"S": "a"}}
    assert get(client, "b")["ResponseMetadata"]["HTTPHeaders"]["connection"] == "close"
    assert (server.accepted, opened(client)) == (2, 2)


def read_from(data: bytes) -> tuple[http1.Response, bool]:
    """``http1.read`` of ``data``, written in one piece by a peer that then closes."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(data)
        theirs.shutdown(socket.SHUT_WR)
        return http1.read(ours)


def test_framing_details() -> None:
    answered, keep = read_from(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nA: 1\r\nB: x\r\nb: y\r\n"
                               b"Content-Length: 2\r\n\r\nok")
    assert (answered.status, answered.headers, answered.body, keep) == (
        200, {"a": "1", "b": "x, y", "content-length": "2"}, b"ok", True)
    answered, keep = read_from(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert (answered.body, keep) == (b"", True)
    answered, keep = read_from(b"HTTP/1.1 200 OK\r\n\r\nto the end")  # no length: to the end, then closed
    assert (answered.body, keep) == (b"to the end", False)
    answered, keep = read_from(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
    assert (answered.body, keep) == (b"ok", False)  # bytes nobody asked for: not reused
    answered, keep = read_from(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert keep is False
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA;x=y\r\n0123456789\r\n0\r\n"
    answered, keep = read_from(chunked + b"t: 1\r\n\r\n")
    assert (answered.body, keep) == (b"abc0123456789", True)
    answered, keep = read_from(chunked + b"\r\nEXTRA")
    assert (answered.body, keep) == (b"abc0123456789", False)
    for broken in (b"", b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
                   b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent",
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab"):
        with pytest.raises(http1.ConnectionBroken):
            read_from(broken)


# --- TLS -----------------------------------------------------------------------------------------------


def tls_server(serve: Callable[..., Server], certificate: tuple[Path, Path]) -> Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return serve(keep_alive, tls=context)


def test_tls_with_a_trusted_certificate_keeps_its_connection(
        serve: Callable[..., Server], certificate: tuple[Path, Path]) -> None:
    server = tls_server(serve, certificate)
    session = Session()
    session.set_config_variable("ca_bundle", str(certificate[0]))
    client = client_for(server.endpoint, session=session)
    for key in ("a", "b", "c"):
        assert get(client, key)["Item"] == {"PK": {"S": key}}
    assert (server.accepted, opened(client)) == (1, 1)


def test_tls_with_an_untrusted_certificate_is_an_ssl_error(
        serve: Callable[..., Server], certificate: tuple[Path, Path]) -> None:
    server = tls_server(serve, certificate)
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        get(client_for(server.endpoint))  # botocore's CA bundle does not know this certificate
    assert server.requests == []


def test_an_unreadable_ca_bundle_is_an_ssl_error(serve: Callable[..., Server], tmp_path: Path,
                                                 certificate: tuple[Path, Path]) -> None:
    server = tls_server(serve, certificate)
    session = Session()
    session.set_config_variable("ca_bundle", str(tmp_path / "missing.pem"))
    with pytest.raises(SSLError):
        get(client_for(server.endpoint, session=session))


# --- threads, proxies ----------------------------------------------------------------------------------


def test_threads_sharing_a_client_each_get_their_own_answer(serve: Callable[..., Server]) -> None:
    server = serve(keep_alive)
    client = client_for(server.endpoint)
    wrong: list[tuple[str, Any]] = []

    def calls(thread: int) -> None:
        for number in range(40):
            key = f"t{thread}-{number}"
            item = get(client, key)["Item"]
            if item != {"PK": {"S": key}}:
                wrong.append((key, item))

    threads = [threading.Thread(target=calls, args=(thread,)) for thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(server.requests) == 320
    assert 1 <= opened(client) <= 8


def test_a_proxy_for_the_endpoint_keeps_the_urllib3_path(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(client_for("http://127.0.0.1:9")._sender, WireSender)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert isinstance(client_for("http://127.0.0.1:9")._sender, URLLib3Sender)
    assert isinstance(client_for("https://dynamodb.us-east-1.amazonaws.com")._sender, WireSender)  # http only
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert isinstance(client_for("http://127.0.0.1:9")._sender, WireSender)


def test_a_transport_failure_of_no_known_kind_is_an_http_client_error(serve: Callable[..., Server]) -> None:
    server = serve(keep_alive)
    client = client_for(server.endpoint)
    sender = client._sender
    assert isinstance(sender, WireSender)
    sender.target = "/\r\nInjected: yes"  # refused by http1.encode, before any I/O
    with pytest.raises(HTTPClientError):
        get(client)
    assert server.requests == []
