"""The bad inputs of phase 3 (``tests.reliability.hostile``): values, the fixture they aim at, and the
catalogue of calls, grouped by function.

Every public function of ``repositories`` (users, orders, accounts, metrics, products, batch,
paging, streams) gets wrong types, empty and whitespace strings, the key delimiter ``#``, NUL,
control, U+202E and lone-surrogate characters, over-long strings, floats, NaN, infinities,
``Decimal("1E100000000")`` and 51-digit numbers, negative and three-decimal money, over-size
products, naive and mistyped datetimes, bad limits and cursors, bad statuses and moves, and
self-transfers; the entities' own writes get the writes their rules refuse.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidCursor,
    InvalidInput,
    NotFound,
    UnreadableItem,
)
from models import (
    Account,
    EmailClaim,
    Metric,
    MetricAggregate,
    Order,
    OrderStatus,
    Product,
    RetiredUserId,
    TableModel,
    Transfer,
    User,
    new_order_id,
    transaction,
)
from repositories import accounts, batch, metrics, orders, paging, products, streams, users

OPENED = (Decimal("100.00"), Decimal("5.00"))  # the fixture's two accounts

# --- the bad values ------------------------------------------------------------------------------------

BAD_IDS: dict[str, Any] = {
    "empty": "",
    "whitespace": "   ",
    "'#' inside": "a#b",
    "only '#'": "#",
    "NUL": "a\x00b",
    "BEL control": "a\x07b",
    "newline": "a\nb",
    "U+202E": "a\u202eb",
    "lone surrogate": "\ud800",
    "leading space": " a",
    "3000 chars": "x" * 3000,
    "int": 42,
    "bytes": b"abc",
    "list": ["a"],
    "None": None,
}
BAD_EMAILS: dict[str, Any] = {
    "empty": "",
    "whitespace": "  ",
    "no '@'": "no-at.example.com",
    "no dot in domain": "a@b",
    "two '@'": "a@@b.com",
    "inner space": "a b@c.com",
    "'#'": "a#b@c.com",
    "300 chars": "x" * 300 + "@e.com",
    "65-char local part": "l" * 65 + "@b.com",
    "NUL": "a\x00@b.com",
    "U+202E": "a\u202e@b.com",
    "lone surrogate": "\ud800@b.com",
    "empty label": "a@.com",
    "empty local part": "@b.com",
    "int": 123,
    "None": None,
    "double dot": "a@b..com",
    "newline": "a\n@b.com",
}
BAD_NAMES: dict[str, Any] = {
    "empty": "",
    "whitespace": "   ",
    "NUL": "a\x00b",
    "U+202E": "a\u202eb",
    "lone surrogate": "\ud800",
    "newline": "a\nb",
    "U+2028": "a\u2028b",
    "int": 5,
    "bytes": b"n",
    "5000 chars": "x" * 5000,
}
BAD_MONEY: dict[str, Any] = {
    "float": 1.5,
    "float NaN": float("nan"),
    "float inf": float("inf"),
    "Decimal NaN": Decimal("NaN"),
    "Decimal sNaN": Decimal("sNaN"),
    "Decimal Infinity": Decimal("Infinity"),
    "Decimal -Infinity": Decimal("-Infinity"),
    "Decimal 1E100000000": Decimal("1E100000000"),
    "51-digit str": "1" * 51,
    "51-digit Decimal": Decimal("1" * 51),
    "51-digit int": int("1" * 51),
    "negative": -1,
    "negative cents": Decimal("-0.01"),
    "3 decimals": Decimal("0.001"),
    "3 decimals str": "1.005",
    "bool": True,
    "None": None,
    "leading space": " 5",
    "trailing space": "5 ",
    "Arabic-Indic digits": "\u0661\u0665",
    "underscore": "1_000",
    "hex": "0x10",
    "list": [],
    "'NaN' str": "NaN",
    "'Infinity' str": "Infinity",
    "1e-200": "1e-200",
    "Decimal 1E+200": Decimal("1E+200"),
}
BAD_VALUES: dict[str, Any] = {
    "float NaN": float("nan"),
    "float inf": float("inf"),
    "float -inf": float("-inf"),
    "Decimal NaN": Decimal("NaN"),
    "Decimal sNaN": Decimal("sNaN"),
    "Decimal Infinity": Decimal("Infinity"),
    "Decimal 1E100000000": Decimal("1E100000000"),
    "51-digit str": "1" * 51,
    "51-digit Decimal": Decimal("1" * 51),
    "10**60": 10**60,
    "bool": True,
    "None": None,
    "word": "abc",
    "Decimal 1E-200": Decimal("1E-200"),
    "Decimal 1E+200": Decimal("1E+200"),
    "list": [],
    "leading space": " 1",
}
BAD_KEYS: dict[str, Any] = {
    "empty": "",
    "whitespace": "   ",
    "256 chars": "x" * 256,
    "int": 5,
    "bytes": b"k",
    "NUL": "a\x00b",
    "BEL control": "a\x07b",
    "U+202E": "a\u202eb",
    "lone surrogate": "\ud800",
    "newline": "k\n",
}
BAD_DIMENSIONS: dict[str, Any] = {
    "empty name": {"": "v"},
    "NUL value": {"k": "\x00"},
    "U+202E in name": {"k\u202e": "v"},
    "lone surrogate value": {"k": "\ud800"},
    "lone surrogate name": {"\ud800": "v"},
    "int name": {1: "v"},
    "int value": {"k": 1},
    "None value": {"k": None},
    "a list": ["k"],
    "a string": "k=v",
    "300-char name": {"k" * 300: "v"},
    "300-char value": {"k": "v" * 300},
}
BAD_LIMITS: dict[str, Any] = {
    "0": 0,
    "-1": -1,
    "101": 101,
    "10**9": 10**9,
    "str": "10",
    "float": 1.5,
    "bool": True,
    "None": None,
}


class _Other(enum.StrEnum):
    PENDING = "PENDING"


BAD_STATUSES: dict[str, Any] = {
    "lower case": "paid",
    "unknown": "UNKNOWN",
    "empty": "",
    "int": 1,
    "None": None,
    "trailing space": "PENDING ",
    "another enum's member": _Other.PENDING,
}


@dataclass
class Case:
    """One bad call, and the typed errors that are its right answer."""

    function: str
    what: str
    call: Callable[[], object]
    expected: tuple[type[DataLayerError], ...] = (InvalidInput,)


# --- what the cases call ---------------------------------------------------------------------------------


class Fixture:
    """Valid entities the bad calls aim at, made through the data layer before the catalogue runs."""

    def __init__(self) -> None:
        self.user = users.create_user(f"hostile.{uuid.uuid4().hex[:8]}@example.com", "Ada")
        self.other = users.create_user(f"other.{uuid.uuid4().hex[:8]}@example.com", "Grace")
        self.stale_user = users.get_user(self.user.user_id)
        self.user = users.update_user(self.user, name="Ada L")
        self.order = orders.place_order(self.user.user_id, Decimal("10.00"))
        orders.place_order(self.user.user_id, Decimal("11.00"))
        delivered = orders.place_order(self.user.user_id, Decimal("12.00"))
        for status in ("PAID", "SHIPPED", "DELIVERED"):
            delivered = orders.set_order_status(delivered, status)
        self.delivered = delivered
        cancelled = orders.place_order(self.other.user_id, Decimal("13.00"))
        self.cancelled = orders.set_order_status(cancelled, "CANCELLED")
        self.source = accounts.open_account(balance=OPENED[0])
        self.target = accounts.open_account(balance=OPENED[1])
        self.used_key = f"used-{uuid.uuid4().hex[:8]}"
        self.transfer = accounts.transfer_funds(
            self.source.account_id, self.target.account_id, Decimal("1.00"), idempotency_key=self.used_key
        )
        self.source = accounts.get_account(self.source.account_id)
        self.product = products.put_product("hostile-p", "Lamp", Decimal("9.99"))
        self.at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.reading = metrics.record_metric("hostile-dev", "temp", 7, at=self.at)
        self.start, self.end = self.at - timedelta(hours=1), self.at + timedelta(hours=1)
        page = orders.get_user_orders(self.user.user_id, limit=1)
        assert page.next_cursor is not None
        self.cursor = page.next_cursor
        by_status = orders.orders_by_status("PENDING", limit=1)
        self.status_cursor = by_status.next_cursor or self.cursor

    def new_email(self) -> str:
        """An email no one holds."""
        return f"free.{uuid.uuid4().hex[:8]}@example.com"


def bound(call: Callable[[Any], object], value: Any) -> Callable[[], object]:
    """``call(value)``, later: a loop's value bound now."""
    return lambda: call(value)


