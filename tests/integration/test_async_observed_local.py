"""The async API's calls are observed as the synchronous ones: one span and one event per call, with the
access pattern and the calling function of the code that made the call, on either transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from structlog.testing import capture_logs

from core.config import Settings, get_settings
from core.logs import configure_logging
from models import User
from repositories import asyncio as aio
from repositories.asyncio import orders
from tests.helpers import existing_user, random_email, seed_orders

pytestmark = pytest.mark.integration


@pytest.fixture(params=["lean", "botocore"])
def table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, local_endpoint: Settings,
          local_table: Settings) -> Settings:
    """The table on DynamoDB Local, the models sending through each transport."""
    monkeypatch.setenv("DATALAYER_TRANSPORT", request.param)
    settings = get_settings()
    assert settings.transport == request.param
    return settings


async def _acalls(user_id: str) -> None:
    """Four calls: a transaction, a read by key, a declared query on an index, a repository function."""
    email = random_email()
    await User(user_id=user_id + "x", email=email, name="Ada").asave()
    await User.aget(f"USER#{user_id}", "PROFILE")
    await User.with_email.afirst(email=email)
    await orders.get_user_orders(user_id, limit=2)


def _run(user_id: str) -> None:
    async def main() -> None:
        try:
            await _acalls(user_id)
        finally:
            await aio.aclose()

    asyncio.run(main())


def test_each_awaited_call_is_one_client_span_with_its_access_pattern(
    table: Settings, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    user_id = existing_user(table)
    seed_orders(table, user_id, 3)
    spans.clear()
    configure_logging(force=True)  # LOG_LEVEL=DEBUG applied
    with capture_logs() as events:
        _run(user_id)
    finished = spans.get_finished_spans()
    name = table.table_name
    assert [span.name for span in finished] == [
        f"TransactWriteItems {name}", f"GetItem {name}", f"Query {name}", f"Query {name}"]
    for span in finished:
        attributes = span.attributes or {}
        assert span.kind is SpanKind.CLIENT
        assert attributes["db.system.name"] == "aws.dynamodb"
        assert attributes["aws.dynamodb.table_names"] == (name,)
        assert attributes["aws.request_id"]
    patterns = [(span.attributes or {})["datalayer.access_pattern"] for span in finished]
    # no declared pattern for a get by key: the app's coroutine that awaited it, as for a sync caller
    assert patterns == ["User.save", f"{__name__}._acalls", "User.with_email", "Order.of_user"]
    assert (finished[3].attributes or {})["aws.dynamodb.count"] == 3  # a page of 2 reads one more: has_more
    calls = [event for event in events if event["event"] == "dynamodb.call"]
    assert len(calls) == 4
    assert calls[3]["caller"] == "repositories.orders.get_user_orders"  # found on the awaited code's stack
    assert calls[1]["caller"] == f"{__name__}._acalls"
    assert all(call["outcome"] == "ok" for call in calls)


def test_with_botocores_instrumentation_active_an_awaited_call_still_has_one_span(
    table: Settings, spans: InMemorySpanExporter
) -> None:
    provider = TracerProvider()
    theirs = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    user_id = existing_user(table)
    instrumentor = BotocoreInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        spans.clear()
        _run(user_id)
    finally:
        instrumentor.uninstrument()
    assert [span.name.split()[0] for span in spans.get_finished_spans()] == [
        "TransactWriteItems", "GetItem", "Query", "Query"]
    assert theirs.get_finished_spans() == ()


def test_every_call_of_an_awaited_function_is_awaited_on_the_loop_batches_included(
    local_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from decimal import Decimal

    from core.engine.aio import AsyncLeanClient
    from models import Product
    from repositories.asyncio import batch

    awaited: list[str] = []
    call = AsyncLeanClient.call

    async def spy(self: AsyncLeanClient, operation: str, params: Any) -> dict[str, Any]:
        awaited.append(operation)
        return await call(self, operation, params)

    monkeypatch.setattr(AsyncLeanClient, "call", spy)
    products = [Product(product_id=f"p{n}", name="x", price=Decimal(1)) for n in range(30)]

    async def main() -> list[Product]:
        try:
            await batch.batch_write(products)
            return await batch.batch_get(Product, [{"product_id": f"p{n}"} for n in range(30)])
        finally:
            await aio.aclose()

    found = asyncio.run(main())
    assert sorted(p.product_id for p in found) == sorted(f"p{n}" for n in range(30))
    assert awaited.count("BatchWriteItem") == 2 and "BatchGetItem" in awaited


def test_awaited_get_metrics_fans_out_as_concurrent_calls_on_the_loops_thread(
    local_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from datetime import UTC, datetime, timedelta

    from core.engine.aio import AsyncLeanClient
    from repositories.asyncio import metrics

    threads: set[int] = set()
    in_flight = [0, 0]  # now, most at once
    call = AsyncLeanClient.call

    async def spy(self: AsyncLeanClient, operation: str, params: Any) -> dict[str, Any]:
        threads.add(threading.get_ident())
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            return await call(self, operation, params)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(AsyncLeanClient, "call", spy)
    start = datetime(2025, 6, 1, tzinfo=UTC)

    async def main() -> list[Any]:
        try:
            return await metrics.get_metrics("device-1", start, start + timedelta(days=3))
        finally:
            await aio.aclose()

    assert asyncio.run(main()) == []
    assert threads == {threading.get_ident()}  # tasks of the loop, no worker thread
    assert in_flight[1] > 1  # the day partitions were queried at once
