"""``core.engine.aiowire``: AsyncLeanClient's own HTTP/1.1 keep-alive client, against servers on 127.0.0.1.

The servers are ``tests/unit/test_engine_wire.py``'s (a thread per connection playing one script).
What a test checks is what ``AsyncLeanClient`` reports: the answer, or the botocore exception, whether
the call counts as sent, how many connections were opened; and, for a cancelled call, ``REQUEST_SENT``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.session import Session

from core import engine
from core.config import Settings
from core.engine import http1
from core.engine.aio import AsyncLeanClient, request_sent
from core.engine.retries import RetryPolicy, RetryQuota
from core.error_codes import nothing_sent
from tests.unit.test_engine_wire import (
    Peer,
    Server,
    answer,
    answer_once_then_close,
    chunked,
    document,
    echo,
    keep_alive,
)


async def _no_sleep(_: float) -> None:
    return None


def client_for(endpoint: str, *, attempts: int = 1, read_timeout: float = 10, connect_timeout: float = 2,
               session: Session | None = None, max_connections: int = 8) -> AsyncLeanClient:
    settings = Settings(table_name="t", endpoint_url=endpoint, region="us-east-1",
                        max_retry_attempts=attempts - 1, connect_timeout_seconds=connect_timeout,
                        read_timeout_seconds=read_timeout)
    retry = RetryPolicy(attempts, quota=RetryQuota(), random=lambda: 0.0)
    return AsyncLeanClient(settings, session=session, sleep=_no_sleep, retry=retry,
                           max_connections=max_connections, clock=lambda: 1_750_000_000.0)


def run(client: AsyncLeanClient, work: Callable[[AsyncLeanClient], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``work(client)`` in a fresh loop, then close the client."""
    async def main() -> Any:
        async with client:
            return await work(client)

    return asyncio.run(main())


async def get(client: AsyncLeanClient, key: str = "a") -> dict[str, Any]:
    return await client.call("GetItem", {"TableName": "t", "Key": {"PK": {"S": key}}})


def opened(client: AsyncLeanClient) -> int:
    assert client._http is not None
    return client._http.opened


async def gets(client: AsyncLeanClient, *keys: str) -> list[dict[str, Any]]:
    return [await get(client, key) for key in keys]


# --- keep-alive ----------------------------------------------------------------------------------------


def test_many_calls_share_one_connection(serve: Callable[..., Server]) -> None:
    server = serve(keep_alive)
    client = client_for(server.endpoint)

    async def twenty(c: AsyncLeanClient) -> int:
        for number in range(20):
            assert (await get(c, f"k{number}"))["Item"] == {"PK": {"S": f"k{number}"}}
        return opened(c)

    assert run(client, twenty) == 1
    assert (server.accepted, len(server.requests)) == (1, 20)
    request = server.requests[0].decode("latin-1")
    assert request.startswith("POST / HTTP/1.1\r\n") and "Accept-Encoding: identity\r\n" in request


def test_many_concurrent_tasks_each_get_their_own_answer(serve: Callable[..., Server]) -> None:
    server = serve(keep_alive)
    client = client_for(server.endpoint, max_connections=4)
    keys = [f"k{number}" for number in range(200)]

    async def gathered(c: AsyncLeanClient) -> tuple[list[dict[str, Any]], int]:
        return await asyncio.gather(*(get(c, key) for key in keys)), opened(c)

    results, connections = run(client, gathered)
    assert [result["Item"]["PK"]["S"] for result in results] == keys
    assert connections <= 4 and server.accepted == connections and len(server.requests) == 200


def test_an_idle_connection_the_server_closed_is_replaced_before_sending(
        serve: Callable[..., Server], observations: list[engine.Observation]) -> None:
    server = serve(answer_once_then_close)

    async def twice(c: AsyncLeanClient) -> int:
        await get(c)
        assert await asyncio.to_thread(server.closed_idle.wait, 5)
        await asyncio.sleep(0.05)  # the FIN reaches the idle connection
        assert (await get(c, "b"))["Item"] == {"PK": {"S": "b"}}  # a fresh connection, no error
        return opened(c)

    assert run(client_for(server.endpoint), twice) == 2  # one attempt: a failure would be raised
    assert server.accepted == 2 and [seen.attempts for seen in observations] == [1, 1]


def test_a_connection_close_answer_is_read_and_the_connection_not_reused(
        serve: Callable[..., Server]) -> None:
    def close_after_each(peer: Peer, server: Server) -> None:
        request = peer.request()
        if request is not None:
            peer.send(answer({"Item": document(request)["Key"]}, headers="Connection: close\r\n"))

    server = serve(close_after_each)
    results = run(client_for(server.endpoint), lambda c: gets(c, "a", "b"))
    assert [result["Item"]["PK"]["S"] for result in results] == ["a", "b"]
    assert results[1]["ResponseMetadata"]["HTTPHeaders"]["connection"] == "close"
    assert server.accepted == 2


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(serve: Callable[..., Server]) -> None:
    server = serve(chunked)
    results = run(client_for(server.endpoint), lambda c: gets(c, "a", "b", "c"))
    assert [result["Item"]["PK"]["S"] for result in results] == ["a", "b", "c"]
    assert server.accepted == 1


