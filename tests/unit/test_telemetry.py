"""Every call observable: one observation per call on either transport, to the log, the observers and
OpenTelemetry (one CLIENT span per call, with or without botocore's own instrumentation)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from structlog.testing import capture_logs

from core import telemetry
from core.config import Settings, get_settings
from core.engine import calls
from core.engine.observe import ACCESS_PATTERN
from core.engine.sync import LeanClient
from core.errors import NotFound
from core.logs import configure_logging
from models import Order, User
from repositories.orders import get_user_orders, place_order
from tests.helpers import RawBody, existing_user, models_client, on, random_email, seed_orders


@pytest.fixture(params=["lean", "botocore"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each transport (``DATALAYER_TRANSPORT``)."""
    monkeypatch.setenv("DATALAYER_TRANSPORT", request.param)
    return str(request.param)


@pytest.fixture
def table(transport: str, moto_table: Settings) -> Settings:
    """The table on moto, the models sending through ``transport``."""
    assert get_settings().transport == transport
    return moto_table


@pytest.fixture
def observed() -> Iterator[list[telemetry.Observation]]:
    """Every observation handed to an application's observer from now on."""
    seen: list[telemetry.Observation] = []
    telemetry.add_observer(seen.append)
    yield seen
    telemetry.remove_observer(seen.append)


def _calls(user_id: str) -> str:
    """Three calls through the models: a transaction, a read by key, a declared query on an index."""
    email = random_email()
    User(user_id=user_id + "x", email=email, name="Ada").save()
    User.get(f"USER#{user_id}", "PROFILE")
    User.with_email.first(email=email)
    return email


def test_one_client_span_per_call_with_the_database_conventions(
    table: Settings, spans: InMemorySpanExporter
) -> None:
    user_id = existing_user(table)
    spans.clear()
    _calls(user_id)
    finished: tuple[ReadableSpan, ...] = spans.get_finished_spans()
    assert [span.name for span in finished] == [
        f"TransactWriteItems {table.table_name}", f"GetItem {table.table_name}", f"Query {table.table_name}"]
    for span in finished:
        attributes = span.attributes or {}
        assert span.kind is SpanKind.CLIENT
        assert attributes["db.system.name"] == "aws.dynamodb" and attributes["db.system"] == "dynamodb"
        assert attributes["aws.dynamodb.table_names"] == (table.table_name,)
        assert attributes["datalayer.attempts"] == 1
        assert attributes["aws.request_id"]
    put, get, query = (span.attributes or {} for span in finished)
    assert (put["db.operation.name"], put["datalayer.access_pattern"]) == ("TransactWriteItems", "User.save")
    assert get["db.operation.name"] == "GetItem"
    assert get["datalayer.access_pattern"] == f"{__name__}._calls"  # no declared pattern: the caller
    assert query["aws.dynamodb.index_name"] == "Email-Index"
    assert query["datalayer.access_pattern"] == "User.with_email"
    assert query["aws.dynamodb.count"] == 1
    capacity = [json.loads(entry) for entry in query["aws.dynamodb.consumed_capacity"]]  # type: ignore[union-attr]
    assert capacity[0]["TableName"] == table.table_name and capacity[0]["CapacityUnits"] > 0


