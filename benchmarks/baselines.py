"""What the data layer is compared with: bare PynamoDB, raw botocore and boto3's Table resource.

Each writes and reads the very items the layer stores (same attribute names and wire types,
timestamps, ``Version`` and ``WriteToken`` included) and sends the equivalent requests: placing an
order is one ``TransactWriteItems`` of a conditioned put and a ``ConditionCheck`` on the user, a
transfer one of a put and two conditioned updates. What they leave out is what the layer adds on
top: validation, key templates, typed entities, rules, cursors, error mapping and logging hooks.

- bare PynamoDB: ``Model`` classes declared by hand with PynamoDB's own attributes
  (``NumberAttribute`` for money, as a PynamoDB user would; timestamps with
  ``pynamodb_attributes.UnicodeDatetimeAttribute``, the layer's format);
- raw botocore: one plain client (retry mode ``standard`` and no parameter validation, as
  PynamoDB configures its own), hand-built requests, wire-format dicts back;
- boto3: ``boto3.resource("dynamodb").Table``, Python values back through its ``TypeDeserializer``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import botocore.config
import botocore.session
from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite
from pynamodb_attributes import UnicodeDatetimeAttribute
from ulid import ULID

from core.config import Settings

ALL_OLD = "ALL_OLD"
TOTAL = "TOTAL"
# The layer's guard against a credit overflowing a DynamoDB number (38 significant digits).
BALANCE_CAP = Decimal("999999999999999999999999999999999999.99")


def _meta(settings: Settings) -> type:
    class Meta:
        table_name = settings.table_name
        host = settings.endpoint_url
        region = settings.region
        max_retry_attempts = settings.max_retry_attempts

    return Meta


class _Stamped(Model):
    """What every item of the table carries."""

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    entity_type = UnicodeAttribute(attr_name="EntityType")
    created_at = UnicodeDatetimeAttribute(attr_name="CreatedAt", force_utc=True)
    updated_at = UnicodeDatetimeAttribute(attr_name="UpdatedAt", force_utc=True)
    write_token = UnicodeAttribute(attr_name="WriteToken", null=True)


@dataclass
class BareModels:
    """Hand-declared PynamoDB models of the layer's items, bound to the benchmark's table."""

    Order: Any
    User: Any
    Account: Any
    Transfer: Any
    Product: Any
    Metric: Any
    connection: Connection


def bare_models(settings: Settings) -> BareModels:
    """Declare the bare models for ``settings``' table and endpoint."""
    meta = _meta(settings)

    class BareOrder(_Stamped):
        Meta = meta
        version = VersionAttribute(attr_name="Version")
        gsi1pk = UnicodeAttribute(attr_name="GSI1PK")
        user_id = UnicodeAttribute(attr_name="UserId")
        order_id = UnicodeAttribute(attr_name="OrderId")
        amount = NumberAttribute(attr_name="Amount")
        status = UnicodeAttribute(attr_name="Status")

    class BareUser(_Stamped):
        Meta = meta

    class BareAccount(_Stamped):
        Meta = meta
        version = NumberAttribute(attr_name="Version")  # updated blindly inside transfers (ADD 1)
        account_id = UnicodeAttribute(attr_name="AccountId")
        balance = NumberAttribute(attr_name="Balance")

    class BareTransfer(_Stamped):
        Meta = meta
        version = VersionAttribute(attr_name="Version")
        transfer_id = UnicodeAttribute(attr_name="TransferId")
        from_account = UnicodeAttribute(attr_name="FromAccount")
        to_account = UnicodeAttribute(attr_name="ToAccount")
        amount = NumberAttribute(attr_name="Amount")

    class BareProduct(_Stamped):
        Meta = meta
        version = NumberAttribute(attr_name="Version")  # batch writes set it themselves
        product_id = UnicodeAttribute(attr_name="ProductId")
        name = UnicodeAttribute(attr_name="Name")
        price = NumberAttribute(attr_name="Price")

    class BareMetric(_Stamped):
        Meta = meta
        version = NumberAttribute(attr_name="Version")
        device_id = UnicodeAttribute(attr_name="DeviceId")
        metric_name = UnicodeAttribute(attr_name="MetricName")
        timestamp = UnicodeDatetimeAttribute(attr_name="Timestamp", force_utc=True)
        value = NumberAttribute(attr_name="Value")
        dimensions = MapAttribute(attr_name="Dimensions", null=True)  # type: ignore[var-annotated]
        shard = NumberAttribute(attr_name="Shard", null=True)
        expires_at = TTLAttribute(attr_name="ExpiresAt", null=True)

    connection = Connection(region=settings.region, host=settings.endpoint_url,
                            max_retry_attempts=settings.max_retry_attempts)
    return BareModels(BareOrder, BareUser, BareAccount, BareTransfer, BareProduct, BareMetric, connection)