def _product_with(**attrs: Any) -> Callable[[], object]:
    return lambda: products.put_product(f"p-{uuid.uuid4().hex[:6]}", "Name", Decimal("1.00"), **attrs)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def _save(make: Callable[[], TableModel]) -> Callable[[], object]:
    return lambda: make().save()


def _image(**attrs: Any) -> dict[str, Any]:
    return {"PK": {"S": "USER#x"}, "SK": {"S": "ORDER#y"}, **attrs}


def _flip(cursor: str) -> str:
    return cursor[:-1] + ("A" if cursor[-1] != "A" else "B")


def _transaction(build: Callable[[Any], None]) -> Callable[[], object]:
    def run() -> None:
        with transaction() as t:
            build(t)

    return run


def _user_and_bad_order(f: Fixture) -> Callable[[Any], None]:
    def build(t: Any) -> None:
        t.save(User(user_id=uuid.uuid4().hex, email=f.new_email(), name="T"))
        t.save(Order(user_id=f.user.user_id, order_id=new_order_id(), amount=-1, status="PENDING"))

    return build


def catalogue(f: Fixture) -> Iterator[Case]:
    """Every bad call, grouped by function."""
    u, o, src, dst = f.user, f.order, f.source.account_id, f.target.account_id
    one = Decimal("1.00")
    id_calls: dict[str, Callable[[Any], object]] = {
        "get_user(user_id)": users.get_user,
        "create_user(user_id=)": lambda v: users.create_user(f.new_email(), "Ada", user_id=v),
        "place_order(user_id)": lambda v: orders.place_order(v, one),
        "place_order(order_id=)": lambda v: orders.place_order(u.user_id, one, order_id=v),
        "get_order(user_id)": lambda v: orders.get_order(v, o.order_id),
        "get_order(order_id)": lambda v: orders.get_order(u.user_id, v),
        "get_user_orders(user_id)": orders.get_user_orders,
        "open_account(account_id=)": lambda v: accounts.open_account(account_id=v),
        "get_account(account_id)": accounts.get_account,
        "transfer_funds(from)": lambda v: accounts.transfer_funds(v, dst, one),
        "transfer_funds(to)": lambda v: accounts.transfer_funds(src, v, one),
        "get_transfer(transfer_id)": accounts.get_transfer,
        "record_metric(device_id)": lambda v: metrics.record_metric(v, "temp", 1, at=f.at),
        "record_metric(name)": lambda v: metrics.record_metric("hostile-dev", v, 1, at=f.at),
        "get_metrics(device_id)": lambda v: metrics.get_metrics(v, f.start, f.end),
        "get_metrics(name=)": lambda v: metrics.get_metrics("hostile-dev", f.start, f.end, name=v),
        "get_hourly_aggregates(device_id)": lambda v: metrics.get_hourly_aggregates(v, f.start, f.end),
        "put_product(product_id)": lambda v: products.put_product(v, "Name", one),
        "get_product(product_id)": products.get_product,
        "get_products([id])": lambda v: products.get_products([v]),
    }
    defaults_none = {
        "create_user(user_id=)",
        "place_order(order_id=)",
        "open_account(account_id=)",
        "get_metrics(name=)",
    }
    for function, call in id_calls.items():
        for what, value in BAD_IDS.items():
            if value is None and function in defaults_none:
                continue  # None is the documented default there
            yield Case(function, f"id {what}", bound(call, value))

    for what, value in BAD_EMAILS.items():
        yield Case("create_user(email)", what, bound(lambda v: users.create_user(v, "Ada"), value))
        yield Case("find_user_by_email", what, bound(users.find_user_by_email, value))
        if value is not None:
            yield Case("update_user(email=)", what, bound(lambda v: users.update_user(u, email=v), value))
        yield Case("normalize_email", what, bound(users.normalize_email, value))
    yield Case(
        "create_user(email)",
        "taken, in another case",
        lambda: users.create_user(u.email.upper(), "Eve"),
        (AlreadyExists,),
    )
    yield Case(
        "update_user(email=)",
        "another user's",
        lambda: users.update_user(u, email=f.other.email),
        (AlreadyExists,),
    )
    for what, value in {**BAD_NAMES, "300 chars": "x" * 300, "None": None}.items():
        yield Case("create_user(name)", what, bound(lambda v: users.create_user(f.new_email(), v), value))
        if value is not None:
            yield Case("update_user(name=)", what, bound(lambda v: users.update_user(u, name=v), value))
    for what, value in BAD_NAMES.items():
        yield Case(
            "put_product(name)", what, bound(lambda v: products.put_product("hostile-p", v, one), value)
        )
    yield Case("update_user", "nothing to update", lambda: users.update_user(u))
    yield Case(
        "update_user", "stale copy", lambda: users.update_user(f.stale_user, name="Stale"), (ConflictError,)
    )
    for what, value in {
        "a string": "u",
        "None": None,
        "an Order": o,
        "never stored": User(user_id="ghost", email="ghost@example.com", name="G"),
    }.items():
        yield Case("update_user(user)", what, bound(lambda v: users.update_user(v, name="X"), value))
        yield Case("delete_user(user)", what, bound(users.delete_user, value))

    for what, value in BAD_MONEY.items():
        yield Case("place_order(amount)", what, bound(lambda v: orders.place_order(u.user_id, v), value))
        yield Case(
            "transfer_funds(amount)", what, bound(lambda v: accounts.transfer_funds(src, dst, v), value)
        )
        yield Case(
            "put_product(price)", what, bound(lambda v: products.put_product("hostile-p", "Lamp", v), value)
        )
        yield Case("open_account(balance=)", what, bound(lambda v: accounts.open_account(balance=v), value))
    for what, value in {"zero": 0, "zero str": "0.00"}.items():
        yield Case("place_order(amount)", what, bound(lambda v: orders.place_order(u.user_id, v), value))
        yield Case(
            "transfer_funds(amount)", what, bound(lambda v: accounts.transfer_funds(src, dst, v), value)
        )
    for what, value in BAD_VALUES.items():
        yield Case(
            "record_metric(value)",
            what,
            bound(
                lambda v: metrics.record_metric("hostile-dev", "temp", v, at=f.at + timedelta(seconds=1)),
                value,
            ),
        )
    for what, value in BAD_KEYS.items():
        yield Case(
            "transfer_funds(idempotency_key=)",
            what,
            bound(lambda v: accounts.transfer_funds(src, dst, one, idempotency_key=v), value),
        )
        yield Case("transfer_id_for_key", what, bound(accounts.transfer_id_for_key, value))
    yield Case("transfer_funds", "self-transfer", lambda: accounts.transfer_funds(src, src, one))
    yield Case(
        "transfer_funds",
        "unknown target",
        lambda: accounts.transfer_funds(src, str(uuid.uuid4()), one),
        (NotFound,),
    )
    yield Case(
        "transfer_funds",
        "unknown source",
        lambda: accounts.transfer_funds(str(uuid.uuid4()), dst, one),
        (NotFound,),
    )
    yield Case(
        "transfer_funds",
        "more than the balance",
        lambda: accounts.transfer_funds(dst, src, Decimal("1000000.00")),
        (InsufficientFunds,),
    )
    yield Case(
        "transfer_funds",
        "a used key for another amount",
        lambda: accounts.transfer_funds(src, dst, Decimal("2.00"), idempotency_key=f.used_key),
        (IdempotencyKeyReused,),
    )
    yield Case(
        "transfer_funds",
        "a used key for another target",
        lambda: accounts.transfer_funds(src, str(uuid.uuid4()), one, idempotency_key=f.used_key),
        (IdempotencyKeyReused,),
    )
    yield Case("open_account", "taken id", lambda: accounts.open_account(account_id=src), (AlreadyExists,))
    yield Case("get_account", "unknown id", lambda: accounts.get_account(str(uuid.uuid4())), (NotFound,))

    for what, value in BAD_DIMENSIONS.items():
        yield Case(
            "record_metric(dimensions=)",
            what,
            bound(
                lambda v: metrics.record_metric(
                    "hostile-dev", "temp", 1, at=f.at + timedelta(seconds=2), dimensions=v
                ),
                value,
            ),
        )
    yield Case(
        "record_metric",
        "the same reading again",
        lambda: metrics.record_metric("hostile-dev", "temp", 7, at=f.at),
        (AlreadyExists,),
    )
    naive = datetime(2025, 1, 1, 12)
    bad_times: dict[str, Any] = {
        "naive": naive,
        "ISO string": "2025-01-01T00:00:00Z",
        "epoch int": 1_700_000_000,
        "a date": date(2025, 1, 1),
    }
    for what, value in bad_times.items():
        yield Case(
            "record_metric(at=)",
            what,
            bound(lambda v: metrics.record_metric("hostile-dev", "temp", 1, at=v), value),
        )
        yield Case(
            "place_order(created_at=)",
            what,
            bound(lambda v: orders.place_order(u.user_id, one, created_at=v), value),
        )
        yield Case(
            "get_user_orders(start=)",
            what,
            bound(lambda v: orders.get_user_orders(u.user_id, start=v), value),
        )
        yield Case(
            "get_metrics(start)", what, bound(lambda v: metrics.get_metrics("hostile-dev", v, f.end), value)
        )
        yield Case(
            "get_hourly_aggregates(end)",
            what,
            bound(lambda v: metrics.get_hourly_aggregates("hostile-dev", f.start, v), value),
        )
    yield Case(
        "record_metric(at=)",
        "aware datetime.max",
        lambda: metrics.record_metric("hostile-dev", "temp", 1, at=datetime.max.replace(tzinfo=UTC)),
    )
    yield Case(
        "place_order(created_at=)",
        "before 1970",
        lambda: orders.place_order(u.user_id, one, created_at=datetime(1969, 7, 20, tzinfo=UTC)),
    )
    yield Case(
        "place_order(order_id=)", "not a ULID", lambda: orders.place_order(u.user_id, one, order_id="ORDER1")
    )
    yield Case(
        "place_order(order_id=)",
        "lower-case ULID",
        lambda: orders.place_order(u.user_id, one, order_id=new_order_id().lower()),
    )
    yield Case(
        "place_order(order_id=)",
        "ULID of another time than created_at",
        lambda: orders.place_order(
            u.user_id, one, order_id=new_order_id(), created_at=datetime(2020, 1, 1, tzinfo=UTC)
        ),
    )
    yield Case(
        "place_order(order_id=)",
        "taken",
        lambda: orders.place_order(u.user_id, one, order_id=o.order_id),
        (AlreadyExists,),
    )
    yield Case("place_order", "unknown user", lambda: orders.place_order(uuid.uuid4().hex, one), (NotFound,))
    yield Case(
        "get_user_orders",
        "start after end",
        lambda: orders.get_user_orders(u.user_id, start=f.end, end=f.start),
    )
    yield Case("get_metrics", "start after end", lambda: metrics.get_metrics("hostile-dev", f.end, f.start))
    yield Case(
        "get_metrics",
        "a range of 400 days",
        lambda: metrics.get_metrics("hostile-dev", f.start - timedelta(days=400), f.end),
    )
    yield Case(
        "get_hourly_aggregates",
        "start after end",
        lambda: metrics.get_hourly_aggregates("hostile-dev", f.end, f.start),
    )

    for what, value in BAD_LIMITS.items():
        yield Case(
            "get_user_orders(limit=)",
            what,
            bound(lambda v: orders.get_user_orders(u.user_id, limit=v), value),
        )
        yield Case(
            "orders_by_status(limit=)",
            what,
            bound(lambda v: orders.orders_by_status("PENDING", limit=v), value),
        )
        yield Case("paging.check_limit", what, bound(paging.check_limit, value))
    bad_cursors: dict[str, Any] = {
        "empty": "",
        "not base64": "garbage!",
        "5000 chars": "A" * 5000,
        "int": 123,
        "bytes": b"abc",
        "tampered": _flip(f.cursor),
        "truncated": f.cursor[:-4],
        "with padding": f.cursor + "==",
    }
    for what, value in bad_cursors.items():
        yield Case(
            "get_user_orders(cursor=)",
            what,
            bound(lambda v: orders.get_user_orders(u.user_id, limit=1, cursor=v), value),
            (InvalidCursor,),
        )
        yield Case(
            "orders_by_status(cursor=)",
            what,
            bound(lambda v: orders.orders_by_status("PENDING", limit=1, cursor=v), value),
            (InvalidCursor,),
        )
    yield Case(
        "get_user_orders(cursor=)",
        "another user's cursor",
        lambda: orders.get_user_orders(f.other.user_id, limit=1, cursor=f.cursor),
        (InvalidCursor,),
    )
    yield Case(
        "get_user_orders(cursor=)",
        "another direction's cursor",
        lambda: orders.get_user_orders(u.user_id, limit=1, cursor=f.cursor, newest_first=False),
        (InvalidCursor,),
    )
    yield Case(
        "get_user_orders(cursor=)",
        "orders_by_status's cursor",
        lambda: orders.get_user_orders(u.user_id, limit=1, cursor=f.status_cursor),
        (InvalidCursor,),
    )
    yield Case(
        "orders_by_status(cursor=)",
        "get_user_orders's cursor",
        lambda: orders.orders_by_status("PENDING", limit=1, cursor=f.cursor),
        (InvalidCursor,),
    )
    yield Case(
        "paging.decode_cursor",
        "tampered",
        lambda: paging.decode_cursor(_flip(f.cursor), {"fn": "x"}, paging.cursor_secret()),
        (InvalidCursor,),
    )
    for what, value in {"str": "yes", "int": 1, "None": None}.items():
        yield Case(
            "get_user_orders(newest_first=)",
            what,
            bound(lambda v: orders.get_user_orders(u.user_id, newest_first=v), value),
        )

    for what, value in BAD_STATUSES.items():
        yield Case(
            "place_order(status=)", what, bound(lambda v: orders.place_order(u.user_id, one, status=v), value)
        )
        yield Case("orders_by_status", what, bound(orders.orders_by_status, value))
        yield Case("set_order_status(status)", what, bound(lambda v: orders.set_order_status(o, v), value))
    for what, (order, status) in {
        "PENDING -> DELIVERED": (o, "DELIVERED"),
        "PENDING -> SHIPPED": (o, "SHIPPED"),
        "DELIVERED -> CANCELLED": (f.delivered, "CANCELLED"),
        "CANCELLED -> PAID": (f.cancelled, "PAID"),
    }.items():
        yield Case(
            "set_order_status",
            f"illegal move {what}",
            bound(lambda pair: orders.set_order_status(*pair), (order, status)),
        )
    for what, value in {
        "a string": "o",
        "None": None,
        "a User": u,
        "never stored": Order(user_id=u.user_id, order_id=new_order_id(), amount=one, status="PENDING"),
    }.items():
        yield Case(
            "set_order_status(order)", what, bound(lambda v: orders.set_order_status(v, "PAID"), value)
        )

    over = "x" * (401 * 1024)
    yield Case("put_product(**attrs)", "one 401 KB attribute", _product_with(blob=over))
    yield Case(
        "put_product(**attrs)",
        "420 attributes of 1 KB",
        _product_with(**{f"a{i}": "x" * 1000 for i in range(420)}),
    )
    yield Case("put_product(**attrs)", "a Decimal", _product_with(weight=Decimal("1.5")))
    yield Case("put_product(**attrs)", "a float NaN", _product_with(weight=float("nan")))
    yield Case("put_product(**attrs)", "nested 40 deep", _product_with(deep=_nested(40)))
    yield Case("put_product(**attrs)", "a set", _product_with(tags={1, 2}))
    yield Case("put_product(**attrs)", "bytes", _product_with(raw=b"x"))
    yield Case("put_product(**attrs)", "an object", _product_with(thing=object()))
    yield Case("put_product(**attrs)", "an int key inside", _product_with(m={1: "a"}))
    yield Case("put_product(**attrs)", "an empty name", _product_with(**{"": 1}))
    for what, value in {"a string": "abc", "None": None, "an int": 123, "a mapping": {"a": 1}}.items():
        yield Case("get_products", what, bound(products.get_products, value))

    def product(**kw: Any) -> Product:
        return Product(**{"product_id": f"b-{uuid.uuid4().hex[:6]}", "name": "B", "price": one, **kw})

    def twins() -> list[Product]:
        first = product()
        return [first, Product(product_id=first.product_id, name="B2", price=one)]

    batches: dict[str, Callable[[], Any]] = {
        "a string": lambda: "abc",
        "None": lambda: None,
        "ints": lambda: [1, 2],
        "a dict item": lambda: [{"PK": {"S": "x"}}],
        "a mapping": lambda: {"a": 1},
        "an Account": lambda: [Account(account_id=str(uuid.uuid4()), balance=one)],
        "a User": lambda: [User(user_id=uuid.uuid4().hex, email=f.new_email(), name="U")],
        "an Order": lambda: [Order(user_id=u.user_id, order_id=new_order_id(), amount=one, status="PENDING")],
        "a Metric": lambda: [Metric(device_id="d", metric_name="n", timestamp=f.at, value=Decimal(1))],
        "a Transfer": lambda: [Transfer(transfer_id="t", from_account=src, to_account=dst, amount=one)],
        "an EmailClaim": lambda: [EmailClaim(email=f.new_email(), user_id="x")],
        "a MetricAggregate": lambda: [MetricAggregate(device_id="d", metric_name="n", hour="2025-01-01T00")],
        "two with one key": twins,
        "a 401 KB product": lambda: [product(attributes={"blob": over})],
        "a float price": lambda: [product(price=1.5)],
        "a NUL name": lambda: [product(name="a\x00b")],
        "a '#' id": lambda: [product(product_id="a#b")],
        "no price": lambda: [product(price=None)],
        "a valid product, then a bad one": lambda: [product(), product(price=Decimal("0.001"))],
        "a new product at a taken id": lambda: [Product(product_id="hostile-p", name="X", price=one)],
    }
    for what, make in batches.items():
        expected: tuple[type[DataLayerError], ...] = (AlreadyExists,) if "taken" in what else (InvalidInput,)
        yield Case("batch_write", what, bound(lambda m: batch.batch_write(m()), make), expected)
    gets: dict[str, Callable[[], object]] = {
        "a string of keys": lambda: batch.batch_get(Product, cast(Any, "abc")),
        "not a model": lambda: batch.batch_get(cast(Any, str), [{"product_id": "x"}]),
        "another entity's key": lambda: batch.batch_get(Product, [("USER#x", "PROFILE")]),
        "an unknown key field": lambda: batch.batch_get(Product, [{"nope": 1}]),
        "an int key": lambda: batch.batch_get(Product, cast(Any, [123])),
        "a '#' in a key field": lambda: batch.batch_get(Product, [{"product_id": "a#b"}]),
        "the base model": lambda: batch.batch_get(TableModel, [{"x": "y"}]),
        "a half-matching pair": lambda: batch.batch_get(Product, [("PRODUCT#a", "METADATA#b")]),
    }
    for what, read in gets.items():
        yield Case("batch_get", what, read)

    order_image = _image(
        EntityType={"S": "ORDER"},
        UserId={"S": "x"},
        OrderId={"S": "y"},
        Status={"S": "PENDING"},
        Amount={"N": "1"},
        Version={"N": "1"},
    )
    records: dict[str, Any] = {
        "None": None,
        "a string": "record",
        "empty": {},
        "no eventName": {"dynamodb": {}},
        "unknown eventName": {"eventName": "BOGUS", "dynamodb": {}},
        "INSERT without NewImage": {"eventName": "INSERT", "dynamodb": {}},
        "MODIFY without OldImage": {"eventName": "MODIFY", "dynamodb": {"NewImage": order_image}},
        "an image that is a string": {"eventName": "INSERT", "dynamodb": {"NewImage": "x"}},
        "unknown EntityType": {
            "eventName": "INSERT",
            "dynamodb": {"NewImage": _image(EntityType={"S": "NOPE"})},
        },
        "no EntityType": {"eventName": "INSERT", "dynamodb": {"NewImage": _image()}},
        "EntityType as a number": {
            "eventName": "INSERT",
            "dynamodb": {"NewImage": _image(EntityType={"N": "1"})},
        },
        "an Amount that is no number": {
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {**order_image, "Amount": {"N": "abc"}}},
        },
        "a Version that is no number": {
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {**order_image, "Version": {"N": "x"}}},
        },
        "a Status of the wrong type": {
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {**order_image, "Status": {"N": "1"}}},
        },
        "a CreatedAt that is no date": {
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {**order_image, "CreatedAt": {"S": "yesterday"}}},
        },
        "an unknown Status": {
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {**order_image, "Status": {"S": "LOST"}}},
        },
    }
    # A record whose image the entity cannot read is an unreadable item (the handler reports it as a
    # batch item failure); a record that is not a stream record at all is bad input.
    unreadable_images = {
        "EntityType as a number", "an Amount that is no number", "a Version that is no number",
        "a Status of the wrong type", "a CreatedAt that is no date", "an unknown Status",
    }
    for what, value in records.items():
        expected = (UnreadableItem,) if what in unreadable_images else (InvalidInput,)
        yield Case("decode_stream_record", what, bound(streams.decode_stream_record, value), expected)
    yield Case(
        "decode_stream_record",
        "on_unknown='bogus'",
        lambda: streams.decode_stream_record(records["unknown EntityType"], on_unknown=cast(Any, "bogus")),
    )
    for what in ("None", "a string"):
        yield Case("is_ttl_expiry", what, bound(streams.is_ttl_expiry, records[what]))

    account = accounts.get_account(src)

    def richer() -> object:
        account.balance = Decimal("1e6")
        return account.save()

    yield Case("Account.save", "a changed balance", richer)
    yield Case("Account.update", "balance set", lambda: account.update([Account.balance.set(Decimal("1e6"))]))
    yield Case("Account.delete", "an account", account.delete)
    yield Case(
        "Account.save", "a negative balance", _save(lambda: Account(account_id=str(uuid.uuid4()), balance=-1))
    )
    transfer = accounts.get_transfer(f.transfer.transfer_id)
    yield Case("Transfer.delete", "a record", transfer.delete)
    yield Case("Transfer.update", "amount set", lambda: transfer.update([Transfer.amount.set(Decimal(5))]))
    yield Case(
        "Transfer.save",
        "a self-transfer",
        _save(lambda: Transfer(transfer_id=str(uuid.uuid4()), from_account=src, to_account=src, amount=one)),
    )
    reading = metrics.get_metrics("hostile-dev", f.start, f.end)[0]
    yield Case("Metric.delete", "a reading", reading.delete)
    yield Case("Metric.update", "value set", lambda: reading.update([Metric.value.set(Decimal(1))]))
    yield Case(
        "MetricAggregate.save",
        "by hand",
        _save(lambda: MetricAggregate(device_id="hostile-dev", metric_name="temp", hour="2025-01-01T00")),
    )
    yield Case(
        "EmailClaim.save", "by hand", _save(lambda: EmailClaim(email=f.new_email(), user_id=u.user_id))
    )
    yield Case("RetiredUserId.save", "by hand", _save(lambda: RetiredUserId(user_id=uuid.uuid4().hex)))
    order = orders.get_order(u.user_id, o.order_id)
    yield Case(
        "Order.update",
        "PENDING -> DELIVERED",
        lambda: order.update([Order.status.set(OrderStatus.DELIVERED)]),
    )
    yield Case(
        "Order.update", "a key part (user_id)", lambda: order.update([Order.user_id.set(f.other.user_id)])
    )
    yield Case("Order.update", "GSI1PK by hand", lambda: order.update([Order.gsi1pk.set("STATUS#PAID")]))
    yield Case("Order.update", "Version by hand", lambda: order.update([Order.version.set(99)]))
    yield Case("Order.update", "no actions", lambda: order.update([]))
    yield Case("Order.update", "amount zero", lambda: order.update([Order.amount.set(Decimal(0))]))
    yield Case(
        "Order.save",
        "an unknown user",
        _save(lambda: Order(user_id=uuid.uuid4().hex, order_id=new_order_id(), amount=one, status="PENDING")),
        (NotFound,),
    )
    yield Case("Order.save", "without version condition", lambda: order.save(add_version_condition=False))
    user = users.get_user(u.user_id)
    yield Case("User.update", "a bad email", lambda: user.update([User.email.set("not an email")]))
    yield Case("User.update", "a NUL name", lambda: user.update([User.name.set("a\x00b")]))
    yield Case(
        "User.save",
        "a taken email",
        _save(lambda: User(user_id=uuid.uuid4().hex, email=u.email, name="Eve")),
        (AlreadyExists,),
    )
    yield Case(
        "User.save",
        "an existing user's id",
        _save(lambda: User(user_id=u.user_id, email=f.new_email(), name="Eve")),
        (AlreadyExists,),
    )
    yield Case("Product.batch_write", "PynamoDB's batch writer", Product.batch_write)
    yield Case("transaction", "empty", _transaction(lambda t: None))
    yield Case(
        "transaction",
        "a balance change",
        _transaction(lambda t: t.update(account, [Account.balance.set(Decimal(0))])),
    )
    yield Case(
        "transaction",
        "a user and a bad order",
        _transaction(_user_and_bad_order(f)),
    )
