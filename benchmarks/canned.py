"""A canned DynamoDB: recorded answers served over HTTP by a separate process on 127.0.0.1.

Every variant of ``make bench`` (the data layer, sync and async, bare PynamoDB, raw botocore,
boto3, pydynox sync and async) sends real HTTP requests over real keep-alive connections, with
its own HTTP stack, and decodes the very same bytes. Only the client process's CPU is measured
(``time.process_time``); the server's is spent in another process.

- **Recording.** ``Recorder`` is a forwarding proxy (threads, in the benchmark process) in front of
  DynamoDB Local: while ``with recorder.recording() as recording:`` is open, every request that
  goes through it is kept with the answer DynamoDB Local gave (status, headers, body), under its
  operation (``X-Amz-Target``). The layer is pointed at the proxy for one live run of each
  operation, so the bodies are what DynamoDB Local answered the layer.
- **Serving.** ``CannedServer`` starts ``python -m benchmarks.canned FILE``: one asyncio server on a
  free 127.0.0.1 port (HTTP/1.1 keep-alive, any number of connections), holding the recordings of
  every scenario by name. ``use(name, delay=...)`` chooses the scenario answered from now on and a
  fixed delay before each answer (``loop.call_later``: no CPU spent waiting). Each request is
  answered by its operation with a recorded response (``Content-Length`` and ``x-amz-crc32``
  matching the body): the only one, when the scenario recorded one body for that operation; else the
  one recorded for the same item key (``GetItem``, ``PutItem``, ...) or the same partition and
  ``ExclusiveStartKey`` (``Query``); for a ``Query`` that starts at the ``LastEvaluatedKey`` of a
  recorded page, the page recorded after it (so a read pages through the very pages the layer
  read, whichever client asks and however it makes its next start key); else the recorded ones in
  turn. A request that matches nothing is answered with a
  ``ValidationException`` and counted as missed. ``counts()`` returns (and resets) how many
  requests of each operation were answered, and the missed ones: the runner checks them after each
  timed block, outside the timing.

The server ends when the benchmark process closes its standard input (or dies).
"""

from __future__ import annotations

import asyncio
import http.client
import http.server
import itertools
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CONTROL = "/_canned/"
# Response headers kept from DynamoDB Local's answers (the length and checksum are recomputed).
KEPT_HEADERS = ("content-type", "x-amzn-requestid")
_KEY_CONDITION = re.compile(r"([#\w]+)\s*=\s*(:\w+)")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found"}


# --- what is recorded -------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """One HTTP response as DynamoDB Local sent it."""

    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, status: int, headers: dict[str, str], body: bytes) -> Response:
        """A response whose ``x-amz-crc32`` and ``Content-Length`` match ``body`` (every SDK checks the
        length; botocore also checks the checksum and retries on a mismatch)."""
        kept = {k.lower(): v for k, v in headers.items() if k.lower() in KEPT_HEADERS}
        kept["x-amz-crc32"] = str(zlib.crc32(body) & 0xFFFFFFFF)
        kept["content-length"] = str(len(body))
        return cls(status, kept, body)

    def wire(self) -> bytes:
        """The response as bytes on the wire (HTTP/1.1, keep-alive)."""
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class Recording:
    """Requests and their responses by operation name (``Query``, ``TransactWriteItems``, ...), in
    the order they were answered."""

    responses: dict[str, list[Response]] = field(default_factory=dict)
    requests: dict[str, list[bytes]] = field(default_factory=dict)

    def add(self, operation: str, request: bytes, response: Response) -> None:
        """Keep ``response`` as the answer to ``request``."""
        self.responses.setdefault(operation, []).append(response)
        self.requests.setdefault(operation, []).append(request)

    def bodies(self, operation: str) -> list[bytes]:
        """The body of every recorded ``operation`` response, in order."""
        return [r.body for r in self.responses.get(operation, [])]

    def counts(self) -> dict[str, int]:
        """How many responses each operation has."""
        return {op: len(rs) for op, rs in self.responses.items()}


def operation_of(target: str) -> str:
    """``DynamoDB_20120810.GetItem`` -> ``GetItem``."""
    return target.rpartition(".")[2]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def partition_of(request: dict[str, Any]) -> str | None:
    """The partition key value a ``Query`` asks for (``PK = :v`` in its key condition), if any."""
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    for name, placeholder in _KEY_CONDITION.findall(request.get("KeyConditionExpression", "")):
        if names.get(name, name) == "PK" and placeholder in values:
            return _canonical(values[placeholder])
    return None


def request_key(operation: str, body: bytes) -> str | None:
    """What tells two requests of ``operation`` apart for the answer: the item's key for single-item
    operations, the index, partition and start key for ``Query``; ``None`` for the rest."""
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if operation in ("GetItem", "DeleteItem", "UpdateItem"):
        return _canonical(request.get("Key"))
    if operation == "PutItem":
        item = request.get("Item") or {}
        return _canonical({"PK": item.get("PK"), "SK": item.get("SK")})
    if operation in ("Query", "Scan"):
        return _canonical([request.get("IndexName"), partition_of(request), request.get("ExclusiveStartKey")])
    return None


