"""Orders: placed in their user's partition, listed by time or by status, moved through statuses.

Order ids are ULIDs, so an order's sort key (``ORDER#{order_id}``) sorts by the time it was
placed: "a user's orders between two dates" is a key condition on ``SK`` (``BETWEEN`` the smallest
id possible at ``start`` and the largest possible at ``end``), never a filter over every order the
user has. Status changes are optimistic (``Version``) and move the order in GSI1 with it.
"""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.pagination import ResultIterator
from ulid import ULID

from core.config import get_settings
from core.errors import AlreadyExists, ConflictError, InvalidInput, NotFound
from models.attributes import to_decimal
from models.order import Order, OrderStatus, new_order_id, order_id_bounds
from models.table import utcnow
from repositories._common import error_code
from repositories.paging import Page, RawKey, check_limit, paginate

MAX_DECIMAL_PLACES = 2
MAX_AMOUNT_EXPONENT = 125  # DynamoDB numbers stop below 1E+126
_CONDITION_FAILED = "ConditionalCheckFailedException"


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
    (floats are refused). ``order_id`` defaults to a ULID of ``created_at`` (default: now); one
    given must be a ULID in canonical form, since listing by date relies on it.
    """
    user_id = _check_id(user_id, "user_id")
    value = check_amount(amount)
    order_status = check_status(status)
    if created_at is not None:
        _check_datetime(created_at, "created_at")
    if order_id is None:
        try:
            order_id = new_order_id(created_at)
        except (ValueError, OverflowError) as exc:  # python-ulid's errors for times it cannot hold
            raise InvalidInput("created_at is outside the range of a ULID (1970 onwards)") from exc
    else:
        order_id = _check_order_id(order_id)
    order = Order(user_id=user_id, order_id=order_id, amount=value, status=order_status,
                  created_at=created_at)
    try:
        order.save(condition=Order.pk.does_not_exist())
    except PutError as exc:
        if error_code(exc) == _CONDITION_FAILED:
            raise AlreadyExists("an order with this id exists already for this user") from exc
        raise
    return order


def get_order(user_id: str, order_id: str) -> Order:
    """The order; ``NotFound`` if this user has no order with this id."""
    user_id = _check_id(user_id, "user_id")
    order_id = _check_id(order_id, "order_id")
    try:
        return Order.get(Order.key_template("pk").compose(user_id=user_id),
                         Order.key_template("sk").compose(order_id=order_id))
    except DoesNotExist as exc:
        raise NotFound("no order with this id for this user") from exc


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
    user_id = _check_id(user_id, "user_id")
    limit = check_limit(limit)
    forward = not _check_bool(newest_first, "newest_first")
    for value, what in ((start, "start"), (end, "end")):
        if value is not None:
            _check_datetime(value, what)
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

    return paginate(run, binding=binding, limit=limit, cursor=cursor)


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

    return paginate(run, binding=binding, limit=limit, cursor=cursor, index=Order.by_status)


def set_order_status(order: Order, status: OrderStatus | str) -> Order:
    """Move ``order`` to ``status`` (and to its GSI1 partition); return the updated order.

    ``ConflictError`` if the stored order is no longer the version of ``order`` (or is gone);
    ``order`` itself is left as it was.
    """
    if not isinstance(order, Order):
        raise InvalidInput(f"expected an Order, got {type(order).__name__}")
    _check_id(order.user_id, "user_id")
    _check_id(order.order_id, "order_id")
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
    except UpdateError as exc:
        if error_code(exc) == _CONDITION_FAILED:
            raise ConflictError("the order changed or was deleted since it was read") from exc
        raise
    return updated


def check_amount(amount: Any) -> Decimal:
    """An order amount: exact, above zero, at most two decimal places; ``InvalidInput`` otherwise."""
    value = to_decimal(amount, what="amount")
    if value <= 0:
        raise InvalidInput("amount must be greater than zero")
    if value.adjusted() > MAX_AMOUNT_EXPONENT:
        raise InvalidInput("amount is larger than a DynamoDB number can hold")
    parts = value.as_tuple()
    assert isinstance(parts.exponent, int)  # finite, checked by to_decimal
    digits = "".join(map(str, parts.digits))
    # 1.50 has two decimal places in form but one in value: trailing zeros do not count.
    trailing_zeros = len(digits) - len(digits.rstrip("0"))
    if parts.exponent + trailing_zeros < -MAX_DECIMAL_PLACES:
        raise InvalidInput(f"amount has more than {MAX_DECIMAL_PLACES} decimal places")
    return value


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


def _check_id(value: Any, what: str) -> str:
    """A string that is a valid key part (``InvalidKey``: empty, holds ``#``, or too long)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    template = Order.key_template("pk") if what == "user_id" else Order.key_template("sk")
    template.compose(**{what: value})
    text: str = value
    return text


def _check_order_id(value: Any) -> str:
    order_id = _check_id(value, "order_id")
    try:
        canonical = str(ULID.from_str(order_id))
    except ValueError as exc:
        raise InvalidInput("order_id must be a ULID (26 characters of Crockford base32)") from exc
    if canonical != order_id:
        raise InvalidInput("order_id must be a ULID in canonical (upper-case) form")
    return order_id


def _check_datetime(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{what} must be timezone-aware")
    return value


def _check_bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be a bool, got {type(value).__name__}")
    return value
