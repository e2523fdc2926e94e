"""Test helpers shared by every test folder: raw table access, seeding, racing threads, client hooks.

Everything here reaches the table through a raw botocore client (``core.client.new_client``),
never through the code under test, so a test's setup and checks stay independent of it.

``on(client, event, handler)`` hooks the models' client whichever transport it is (the lean
``LeanClient`` or botocore's): ``before-call``, ``before-send`` and ``after-call`` handlers written
for botocore's events serve both.
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

from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from core.client import new_client
from core.config import Settings
from core.engine.sync import LeanClient
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

    on(models_client(model), f"after-call.dynamodb.{operation}", record)
    return responses


# --- hooks on either transport -----------------------------------------------------------------------


def moto_answers_lean_clients() -> None:
    """moto answers botocore's requests from its ``before-send`` handler; a ``LeanClient`` sends
    through urllib3, which moto does not see. From now on every new ``LeanClient`` ends its
    ``before_send`` hooks with moto's handler, which answers only while ``mock_aws`` is active (on
    DynamoDB Local it lets the request go). Idempotent."""
    from moto.core.models import botocore_stubber

    if getattr(LeanClient.__init__, "answered_by_moto", False):
        return
    init = LeanClient.__init__

    def with_moto(self: LeanClient, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.before_send.append(
            lambda request, **_: botocore_stubber(event_name="before-send.dynamodb", request=request))

    with_moto.answered_by_moto = True  # type: ignore[attr-defined]
    LeanClient.__init__ = with_moto  # type: ignore[method-assign]



def models_client(model: type[TableModel] = TableModel) -> Any:
    """The client ``model``'s connection sends through for the current settings (either transport)."""
    return model._get_connection().connection.client


_LEAN_HOOKS = {"before-call": "before_call", "before-send": "before_send", "after-call": "after_call"}


def on(client: Any, event: str, handler: Callable[..., Any], *, first: bool = False) -> Callable[[], None]:
    """Register ``handler`` for botocore's ``event`` (``before-send.dynamodb``,
    ``after-call.dynamodb.PutItem``, ...) on ``client``, a ``LeanClient`` or a botocore client;
    ``first``: before the handlers already there. Returns the function that unregisters it."""
    if not isinstance(client, LeanClient):
        events = client.meta.events
        if first:
            events.register_first(event, handler)
        else:
            events.register(event, handler)
        return lambda: events.unregister(event, handler)
    kind, _, rest = event.partition(".dynamodb")
    operation = rest.lstrip(".") or None
    hooks: list[Callable[..., Any]] = getattr(client, _LEAN_HOOKS[kind])

    def hook(**kwargs: Any) -> Any:
        if operation is not None and kwargs.get("operation") != operation:
            return None
        return handler(**kwargs)

    hooks.insert(0, hook) if first else hooks.append(hook)

    def remove() -> None:
        if hook in hooks:
            hooks.remove(hook)

    _registered[(id(client), event, id(handler))] = remove
    return remove


_registered: dict[tuple[int, str, int], Callable[[], None]] = {}


def off(client: Any, event: str, handler: Callable[..., Any]) -> None:
    """Unregister what ``on(client, event, handler)`` registered (nothing if it is not there)."""
    if not isinstance(client, LeanClient):
        client.meta.events.unregister(event, handler)
        return
    remove = _registered.pop((id(client), event, id(handler)), None)
    if remove is not None:
        remove()


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


class LoseAnswers:
    """Apply requests of the chosen operations for real, then drop their answers (``times`` of them,
    after letting ``skip`` through)."""

    def __init__(self) -> None:
        self.lost = 0
        self.times = 0
        self.skip = 0
        self.operations: set[str] = set()
        self._http = URLLib3Session()

    def __call__(self, request: Any, **_: Any) -> None:
        operation = request.headers.get("X-Amz-Target", b"")
        name = (operation.decode() if isinstance(operation, bytes) else operation).rpartition(".")[2]
        if name in self.operations and self.skip > 0:
            self.skip -= 1
            return
        if name in self.operations and self.lost < self.times:
            self.lost += 1
            self._http.send(request)  # DynamoDB applies it...
            raise ReadTimeoutError(endpoint_url=request.url)  # ...and the answer never arrives