# --- failures ------------------------------------------------------------------------------------------


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
        run(client_for(server.endpoint), get)
    assert not nothing_sent(raised.value)
    assert len(server.requests) == 1


def test_an_answer_cut_short_is_connection_closed(serve: Callable[..., Server]) -> None:
    def cut(peer: Peer, server: Server) -> None:
        request = peer.request()
        if request is not None:
            peer.send(echo(request)[:-5])

    server = serve(cut)
    with pytest.raises(ConnectionClosedError) as raised:
        run(client_for(server.endpoint), get)
    assert "IncompleteRead" in str(raised.value.kwargs["error"])


def test_an_answer_that_never_comes_is_a_read_timeout(serve: Callable[..., Server]) -> None:
    def never_answer(peer: Peer, server: Server) -> None:
        server.requests.append(peer.request() or b"")
        server.stop.wait(10)

    server = serve(never_answer)
    with pytest.raises(ReadTimeoutError) as raised:
        run(client_for(server.endpoint, read_timeout=0.2), get)
    assert not nothing_sent(raised.value)


def test_the_read_timeout_bounds_each_answer_on_a_kept_alive_connection(serve: Callable[..., Server]) -> None:
    def answer_first_only(peer: Peer, server: Server) -> None:
        server.requests.append(request := peer.request() or b"")
        peer.send(echo(request))
        server.requests.append(peer.request() or b"")
        server.stop.wait(10)

    server = serve(answer_first_only)

    async def late_second(c: AsyncLeanClient) -> tuple[BaseException, float, int]:
        await get(c, "first")
        await asyncio.sleep(0.2)  # the second request's deadline is later than the first's
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ReadTimeoutError) as raised:
            await get(c, "second")
        return raised.value, loop.time() - started, opened(c)

    error, waited, connections = run(client_for(server.endpoint, read_timeout=0.3), late_second)
    assert not nothing_sent(error)
    assert 0.3 <= waited < 2 and connections == 1 and len(server.requests) == 2


