"""``make demo``: every access pattern, against the local database, saying what each one did.

Uses ``AWS_ENDPOINT_URL_DYNAMODB`` when set; otherwise the persistent local DynamoDB that
``make migrate`` uses (started if needed). The table is brought to head first. Ids are random, so
the walkthrough can run any number of times.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from structlog.testing import capture_logs

from core import localdb
from core.logs import configure_logging
from migrations import runner
from models import Product, User
from repositories import accounts, batch, cache, metrics, orders, products, streams, users
from repositories.errors import AlreadyExists, ConflictError, InsufficientFunds, InvalidCursor, InvalidInput


def _step(title: str) -> None:
    print(f"\n== {title}")


def _calls(events: list[dict[str, Any]]) -> str:
    calls = [e for e in events if e.get("event") == "dynamodb.call"]
    described = ", ".join(c["operation"] + (f"({c['index']})" if c.get("index") else "") for c in calls)
    return f"   [{len(calls)} call(s): {described}]"


def _users(tag: str) -> tuple[User, User]:
    _step("users: create (user + email claim in one transaction), find by email, update, conflict")
    with capture_logs() as ev:
        ada = users.create_user(f"Ada.{tag}@Example.com", "Ada")
    print(f"created user {ada.user_id} with email {ada.email} {_calls(ev)}")
    try:
        users.create_user(f"ada.{tag}@example.COM", "Impostor")
    except AlreadyExists as exc:
        print(f"second user with the same email (other case) refused: AlreadyExists({exc})")
    with capture_logs() as ev:
        found = users.find_user_by_email(f"ada.{tag}@example.com")
    print(f"find_user_by_email -> {found.name if found else None} {_calls(ev)}")
    stale = users.get_user(ada.user_id)
    ada = users.update_user(ada, name="Ada Lovelace", email=f"lovelace.{tag}@example.com")
    print(f"updated to {ada.name} <{ada.email}>, version {ada.version}; the old email is free again")
    try:
        users.update_user(stale, name="Stale write")
    except ConflictError:
        print("an update from a stale copy raised ConflictError (optimistic lock)")
    return ada, stale


def _orders(ada: User) -> None:
    _step("orders: place 25 over 25 days, page newest first, date range, by status, status change")
    start = datetime.now(UTC) - timedelta(days=25)
    placed = [
        orders.place_order(ada.user_id, Decimal("10.00") + i, created_at=start + timedelta(days=i))
        for i in range(25)
    ]
    with capture_logs() as ev:
        page = orders.get_user_orders(ada.user_id, limit=10)
    print(f"page 1: {len(page.items)} orders, has_more={page.has_more} {_calls(ev)}")
    page2 = orders.get_user_orders(ada.user_id, limit=10, cursor=page.next_cursor)
    print(f"page 2: {len(page2.items)} orders, first amount {page2.items[0].amount}")
    smaller = orders.get_user_orders(ada.user_id, limit=5, cursor=page.next_cursor)
    print(f"the same cursor with limit=5: the next {len(smaller.items)} orders (the page size may change)")
    try:
        orders.get_user_orders(ada.user_id, limit=10, cursor=page.next_cursor, newest_first=False)
    except InvalidCursor:
        print("the same cursor oldest first raised InvalidCursor (bound to its query and direction)")
    week = orders.get_user_orders(
        ada.user_id, start=start + timedelta(days=10), end=start + timedelta(days=16), limit=100
    )
    print(f"days 10..16: {len(week.items)} orders (a key condition on SK, not a filter)")
    paid = orders.set_order_status(placed[0], "PAID")
    by_status = orders.orders_by_status("PAID", limit=100)
    print(f"order {paid.order_id} is {paid.status.value}; GSI1 lists {len(by_status.items)} PAID orders")


def _accounts(tag: str) -> None:
    _step("accounts: transfer in one transaction, idempotency key, insufficient funds, bad input")
    alice = accounts.open_account(balance=Decimal("100.00"))
    bob = accounts.open_account(balance=Decimal("5.00"))
    key = f"invoice-{tag}"
    first = accounts.transfer_funds(alice.account_id, bob.account_id, Decimal("30.00"), idempotency_key=key)
    again = accounts.transfer_funds(alice.account_id, bob.account_id, Decimal("30.00"), idempotency_key=key)
    same = again.transfer_id == first.transfer_id
    print(f"transfer {first.transfer_id}; repeated key returned the same transfer: {same}")
    try:
        accounts.transfer_funds(bob.account_id, alice.account_id, Decimal("1000.00"))
    except InsufficientFunds:
        print("a transfer above the balance raised InsufficientFunds and moved nothing")
    try:
        accounts.transfer_funds(alice.account_id, bob.account_id, 0.1)  # type: ignore[arg-type]
    except InvalidInput as exc:
        print(f"a float amount was refused before any request: {exc}")
    balances = accounts.get_account(alice.account_id).balance, accounts.get_account(bob.account_id).balance
    print(f"balances now {balances[0]} and {balances[1]} (total {sum(balances)}, was 105.00)")


def _metrics_products_batches(tag: str) -> None:
    _step("metrics: points with TTL + atomic hourly aggregates, read across day buckets")
    device = f"sensor-{tag}"
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    for day in range(3):
        for value in (20, 22, 19):
            metrics.record_metric(device, "temp", value, at=now - timedelta(days=day, minutes=value))
    with capture_logs() as ev:
        points = metrics.get_metrics(device, now - timedelta(days=3), now)
    print(f"{len(points)} points across 3 day buckets, in time order {_calls(ev)}")
    aggs = metrics.get_hourly_aggregates(device, now - timedelta(days=3), now)
    print("hourly aggregates: " + "; ".join(
        f"{a.hour} n={a.sample_count} min={a.minimum} max={a.maximum}" for a in aggs))

    _step("products and batches: 120 products written 25 a request, read 100 a request")
    items = [products.put_product(f"p-{tag}-{i}", f"Product {i}", Decimal("9.99"), colour="blue")
             for i in range(3)]
    print(f"put_product x{len(items)}; get_product -> {products.get_product(items[0].product_id).name}")
    bulk = [Product(product_id=f"bulk-{tag}-{i}", name=f"Bulk {i}", price=Decimal(i)) for i in range(120)]
    with capture_logs() as ev:
        batch.batch_write(bulk)
    print(f"batch_write of 120 {_calls(ev)}")
    with capture_logs() as ev:
        fetched = products.get_products([p.product_id for p in bulk])
    print(f"get_products of 120 -> {len(fetched)} {_calls(ev)}")


def _cache_and_streams(ada: User, stale: User) -> None:
    _step("read-through cache (opt-in): a second get_user is served from memory")
    cache.configure(ttl_seconds=30)
    with capture_logs() as ev:
        users.get_user(ada.user_id)
        users.get_user(ada.user_id)
    print(f"two get_user calls {_calls(ev)}")
    cache.configure(ttl_seconds=None)

    _step("streams: a NEW_AND_OLD_IMAGES record decodes into typed (old, new)")
    user = users.get_user(ada.user_id)
    record = {"eventName": "MODIFY",
              "dynamodb": {"OldImage": stale.serialize(), "NewImage": user.serialize()}}
    old, new = streams.decode_stream_record(record)
    print(f"old: {type(old).__name__} {getattr(old, 'name', None)!r} -> new: {type(new).__name__} "
          f"{getattr(new, 'name', None)!r}")


def run() -> None:
    """Walk through users, orders, paging, transfers, metrics, products, batches, cache, streams."""
    tag = uuid.uuid4().hex[:6]
    ada, stale = _users(tag)
    _orders(ada)
    _accounts(tag)
    _metrics_products_batches(tag)
    _cache_and_streams(ada, stale)
    users.delete_user(users.get_user(ada.user_id))
    print(f"\ndeleted user {ada.user_id}; its email is free again: "
          f"{users.find_user_by_email(ada.email) is None}")


def main() -> int:
    """Point at the local database, migrate, and run the walkthrough."""
    if not os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        print(f"endpoint: {localdb.use_local()} (the local DynamoDB)")
    os.environ["LOG_LEVEL"] = "DEBUG"
    configure_logging(force=True)
    # Every call's event is captured (and summarised per step) rather than printed.
    with capture_logs():
        runner.upgrade(out=lambda line: print(f"migrations: {line}"))
        run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
