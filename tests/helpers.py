"""Test helpers shared by every test folder: raw table access, seeding, racing threads.

Everything here reaches the table through a raw botocore client (``core.client.new_client``),
never through the code under test, so a test's setup and checks stay independent of it.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from core.client import new_client
from core.config import Settings
from models import Account, EmailClaim, Order, TableModel, User, new_order_id
from repositories.paging import Page

T = TypeVar("T")
Item = dict[str, dict[str, Any]]

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# --- made-up HTTP answers ----------------------------------------------------------------------------


class RawBody:
    """The raw body of a made-up HTTP response (``AWSResponse`` reads it through ``stream()``): what
    a botocore ``before-send`` hook returns instead of sending the request."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


# --- raw access ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def raw_client(settings: Settings) -> Any:
    """A raw botocore client for these settings (each test has its own table, so its own settings)."""
    return new_client(settings)


def raw_scan(settings: Settings) -> list[Item]:
    """Every item in the table, read with a raw client, in key order."""
    pages = raw_client(settings).get_paginator("scan").paginate(
        TableName=settings.table_name, ConsistentRead=True
    )
    items: list[Item] = [item for page in pages for item in page["Items"]]
    return sorted(items, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))


def raw_get(settings: Settings, model: type[TableModel], **parts: str) -> Item | None:
    """One item by its key parts (composed by the model's templates), read with a raw client."""
    pk_parts = {k: v for k, v in parts.items() if k in model.key_template("pk").fields}
    sk_parts = {k: v for k, v in parts.items() if k in model.key_template("sk").fields}
    response = raw_client(settings).get_item(
        TableName=settings.table_name,
        Key={"PK": {"S": model.key_template("pk").compose(**pk_parts)},
             "SK": {"S": model.key_template("sk").compose(**sk_parts)}},
        ConsistentRead=True,
    )
    return response.get("Item")  # type: ignore[no-any-return]


def count_calls(model: type[TableModel], operation: str) -> list[dict[str, Any]]:
    """Record every response to ``operation`` made through ``model``'s connection from now on."""
    responses: list[dict[str, Any]] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        responses.append(parsed)

    model._get_connection().connection.client.meta.events.register(f"after-call.dynamodb.{operation}", record)
    return responses


class RawTable:
    """Raw botocore access to the test's table (accounts, transfers), independent of the code under test."""

    def __init__(self, settings: Settings) -> None:
        self.client = new_client(settings)
        self.table = settings.table_name

    @staticmethod
    def account_key(account_id: str) -> dict[str, dict[str, str]]:
        return {
            "PK": {"S": Account.key_template("pk").compose(account_id=account_id)},
            "SK": {"S": Account.key_template("sk").compose(account_id=account_id)},
        }

    def seed_account(self, balance: str, account_id: str | None = None) -> str:
        """Write an account with a raw put_item; return its id."""
        account_id = account_id or uuid.uuid4().hex
        item = {
            **self.account_key(account_id),
            "EntityType": {"S": "ACCOUNT"},
            "AccountId": {"S": account_id},
            "Balance": {"N": balance},
            "Version": {"N": "1"},
        }
        self.client.put_item(TableName=self.table, Item=item)
        return account_id

    def account(self, account_id: str) -> Item | None:
        response = self.client.get_item(
            TableName=self.table, Key=self.account_key(account_id), ConsistentRead=True
        )
        return response.get("Item")  # type: ignore[no-any-return]

    def balance(self, account_id: str) -> Decimal:
        item = self.account(account_id)
        assert item is not None
        return Decimal(item["Balance"]["N"])

    def scan(self) -> list[Item]:
        """Every item in the table, in key order."""
        items: list[Item] = []
        for page in self.client.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            items.extend(page["Items"])
        return sorted(items, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))

    def transfers(self) -> list[Item]:
        """The stored transfer records."""
        return [item for item in self.scan() if item["EntityType"] == {"S": "TRANSFER"}]


# --- users -----------------------------------------------------------------------------------------


