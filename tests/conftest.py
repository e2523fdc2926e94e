"""Fixtures shared by every test folder.

Unit tests run on moto (``moto_table``); integration tests on one DynamoDB Local per test session
(``dynamodb_local``), each test with a table of its own (``local_table``), so tests never see
each other's data.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.parsers import JSONParser
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from core.config import Settings, get_settings, reload_settings
from core.errors import ConfigurationError
from core.localdb import LocalDynamoDB
from migrations import runner
from models import ENTITIES, TableModel
from repositories import cache
from tests.helpers import LoseAnswers, moto_answers_lean_clients, off, on


def _quiet(_: str) -> None:
    return None


def _one_request_at_a_time() -> None:
    """moto's backends are not thread-safe (a TransactWriteItems deep-copies the table while another
    thread writes to it), and the backfill scans its segments in parallel threads. Requests to moto
    are served one at a time; DynamoDB Local, a real server, needs no such help."""
    serve = BotocoreStubber.process_request
    lock = threading.Lock()

    def serialized(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return serve(self, request)

    BotocoreStubber.process_request = serialized  # type: ignore[method-assign]


_one_request_at_a_time()


moto_answers_lean_clients()


def _settings_follow_monkeypatch() -> None:
    """The data layer reads its settings once (``core.config.reload_settings`` reads them again).
    A test that changes the environment through ``monkeypatch`` gets them read again, as an
    application that changes its environment must ask for."""
    for name in ("setenv", "delenv", "undo"):
        original = getattr(pytest.MonkeyPatch, name)

        def reloading(self: pytest.MonkeyPatch, *args: Any, __original: Any = original,
                      **kwargs: Any) -> None:
            __original(self, *args, **kwargs)
            with contextlib.suppress(ConfigurationError):  # a test of a malformed setting reads it itself
                reload_settings()

        setattr(pytest.MonkeyPatch, name, reloading)


_settings_follow_monkeypatch()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Give each test a known environment and fresh model connections (no state leaks between tests)."""
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "DYNAMODB_TARGET", "AWS_PROFILE",
                 "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("TABLE_NAME", f"test-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    for model in (TableModel, *ENTITIES):
        model._connection = None
    cache.reset()
    yield
    for model in (TableModel, *ENTITIES):
        model._connection = None


@pytest.fixture
def botocore_bodies(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body botocore's own JSON parser is given from now on (``core.fast_parse`` spares it
    the items of successful reads)."""
    seen: list[bytes] = []
    parse = JSONParser.parse

    def spy(self: JSONParser, response: dict[str, Any], shape: Any) -> Any:
        seen.append(response["body"])
        return parse(self, response, shape)

    monkeypatch.setattr(JSONParser, "parse", spy)
    return seen


@pytest.fixture
def moto_table() -> Iterator[Settings]:
    """The table at head, migrated by the real runner, on moto (no network)."""
    with mock_aws():
        runner.upgrade(out=_quiet)
        yield get_settings()


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[LocalDynamoDB]:
    """One in-memory DynamoDB Local for the session, on a free 127.0.0.1 port; stopped at the end."""
    server = LocalDynamoDB()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_endpoint(dynamodb_local: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the data layer at the session's DynamoDB Local (no table created)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    return get_settings()


@pytest.fixture
def local_table(local_endpoint: Settings) -> Iterator[Settings]:
    """A table of this test's own at head on DynamoDB Local; deleted afterwards."""
    runner.upgrade(out=_quiet)
    yield local_endpoint
    from core.client import new_client

    client = new_client(local_endpoint)
    for name in (local_endpoint.table_name, local_endpoint.ledger_table_name):
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=name)


class ClientHooks:
    """Hooks on the client the models share (either transport): see what is sent, or answer with an error."""

    def __init__(self) -> None:
        self._removers: list[Callable[[], None]] = []

    def record(self, model: type[TableModel], operation: str) -> list[dict[str, Any]]:
        """The request of every ``operation`` sent through ``model``'s client from now on."""
        sent: list[dict[str, Any]] = []

        def handler(params: dict[str, Any], **_: Any) -> None:
            sent.append(json.loads(params["body"]))

        self._register(model, operation, handler)
        return sent

    def fail(
        self, model: type[TableModel], operation: str, code: str, *, reasons: Sequence[str] = ()
    ) -> None:
        """Answer every ``operation`` through ``model``'s client with the DynamoDB error ``code``.

        Nothing reaches the table, and the client does not retry (its retries happen on the wire).
        ``reasons``: the cancellation reasons' codes, for a ``TransactionCanceledException``.
        """
        parsed: dict[str, Any] = {"Error": {"Code": code, "Message": "injected by the test"}}
        if reasons:
            parsed["CancellationReasons"] = [{"Code": reason} for reason in reasons]

        def handler(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            return AWSResponse("https://dynamodb.invalid", 400, HTTPHeaders(), None), parsed

        self._register(model, operation, handler)

    def _register(self, model: type[TableModel], operation: str, handler: Callable[..., Any]) -> None:
        client = model._get_connection().connection.client  # the client of the current settings
        self._removers.append(on(client, f"before-call.dynamodb.{operation}", handler))

    def remove_all(self) -> None:
        """Unregister every hook (the client is shared, so hooks must not outlive their test)."""
        for remove in self._removers:
            remove()
        self._removers.clear()


@pytest.fixture
def client_hooks() -> Iterator[ClientHooks]:
    """Record requests or inject DynamoDB errors on the models' client; removed after the test."""
    hooks = ClientHooks()
    yield hooks
    hooks.remove_all()


@pytest.fixture
def spans() -> Iterator[Any]:
    """OpenTelemetry's in-memory exporter behind a tracer provider the data layer traces with."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from core import telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_tracer_provider(provider)
    yield exporter
    telemetry.use_tracer_provider(None)
    provider.shutdown()


@pytest.fixture
def lose(local_table: Settings) -> Iterator[Callable[..., LoseAnswers]]:
    """``lose("PutItem", times=1)``: the next answers to those operations are lost after being applied."""
    injector = LoseAnswers()
    client = TableModel._get_connection().connection.client
    on(client, "before-send.dynamodb", injector, first=True)

    def arm(*operations: str, times: int = 1, skip: int = 0) -> LoseAnswers:
        injector.operations, injector.times, injector.lost, injector.skip = set(operations), times, 0, skip
        return injector

    yield arm
    off(client, "before-send.dynamodb", injector)
