"""The data model: one table (``models.table``) and one file per entity.

Read top to bottom: ``table`` (the physical table, shared attributes, indexes), ``keys`` (key
templates), ``attributes`` (value rules: money, text, emails, enums), ``rules`` (what an entity
declares beyond its values), ``queries`` (declared access patterns), then the entities. Every
write is planned by ``planning``, which keeps what the entities declare, and sent by ``sending``.
"""

from __future__ import annotations

import importlib
import pkgutil

from models.account import Account
from models.email_claim import EmailClaim
from models.idempotency import IdempotencyRecord
from models.metric import Metric
from models.metric_aggregate import MetricAggregate
from models.order import Order, OrderStatus, new_order_id
from models.product import Product
from models.table import TableModel
from models.transfer import Transfer
from models.user import RetiredUserId, User
from models.writes import atransaction, transaction


def _entities() -> tuple[type[TableModel], ...]:
    """Every entity this package declares: each module of ``models`` is imported, and its own
    ``TableModel`` subclasses that declare keys are taken, by module name, then in the order the
    module defines them. A new entity is a new file; no list to extend."""
    found: list[type[TableModel]] = []
    for module_info in sorted(pkgutil.iter_modules(__path__, f"{__name__}."), key=lambda m: m.name):
        module = importlib.import_module(module_info.name)
        found.extend(
            value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, TableModel)
            and value.__module__ == module.__name__ and value.keys is not None
        )
    return tuple(found)


ENTITIES: tuple[type[TableModel], ...] = _entities()

__all__ = [
    "ENTITIES",
    "Account",
    "EmailClaim",
    "IdempotencyRecord",
    "Metric",
    "MetricAggregate",
    "Order",
    "OrderStatus",
    "Product",
    "RetiredUserId",
    "TableModel",
    "Transfer",
    "User",
    "atransaction",
    "new_order_id",
    "transaction",
]
