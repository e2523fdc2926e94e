"""Helpers for the migrations tests: fast seeding, full scans, and a fake client that wraps the
real one to play the rules DynamoDB Local does not enforce."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

TEST_REVISIONS = Path(__file__).parent / "revisions"
REPO = Path(__file__).resolve().parents[2]


def quiet(_: str) -> None:
    """A printer that prints nothing."""


def seed(client: Any, table: str, items: list[dict[str, Any]], threads: int = 4) -> None:
    """Write ``items`` (wire format) with BatchWriteItem, 25 a request, from several threads."""
    batches = [items[i : i + 25] for i in range(0, len(items), 25)]

    def write(batch: list[dict[str, Any]]) -> None:
        request = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, batches))


def scan_all(client: Any, table: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of ``table`` (following LastEvaluatedKey)."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True, **kwargs}
    while True:
        page = client.scan(**params)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def client_error(code: str, message: str, operation: str) -> ClientError:
    """A botocore ``ClientError`` as DynamoDB would send it."""
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeClient:
    """A botocore client wrapping the real one: methods given as overrides replace the real ones,
    everything else (including ``meta`` and ``exceptions``) is the real client's."""

    def __init__(self, real: Any, **overrides: Callable[..., Any]) -> None:
        self.real = real
        self.overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        return getattr(self.real, name)


READ_ONLY_PREFIXES = ("Describe", "Get", "BatchGet", "Scan", "Query", "List")


def record_operations(client: Any) -> list[str]:
    """The name of every operation ``client`` sends from now on (a botocore before-call hook)."""
    sent: list[str] = []

    def handler(model: Any, **_: Any) -> None:
        sent.append(model.name)

    client.meta.events.register("before-call.dynamodb", handler)
    return sent


def user_item(user_id: str, email: str, **extra: Any) -> dict[str, Any]:
    """A stored USER item (``USER#{user_id}`` / ``PROFILE``), in the layout of revisions 0004 and 0005."""
    return {
        "PK": {"S": f"USER#{user_id}"},
        "SK": {"S": "PROFILE"},
        "EntityType": {"S": "USER"},
        "UserId": {"S": user_id},
        "Email": {"S": email},
        "Version": {"N": "1"},
        **extra,
    }


def claim_item(email: str, user_id: str) -> dict[str, Any]:
    """A stored email claim (``EMAIL#{email}`` / ``EMAIL``) owned by ``user_id``."""
    return {
        "PK": {"S": f"EMAIL#{email}"},
        "SK": {"S": "EMAIL"},
        "EntityType": {"S": "EMAIL"},
        "ClaimedEmail": {"S": email},
        "UserId": {"S": user_id},
        "Version": {"N": "1"},
    }


def get_raw(client: Any, table: str, pk: str, sk: str) -> dict[str, Any] | None:
    """One item by its key, read strongly consistent with a raw client."""
    item: dict[str, Any] | None = client.get_item(
        TableName=table, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True
    ).get("Item")
    return item
