"""The app's IAM policy on DynamoDB Local: a session of every public repository function (and the
models' own writes, batches and a composed transaction) makes only calls the policy allows, and
uses every action it grants and every index it grants to the entities the session writes (an
entity added to ``models/`` brings queries this session does not know). No ``DescribeTable``:
PynamoDB does not call it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.config import Settings
from migrations import policy
from models import ENTITIES, Account, Order, Product, TableModel, new_order_id, transaction
from models.queries import Query
from models.table import utcnow
from repositories.accounts import get_account, get_transfer, open_account, transfer_funds
from repositories.batch import batch_get, batch_write
from repositories.metrics import get_hourly_aggregates, get_metrics, record_metric
from repositories.orders import get_order, get_user_orders, orders_by_status, place_order, set_order_status
from repositories.products import get_product, get_products, put_product
from repositories.users import create_user, delete_user, find_user_by_email, get_user, update_user
from tests.helpers import models_client, on
from tests.migrations.test_policy import Recorder, allows, policy_actions, table_arn

pytestmark = pytest.mark.integration


@pytest.fixture
def recorder(local_table: Settings) -> Iterator[Recorder]:
    """Records every call made through the client the models share (removed afterwards)."""
    recording = Recorder()
    remove = on(models_client(), "before-call.dynamodb", recording)
    yield recording
    remove()


@pytest.fixture
def written_types(local_table: Settings) -> Iterator[set[str]]:
    """Every ``EntityType`` a request sends from now on (the entities a session writes)."""
    seen: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "EntityType" and isinstance(inner, dict) and isinstance(inner.get("S"), str):
                    seen.add(inner["S"])
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    def handler(params: dict[str, Any], **_: Any) -> None:
        collect(json.loads(params["body"] or b"{}"))

    remove = on(models_client(), "before-call.dynamodb", handler)
    yield seen
    remove()


def _query_targets(entities: list[type[TableModel]]) -> set[str | None]:
    """The index (``None``: the table) of every query ``entities`` declare."""
    return {getattr(entity, name).index_name() for entity in entities for klass in entity.__mro__
            for name, value in vars(klass).items() if isinstance(value, Query)}


def _users_and_orders() -> None:
    user = create_user("Ada@Example.com", "Ada")
    assert get_user(user.user_id).email == "ada@example.com"
    assert find_user_by_email("ADA@example.com") is not None
    user = update_user(get_user(user.user_id), name="Ada L.", email="ada@lovelace.example")
    first = place_order(user.user_id, Decimal("10.50"))
    place_order(user.user_id, "3")
    assert get_order(user.user_id, first.order_id).amount == Decimal("10.50")
    page = get_user_orders(user.user_id, limit=1)
    assert len(get_user_orders(user.user_id, limit=1, cursor=page.next_cursor).items) == 1
    assert get_user_orders(user.user_id, start=utcnow() - timedelta(days=1), end=utcnow()).items
    assert orders_by_status("PENDING").items
    paid = set_order_status(first, "PAID")
    account = open_account(balance=Decimal("5"))
    with transaction() as composed:  # a save, an update and a bare condition check, as one write
        order = Order(user_id=user.user_id, order_id=new_order_id(), amount=Decimal("1"), status="PENDING")
        composed.save(order)
        composed.update(paid, [Order.status.set("SHIPPED")])
        composed.condition_check(Account, Account.balance >= 0, account_id=account.account_id)
    delete_user(get_user(user.user_id))


def _accounts() -> None:
    source, target = open_account(balance=Decimal("100")), open_account()
    transfer = transfer_funds(source.account_id, target.account_id, "25", idempotency_key="policy-session")
    again = transfer_funds(source.account_id, target.account_id, "25", idempotency_key="policy-session")
    assert again.transfer_id == get_transfer(transfer.transfer_id).transfer_id
    assert get_account(target.account_id).balance == Decimal("25")


def _metrics() -> None:
    at = utcnow().replace(minute=30)
    record_metric("device-1", "temperature", 21.5, at=at)
    record_metric("device-1", "humidity", "40", at=at + timedelta(seconds=1), dimensions={"room": "lab"})
    assert len(get_metrics("device-1", at - timedelta(hours=1), at + timedelta(hours=1))) == 2
    assert get_metrics("device-1", at - timedelta(hours=1), at + timedelta(hours=1), name="humidity")
    assert get_hourly_aggregates("device-1", at - timedelta(hours=1), at + timedelta(hours=1))


def _products() -> None:
    put_product("p-1", "Lamp", Decimal("9.99"), colour="red")
    put_product("p-1", "Lamp", Decimal("8.99"))
    assert get_product("p-1").price == Decimal("8.99")
    batch_write([Product(product_id=f"p-{n}", name="Chair", price=Decimal(n)) for n in (2, 3)])
    batch_write([Product(product_id="p-2", name="Stool", price=Decimal("2"))], overwrite=True)
    assert [p.product_id for p in get_products(["p-1", "p-2", "p-3"])] == ["p-1", "p-2", "p-3"]
    assert len(batch_get(Product, [{"product_id": "p-2"}, ("PRODUCT#p-3", "METADATA#p-3")])) == 2
    get_product("p-3").delete()  # the model's own method: a delete with no companion item


def test_every_call_of_a_session_is_allowed_by_the_app_policy_and_uses_all_of_it(
    local_table: Settings, recorder: Recorder, written_types: set[str]
) -> None:
    _users_and_orders()
    _accounts()
    _metrics()
    _products()
    document = policy.document("app", table_arn(local_table.table_name))

    assert recorder.refused_by(document) == []
    assert recorder.operations == set(policy.APP_OPERATIONS)  # "DescribeTable" and "Scan" are not among them
    assert recorder.actions == policy_actions(document)
    queried = {resource for action, resource in recorder.calls if action == "dynamodb:Query"}
    [granted] = [s["Resource"] for s in document["Statement"] if s["Action"] == ["dynamodb:Query"]]
    arn = table_arn(local_table.table_name)
    discriminator: Any = TableModel._get_discriminator_attribute()
    written = [entity for entity in ENTITIES if discriminator.get_discriminator(entity) in written_types]
    assert Order in written and Product in written
    # What only the entities the session never writes query: granted for them, not used here.
    unwritten = [entity for entity in ENTITIES if entity not in written]
    others = _query_targets(unwritten) - _query_targets(written)
    not_used_here = {arn if index is None else f"{arn}/index/{index}" for index in others}
    assert queried == set(granted) - not_used_here  # every index granted to the entities written is queried
    for resource in (arn, *(f"{arn}/index/{index}" for index in policy.query_targets()[1])):
        assert not allows(document, "dynamodb:Scan", resource)

