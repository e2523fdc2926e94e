"""Orders: placed in their user's partition, listed by time or by status, moved through statuses.

Order ids are ULIDs, so an order's sort key (``ORDER#{order_id}``) sorts by the time it was
placed: "a user's orders between two dates" is a key condition on ``SK`` (``BETWEEN`` the smallest
id possible at ``start`` and the largest possible at ``end``), never a filter over every order the
user has. Status changes are optimistic (``Version``) and move the order in GSI1 with it.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.pagination import ResultIterator
from ulid import ULID

from core.config import get_settings
from core.errors import AlreadyExists, ConflictError, InvalidInput, NotFound
from models.attributes import to_money
from models.order import Order, OrderStatus, new_order_id, order_id_bounds
from models.table import utcnow
from repositories._common import (
    CONDITIONAL_CHECK_FAILED_EXCEPTION,
    aware_utc,
    error_code,
    key_part,
    raise_unexpected,
)
from repositories.paging import Page, RawKey, check_limit, paginate

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def place_order(
    user_id: str,
    amount: Decimal | int | str,
    *,
    status: OrderStatus | str = "PENDING",
    order_id: str | None = None,
    created_at: datetime | None = None,
) -> Order:
    """Store a new order; ``AlreadyExists`` if ``order_id`` is taken in this user's partition.

    ``amount``: a ``Decimal``, ``int`` or numeric string, above zero, at most two decimal places
    (floats are refused). ``order_id`` defaults to a ULID of ``created_at`` (default: now). One
    given must be a ULID in canonical form whose time is ``created_at`` to the millisecond (else
    ``InvalidInput``), since listing by date reads the time from the id; without ``created_at``
    the order's ``created_at`` is the id's time.
    """
    user_id = key_part(user_id, "user_id")
    value = to_money(amount, "amount", positive=True)
    order_status = check_status(status)
    when = None if created_at is None else aware_utc(created_at, "created_at")
    if order_id is None:
        when = utcnow() if when is None else when
        order_id = _ulid_at(when)
    else:
        order_id, when = _check_order_id(order_id, when)
    order = Order(user_id=user_id, order_id=order_id, amount=value, status=order_status, created_at=when)
    try:
        order.save(condition=Order.pk.does_not_exist())
    except PynamoDBException as exc:
        if error_code(exc) == CONDITIONAL_CHECK_FAILED_EXCEPTION:
            raise AlreadyExists("an order with this id exists already for this user") from exc
        raise_unexpected(exc, "place_order")
    return order


def get_order(user_id: str, order_id: str) -> Order:
    """The order; ``NotFound`` if this user has no order with this id."""
    user_id = key_part(user_id, "user_id")
    order_id = key_part(order_id, "order_id")
    pk = Order.key_template("pk").compose(user_id=user_id)
    sk = Order.key_template("sk").compose(order_id=order_id)
    try:
        return Order.get(pk, sk)
    except DoesNotExist as exc:
        raise NotFound("no order with this id for this user") from exc
    except PynamoDBException as exc:
        raise_unexpected(exc, "get_order")


def get_user_orders(
    user_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 20,
    cursor: str | None = None,
    newest_first: bool = True,
) -> Page[Order]:
    """One page of a user's orders, newest first unless ``newest_first=False``.

    ``start``/``end`` (timezone-aware, inclusive, to the millisecond) restrict the orders to those
    placed in that time, as a key condition. ``limit``: 1 to 100. ``cursor``: the ``next_cursor``
    of the previous page of the same query (same user, range, limit and direction), else
    ``InvalidCursor``.
    """
    user_id = key_part(user_id, "user_id")
    limit = check_limit(limit)
    forward = not _check_bool(newest_first, "newest_first")
    start = None if start is None else aware_utc(start, "start")
    end = None if end is None else aware_utc(end, "end")
    if start is not None and end is not None and start > end:
        raise InvalidInput("start is after end")
    sk = Order.key_template("sk")
    bounds: list[str] | None = None
    if start is None and end is None:
        condition: Condition = Order.sk.startswith(sk.prefix())
    else:
        try:
            low, high = order_id_bounds(start, end)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        bounds = [sk.compose(order_id=low), sk.compose(order_id=high)]
        condition = Order.sk.between(*bounds)
    pk = Order.key_template("pk").compose(user_id=user_id)
    binding = {
        "fn": "get_user_orders", "table": get_settings().table_name, "index": None,
        "keys": {"user_id": user_id}, "forward": forward, "limit": limit, "range": bounds,
    }

    def run(start_key: RawKey | None, count: int) -> ResultIterator[Order]:
        return Order.query(pk, range_key_condition=condition, scan_index_forward=forward,
                           limit=count, last_evaluated_key=start_key)

    try:
        return paginate(run, binding=binding, limit=limit, cursor=cursor)
    except PynamoDBException as exc:
        raise_unexpected(exc, "get_user_orders")


def orders_by_status(
    status: OrderStatus | str,
    *,
    limit: int = 20,
    cursor: str | None = None,
    newest_first: bool = False,
) -> Page[Order]:
    """One page of the orders in ``status`` (all users), oldest first unless ``newest_first``; through GSI1.

    GSI1 is eventually consistent: an order placed or moved a moment ago may not be listed yet.
    """
    order_status = check_status(status)
    limit = check_limit(limit)
    forward = not _check_bool(newest_first, "newest_first")
    gsi1pk = Order.key_template("gsi1pk").compose(status=order_status)
    # GSI1 is overloaded: keep to orders by their sort-key prefix rather than filter afterwards.
    condition = Order.sk.startswith(Order.key_template("sk").prefix())
    binding = {
        "fn": "orders_by_status", "table": get_settings().table_name,
        "index": Order.by_status.Meta.index_name, "keys": {"status": order_status.value},
        "forward": forward, "limit": limit, "range": None,
    }

    def run(start_key: RawKey | None, count: int) -> ResultIterator[Order]:
        return Order.by_status.query(gsi1pk, range_key_condition=condition, scan_index_forward=forward,
                                     limit=count, last_evaluated_key=start_key)

    try:
        return paginate(run, binding=binding, limit=limit, cursor=cursor, index=Order.by_status)
    except PynamoDBException as exc:
        raise_unexpected(exc, "orders_by_status")


def set_order_status(order: Order, status: OrderStatus | str) -> Order:
    """Move ``order`` to ``status`` (and to its GSI1 partition); return the updated order.

    ``ConflictError`` if the stored order is no longer the version of ``order`` (or is gone);
    ``order`` itself is left as it was.
    """
    if not isinstance(order, Order):
        raise InvalidInput(f"expected an Order, got {type(order).__name__}")
    key_part(order.user_id, "user_id")
    key_part(order.order_id, "order_id")
    if order.version is None:
        raise InvalidInput("this Order was never stored (it has no version): use place_order")
    order_status = check_status(status)
    updated = copy.deepcopy(order)
    actions: list[Action] = [
        Order.status.set(order_status),
        Order.gsi1pk.set(Order.key_template("gsi1pk").compose(status=order_status)),
        Order.updated_at.set(utcnow()),
    ]
    try:
        updated.update(actions)  # conditioned on the version of `order`; returns the stored item
    except PynamoDBException as exc:
        if error_code(exc) == CONDITIONAL_CHECK_FAILED_EXCEPTION:
            raise ConflictError("the order changed or was deleted since it was read") from exc
        raise_unexpected(exc, "set_order_status")
    return updated


def check_status(status: Any) -> OrderStatus:
    """An ``OrderStatus`` from the member or its string value; ``InvalidInput`` otherwise."""
    if isinstance(status, OrderStatus):
        return status
    if not isinstance(status, str):
        raise InvalidInput(f"status must be an OrderStatus or a string, got {type(status).__name__}")
    try:
        return OrderStatus(status)
    except ValueError as exc:
        raise InvalidInput(f"unknown order status; expected one of {[s.value for s in OrderStatus]}") from exc


def _ulid_at(when: datetime) -> str:
    try:
        return new_order_id(when)
    except (ValueError, OverflowError) as exc:  # python-ulid's errors for times it cannot hold
        raise InvalidInput("created_at is outside the range of a ULID (1970 onwards)") from exc


def _check_order_id(value: Any, created_at: datetime | None) -> tuple[str, datetime]:
    """A canonical ULID and the order's time: ``created_at``, which must be the ULID's millisecond."""
    order_id = key_part(value, "order_id")
    try:
        ulid = ULID.from_str(order_id)
    except ValueError as exc:
        raise InvalidInput("order_id must be a ULID (26 characters of Crockford base32)") from exc
    if str(ulid) != order_id:
        raise InvalidInput("order_id must be a ULID in canonical (upper-case) form")
    if created_at is None:
        return order_id, _time_of(ulid)
    # Compared the way the id of an order made at `created_at`, and a date range's bounds
    # (order_id_bounds), are computed: the order is then found by any range that holds created_at.
    if ULID.from_str(_ulid_at(created_at)).milliseconds != ulid.milliseconds:
        raise InvalidInput("order_id's time is not created_at to the millisecond (date ranges would miss it)")
    return order_id, created_at


def _time_of(ulid: ULID) -> datetime:
    """A time whose ULID (as ``new_order_id`` makes it) has this ULID's millisecond."""
    try:
        exact = _EPOCH + timedelta(milliseconds=ulid.milliseconds)
    except OverflowError as exc:
        raise InvalidInput("order_id's time is past the year 9999") from exc
    if ULID.from_datetime(exact).milliseconds == ulid.milliseconds:
        return exact
    # ULID.from_datetime goes through a float and truncates, so an exact millisecond can land on
    # the one before; half a millisecond later never does.
    return exact + timedelta(microseconds=500)


def _check_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be a bool, got {type(value).__name__}")
    return value
