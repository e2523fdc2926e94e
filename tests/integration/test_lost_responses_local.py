"""A write whose answer is lost tells the truth, on DynamoDB Local.

Faults are injected at botocore's ``before-send`` event: the request is really sent (DynamoDB
Local applies it), then the answer is dropped with a read timeout, so botocore sends the very same
request again, as it would after a network fault. The caller must get success, and the effect must
exist exactly once; when every answer is lost, ``WriteOutcomeUnknown`` names what may be written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.config import Settings
from core.errors import WriteOutcomeUnknown
from models import Order, Product
from repositories.accounts import open_account
from repositories.batch import batch_write
from repositories.metrics import get_hourly_aggregates, record_metric
from repositories.orders import get_order, place_order, set_order_status
from repositories.products import put_product
from repositories.users import create_user, get_user, update_user
from tests.helpers import LoseAnswers, random_email, raw_scan

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _items(settings: Settings, entity_type: str) -> list[dict[str, Any]]:
    return [i for i in raw_scan(settings) if i["EntityType"]["S"] == entity_type]


def test_a_put_whose_answer_is_lost_succeeds_once(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    injector = lose("PutItem")
    account = open_account(balance=Decimal(5))
    assert injector.lost == 1
    [stored] = _items(local_table, "ACCOUNT")
    assert stored["AccountId"] == {"S": account.account_id} and stored["Version"] == {"N": "1"}


def test_an_update_whose_answer_is_lost_succeeds_once(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    user = create_user(random_email(), "Ada")
    order = place_order(user.user_id, 10)
    injector = lose("UpdateItem", times=2)
    paid = set_order_status(order, "PAID")
    renamed = update_user(user, name="Ada Lovelace")
    assert injector.lost == 2  # each write's first answer was lost
    assert paid.status.value == "PAID" and paid.version == order.version + 1
    stored = get_order(order.user_id, order.order_id)
    assert (stored.status, stored.version, stored.gsi1pk) == (paid.status, order.version + 1, "STATUS#PAID")
    assert get_user(user.user_id).version == renamed.version == user.version + 1


def test_an_upsert_whose_answer_is_lost_moves_the_version_once(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    injector = lose("UpdateItem")
    product = put_product("lamp", "Lamp", Decimal("9.99"))
    assert injector.lost == 1
    [stored] = _items(local_table, "PRODUCT")
    assert stored["Version"] == {"N": "1"} and product.version == 1


def test_transactions_whose_answer_is_lost_succeed_once(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    injector = lose("TransactWriteItems", times=3)
    user = create_user(random_email(), "Ada")
    order = place_order(user.user_id, 10)
    record_metric("d1", "temp", 7, at=AT)
    assert injector.lost == 3
    assert len(_items(local_table, "USER")) == len(_items(local_table, "EMAIL")) == 1
    assert [o["OrderId"]["S"] for o in _items(local_table, "ORDER")] == [order.order_id]
    (hourly,) = get_hourly_aggregates("d1", AT, AT)
    assert (hourly.sample_count, hourly.total) == (1, 7)  # folded in once


def test_when_every_answer_is_lost_the_outcome_is_unknown_and_names_the_item(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    user = create_user(random_email(), "Ada")
    lose("TransactWriteItems", "PutItem", times=100)
    with pytest.raises(WriteOutcomeUnknown) as raised:
        place_order(user.user_id, 10)
    (pk, sk), *_ = raised.value.keys
    assert pk == Order.key_template("pk").compose(user_id=user.user_id) and sk.startswith("ORDER#")
    assert "ReadTimeoutError" in str(raised.value)


def test_a_batch_whose_answers_are_lost_says_what_was_written_and_a_rerun_converges(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    products = [Product(product_id=f"p{i:03d}", name=f"Product {i}", price=Decimal(i)) for i in range(60)]
    lose("BatchWriteItem", skip=1, times=100)  # the first request answers, every later answer is lost
    with pytest.raises(WriteOutcomeUnknown) as raised:
        batch_write(products)
    outcome = raised.value
    assert (len(outcome.written), len(outcome.keys), len(outcome.not_written)) == (25, 25, 10)
    assert outcome.written == products[:25] and outcome.not_written == products[50:]
    lose("BatchWriteItem", times=0)
    batch_write(products[25:])  # again, what was not known written: no AlreadyExists, each once
    stored = _items(local_table, "PRODUCT")
    assert len(stored) == 60 and {item["Version"]["N"] for item in stored} == {"1"}
    assert all(product.version == 1 for product in products)
    batch_write(products)  # the whole call again converges too: a plain rewrite, one version on
    assert {item["Version"]["N"] for item in _items(local_table, "PRODUCT")} == {"2"}


def test_a_delete_whose_answer_is_lost_succeeds(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    product = put_product("gone", "Gone", Decimal(1))
    injector = lose("DeleteItem")
    product.delete()
    assert injector.lost == 1 and _items(local_table, "PRODUCT") == []