def claims(settings: Settings) -> list[Item]:
    """Every email claim in the table."""
    return [item for item in raw_scan(settings) if item["EntityType"]["S"] == "EMAIL"]


def random_email(prefix: str = "user") -> str:
    """A fresh lower-case address."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def seed_user(settings: Settings, *, email: str | None = None, name: str = "Ada", version: int = 1,
              claim: bool = True) -> tuple[str, str]:
    """Write a user (and its claim) in the wire format with a raw client; return (user_id, email)."""
    user_id = uuid.uuid4().hex
    email = email or random_email()
    client = raw_client(settings)
    stamp = {"S": "2026-01-01T00:00:00+00:00"}
    client.put_item(TableName=settings.table_name, Item={
        "PK": {"S": User.key_template("pk").compose(user_id=user_id)},
        "SK": {"S": User.key_template("sk").compose()},
        "EntityType": {"S": "USER"}, "UserId": {"S": user_id}, "Email": {"S": email}, "Name": {"S": name},
        "CreatedAt": stamp, "UpdatedAt": stamp, "Version": {"N": str(version)},
    })
    if claim:
        client.put_item(TableName=settings.table_name, Item={
            "PK": {"S": EmailClaim.key_template("pk").compose(email=email)},
            "SK": {"S": EmailClaim.key_template("sk").compose()},
            "EntityType": {"S": "EMAIL"}, "ClaimedEmail": {"S": email}, "UserId": {"S": user_id},
            "CreatedAt": stamp, "UpdatedAt": stamp, "Version": {"N": "1"},
        })
    return user_id, email


# --- orders ----------------------------------------------------------------------------------------


def new_user_id() -> str:
    """A random user id (no user is stored under it)."""
    return uuid.uuid4().hex


def existing_user(settings: Settings) -> str:
    """The id of a user stored with a raw client (orders need their user to exist)."""
    return seed_user(settings)[0]


def order_item(user_id: str, at: datetime, *, status: str = "PENDING", amount: str = "10.00") -> Item:
    """An order in the wire format, placed at ``at``."""
    order_id = new_order_id(at)
    stamp = {"S": at.isoformat()}
    return {
        "PK": {"S": Order.key_template("pk").compose(user_id=user_id)},
        "SK": {"S": Order.key_template("sk").compose(order_id=order_id)},
        "GSI1PK": {"S": Order.key_template("gsi1pk").compose(status=status)},
        "EntityType": {"S": "ORDER"}, "UserId": {"S": user_id}, "OrderId": {"S": order_id},
        "Amount": {"N": amount}, "Status": {"S": status},
        "CreatedAt": stamp, "UpdatedAt": stamp, "Version": {"N": "1"},
    }


def seed(settings: Settings, items: list[Item]) -> list[str]:
    """Write ``items`` with raw BatchWriteItem calls; return their order ids in the given order."""
    client = raw_client(settings)
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {settings.table_name: [{"PutRequest": {"Item": item}}
                                                        for item in items[start:start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return [item["OrderId"]["S"] for item in items]


def seed_orders(settings: Settings, user_id: str, count: int, *, status: str = "PENDING",
                start: datetime = BASE, step: timedelta = timedelta(minutes=1)) -> list[str]:
    """``count`` orders of ``user_id``, one every ``step`` from ``start``; their ids, oldest first."""
    return seed(settings, [order_item(user_id, start + i * step, status=status) for i in range(count)])


def all_pages(fetch: Any, limit: int) -> Iterator[Page[Order]]:
    """Follow ``next_cursor`` from the first page to the last."""
    page = fetch(limit=limit, cursor=None)
    yield page
    while page.next_cursor is not None:
        page = fetch(limit=limit, cursor=page.next_cursor)
        yield page


# --- concurrency -----------------------------------------------------------------------------------


def race(*calls: Callable[[], T]) -> list[T | BaseException]:
    """Run ``calls`` in threads released together; each one's result or exception, in order."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def run(call: Callable[[], T]) -> T | BaseException:
        barrier.wait()
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