def test_the_read_timeout_bounds_each_read_not_the_whole_answer(serve: Callable[..., Server]) -> None:
    """An answer that arrives in pieces, each within the read timeout, is read whole though it takes
    longer than the timeout (as the sync client's socket timeout bounds each recv)."""
    def trickled(peer: Peer, server: Server) -> None:
        while (request := peer.request()) is not None:
            whole = echo(request)
            for start in range(0, len(whole), len(whole) // 4 + 1):
                peer.send(whole[start:start + len(whole) // 4 + 1])
                time.sleep(0.15)

    server = serve(trickled)
    loop_time: list[float] = []

    async def slow_get(c: AsyncLeanClient) -> dict[str, Any]:
        started = asyncio.get_running_loop().time()
        result = await get(c, "slow")
        loop_time.append(asyncio.get_running_loop().time() - started)
        return result

    result = run(client_for(server.endpoint, read_timeout=0.3), slow_get)
    assert result["Item"]["PK"]["S"] == "slow" and loop_time[0] > 0.3


def test_a_refused_connection_is_endpoint_connection_error_with_nothing_sent() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()  # nothing listens there any more
    with pytest.raises(EndpointConnectionError) as raised:
        run(client_for(endpoint, attempts=2), get)
    assert nothing_sent(raised.value)


def test_a_connect_timeout_is_connect_timeout_error_with_nothing_sent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def too_slow(*_: Any, **__: Any) -> Any:
        await asyncio.sleep(10)

    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", too_slow)
    with pytest.raises(ConnectTimeoutError) as raised:
        run(client_for("http://127.0.0.1:9", connect_timeout=0.1), get)
    assert nothing_sent(raised.value)


# --- cancellation --------------------------------------------------------------------------------------


def test_cancelled_waiting_for_a_slot_is_not_sent_and_after_the_write_is_sent_and_not_reused(
        serve: Callable[..., Server]) -> None:
    release, arrived = threading.Event(), threading.Event()

    def first_hangs(peer: Peer, server: Server) -> None:
        if server.accepted == 1:
            server.requests.append(peer.request() or b"")
            arrived.set()
            release.wait(10)
            return
        keep_alive(peer, server)

    server = serve(first_hangs)

    async def cancelled(c: AsyncLeanClient) -> tuple[BaseException, BaseException, dict[str, Any], int]:
        holding = asyncio.create_task(get(c, "held"))  # takes the only slot, never answered
        await asyncio.to_thread(arrived.wait, 5)
        waiting = asyncio.create_task(get(c, "waiting"))  # waits for the slot
        for _ in range(5):
            await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError) as waited:
            await waiting
        holding.cancel()
        with pytest.raises(asyncio.CancelledError) as held:
            await holding
        after = await get(c, "after")  # on a new connection: the abandoned one is closed
        return waited.value, held.value, after, opened(c)

    waited, held, after, connections = run(client_for(server.endpoint, max_connections=1), cancelled)
    release.set()
    assert request_sent(waited) is False and request_sent(held) is True
    assert after["Item"] == {"PK": {"S": "after"}}
    assert connections == 2 and server.accepted == 2
    assert [document(request)["Key"]["PK"]["S"] for request in server.requests] == ["held", "after"]


def test_a_slot_handed_to_a_waiter_cancelled_before_it_ran_passes_to_the_next(
        serve: Callable[..., Server]) -> None:
    server = serve(keep_alive)
    client = client_for(server.endpoint, max_connections=1)
    waiting: list[asyncio.Task[dict[str, Any]]] = []

    def cancel_the_first_waiter(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Item") == {"PK": {"S": "held"}}:  # the slot was just handed to "first"
            waiting[0].cancel()

    client.after_call.append(cancel_the_first_waiter)

    async def work(c: AsyncLeanClient) -> tuple[list[Any], BaseException, dict[str, Any]]:
        held = asyncio.create_task(get(c, "held"))  # takes the only slot
        waiting.extend(asyncio.create_task(get(c, key)) for key in ("first", "second"))
        async with asyncio.timeout(10):  # a lost slot would leave "second" waiting for ever
            results = await asyncio.gather(held, *waiting, return_exceptions=True)
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await waiting[0]
        return results, cancelled.value, await get(c, "after")  # the slot was not lost

    (held, _, second), first, after = run(client, work)
    assert request_sent(first) is False
    assert held["Item"] == {"PK": {"S": "held"}} and second["Item"] == {"PK": {"S": "second"}}
    assert after["Item"] == {"PK": {"S": "after"}}
    assert [document(request)["Key"]["PK"]["S"] for request in server.requests] == ["held", "second", "after"]


def test_cancelled_while_connecting_is_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    started = asyncio.Event()

    async def slow(*_: Any, **__: Any) -> Any:
        started.set()
        await asyncio.sleep(10)

    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", slow)

    async def cancelled(c: AsyncLeanClient) -> BaseException:
        task = asyncio.create_task(get(c))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as raised:
            await task
        return raised.value

    assert request_sent(run(client_for("http://127.0.0.1:9"), cancelled)) is False


# --- TLS -----------------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(serve: Callable[..., Server], certificate: tuple[Path, Path]) -> tuple[Server, Path]:
    """A keep-alive server over TLS with a self-signed certificate; and that certificate."""
    cert_file, key_file = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return serve(keep_alive, tls=context), cert_file


def test_tls_with_a_trusted_certificate_keeps_its_connection(tls_server: tuple[Server, Path]) -> None:
    server, cert_file = tls_server
    session = Session()
    session.set_config_variable("ca_bundle", str(cert_file))
    results = run(client_for(server.endpoint, session=session), lambda c: gets(c, "a", "b", "c"))
    assert [result["Item"]["PK"]["S"] for result in results] == ["a", "b", "c"]
    assert server.accepted == 1


def test_tls_with_an_untrusted_certificate_is_an_ssl_error(tls_server: tuple[Server, Path]) -> None:
    server, _ = tls_server
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        run(client_for(server.endpoint), get)  # botocore's CA bundle does not know this certificate
    assert server.requests == []


# --- the parser both clients share ---------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_the_parser_gives_the_same_answer_however_the_bytes_arrive(chunked: bool) -> None:
    body = json.dumps({"Item": {"PK": {"S": "x" * 300}}}).encode()
    if chunked:
        framed = b"".join(b"%x\r\n%b\r\n" % (len(body[at:at + 50]), body[at:at + 50])
                          for at in range(0, len(body), 50))
        whole = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (
            framed + b"0\r\nx-t: 1\r\n\r\n")
    else:
        whole = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    for step in (1, 3, 64, len(whole)):
        parser = http1.Parser()
        fed = [parser.feed(whole[at:at + step]) for at in range(0, len(whole), step)]
        assert fed[-1] and not any(fed[:-1])
        response, keep = parser.answer()
        assert (response.status, response.body, keep) == (200, body, True)
    parser = http1.Parser()
    assert parser.feed(whole + b"extra")
    assert parser.answer()[1] is False  # bytes nobody asked for: the connection is not reused
    cut = http1.Parser()
    assert not cut.feed(whole[:-3])
    with pytest.raises(http1.ConnectionBroken):
        cut.eof()
