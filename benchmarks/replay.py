"""Record DynamoDB's HTTP responses once, then serve them again without a server or a socket.

Both hooks are botocore event handlers added to ``botocore.handlers.BUILTIN_HANDLERS`` (as moto
adds its stub), so every client created afterwards in this process carries them: the data
layer's, bare PynamoDB's, raw botocore's and boto3's alike, without reaching into any of them.

- ``response-received``: while recording, each response botocore received (status, headers, body
  bytes) is kept under its operation name (and ``before-send`` keeps each request body).
- ``before-send``: while a ``Recording`` is being served, the request is answered with the next
  recorded response of its operation as a ``botocore.awsrequest.AWSResponse`` (optionally after a
  sleep that stands for network latency). botocore then parses it, checks its ``x-amz-crc32`` and
  runs every hook as it would for a response off the wire. Otherwise the request goes out.
"""

from __future__ import annotations

import itertools
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from botocore import handlers
from botocore.awsrequest import AWSResponse


@dataclass(frozen=True)
class Response:
    """One HTTP response as botocore received it."""

    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, status: int, headers: dict[str, str], body: bytes) -> Response:
        """A response whose ``x-amz-crc32`` and ``Content-Length`` match ``body`` (botocore checks the
        checksum and retries on a mismatch)."""
        fixed = {k: v for k, v in headers.items() if k.lower() not in ("x-amz-crc32", "content-length")}
        fixed["x-amz-crc32"] = str(zlib.crc32(body) & 0xFFFFFFFF)
        fixed["Content-Length"] = str(len(body))
        return cls(status, fixed, body)


@dataclass
class Recording:
    """Responses by operation name (``Query``, ``TransactWriteItems``, ...), in the order received."""

    responses: dict[str, list[Response]] = field(default_factory=dict)
    requests: dict[str, list[bytes]] = field(default_factory=dict)  # the bodies sent, while recording

    def add(self, operation: str, response: Response) -> None:
        """Keep ``response`` as the next answer to ``operation``."""
        self.responses.setdefault(operation, []).append(response)

    def bodies(self, operation: str) -> list[bytes]:
        """The body of every recorded ``operation`` response, in order."""
        return [r.body for r in self.responses.get(operation, [])]

    def counts(self) -> dict[str, int]:
        """How many responses each operation has."""
        return {op: len(rs) for op, rs in self.responses.items()}


class _Body(BytesIO):
    """The raw stream ``AWSResponse.content`` reads (it calls ``stream()``)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


class Wire:
    """The process-wide switch between the network, recording and replay."""

    def __init__(self) -> None:
        self._recording: Recording | None = None
        self._serving: Recording | None = None
        self._cursors: dict[str, Iterator[int]] = {}
        self._lock = threading.Lock()
        self.latency = 0.0

    # botocore handlers -----------------------------------------------------------------------

    def before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        """Answer from the recording being served, if any; ``None`` lets the request go out."""
        serving = self._serving
        if serving is None:
            if self._recording is not None:
                self._recording.requests.setdefault(event_name.rsplit(".", 1)[1], []).append(request.body)
            return None
        operation = event_name.rsplit(".", 1)[1]
        recorded = serving.responses.get(operation)
        if not recorded:
            raise AssertionError(f"replay: a {operation} request, but none was recorded")
        cursor = self._cursors.get(operation)
        if cursor is None:
            with self._lock:
                cursor = self._cursors.setdefault(operation, itertools.count())
        number = next(cursor)  # atomic: threads served concurrently each get their own response
        response = recorded[number % len(recorded)]
        if self.latency:
            time.sleep(self.latency)
        return AWSResponse(request.url, response.status, response.headers, _Body(response.body))

    def response_received(self, response_dict: dict[str, Any] | None, event_name: str, **_: Any) -> None:
        """Keep what botocore received while recording."""
        recording = self._recording
        if recording is None or response_dict is None or self._serving is not None:
            return
        operation = event_name.rsplit(".", 1)[1]
        body = response_dict["body"]
        recording.add(operation, Response.of(response_dict["status_code"], dict(response_dict["headers"]),
                                             bytes(body)))

    # switches --------------------------------------------------------------------------------

    @contextmanager
    def recording(self) -> Iterator[Recording]:
        """Requests go to the server; their responses are collected into the yielded recording."""
        recording = Recording()
        self._recording = recording
        try:
            yield recording
        finally:
            self._recording = None

    @contextmanager
    def serving(self, recording: Recording, *, latency: float = 0.0) -> Iterator[None]:
        """Requests are answered from ``recording`` (each after ``latency`` seconds), never sent."""
        self._serving, self.latency = recording, latency
        self.rewind()
        try:
            yield
        finally:
            self._serving, self.latency = None, 0.0

    def rewind(self) -> dict[str, int]:
        """Serve every operation's responses from the first again; return how many responses each
        operation got since the last rewind (the runner checks that every variant asked for the
        same ones)."""
        served = {operation: next(cursor) for operation, cursor in self._cursors.items()}
        self._cursors = {}
        return served


WIRE = Wire()


def install() -> Wire:
    """Add the two handlers to every botocore session created from now on (idempotent).

    Must run before the first botocore session is created: a session copies the built-in
    handlers when it is made.
    """
    if not any(entry[1] == WIRE.before_send for entry in handlers.BUILTIN_HANDLERS):
        handlers.BUILTIN_HANDLERS.append(("before-send.dynamodb", WIRE.before_send))
        handlers.BUILTIN_HANDLERS.append(("response-received.dynamodb", WIRE.response_received))
    return WIRE