def test_with_botocores_instrumentation_active_each_call_still_has_one_span(
    table: Settings, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    provider = TracerProvider()
    theirs = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    user_id = existing_user(table)  # raw botocore calls: the instrumentation may trace those
    instrumentor = BotocoreInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        spans.clear()
        configure_logging(force=True)  # LOG_LEVEL=DEBUG applied; capture_logs then takes the events
        with capture_logs() as events:
            _calls(user_id)
    finally:
        instrumentor.uninstrument()
    ours = spans.get_finished_spans()
    assert [span.name.split()[0] for span in ours] == ["TransactWriteItems", "GetItem", "Query"]
    assert theirs.get_finished_spans() == ()  # botocore's instrumentation traced none of them again
    assert all(span.attributes and span.attributes["db.system.name"] == "aws.dynamodb" for span in ours)
    callers = {event.get("caller") for event in events if event["event"] == "dynamodb.call"}
    assert callers == {f"{__name__}._calls"}
    assert not any("opentelemetry" in str(caller) or "wrapt" in str(caller) for caller in callers)


def test_an_observer_receives_one_observation_per_call_on_either_transport(
    table: Settings, observed: list[telemetry.Observation], transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALAYER_CURSOR_SECRET", "a secret for this test's cursors")
    user_id = existing_user(table)
    seed_orders(table, user_id, 3)
    observed.clear()
    page = get_user_orders(user_id, limit=2)
    place_order(user_id, "12.50")
    assert isinstance(models_client(Order), LeanClient) is (transport == "lean")
    assert [(o.operation, o.access_pattern) for o in observed] == [
        ("Query", "Order.of_user"), ("TransactWriteItems", "Order.save")]
    query = observed[0]
    assert (query.table, query.outcome, query.attempts, query.status) == (table.table_name, "ok", 1, 200)
    assert query.items_returned is not None and query.items_returned >= len(page.items)
    assert query.consumed_capacity is not None and "table" in query.capacity_by_index
    assert query.request_id and query.latency > 0


THROTTLING = {
    "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
    "message": "Throughput exceeds the current capacity of your table or index.",
    "throttlingReasons": [{"reason": "TableReadProvisionedThroughputExceeded",
                           "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/t"}],
}


def test_the_access_pattern_and_throttling_reasons_reach_the_event(
    table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    configure_logging(force=True)
    email = _calls(existing_user(table))
    throttled: list[str] = []

    def throttle_once(request: Any, **_: Any) -> AWSResponse | None:
        if throttled:
            return None  # moto answers
        throttled.append("Query")
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 400, headers, RawBody(json.dumps(THROTTLING).encode()))

    remove = on(models_client(User), "before-send.dynamodb", throttle_once, first=True)
    monkeypatch.setattr("random.random", lambda: 0.0)  # no backoff to wait through
    try:
        with capture_logs() as events:
            assert User.with_email.first(email=email) is not None
    finally:
        remove()
    [call] = [event for event in events if event["event"] == "dynamodb.call"]
    assert call["access_pattern"] == "User.with_email"
    assert (call["operation"], call["outcome"], call["attempts"], call["retries"]) == ("Query", "ok", 2, 1)
    assert call["throttling_reasons"] == THROTTLING["throttlingReasons"]
    assert call["consumed_capacity"] is not None and call["items_returned"] == 1


def test_a_call_nobody_would_see_builds_no_observation_and_a_failed_one_is_still_observed(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALAYER_TRANSPORT", "lean")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    configure_logging(force=True)
    monkeypatch.setattr(telemetry, "_tracer", lambda: None)  # no tracer provider in this test
    built: list[str] = []
    build = calls.observation

    def counted(operation: str, *args: Any, **kwargs: Any) -> telemetry.Observation:
        built.append(operation)
        return build(operation, *args, **kwargs)

    monkeypatch.setattr(calls, "observation", counted)
    user_id = existing_user(moto_table)
    assert isinstance(models_client(Order), LeanClient) and not telemetry.observing()
    place_order(user_id, "12.50")
    assert built == []  # nothing would log, meter, trace or observe it: not built
    with pytest.raises(NotFound):
        place_order(user_id + "-missing", "12.50")
    assert built == ["TransactWriteItems"]  # a failed call is always observed
    seen: list[telemetry.Observation] = []
    telemetry.add_observer(seen.append)
    try:
        place_order(user_id, "1.00")
    finally:
        telemetry.remove_observer(seen.append)
    assert built == ["TransactWriteItems"] * 2 and [o.outcome for o in seen] == ["ok"]
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    configure_logging(force=True)
    with capture_logs() as events:
        place_order(user_id, "2.00")
    assert [e["operation"] for e in events if e["event"] == "dynamodb.call"] == ["TransactWriteItems"]


def test_attributed_names_the_calls_of_a_block_and_of_a_decorated_function() -> None:
    @telemetry.attributed("decorated")
    def inside() -> str | None:
        return ACCESS_PATTERN.get()

    assert inside() == "decorated" and inside() == "decorated"  # each call enters afresh
    with telemetry.attributed("block"):
        assert ACCESS_PATTERN.get() == "block"
        assert inside() == "decorated"
        assert ACCESS_PATTERN.get() == "block"
    assert ACCESS_PATTERN.get() is None
