"""pydynox (a DynamoDB ORM with a Rust core: the AWS SDK for Rust does the HTTP, signing and JSON) as a
baseline: its ``Model`` API, sync (``sync_get``, ``sync_query``, ``SyncTransaction``,
``SyncBatchWriter``) and async (``get``, ``query``, ``Transaction``, ``BatchWriter``).

The models declare the layer's items as a pydynox user would, with the stored names as aliases:
money as ``DecimalAttribute`` (exact, as the layer's), timestamps as ``DatetimeAttribute`` (ISO-8601,
the layer's format), ``Version`` as pydynox's ``VersionAttribute`` (new items get
``attribute_not_exists(Version)`` and version 1, as the layer's). The writes are the layer's
requests: placing an order is one ``TransactWriteItems`` of the order put only if new and a
condition check on the user; a transfer one of the record put only if new and two conditioned
balance updates (pydynox's transactions take an update as its expression; no model method does
it); a batch write builds each ``Product`` model and puts its ``to_dict()`` through the batch writer.

pydynox is in the ``bench`` extra of pyproject.toml (``make bench`` installs it).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ulid import ULID

from benchmarks.baselines import BALANCE_CAP
from core.config import Settings

try:
    from pydynox import (
        BatchWriter,
        DynamoDBClient,
        Model,
        ModelConfig,
        SyncBatchWriter,
        SyncTransaction,
        Transaction,
    )
    from pydynox.attributes import DatetimeAttribute, DecimalAttribute, StringAttribute, VersionAttribute
except ImportError as exc:
    raise SystemExit("pydynox is missing: `make bench` installs it (pyproject.toml's bench extra)") from exc


class StoredVersion(VersionAttribute):
    """pydynox's optimistic-locking version, stored as ``Version`` (its constructor takes no alias)."""

    def __init__(self) -> None:
        super().__init__()
        self.alias = "Version"


@dataclass
class PydynoxModels:
    """pydynox models of the layer's items, bound to one table and endpoint."""

    client: Any
    table: str
    Order: Any
    Transfer: Any
    Product: Any


def pydynox_models(settings: Settings) -> PydynoxModels:
    """A pydynox client for ``settings``' endpoint (credentials from the environment, as the other
    variants read them) and the models on its table."""
    client = DynamoDBClient(
        region=settings.region or "us-east-1", endpoint_url=settings.endpoint_url,
        access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        connect_timeout=settings.connect_timeout_seconds, read_timeout=settings.read_timeout_seconds,
        max_retries=settings.max_retry_attempts,
    )
    config = ModelConfig(table=settings.table_name, client=client)

    class Stamped(Model):
        model_config = config
        pk = StringAttribute(partition_key=True, alias="PK")
        sk = StringAttribute(sort_key=True, alias="SK")
        entity_type = StringAttribute(alias="EntityType")
        created_at = DatetimeAttribute(alias="CreatedAt")
        updated_at = DatetimeAttribute(alias="UpdatedAt")
        write_token = StringAttribute(alias="WriteToken")
        version = StoredVersion()

    class PydOrder(Stamped):
        model_config = config
        gsi1pk = StringAttribute(alias="GSI1PK")
        user_id = StringAttribute(alias="UserId")
        order_id = StringAttribute(alias="OrderId")
        amount = DecimalAttribute(alias="Amount")
        status = StringAttribute(alias="Status")

    class PydTransfer(Stamped):
        model_config = config
        transfer_id = StringAttribute(alias="TransferId")
        from_account = StringAttribute(alias="FromAccount")
        to_account = StringAttribute(alias="ToAccount")
        amount = DecimalAttribute(alias="Amount")

    class PydProduct(Stamped):
        model_config = config
        product_id = StringAttribute(alias="ProductId")
        name = StringAttribute(alias="Name")
        price = DecimalAttribute(alias="Price")

    return PydynoxModels(client, settings.table_name, PydOrder, PydTransfer, PydProduct)


def _now() -> datetime:
    return datetime.now(UTC)


# --- the operations, sync and async ---------------------------------------------------------------


def get_order(m: PydynoxModels, user_id: str, order_id: str) -> Any:
    """One order by its key."""
    return m.Order.sync_get(pk=f"USER#{user_id}", sk=f"ORDER#{order_id}")


async def aget_order(m: PydynoxModels, user_id: str, order_id: str) -> Any:
    """One order by its key, awaited."""
    return await m.Order.get(pk=f"USER#{user_id}", sk=f"ORDER#{order_id}")


def _order_query(m: PydynoxModels, user_id: str, limit: int | None, page_size: int) -> dict[str, Any]:
    return {"partition_key": f"USER#{user_id}", "sort_key_condition": m.Order.sk.begins_with("ORDER#"),
            "scan_index_forward": False, "limit": limit, "page_size": page_size}


def query_orders(m: PydynoxModels, user_id: str, *, limit: int | None, page_size: int) -> list[Any]:
    """A user's orders, newest first, ``page_size`` a request, ``limit`` in all (``None``: every one)."""
    return list(m.Order.sync_query(**_order_query(m, user_id, limit, page_size)))


