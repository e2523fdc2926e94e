"""Orders: placed in their user's partition, listed by time or by status, moved through statuses.

Order ids are ULIDs, so an order's sort key (``ORDER#{order_id}``) sorts by the time it was
placed: "a user's orders between two dates" is a key condition on ``SK`` (``BETWEEN`` the smallest
id possible at ``start`` and the largest possible at ``end``), never a filter over every order the
user has. What ``Order`` declares is kept by its own writes (``models.planning``): the user must
exist, the status moves only along ``ORDER_MOVES`` and GSI1's key moves with it, optimistically.

``place_order(..., idempotency_key=)``: the key is scoped to the user; the same key with the same
arguments returns the first order (its id is read from the key's record, since order ids are
ULIDs of the time), other arguments raise ``IdempotencyKeyReused`` (``models.idempotency``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, overload

from core.errors import InvalidInput
from models import idempotency, planning
from models.attributes import money_at_scale, to_money
from models.idempotency import IdempotencyKey
from models.order import Order, OrderStatus, order_id_bounds, order_identity
from models.partial import Partial
from models.table import utcnow
from repositories import query
from repositories._common import aware_utc, check_bool, key_part
from repositories.paging import Page


def place_order(
    user_id: str,
    amount: Decimal | int | str,
    *,
    status: OrderStatus | str = "PENDING",
    order_id: str | None = None,
    created_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Order:
    """Store a new order of an existing user (checked in the same transaction).

    ``NotFound`` if the user does not exist; ``AlreadyExists`` if ``order_id`` is taken in this
    user's partition. ``amount``: a ``Decimal``, ``int`` or numeric string, above zero, at most two
    decimal places (floats are refused). ``order_id`` defaults to a ULID of ``created_at``
    (default: now). One given must be a ULID in canonical form whose time is ``created_at`` to the
    millisecond (else ``InvalidInput``), since listing by date reads the time from the id; without
    ``created_at`` the order's ``created_at`` is the id's time.

    ``idempotency_key`` (scoped to the user, kept 7 days): called again with the same key and the
    same arguments, the first call's order is returned (as stored now) and nothing is written, also
    when the first call ended in ``WriteOutcomeUnknown``; with other arguments,
    ``IdempotencyKeyReused``. Another user's use of the same key is independent.
    """
    user_id = key_part(user_id, "user_id")
    value = to_money(amount, "amount", positive=True)
    order_status = check_status(status)
    when = None if created_at is None else aware_utc(created_at, "created_at")
    checked_id = None if order_id is None else key_part(order_id, "order_id")
    arguments = {"user_id": user_id, "amount": value, "status": order_status, "order_id": checked_id,
                 "created_at": when}
    key = IdempotencyKey.of("place_order", idempotency_key, owner=user_id, arguments=arguments)
    order_id, when = order_identity(checked_id, when or (utcnow() if checked_id is None else None))
    # The amount as a read gives it back (12.50 for 12.5), so the first call and a replay agree.
    order = Order(user_id=user_id, order_id=order_id, amount=money_at_scale(value), status=order_status,
                  created_at=when)
    first = idempotency.execute(lambda: planning.plan_put(order), key, Order, what="Order.save")
    return order if first is None else first


@overload
def get_order(user_id: str, order_id: str, *, attributes: None = None) -> Order: ...


@overload
def get_order(user_id: str, order_id: str, *, attributes: Sequence[str]) -> Partial[Order]: ...


def get_order(user_id: str, order_id: str, *,
              attributes: Sequence[str] | None = None) -> Order | Partial[Order]:
    """The order; ``NotFound`` if this user has no order with this id.

    ``attributes``: read only these (``["status", "amount"]``; the keys come with them): a
    ``Partial[Order]``, which raises ``NotFetched`` for any other attribute and cannot be written.
    """
    user_id, order_id = key_part(user_id, "user_id"), key_part(order_id, "order_id")
    if attributes is not None:
        return query.get_partial(Order, attributes=attributes, consistent_read=False, user_id=user_id,
                                 order_id=order_id)
    return query.get_one(Order, consistent_read=False, user_id=user_id, order_id=order_id)


@overload
def get_user_orders(user_id: str, *, start: datetime | None = None, end: datetime | None = None,
                    limit: int = 20, cursor: str | None = None, newest_first: bool = True,
                    attributes: None = None) -> Page[Order]: ...


@overload
def get_user_orders(user_id: str, *, start: datetime | None = None, end: datetime | None = None,
                    limit: int = 20, cursor: str | None = None, newest_first: bool = True,
                    attributes: Sequence[str]) -> Page[Partial[Order]]: ...


def get_user_orders(
    user_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 20,
    cursor: str | None = None,
    newest_first: bool = True,
    attributes: Sequence[str] | None = None,
) -> Page[Order] | Page[Partial[Order]]:
    """One page of a user's orders, newest first unless ``newest_first=False``.

    ``start``/``end`` (timezone-aware, inclusive, to the millisecond) restrict the orders to those
    placed in that time, as a key condition. ``limit``: 1 to 100. ``cursor``: the ``next_cursor``
    of the previous page of the same query (same user, range and direction; the limit may
    change), else ``InvalidCursor``. ``attributes``: read only these, as ``Partial[Order]``.
    """
    user_id = key_part(user_id, "user_id")
    newest_first = check_bool(newest_first, "newest_first")
    start = None if start is None else aware_utc(start, "start")
    end = None if end is None else aware_utc(end, "end")
    if start is not None and end is not None and start > end:
        raise InvalidInput("start is after end")
    between = None
    if start is not None or end is not None:
        try:
            low, high = order_id_bounds(start, end)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        between = ({"order_id": low}, {"order_id": high})
    if attributes is not None:
        return Order.of_user.page(user_id=user_id, between=between, limit=limit, cursor=cursor,
                                  newest_first=newest_first, attributes=attributes)
    return Order.of_user.page(user_id=user_id, between=between, limit=limit, cursor=cursor,
                              newest_first=newest_first)


@overload
def orders_by_status(status: OrderStatus | str, *, limit: int = 20, cursor: str | None = None,
                     newest_first: bool = False, attributes: None = None) -> Page[Order]: ...


@overload
def orders_by_status(status: OrderStatus | str, *, limit: int = 20, cursor: str | None = None,
                     newest_first: bool = False, attributes: Sequence[str]) -> Page[Partial[Order]]: ...


def orders_by_status(
    status: OrderStatus | str,
    *,
    limit: int = 20,
    cursor: str | None = None,
    newest_first: bool = False,
    attributes: Sequence[str] | None = None,
) -> Page[Order] | Page[Partial[Order]]:
    """One page of the orders in ``status`` (all users), oldest first unless ``newest_first``; through GSI1.

    GSI1 is eventually consistent: an order placed or moved a moment ago may not be listed yet.
    ``attributes``: read only these, as ``Partial[Order]``.
    """
    order_status = check_status(status)
    newest_first = check_bool(newest_first, "newest_first")
    if attributes is not None:
        return Order.in_status.page(status=order_status, limit=limit, cursor=cursor,
                                    newest_first=newest_first, attributes=attributes)
    return Order.in_status.page(status=order_status, limit=limit, cursor=cursor, newest_first=newest_first)


def set_order_status(order: Order, status: OrderStatus | str) -> Order:
    """Move ``order`` to ``status`` (and GSI1 with it); return the updated order.

    ``InvalidInput`` for a move the order's lifecycle does not allow (``ORDER_MOVES``);
    ``ConflictError`` if the stored order is no longer the version of ``order`` (or is gone).
    ``order`` itself is left as it was.
    """
    if not isinstance(order, Order):
        raise InvalidInput(f"expected an Order, got {type(order).__name__}")
    key_part(order.user_id, "user_id")
    key_part(order.order_id, "order_id")
    if order.version is None:
        raise InvalidInput("this Order was never stored (it has no version): use place_order")
    updated = copy.deepcopy(order)
    updated.update([Order.status.set(check_status(status))])
    return updated


def check_status(status: Any) -> OrderStatus:
    """An ``OrderStatus`` from the member or its string value; ``InvalidInput`` otherwise."""
    return OrderStatus(Order.status.serialize(status))  # the attribute's own value rule
