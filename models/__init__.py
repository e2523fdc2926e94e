"""The data model: one table (``models.table``) and one file per entity.

Read top to bottom: ``table`` (the physical table, shared attributes, indexes), ``keys`` (key
templates), ``attributes`` (value rules: money, text, emails, enums), ``rules`` (what an entity
declares beyond its values), ``queries`` (declared access patterns), then the entities. Every
write goes through ``writes``, which keeps what the entities declare.
"""

from __future__ import annotations

from models.account import Account
from models.email_claim import EmailClaim
from models.idempotency import IdempotencyRecord
from models.metric import Metric
from models.metric_aggregate import MetricAggregate
from models.order import Order, OrderStatus, new_order_id
from models.product import Product
from models.table import EMAIL_INDEX_NAME, GSI1_NAME, TableModel
from models.transfer import Transfer
from models.user import RetiredUserId, User
from models.writes import transaction

ENTITIES: tuple[type[TableModel], ...] = (
    User, EmailClaim, RetiredUserId, Order, Account, Transfer, Metric, MetricAggregate, Product,
    IdempotencyRecord,
)

__all__ = [
    "EMAIL_INDEX_NAME",
    "ENTITIES",
    "GSI1_NAME",
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
    "new_order_id",
    "transaction",
]
