"""Order: in its user's partition, sorted by time, and in GSI1 under its status."""

from __future__ import annotations

import enum
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from pynamodb.attributes import UnicodeAttribute

from core.budgets import Budget
from core.errors import InvalidInput
from models.attributes import EnumAttribute, MoneyAttribute
from models.collections import Collection
from models.indexes import GlobalIndex, IndexKey
from models.keys import EntityKeys
from models.queries import Query
from models.rules import BelongsTo, Lifecycle
from models.table import TableModel
from models.user import User

if TYPE_CHECKING:
    from ulid import ULID


def _ulid() -> type[ULID]:
    """python-ulid's ``ULID``, imported at the first order id (not when the models are imported)."""
    from ulid import ULID

    return ULID


class OrderStatus(enum.StrEnum):
    """The states of an order."""

    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


_ULID_TIME_BYTES = 6  # a ULID is 48 bits of milliseconds, then 80 random bits
_ULID_RANDOM_BYTES = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS: Final = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)  # 10 bits -> two digits
_SHIFTS: Final = tuple(range(120, -1, -10))  # a 128-bit ULID as 13 pairs of base32 digits (130 bits)
_MAX_MILLISECONDS: Final = (1 << 48) - 1
_MAX_RANDOMNESS: Final = (1 << 80) - 1