# --- recording: a forwarding proxy in front of DynamoDB Local ----------------------------------


class Recorder:
    """A forwarding proxy on 127.0.0.1 in front of ``upstream`` (DynamoDB Local) that keeps what it
    forwards while ``recording()`` is open. ``endpoint`` is its URL; ``close()`` stops it."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._current: Recording | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                status, answered, raw = recorder._forward(self.path, headers, body)
                recorder._keep(self.headers.get("X-Amz-Target", ""), body, status, answered, raw)
                self.send_response(status)
                for name, value in answered.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding", "date",
                                            "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="recorder", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """The proxy's URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = getattr(self._local, "connection", None)
        for attempt in range(2):  # a kept-alive connection the server closed meanwhile: once more
            if connection is None:
                connection = http.client.HTTPConnection(*self._upstream, timeout=60)
                self._local.connection = connection
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                connection = self._local.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _keep(self, target: str, request: bytes, status: int, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            if self._current is not None:
                self._current.add(operation_of(target), request, Response.of(status, headers, body))

    @contextmanager
    def recording(self) -> Iterator[Recording]:
        """Keep every exchange forwarded until the block ends, in the yielded recording."""
        recording = Recording()
        with self._lock:
            self._current = recording
        try:
            yield recording
        finally:
            with self._lock:
                self._current = None

    def close(self) -> None:
        """Stop the proxy."""
        self._server.shutdown()
        self._server.server_close()


# --- serving: the server process --------------------------------------------------------------


class _Answers:
    """One scenario's answers, ready to be written."""

    def __init__(self, recording: Recording) -> None:
        self.only: dict[str, bytes] = {}
        self.keyed: dict[str, dict[str | None, bytes]] = {}
        self.turns: dict[str, Iterator[bytes]] = {}
        for operation, responses in recording.responses.items():
            wires = [r.wire() for r in responses]
            if len(set(wires)) == 1:
                self.only[operation] = wires[0]
                continue
            requests = recording.requests[operation]
            keys = [request_key(operation, body) for body in requests]
            if None not in keys and len(set(keys)) == len(keys):
                keyed = self.keyed[operation] = dict(zip(keys, wires, strict=True))
                for key, wire in _continuations(requests, responses, wires):
                    keyed.setdefault(key, wire)
            else:
                self.turns[operation] = itertools.cycle(wires)

    def answer(self, operation: str, body: bytes) -> bytes | None:
        only = self.only.get(operation)
        if only is not None:
            return only
        keyed = self.keyed.get(operation)
        if keyed is not None:
            return keyed.get(request_key(operation, body))
        turns = self.turns.get(operation)
        return next(turns) if turns is not None else None


def _continuations(requests: list[bytes], responses: list[Response],
                   wires: list[bytes]) -> Iterator[tuple[str, bytes]]:
    """For reads that page (``Query``): the next recorded page of the same partition, keyed by the
    ``LastEvaluatedKey`` of the page before it. A client that starts its next page at that key (as
    DynamoDB says to) gets the same next page as the layer, which starts at the last item it keeps
    (it asks for one item more than its page, to know whether there is a next one)."""
    previous: dict[str, int] = {}
    for number, body in enumerate(requests):
        request = json.loads(body)
        sequence = [request.get("IndexName"), partition_of(request)]
        before = previous.get(_canonical(sequence))
        if before is not None:
            last_key = json.loads(responses[before].body).get("LastEvaluatedKey")
            if last_key is not None:
                yield _canonical([*sequence, last_key]), wires[number]
        previous[_canonical(sequence)] = number


def _error(status: int, message: str) -> bytes:
    error = {"__type": "com.amazon.coral.validate#ValidationException", "message": message}
    body = json.dumps(error).encode()
    return Response.of(status, {"content-type": "application/x-amz-json-1.0"}, body).wire()


def _json(value: Any) -> bytes:
    return Response.of(200, {"content-type": "application/json"}, json.dumps(value).encode()).wire()


class _State:
    """The server's state: every scenario's answers, the one in use, its delay, the counts."""

    def __init__(self, scenarios: dict[str, Recording]) -> None:
        self.scenarios = {name: _Answers(recording) for name, recording in scenarios.items()}
        self.current: _Answers | None = None
        self.delay = 0.0
        self.served: dict[str, int] = {}
        self.missed: list[str] = []

    def control(self, path: str, body: bytes) -> bytes:
        command = path[len(CONTROL):]
        if command == "use":
            asked = json.loads(body)
            if asked["scenario"] not in self.scenarios:
                return _error(404, f"no scenario {asked['scenario']!r}")
            self.current, self.delay = self.scenarios[asked["scenario"]], float(asked.get("delay", 0.0))
            return _json({})
        if command == "counts":
            counts = {"served": self.served, "missed": self.missed}
            self.served, self.missed = {}, []
            return _json(counts)
        return _error(404, f"no control {command!r}")

    def answer(self, target: str, body: bytes) -> bytes:
        operation = operation_of(target)
        answer = self.current.answer(operation, body) if self.current is not None else None
        if answer is None:
            self.missed.append(f"{operation} {body[:300]!r}")
            return _error(400, f"canned: no recorded answer to {operation} {request_key(operation, body)}")
        self.served[operation] = self.served.get(operation, 0) + 1
        return answer


class _Delayed:
    """Answers held back by the fixed delay: one queue in the order they are due (the delay is the
    same for all), one timer for its head, every answer due by then written when it fires."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: deque[tuple[float, _Connection, bytes, bool]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, delay: float, connection: _Connection, answer: bytes, close: bool) -> None:
        due = self.loop.time() + delay
        self.queue.append((due, connection, answer, close))
        if self.timer is None:
            self.timer = self.loop.call_at(due, self.fire)

    def fire(self) -> None:
        self.timer = None
        queue, now = self.queue, self.loop.time()
        while queue and queue[0][0] <= now:
            _, connection, answer, close = queue.popleft()
            connection.write(answer, close)
        if queue:
            self.timer = self.loop.call_at(queue[0][0], self.fire)


# The request line's path, and the three headers read (any case), from a request's head.
_PATH = re.compile(rb"^[A-Z]+ (\S+)")
_HEADER = re.compile(rb"\r\n(content-length|x-amz-target|connection)[ \t]*:[ \t]*([^\r]*)", re.IGNORECASE)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests parsed as they come, answered in order."""

    def __init__(self, state: _State, delayed: _Delayed) -> None:
        self.state = state
        self.delayed = delayed
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            length, target, close = 0, b"", False
            for header, value in _HEADER.findall(head):
                name = header.lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"x-amz-target":
                    target = value.strip()
                else:
                    close = value.strip().lower() == b"close"
            stop = end + 4 + length
            if len(buffer) < stop:
                break
            body, buffer = buffer[end + 4:stop], buffer[stop:]
            path = _PATH.match(head)
            if path is not None and path.group(1).startswith(CONTROL.encode()):
                self.write(self.state.control(path.group(1).decode("latin-1"), body), close)
                continue
            answer = self.state.answer(target.decode("latin-1"), body)
            if self.state.delay:
                self.delayed.add(self.state.delay, self, answer, close)
            else:
                self.write(answer, close)
        self.buffer = buffer

    def write(self, answer: bytes, close: bool) -> None:
        """Send ``answer`` (and close the connection when the client asked to)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(answer)
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _serve(scenarios: dict[str, Recording]) -> None:
    loop = asyncio.get_running_loop()
    state, delayed = _State(scenarios), _Delayed(loop)
    server = await loop.create_server(lambda: _Connection(state, delayed), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    done = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    def watch_parent() -> None:  # the benchmark closes stdin (or dies): stop
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(finish)

    threading.Thread(target=watch_parent, daemon=True).start()
    async with server:
        await done


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.canned FILE``: serve the scenarios pickled in FILE; print the port."""
    args = sys.argv[1:] if argv is None else argv
    with open(args[0], "rb") as file:
        scenarios: dict[str, Recording] = pickle.load(file)  # our own file, written by CannedServer
    asyncio.run(_serve(scenarios))


# --- the benchmark's side ---------------------------------------------------------------------


class CannedServer:
    """The server process, started with every scenario's recording: ``endpoint``, ``use``, ``counts``."""

    def __init__(self, scenarios: dict[str, Recording]) -> None:
        with tempfile.NamedTemporaryFile("wb", suffix=".pickle", delete=False) as file:
            pickle.dump(scenarios, file)
            self._file = file.name
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.canned", self._file], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError("the canned server did not start")
        self.port = int(line)
        self.scenario: str | None = None

    @property
    def endpoint(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self.port}"

    def _control(self, command: str, value: Any) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", CONTROL + command, body=json.dumps(value).encode(),
                               headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"canned server: {command}: {response.status} {body!r}")
            return json.loads(body)
        finally:
            connection.close()

    def use(self, scenario: str, *, delay: float = 0.0) -> None:
        """Answer from ``scenario``'s recording from now on, each answer after ``delay`` seconds."""
        self._control("use", {"scenario": scenario, "delay": delay})
        self.scenario = scenario

    def counts(self) -> tuple[dict[str, int], list[str]]:
        """Requests answered by operation, and those that matched no recording, since the last call."""
        counts = self._control("counts", {})
        return counts["served"], counts["missed"]

    def stop(self) -> None:
        """End the process."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        Path(self._file).unlink(missing_ok=True)

    def __enter__(self) -> CannedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