def raw_client(settings: Settings) -> Any:
    """A plain botocore DynamoDB client: no hooks of the layer, no parameter validation."""
    config = botocore.config.Config(parameter_validation=False, max_pool_connections=32,
                                    retries={"mode": "standard",
                                             "total_max_attempts": 1 + settings.max_retry_attempts})
    return botocore.session.Session().create_client(
        "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config)


def boto3_table(settings: Settings) -> Any:
    """boto3's ``Table`` resource (its defaults, but the retry mode the others use)."""
    config = botocore.config.Config(retries={"mode": "standard",
                                             "total_max_attempts": 1 + settings.max_retry_attempts})
    resource = boto3.session.Session(region_name=settings.region).resource(
        "dynamodb", endpoint_url=settings.endpoint_url, config=config)
    return resource.Table(settings.table_name)


def now() -> datetime:
    """The current time, as the layer stamps it."""
    return datetime.now(UTC)


def stamp(when: datetime) -> str:
    """A timestamp in the layer's stored format (ISO-8601, UTC offset)."""
    return when.isoformat()


# --- bare PynamoDB --------------------------------------------------------------------------


def pynamodb_place_order(bare: BareModels, user_id: str, amount: float) -> Any:
    """An order put only if new, in one transaction with a check that its user exists."""
    order_id, token, when = str(ULID()), uuid.uuid4().hex, now()
    order = bare.Order(f"USER#{user_id}", f"ORDER#{order_id}", entity_type="ORDER", created_at=when,
                       updated_at=when, write_token=token, gsi1pk="STATUS#PENDING", user_id=user_id,
                       order_id=order_id, amount=amount, status="PENDING")
    with TransactWrite(connection=bare.connection, client_request_token=token,
                       return_consumed_capacity=TOTAL) as transaction:
        transaction.save(order, condition=bare.Order.pk.does_not_exist(), return_values=ALL_OLD)
        transaction.condition_check(bare.User, f"USER#{user_id}", "PROFILE",
                                    condition=bare.User.pk.exists())
    return order


def pynamodb_transfer(bare: BareModels, source: str, target: str, amount: int) -> Any:
    """The transfer record put only if new, the debit only while the balance covers it, the credit."""
    transfer_id, when = str(uuid.uuid4()), now()
    account = bare.Account
    record = bare.Transfer(f"TRANSACTION#{transfer_id}", "TRANSFER", entity_type="TRANSFER",
                           created_at=when, updated_at=when, write_token=transfer_id,
                           transfer_id=transfer_id, from_account=source, to_account=target, amount=amount)
    with TransactWrite(connection=bare.connection, client_request_token=transfer_id,
                       return_consumed_capacity=TOTAL) as transaction:
        transaction.save(record, condition=bare.Transfer.pk.does_not_exist(), return_values=ALL_OLD)
        transaction.update(
            account(f"ACCOUNT#{target}", "BALANCE"),
            actions=[account.balance.set(account.balance + amount), account.updated_at.set(when),
                     account.version.add(1)],
            # NumberAttribute takes no Decimal: the cap goes as a float, as a PynamoDB user would send it
            condition=account.pk.exists() & (account.balance <= float(BALANCE_CAP - amount)),
            return_values=ALL_OLD,
        )
        transaction.update(
            account(f"ACCOUNT#{source}", "BALANCE"),
            actions=[account.balance.set(account.balance - amount), account.updated_at.set(when),
                     account.version.add(1)],
            condition=account.pk.exists() & (account.balance >= amount),
            return_values=ALL_OLD,
        )
    return record


def pynamodb_product(bare: BareModels, product_id: str, name: str, price: float, when: datetime) -> Any:
    """A product item as ``batch_write`` stores a new one (``Version`` 1, a ``WriteToken``)."""
    return bare.Product(f"PRODUCT#{product_id}", f"METADATA#{product_id}", entity_type="PRODUCT",
                        created_at=when, updated_at=when, version=1, write_token=uuid.uuid4().hex,
                        product_id=product_id, name=name, price=price)


# --- raw botocore -------------------------------------------------------------------------


def botocore_place_order(client: Any, table: str, user_id: str, amount: str) -> dict[str, Any]:
    """The layer's order transaction, written out as wire dicts."""
    order_id, token, when = str(ULID()), uuid.uuid4().hex, stamp(now())
    item = {
        "PK": {"S": f"USER#{user_id}"}, "SK": {"S": f"ORDER#{order_id}"}, "Amount": {"N": amount},
        "CreatedAt": {"S": when}, "EntityType": {"S": "ORDER"}, "GSI1PK": {"S": "STATUS#PENDING"},
        "OrderId": {"S": order_id}, "Status": {"S": "PENDING"}, "UpdatedAt": {"S": when},
        "UserId": {"S": user_id}, "WriteToken": {"S": token}, "Version": {"N": "1"},
    }
    return client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": item, "ReturnValuesOnConditionCheckFailure": ALL_OLD,
                     "ConditionExpression": "attribute_not_exists(#pk) AND attribute_not_exists(#v)",
                     "ExpressionAttributeNames": {"#pk": "PK", "#v": "Version"}}},
            {"ConditionCheck": {"TableName": table,
                                "Key": {"PK": {"S": f"USER#{user_id}"}, "SK": {"S": "PROFILE"}},
                                "ConditionExpression": "attribute_exists(#pk)",
                                "ExpressionAttributeNames": {"#pk": "PK"}}},
        ],
        ClientRequestToken=token, ReturnConsumedCapacity=TOTAL,
    )


