"""``upgrade`` on DynamoDB Local reaches exactly the table ``models/`` declares (DESIGN.md's
physical table, plus whatever indexes later entities declare), and only once."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from core.client import new_client
from core.config import Settings
from migrations import runner
from migrations.declared import declared_spec
from migrations.schema import live_spec
from models import Order, OrderStatus, TableModel, User

REPO = Path(__file__).resolve().parents[2]


def _sorted(entries: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(entries, key=lambda e: e["AttributeName"])


def test_upgrade_on_an_empty_endpoint_creates_exactly_the_designed_table(local_endpoint: Settings) -> None:
    applied = runner.upgrade(out=lambda _: None)
    assert applied == [rev.revision for rev in runner.history()]
    client = new_client(local_endpoint)
    table = client.describe_table(TableName=local_endpoint.table_name)["Table"]

    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    definitions = _sorted(table["AttributeDefinitions"])
    assert definitions == _sorted(TableModel._get_schema()["attribute_definitions"])  # type: ignore[arg-type]
    for name in ("PK", "SK", "GSI1PK", "Email"):
        assert {"AttributeName": name, "AttributeType": "S"} in definitions
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {index.name for index in declared_spec().indexes}
    assert indexes["GSI1"]["KeySchema"] == [
        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert indexes["Email-Index"]["KeySchema"] == [{"AttributeName": "Email", "KeyType": "HASH"}]
    for name in ("GSI1", "Email-Index"):
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}
    for index in indexes.values():
        assert index["IndexStatus"] == "ACTIVE"
    assert "LocalSecondaryIndexes" not in table
    assert live_spec(client, local_endpoint.table_name) == declared_spec()  # keys, indexes, projections

    ttl = client.describe_time_to_live(TableName=local_endpoint.table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ExpiresAt"}


def test_a_second_upgrade_changes_nothing(local_endpoint: Settings) -> None:
    runner.upgrade(out=lambda _: None)
    client = new_client(local_endpoint)
    before = client.describe_table(TableName=local_endpoint.table_name)["Table"]
    lines: list[str] = []

    assert runner.upgrade(out=lines.append) == []

    after = client.describe_table(TableName=local_endpoint.table_name)["Table"]
    assert lines and lines[0].startswith("nothing to do")
    for field in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "StreamSpecification",
                  "TableArn", "CreationDateTime", "LatestStreamArn"):
        assert after[field] == before[field], field


def test_seed_user_and_order_then_query_the_users_orders(local_table: Settings) -> None:
    User(user_id="user123", email="user123@example.com", name="Seed User").save()
    Order(user_id="user123", order_id="order456", amount=Decimal("99.99"), status=OrderStatus.PENDING).save()

    orders = list(Order.query("USER#user123", Order.sk.startswith("ORDER#")))

    assert [o.order_id for o in orders] == ["order456"]
    assert orders[0].amount == Decimal("99.99")


def test_the_command_line_prints_endpoint_and_table_and_is_idempotent(local_endpoint: Settings) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": str(local_endpoint.endpoint_url)}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "migrations", "upgrade", "head"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True,
        )
        return done.stdout

    first, second = run(), run()
    assert f"endpoint: {local_endpoint.endpoint_url}" in first
    assert f"table: {local_endpoint.table_name}" in first
    assert "applying 0001" in first
    assert "applying" not in second
    assert "nothing to do" in second
