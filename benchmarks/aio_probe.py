"""A probe, not a test: client CPU per asyncio call, by HTTP library, against DynamoDB Local.

``python -m benchmarks.aio_probe [--calls N] [--rounds R] [--concurrency C] [--only NAMES]`` starts
an in-memory DynamoDB Local on 127.0.0.1, creates a table holding 100 items under one partition,
and measures client CPU (``time.process_time``: this process only, the server is another) per
GetItem, PutItem and Query of 100 items, for each variant, sequentially (one call awaited after the
other) and concurrently (N calls gathered from one loop, at most C in flight). Variants are
interleaved and their order rotated each round; the table gives the median microseconds per call.

Every variant does the whole path the same way: the body serialized and signed by
``core.engine.requests``, sent by the library over one pool of keep-alive connections, the answer
parsed by ``core.engine.requests.parse``. Only the sending differs:

- ``aiohttp``: one ``ClientSession`` over a ``TCPConnector(limit=C)``;
- ``aiohttp+trace``: the same with a ``TraceConfig`` listening for the request headers being sent
  (what ``AsyncLeanClient`` uses to know whether a cancelled request had left);
- ``httpx``: one ``httpx.AsyncClient`` with ``Limits(max_connections=C)``;
- ``httpcore``: httpx's transport alone, one ``httpcore.AsyncConnectionPool``;
- ``httpcore+trace``: the same with the ``trace`` extension (httpcore's way to tell what was sent);
- ``client``: ``core.engine.aio.AsyncLeanClient`` (retries, observation, credentials included);
- ``sync``: ``core.engine.sync.LeanClient`` called in a loop (sequential only), for reference.

A library that is not installed is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import botocore.session

from core.config import Settings, reload_settings
from core.engine.requests import endpoint_for, parse, serialize, signed
from core.engine.signing import TIMESTAMP_FORMAT
from core.engine.sync import LeanClient
from core.localdb import LocalDynamoDB

ITEM = {
    "PK": {"S": "USER#01HX"}, "SK": {"S": "ORDER#01HY"}, "EntityType": {"S": "ORDER"},
    "UserId": {"S": "01HX"}, "OrderId": {"S": "01HY"}, "Amount": {"N": "125.50"},
    "Status": {"S": "PENDING"}, "GSI1PK": {"S": "STATUS#PENDING"},
    "CreatedAt": {"S": "2025-03-01T12:00:00+00:00"}, "UpdatedAt": {"S": "2025-03-01T12:00:00+00:00"},
    "Version": {"N": "1"},
}
Send = Callable[[str, dict[str, Any]], Awaitable[Any]]
Sender = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, dict[str, str], bytes]]]


class Signer:
    """Serialize, sign, send with a library's ``sender``, parse: every variant's common path."""

    def __init__(self, settings: Settings, sender: Sender) -> None:
        self.endpoint = endpoint_for(settings.endpoint_url, settings.region or "us-east-1")
        self.credentials = botocore.session.get_session().get_credentials().get_frozen_credentials()
        self.sender = sender

    async def __call__(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        amz_date = time.strftime(TIMESTAMP_FORMAT, time.gmtime())
        request, _ = signed(operation, serialize(operation, params), endpoint=self.endpoint,
                            credentials=self.credentials, amz_date=amz_date)
        status, headers, body = await self.sender(request.method, request.url, request.headers, request.body)
        return parse(operation, status, headers, body)


async def aiohttp_variant(settings: Settings, limit: int, *, trace: bool) -> tuple[Send, Callable[[], Any]]:
    """A signer over one aiohttp session (with a trace of the headers sent when ``trace``)."""
    import aiohttp

    configs = []
    if trace:
        config = aiohttp.TraceConfig()

        async def on_headers(session: Any, context: Any, params: Any) -> None:
            context.trace_request_ctx["sent"] = True

        config.on_request_headers_sent.append(on_headers)
        configs.append(config)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), trace_configs=configs,
                                    auto_decompress=False, skip_auto_headers=("User-Agent",))

    async def send(method: str, url: str, headers: dict[str, str], body: bytes) -> Any:
        extra = {"trace_request_ctx": {}} if trace else {}
        async with session.request(method, url, data=body, headers=headers, allow_redirects=False,
                                   **extra) as response:
            raw = await response.read()
            return response.status, dict(response.headers), raw

    return Signer(settings, send), session.close


async def httpx_variant(settings: Settings, limit: int) -> tuple[Send, Callable[[], Any]]:
    """A signer over one httpx client."""
    import httpx

    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit))

    async def send(method: str, url: str, headers: dict[str, str], body: bytes) -> Any:
        response = await client.request(method, url, content=body, headers=headers)
        return response.status_code, dict(response.headers), response.content

    return Signer(settings, send), client.aclose


async def httpcore_variant(settings: Settings, limit: int, *, trace: bool) -> tuple[Send, Callable[[], Any]]:
    """A signer over one httpcore pool (with the ``trace`` extension when ``trace``)."""
    import httpcore

    pool = httpcore.AsyncConnectionPool(max_connections=limit, max_keepalive_connections=limit)

    async def send(method: str, url: str, headers: dict[str, str], body: bytes) -> Any:
        extensions: dict[str, Any] = {}
        if trace:
            state = {"sent": False}

            async def traced(event: str, info: Any) -> None:
                if event == "http11.send_request_headers.started":
                    state["sent"] = True

            extensions["trace"] = traced
        response = await pool.request(method, url, headers=list(headers.items()), content=body,
                                      extensions=extensions)
        answered = {name.decode("latin-1"): value.decode("latin-1") for name, value in response.headers}
        return response.status, answered, response.content

    return Signer(settings, send), pool.aclose


async def client_variant(settings: Settings, limit: int) -> tuple[Send, Callable[[], Any]]:
    """``AsyncLeanClient`` itself."""
    from core.engine.aio import AsyncLeanClient

    client = AsyncLeanClient(settings, max_connections=limit)
    return client.call, client.close


async def measure(send: Send, operation: str, params: dict[str, Any], calls: int, concurrency: int) -> float:
    """CPU microseconds per call: ``calls`` calls, one at a time (``concurrency`` 1) or gathered."""
    start = time.process_time()
    if concurrency == 1:
        for _ in range(calls):
            await send(operation, params)
    else:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                await send(operation, params)

        await asyncio.gather(*(one() for _ in range(calls)))
    return (time.process_time() - start) / calls * 1e6


async def run(settings: Settings, table: str, args: argparse.Namespace) -> dict[tuple[str, str, str], float]:
    """Every variant, operation and mode for ``args.rounds`` rounds; the median of each."""
    limit = args.concurrency
    factories: dict[str, Callable[[], Awaitable[tuple[Send, Callable[[], Any]]]]] = {}
    if importlib.util.find_spec("aiohttp"):
        factories["aiohttp"] = lambda: aiohttp_variant(settings, limit, trace=False)
        factories["aiohttp+trace"] = lambda: aiohttp_variant(settings, limit, trace=True)
    if importlib.util.find_spec("httpx"):
        factories["httpx"] = lambda: httpx_variant(settings, limit)
    if importlib.util.find_spec("httpcore"):
        factories["httpcore"] = lambda: httpcore_variant(settings, limit, trace=False)
        factories["httpcore+trace"] = lambda: httpcore_variant(settings, limit, trace=True)
    factories["client"] = lambda: client_variant(settings, limit)
    if args.only:
        factories = {name: factory for name, factory in factories.items() if name in args.only}
    variants: dict[str, Send] = {}
    closers = []
    for name, factory in factories.items():
        variants[name], close = await factory()
        closers.append(close)
    key = {"PK": ITEM["PK"], "SK": ITEM["SK"]}
    operations: dict[str, dict[str, Any]] = {
        "GetItem": {"TableName": table, "Key": key, "ReturnConsumedCapacity": "TOTAL"},
        "PutItem": {"TableName": table, "Item": ITEM, "ReturnConsumedCapacity": "TOTAL"},
        "Query": {"TableName": table, "KeyConditionExpression": "PK = :pk",
                  "ExpressionAttributeValues": {":pk": {"S": "USER#Q"}}, "ReturnConsumedCapacity": "TOTAL"},
    }
    for send in variants.values():  # warm up: connections, caches, first-call imports
        for operation, params in operations.items():
            await measure(send, operation, params, 20, limit)
    samples: dict[tuple[str, str, str], list[float]] = {}
    names = list(variants)
    for round_number in range(args.rounds):
        order = names[round_number % len(names):] + names[:round_number % len(names)]
        for operation, params in operations.items():
            calls = args.calls if operation != "Query" else max(10, args.calls // 5)
            for mode, concurrency in (("sequential", 1), ("concurrent", limit)):
                for name in order:
                    sample = await measure(variants[name], operation, params, calls, concurrency)
                    samples.setdefault((operation, mode, name), []).append(sample)
        print(f"round {round_number + 1}/{args.rounds}", file=sys.stderr)
    for close in closers:
        await close()
    return {key: statistics.median(values) for key, values in samples.items()}


def sync_reference(settings: Settings, table: str, args: argparse.Namespace) -> dict[str, float]:
    """``LeanClient``'s CPU per sequential call, for the same operations."""
    client = LeanClient(settings)
    key = {"PK": ITEM["PK"], "SK": ITEM["SK"]}
    operations = {
        "GetItem": {"TableName": table, "Key": key, "ReturnConsumedCapacity": "TOTAL"},
        "PutItem": {"TableName": table, "Item": ITEM, "ReturnConsumedCapacity": "TOTAL"},
        "Query": {"TableName": table, "KeyConditionExpression": "PK = :pk",
                  "ExpressionAttributeValues": {":pk": {"S": "USER#Q"}}, "ReturnConsumedCapacity": "TOTAL"},
    }
    found: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for operation, params in operations.items():
            calls = args.calls if operation != "Query" else max(10, args.calls // 5)
            start = time.process_time()
            for _ in range(calls):
                client.call(operation, params)
            found.setdefault(operation, []).append((time.process_time() - start) / calls * 1e6)
    client.close()
    return {operation: statistics.median(values) for operation, values in found.items()}


def main() -> None:
    """Start the server, seed the table, measure, print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "probe")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "probe")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with LocalDynamoDB() as server:
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.endpoint
        settings = reload_settings()
        plain = botocore.session.get_session().create_client(
            "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url)
        table = f"probe-{uuid.uuid4().hex[:8]}"
        plain.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                                  {"AttributeName": "SK", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"},
                       {"AttributeName": "SK", "KeyType": "RANGE"}],
        )
        for number in range(100):
            item = {**ITEM, "PK": {"S": "USER#Q"}, "SK": {"S": f"ORDER#{number:03d}"}}
            plain.put_item(TableName=table, Item=item)
        medians = asyncio.run(run(settings, table, args))
        reference = sync_reference(settings, table, args)
    names = sorted({name for _, _, name in medians}, key=lambda name: list(dict.fromkeys(
        name for _, _, name in medians)).index(name))
    print(f"| operation | mode | {' | '.join(names)} | sync LeanClient |")
    print(f"|---|---|{'---|' * len(names)}---|")
    for operation in ("GetItem", "PutItem", "Query"):
        for mode in ("sequential", "concurrent"):
            cells = " | ".join(f"{medians[(operation, mode, name)]:.0f}" for name in names)
            sync = f"{reference[operation]:.0f}" if mode == "sequential" else ""
            print(f"| {operation} | {mode} | {cells} | {sync} |")


if __name__ == "__main__":
    main()