def _balance_update(table: str, account_id: str, sign: str, guard: str, limit: str, amount: str,
                    when: str) -> dict[str, Any]:
    return {"Update": {
        "TableName": table, "Key": {"PK": {"S": f"ACCOUNT#{account_id}"}, "SK": {"S": "BALANCE"}},
        "ReturnValuesOnConditionCheckFailure": ALL_OLD,
        "ConditionExpression": f"attribute_exists(#pk) AND #b {guard} :limit",
        "UpdateExpression": f"SET #b = #b {sign} :amt, #u = :now ADD #v :one",
        "ExpressionAttributeNames": {"#pk": "PK", "#b": "Balance", "#u": "UpdatedAt", "#v": "Version"},
        "ExpressionAttributeValues": {":limit": {"N": limit}, ":amt": {"N": amount}, ":now": {"S": when},
                                      ":one": {"N": "1"}},
    }}


def botocore_transfer(client: Any, table: str, source: str, target: str, amount: str) -> dict[str, Any]:
    """The layer's transfer transaction, written out as wire dicts."""
    transfer_id, when = str(uuid.uuid4()), stamp(now())
    record = {
        "PK": {"S": f"TRANSACTION#{transfer_id}"}, "SK": {"S": "TRANSFER"}, "Amount": {"N": amount},
        "CreatedAt": {"S": when}, "EntityType": {"S": "TRANSFER"}, "FromAccount": {"S": source},
        "ToAccount": {"S": target}, "TransferId": {"S": transfer_id}, "UpdatedAt": {"S": when},
        "WriteToken": {"S": transfer_id}, "Version": {"N": "1"},
    }
    cap = str(BALANCE_CAP - Decimal(amount))
    return client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": record, "ReturnValuesOnConditionCheckFailure": ALL_OLD,
                     "ConditionExpression": "attribute_not_exists(#pk) AND attribute_not_exists(#v)",
                     "ExpressionAttributeNames": {"#pk": "PK", "#v": "Version"}}},
            _balance_update(table, target, "+", "<=", cap, amount, when),
            _balance_update(table, source, "-", ">=", amount, amount, when),
        ],
        ClientRequestToken=transfer_id, ReturnConsumedCapacity=TOTAL,
    )


def botocore_product(product_id: str, name: str, price: str, when: str) -> dict[str, Any]:
    """A product item as ``batch_write`` stores a new one, as a wire dict."""
    return {
        "PK": {"S": f"PRODUCT#{product_id}"}, "SK": {"S": f"METADATA#{product_id}"},
        "CreatedAt": {"S": when}, "EntityType": {"S": "PRODUCT"}, "Name": {"S": name},
        "Price": {"N": price}, "ProductId": {"S": product_id}, "UpdatedAt": {"S": when},
        "WriteToken": {"S": uuid.uuid4().hex}, "Version": {"N": "1"},
    }


def botocore_batch_write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    """``BatchWriteItem`` 25 items a request, unprocessed items sent again."""
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}}
                                           for item in items[start:start + 25]]}
        while pending:
            response = client.batch_write_item(RequestItems=pending, ReturnConsumedCapacity=TOTAL)
            pending = response.get("UnprocessedItems") or {}


def order_query(table: str, user_id: str, limit: int, start_key: dict[str, Any] | None) -> dict[str, Any]:
    """A page of a user's orders, newest first, as botocore's request parameters."""
    params: dict[str, Any] = {
        "TableName": table, "KeyConditionExpression": "PK = :pk AND begins_with(SK, :sk)",
        "ExpressionAttributeValues": {":pk": {"S": f"USER#{user_id}"}, ":sk": {"S": "ORDER#"}},
        "ScanIndexForward": False, "Limit": limit, "ReturnConsumedCapacity": TOTAL,
    }
    if start_key is not None:
        params["ExclusiveStartKey"] = start_key
    return params
