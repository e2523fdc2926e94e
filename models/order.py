"""Order: in its user's partition, sorted by time, and in GSI1 under its status."""

from __future__ import annotations

import enum
from datetime import datetime

from pynamodb.attributes import UnicodeAttribute
from pynamodb_attributes import UnicodeEnumAttribute
from ulid import ULID

from models.attributes import MoneyAttribute
from models.keys import EntityKeys
from models.table import GSI1, TableModel


class OrderStatus(enum.StrEnum):
    """The states of an order."""

    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


def new_order_id(at: datetime | None = None) -> str:
    """A time-sortable id (ULID): ids made later sort after ids made earlier."""
    return str(ULID.from_datetime(at) if at is not None else ULID())


class Order(TableModel, discriminator="ORDER"):
    """``USER#{user_id}`` / ``ORDER#{order_id}``, with ``GSI1PK = STATUS#{status}``."""

    keys = EntityKeys(pk="USER#{user_id}", sk="ORDER#{order_id}", gsi1pk="STATUS#{status}")

    user_id = UnicodeAttribute(attr_name="UserId")
    order_id = UnicodeAttribute(attr_name="OrderId")
    amount = MoneyAttribute(attr_name="Amount")
    status = UnicodeEnumAttribute(OrderStatus, attr_name="Status")

    by_status: GSI1[Order] = GSI1()