async def aquery_orders(m: PydynoxModels, user_id: str, *, limit: int | None, page_size: int) -> list[Any]:
    """``query_orders``, awaited."""
    return [order async for order in m.Order.query(**_order_query(m, user_id, limit, page_size))]


def _new_order(m: PydynoxModels, user_id: str, amount: Decimal) -> tuple[Any, str]:
    order_id, token, when = str(ULID()), uuid.uuid4().hex, _now()
    order = m.Order(pk=f"USER#{user_id}", sk=f"ORDER#{order_id}", entity_type="ORDER", created_at=when,
                    updated_at=when, write_token=token, gsi1pk="STATUS#PENDING", user_id=user_id,
                    order_id=order_id, amount=amount, status="PENDING")
    return order, token


def _user_check(m: PydynoxModels, transaction: Any, user_id: str) -> None:
    transaction.condition_check(m.table, {"PK": f"USER#{user_id}", "SK": "PROFILE"}, "attribute_exists(#pk)",
                                {"#pk": "PK"})


def place_order(m: PydynoxModels, user_id: str, amount: Decimal) -> Any:
    """The order put only if new, in one transaction with a check that its user exists."""
    order, token = _new_order(m, user_id, amount)
    with SyncTransaction(m.client, client_request_token=token) as transaction:
        transaction.save_model(order, condition=m.Order.pk.not_exists())
        _user_check(m, transaction, user_id)
    return order


async def aplace_order(m: PydynoxModels, user_id: str, amount: Decimal) -> Any:
    """``place_order``, awaited."""
    order, token = _new_order(m, user_id, amount)
    async with Transaction(m.client, client_request_token=token) as transaction:
        transaction.save_model(order, condition=m.Order.pk.not_exists())
        _user_check(m, transaction, user_id)
    return order


def _transfer_operations(m: PydynoxModels, transaction: Any, transfer_id: str, source: str, target: str,
                         amount: Decimal) -> Any:
    when = _now()
    record = m.Transfer(pk=f"TRANSACTION#{transfer_id}", sk="TRANSFER", entity_type="TRANSFER",
                        created_at=when, updated_at=when, write_token=transfer_id, transfer_id=transfer_id,
                        from_account=source, to_account=target, amount=amount)
    transaction.save_model(record, condition=m.Transfer.pk.not_exists())
    stamp = when.isoformat()
    names = {"#pk": "PK", "#b": "Balance", "#u": "UpdatedAt", "#v": "Version"}
    guards = ((target, "+", "<=", BALANCE_CAP - amount), (source, "-", ">=", amount))
    for account, sign, guard, limit in guards:
        transaction.update(
            m.table, {"PK": f"ACCOUNT#{account}", "SK": "BALANCE"},
            f"SET #b = #b {sign} :amt, #u = :now ADD #v :one", f"attribute_exists(#pk) AND #b {guard} :limit",
            names, {":limit": limit, ":amt": amount, ":now": stamp, ":one": 1},
        )
    return record


def transfer(m: PydynoxModels, source: str, target: str, amount: Decimal) -> Any:
    """The transfer record put only if new, the credit below the cap, the debit while the balance
    covers it."""
    transfer_id = str(uuid.uuid4())
    with SyncTransaction(m.client, client_request_token=transfer_id) as transaction:
        record = _transfer_operations(m, transaction, transfer_id, source, target, amount)
    return record


async def atransfer(m: PydynoxModels, source: str, target: str, amount: Decimal) -> Any:
    """``transfer``, awaited."""
    transfer_id = str(uuid.uuid4())
    async with Transaction(m.client, client_request_token=transfer_id) as transaction:
        record = _transfer_operations(m, transaction, transfer_id, source, target, amount)
    return record


def _product(m: PydynoxModels, product_id: str, name: str, price: Decimal, when: datetime) -> dict[str, Any]:
    product = m.Product(pk=f"PRODUCT#{product_id}", sk=f"METADATA#{product_id}", entity_type="PRODUCT",
                        created_at=when, updated_at=when, version=1, write_token=uuid.uuid4().hex,
                        product_id=product_id, name=name, price=price)
    item: dict[str, Any] = product.to_dict()
    return item


def batch_write(m: PydynoxModels, items: list[tuple[str, str, Decimal]]) -> None:
    """New products through ``SyncBatchWriter`` (25 a request, unprocessed items sent again)."""
    when = _now()
    with SyncBatchWriter(m.client, m.table) as writer:
        for product_id, name, price in items:
            writer.put(_product(m, product_id, name, price, when))


async def abatch_write(m: PydynoxModels, items: list[tuple[str, str, Decimal]]) -> None:
    """``batch_write``, awaited (``BatchWriter``)."""
    when = _now()
    async with BatchWriter(m.client, m.table) as writer:
        for product_id, name, price in items:
            writer.put(_product(m, product_id, name, price, when))