class _Ids:
    """ULIDs as python-ulid's ``ULID.from_datetime`` and ``ULID()`` make them: the same millisecond
    (``int(at.timestamp() * 1000)``, or ``time.time_ns() // 10**6``), 80 random bits, and within one
    millisecond the last id's randomness plus one (ids made later sort after), with its errors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (-1, 0)  # (milliseconds, randomness) of the last id made

    def make(self, milliseconds: int) -> str:
        if milliseconds > _MAX_MILLISECONDS:
            raise ValueError("Value exceeds maximum possible timestamp")
        if milliseconds < 0:
            raise OverflowError("a ULID cannot hold a time before 1970")
        with self._lock:
            last_ms, last_random = self._last
            if milliseconds == last_ms:
                if last_random == _MAX_RANDOMNESS:
                    raise ValueError("Randomness within same millisecond exhausted")
                randomness = last_random + 1
            else:
                randomness = int.from_bytes(os.urandom(10))
            self._last = (milliseconds, randomness)
        return ulid_text((milliseconds << 80) | randomness)


def ulid_text(value: int) -> str:
    """The canonical 26 characters of a 128-bit ULID (Crockford's base32, as python-ulid spells it)."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


_IDS: Final = _Ids()


def new_order_id(at: datetime | None = None) -> str:
    """A time-sortable id (ULID): ids made later sort after ids made earlier."""
    if at is None:
        return _IDS.make(time.time_ns() // 1_000_000)
    return _IDS.make(int(at.timestamp() * 1000))


def order_id_bounds(start: datetime | None, end: datetime | None) -> tuple[str, str]:
    """The smallest order id possible at ``start`` and the largest possible at ``end``.

    Both ends are inclusive, to the millisecond (a ULID's precision); ``None`` leaves that end open.
    The time part comes from ``ULID.from_datetime``, the conversion ``new_order_id`` uses, so an
    order made at ``start`` or ``end`` is always inside. Raises ``ValueError`` for a time a ULID
    cannot hold (before 1970, or after the year 10889).
    """
    low = _ulid_time(start) + bytes(_ULID_RANDOM_BYTES) if start is not None else bytes(16)
    high = _ulid_time(end) + b"\xff" * _ULID_RANDOM_BYTES if end is not None else b"\xff" * 16
    return str(_ulid().from_bytes(low)), str(_ulid().from_bytes(high))


def order_identity(order_id: str | None, created_at: datetime | None) -> tuple[str, datetime]:
    """An order's id and time, checked together (listing by date reads the time from the id).

    No id: a ULID of ``created_at``. An id: it must be a canonical ULID, and its millisecond must
    be ``created_at``'s; without ``created_at`` the time is the id's. ``InvalidInput`` otherwise.
    """
    if order_id is None:
        if created_at is None:
            raise InvalidInput("an order needs an id or a time")
        return _ulid_at(created_at), created_at
    try:
        ulid = _ulid().from_str(order_id)
    except ValueError as exc:
        raise InvalidInput("order_id must be a ULID (26 characters of Crockford base32)") from exc
    if str(ulid) != order_id:
        raise InvalidInput("order_id must be a ULID in canonical (upper-case) form")
    if created_at is None:
        return order_id, _time_of(ulid)
    # Compared the way the id of an order made at `created_at`, and a date range's bounds
    # (order_id_bounds), are computed: the order is then found by any range that holds created_at.
    if _ulid().from_str(_ulid_at(created_at)).milliseconds != ulid.milliseconds:
        raise InvalidInput("order_id's time is not created_at to the millisecond (ranges would miss it)")
    return order_id, created_at


def _ulid_at(when: datetime) -> str:
    try:
        return new_order_id(when)
    except (ValueError, OverflowError) as exc:  # python-ulid's errors for times it cannot hold
        raise InvalidInput("created_at is outside the range of a ULID (1970 onwards)") from exc


def _time_of(ulid: ULID) -> datetime:
    """A time whose ULID (as ``new_order_id`` makes it) has this ULID's millisecond."""
    try:
        exact = _EPOCH + timedelta(milliseconds=ulid.milliseconds)
    except OverflowError as exc:
        raise InvalidInput("order_id's time is past the year 9999") from exc
    if _ulid().from_datetime(exact).milliseconds == ulid.milliseconds:
        return exact
    # ULID.from_datetime goes through a float and truncates, so an exact millisecond can land on
    # the one before; half a millisecond later never does.
    return exact + timedelta(microseconds=500)


def _ulid_time(at: datetime) -> bytes:
    if at.timestamp() < 0:
        raise ValueError("a ULID cannot hold a time before 1970")
    return _ulid().from_datetime(at).bytes[:_ULID_TIME_BYTES]


# What a page of a user's orders, or of the orders in a status, may cost: no other entity's items
# read past (a request may read on past an unreadable item).
PAGE_OF_ORDERS = Budget(max_read_units_per_page=8, max_items_read_per_item_returned=1.5,
                        max_requests_per_page=2)

# The moves an order's status may make; DELIVERED and CANCELLED are final.
ORDER_MOVES: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
}


class Order(TableModel, discriminator="ORDER"):
    """``USER#{user_id}`` / ``ORDER#{order_id}``, and in GSI1 under ``STATUS#{status}``.

    Rules: placed only for an existing user (checked in the same transaction); the amount is
    money above zero; the status moves only along ``ORDER_MOVES``, and GSI1's key moves with it.
    """

    keys = EntityKeys(pk="USER#{user_id}", sk="ORDER#{order_id}")

    user_id = UnicodeAttribute(attr_name="UserId")
    order_id = UnicodeAttribute(attr_name="OrderId")
    amount = MoneyAttribute(attr_name="Amount", positive=True)
    status = EnumAttribute(OrderStatus, attr_name="Status")

    # every order is in GSI1 under its status, sorted by the table's SK (so by time)
    by_status = GlobalIndex("GSI1", pk=IndexKey("GSI1PK", "STATUS#{status}"), sk="sk")

    # access patterns
    # (a page of 100 orders reads about 3.5 units; an item read per item returned)
    of_user = Query(budget=PAGE_OF_ORDERS)  # a user's orders, by time (ULID order ids)
    in_status = Query(by_status, budget=PAGE_OF_ORDERS)  # all users' orders in one status, by time
    # the user's profile and newest orders, in one query of the user's partition
    with_user = Collection(User, of_user)

    rules = (BelongsTo(User), Lifecycle("status", ORDER_MOVES))
