"""A probe, not a test: client CPU per GetItem and PutItem round trip, botocore versus ``LeanClient``.

``python -m benchmarks.engine_probe [--calls N] [--rounds R]`` starts an in-memory DynamoDB Local on
127.0.0.1, creates a table, and times N calls per variant and round with ``time.process_time``
(this process only: the server's CPU is not counted), the variants interleaved and their order
rotated each round. It prints the median microseconds per call of each variant and the ratios.

Variants: ``botocore`` (a plain botocore client), ``layer`` (``core.client.new_client``: botocore
with the data layer's fast serializer, fast parser and logging hooks), ``lean`` (``LeanClient``) and
``lean+obs`` (``core.client.lean_client``: the models' lean client, each call's observation recorded
by ``core.telemetry``: log level check, meters, spans and observers, none of them listening).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import botocore.session

from core.client import lean_client, new_client
from core.config import reload_settings
from core.engine.sync import LeanClient
from core.localdb import LocalDynamoDB

ITEM = {
    "PK": {"S": "USER#01HX"}, "SK": {"S": "ORDER#01HY"}, "EntityType": {"S": "ORDER"},
    "UserId": {"S": "01HX"}, "OrderId": {"S": "01HY"}, "Amount": {"N": "125.50"},
    "Status": {"S": "PENDING"}, "GSI1PK": {"S": "STATUS#PENDING"},
    "CreatedAt": {"S": "2025-03-01T12:00:00+00:00"}, "UpdatedAt": {"S": "2025-03-01T12:00:00+00:00"},
    "Version": {"N": "1"},
}


def per_call_us(call: Callable[[], Any], calls: int) -> float:
    """Client CPU per call, in microseconds, over ``calls`` calls."""
    start = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    """Start the server, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
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
        layer, lean = new_client(settings, validate=False), LeanClient(settings)
        observed = lean_client(settings)
        key = {"PK": ITEM["PK"], "SK": ITEM["SK"]}
        get = {"TableName": table, "Key": key, "ReturnConsumedCapacity": "TOTAL"}
        put = {"TableName": table, "Item": ITEM, "ReturnConsumedCapacity": "TOTAL"}
        variants: dict[str, Callable[[str, dict[str, Any]], Any]] = {
            "botocore": plain._make_api_call, "layer": layer._make_api_call, "lean": lean.call,
            "lean+obs": observed.call,
        }
        for call in variants.values():  # warm up: connections, caches, first-call imports
            for _ in range(50):
                call("PutItem", put)
                call("GetItem", get)
        results: dict[tuple[str, str], list[float]] = {}
        names = list(variants)
        for round_number in range(args.rounds):
            order = names[round_number % len(names):] + names[:round_number % len(names)]
            for operation, params in (("GetItem", get), ("PutItem", put)):
                for name in order:
                    call = variants[name]
                    sample = per_call_us(lambda c=call, o=operation, p=params: c(o, p), args.calls)
                    results.setdefault((operation, name), []).append(sample)
            print(f"round {round_number + 1}/{args.rounds}", file=sys.stderr)
        print("| operation | botocore µs | layer µs | lean µs | lean+obs µs | lean / botocore "
              "| lean+obs / layer |")
        print("|---|---|---|---|---|---|---|")
        for operation in ("GetItem", "PutItem"):
            median = {name: statistics.median(results[(operation, name)]) for name in names}
            print(f"| {operation} | {median['botocore']:.0f} | {median['layer']:.0f} | {median['lean']:.0f} "
                  f"| {median['lean+obs']:.0f} | {median['lean'] / median['botocore']:.2f} "
                  f"| {median['lean+obs'] / median['layer']:.2f} |")


if __name__ == "__main__":
    main()
