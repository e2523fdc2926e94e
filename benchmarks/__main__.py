"""``make bench``: the data layer against bare PynamoDB and raw botocore, same data, one run.

Starts its own in-memory DynamoDB Local on 127.0.0.1 (unless ``AWS_ENDPOINT_URL_DYNAMODB`` is set),
migrates a fresh table, and times three access patterns three ways:

- ``layer``: this project's repository functions (validation, key templates, typed entities,
  logging hooks, cursors);
- ``pynamodb``: a bare PynamoDB model of the same items (hand-built keys, no validation);
- ``botocore``: the raw client with hand-built requests and wire-format dicts.

Also times serialization alone (no network), where the layer's own overhead is not hidden by the
round trip. Prints the median per operation and the ratios layer/pynamodb and layer/botocore.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from core.client import new_client
from core.config import get_settings
from core.localdb import LocalDynamoDB
from core.logs import configure_logging
from migrations import runner
from models import Order, OrderStatus
from repositories import orders, users


def _bare_model(table: str, endpoint: str | None, region: str | None) -> type[Model]:
    class BareOrder(Model):
        class Meta:
            table_name = table
            host = endpoint
            region = None

        pk = UnicodeAttribute(hash_key=True, attr_name="PK")
        sk = UnicodeAttribute(range_key=True, attr_name="SK")
        entity_type = UnicodeAttribute(attr_name="EntityType")
        user_id = UnicodeAttribute(attr_name="UserId")
        order_id = UnicodeAttribute(attr_name="OrderId")
        amount = NumberAttribute(attr_name="Amount")
        status = UnicodeAttribute(attr_name="Status")
        gsi1pk = UnicodeAttribute(attr_name="GSI1PK")

    BareOrder.Meta.region = region  # type: ignore[attr-defined]
    return BareOrder


Op = Callable[[int], Any]


def _medians_us(name: str, layer: Op, bare: Op, raw: Op, rounds: int) -> tuple[str, float, float, float]:
    """Median µs of each variant; the three are interleaved round by round (rotating which goes
    first) so that drift in the server or the machine hits them alike."""
    variants = (layer, bare, raw)
    samples: list[list[float]] = [[], [], []]
    for i in range(rounds):
        for k in range(3):
            which = (i + k) % 3
            start = time.perf_counter()
            variants[which](i)
            samples[which].append(time.perf_counter() - start)
    med = [statistics.median(s) * 1e6 for s in samples]
    return name, med[0], med[1], med[2]


def run(rounds: int) -> list[tuple[str, float, float, float]]:
    """Time every scenario; return (name, layer µs, pynamodb µs, botocore µs) rows."""
    settings = get_settings()
    runner.upgrade(out=lambda _: None)
    client = new_client(settings)
    bare = _bare_model(settings.table_name, settings.endpoint_url, settings.region)
    table = settings.table_name
    user = users.create_user(f"bench-{uuid.uuid4().hex[:8]}@example.com", "Bench").user_id
    layer_ids: list[str] = []
    rows: list[tuple[str, float, float, float]] = []

    def layer_put(i: int) -> None:
        layer_ids.append(orders.place_order(user, Decimal("10.50")).order_id)

    def bare_put(i: int) -> None:
        oid = f"B{i:09d}"
        bare(f"USER#{user}-bare", f"ORDER#{oid}", entity_type="ORDER", user_id=user, order_id=oid,
             amount=10.5, status="PENDING", gsi1pk="STATUS#PENDING").save()

    def raw_put(i: int) -> None:
        oid = f"R{i:09d}"
        client.put_item(TableName=table, Item={
            "PK": {"S": f"USER#{user}-raw"}, "SK": {"S": f"ORDER#{oid}"}, "EntityType": {"S": "ORDER"},
            "UserId": {"S": user}, "OrderId": {"S": oid}, "Amount": {"N": "10.50"},
            "Status": {"S": "PENDING"}, "GSI1PK": {"S": "STATUS#PENDING"},
        })

    rows.append(_medians_us("put order", layer_put, bare_put, raw_put, rounds))
    rows.append(_medians_us(
        "get order",
        lambda i: orders.get_order(user, layer_ids[i % len(layer_ids)]),
        lambda i: bare.get(f"USER#{user}-bare", f"ORDER#B{i % rounds:09d}"),
        lambda i: client.get_item(TableName=table, Key={
            "PK": {"S": f"USER#{user}-raw"}, "SK": {"S": f"ORDER#R{i % rounds:09d}"}}),
        rounds,
    ))

    def raw_query(i: int) -> None:
        client.query(TableName=table, KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
                     ExpressionAttributeValues={":pk": {"S": f"USER#{user}-raw"}, ":sk": {"S": "ORDER#"}},
                     ScanIndexForward=False, Limit=20)

    rows.append(_medians_us(
        "query 20 orders",
        lambda i: orders.get_user_orders(user, limit=20),
        lambda i: list(bare.query(f"USER#{user}-bare", bare.sk.startswith("ORDER#"),
                                  scan_index_forward=False, limit=20)),
        raw_query,
        rounds,
    ))

    sample = Order(user_id=user, order_id="01J0000000000000000000000", amount=Decimal("10.50"),
                   status=OrderStatus.PENDING)
    bare_sample = bare(f"USER#{user}", "ORDER#x", entity_type="ORDER", user_id=user, order_id="x",
                       amount=10.5, status="PENDING", gsi1pk="STATUS#PENDING")
    rows.append(_medians_us(
        "serialize (no I/O)",
        lambda i: sample.serialize(),
        lambda i: bare_sample.serialize(),
        lambda i: {"PK": {"S": f"USER#{user}"}, "SK": {"S": "ORDER#x"}, "EntityType": {"S": "ORDER"},
                   "UserId": {"S": user}, "OrderId": {"S": "x"}, "Amount": {"N": str(Decimal("10.50"))},
                   "Status": {"S": "PENDING"}, "GSI1PK": {"S": "STATUS#PENDING"}},
        rounds * 20,
    ))
    return rows


def main() -> int:
    """Run the benchmarks and print a table of medians and ratios."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    configure_logging()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["TABLE_NAME"] = f"bench-{uuid.uuid4().hex[:8]}"
    server = None
    if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        server = LocalDynamoDB().start()
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.endpoint
    try:
        rows = run(args.rounds)
    finally:
        if server is not None:
            server.stop()
    print(f"{'operation':<20} {'layer µs':>10} {'pynamodb µs':>12} {'botocore µs':>12} "
          f"{'layer/pynamodb':>15} {'layer/botocore':>15}")
    for name, layer, bare, raw in rows:
        print(f"{name:<20} {layer:>10.1f} {bare:>12.1f} {raw:>12.1f} "
              f"{layer / bare:>15.2f} {layer / raw:>15.2f}")
    print(f"(median of {args.rounds} interleaved rounds each, {args.rounds * 20} for serialize; "
          "DynamoDB Local on 127.0.0.1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
