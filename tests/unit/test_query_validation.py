"""Refused before sending: key parts given to the declared queries, and flags that are not bools.

A spy on the models' client (``client_hooks.record``) shows that nothing was sent; a raw scan shows
that nothing was written.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from core.config import Settings
from core.errors import InvalidInput, InvalidKey
from core.retry import RetryPolicy
from models import Account, Order, OrderStatus, Product
from repositories import query
from repositories.batch import batch_get, batch_write
from repositories.paging import SECRET_ENV
from tests.conftest import ClientHooks
from tests.helpers import raw_scan

Sent = Callable[[], list[dict[str, Any]]]  # the requests sent so far

BAD_PARTS = [
    pytest.param(42, InvalidKey, id="int"),
    pytest.param("u\x00ser", InvalidKey, id="nul"),
    pytest.param("u\u202eser", InvalidKey, id="right-to-left-override"),
    pytest.param("u#1", InvalidKey, id="delimiter"),
    pytest.param(" user", InvalidKey, id="leading-space"),
]


@pytest.fixture(autouse=True)
def _cursor_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto has no local endpoint, so paged queries need a real secret."""
    monkeypatch.setenv(SECRET_ENV, "validation-unit-test-secret-0123456789")


@pytest.fixture
def sent(moto_table: Settings, client_hooks: ClientHooks) -> Sent:
    """Every Query and GetItem request sent through the models' (shared) client from now on."""
    queries = client_hooks.record(Order, "Query")
    gets = client_hooks.record(Account, "GetItem")
    return lambda: queries + gets


def test_valid_reads_are_sent_so_the_spy_sees_them(sent: Sent) -> None:
    assert query.page(Order.of_user, keys={"user_id": "u1"}).items == []
    assert query.page(Order.in_status, keys={"status": OrderStatus.PAID}).items == []
    assert len(sent()) == 2
    assert query.find_one(Account, account_id="a1") is None
    assert len(sent()) == 3


@pytest.mark.parametrize(("user_id", "error"), BAD_PARTS)
def test_page_refuses_a_bad_user_id_before_sending(
    sent: Sent, user_id: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        query.page(Order.of_user, keys={"user_id": user_id})
    assert sent() == []


@pytest.mark.parametrize("status", ["LOST", "pending", 1])
def test_page_refuses_a_status_outside_the_enum_before_sending(
    sent: Sent, status: Any
) -> None:
    with pytest.raises(InvalidInput):
        query.page(Order.in_status, keys={"status": status})
    assert sent() == []


def test_page_refuses_bad_sort_key_parts_and_names_no_template_has(sent: Sent) -> None:
    with pytest.raises(InvalidKey):
        query.page(Order.of_user, keys={"user_id": "u1"}, prefix={"order_id": "a\x00"})
    with pytest.raises(InvalidKey):
        query.page(Order.of_user, keys={"user_id": "u1"},
                   between=({"order_id": "A"}, {"order_id": "B\u202e"}))
    with pytest.raises(InvalidKey):
        query.page(Order.of_user, keys={"user_id": "u1", "tenant": "t1"})
    assert sent() == []


@pytest.mark.parametrize(("name", "value"), [("newest_first", "yes"), ("newest_first", 1)])
def test_page_refuses_a_newest_first_that_is_not_a_bool(
    sent: Sent, name: str, value: Any
) -> None:
    with pytest.raises(InvalidInput, match=name):
        query.page(Order.of_user, keys={"user_id": "u1"}, **{name: value})
    assert sent() == []


@pytest.mark.parametrize(("account_id", "error"), BAD_PARTS)
def test_get_one_and_find_one_refuse_a_bad_key_part_before_sending(
    sent: Sent, account_id: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        query.get_one(Account, account_id=account_id)
    with pytest.raises(error):
        query.find_one(Account, account_id=account_id)
    assert sent() == []


def test_get_one_refuses_a_consistent_read_that_is_not_a_bool(sent: Sent) -> None:
    with pytest.raises(InvalidInput, match="consistent_read"):
        query.find_one(Account, consistent_read="no", account_id="a1")  # type: ignore[arg-type]
    assert sent() == []


def test_every_refuses_a_page_size_that_is_not_a_positive_int(sent: Sent) -> None:
    condition, _ = query.sort_condition(Order.of_user)
    for page_size in (True, 0, "10"):
        with pytest.raises(InvalidInput, match="page_size"):
            query.every(Order.of_user, "USER#u1", condition, page_size=page_size)  # type: ignore[arg-type]
    assert sent() == []


def product() -> Product:
    return Product(product_id="p-1", name="Lamp", price=Decimal("1.00"))


@pytest.mark.parametrize("overwrite", ["yes", 1, None, "False"])
def test_batch_write_refuses_an_overwrite_flag_that_is_not_a_bool_and_writes_nothing(
    moto_table: Settings, client_hooks: ClientHooks, overwrite: Any
) -> None:
    reads = client_hooks.record(Product, "BatchGetItem")
    writes = client_hooks.record(Product, "BatchWriteItem")
    with pytest.raises(InvalidInput, match="overwrite"):
        batch_write([product()], overwrite=overwrite)
    assert reads == [] and writes == []
    assert raw_scan(moto_table) == []


def test_batch_write_refuses_a_retry_that_is_not_a_retry_policy(moto_table: Settings) -> None:
    with pytest.raises(InvalidInput, match="retry"):
        batch_write([product()], retry=3)  # type: ignore[arg-type]
    assert raw_scan(moto_table) == []
    batch_write([product()], retry=RetryPolicy(max_attempts=2))  # a policy is taken
    assert len(raw_scan(moto_table)) == 1


@pytest.mark.parametrize(("name", "value"), [("consistent_read", "yes"), ("consistent_read", 1),
                                             ("retry", "fast")])
def test_batch_get_refuses_flags_of_the_wrong_type_before_sending(
    moto_table: Settings, client_hooks: ClientHooks, name: str, value: Any
) -> None:
    reads = client_hooks.record(Product, "BatchGetItem")
    with pytest.raises(InvalidInput, match=name):
        batch_get(Product, [{"product_id": "p-1"}], **{name: value})
    assert reads == []


@pytest.mark.parametrize("retry", [3, 0, "fast", True])
def test_transfer_and_record_metric_refuse_a_retry_that_is_not_a_policy(
    moto_table: Settings, retry: Any,
) -> None:
    from repositories.accounts import open_account, transfer_funds
    from repositories.metrics import record_metric

    source, target = open_account(balance=Decimal(5)), open_account()
    before = raw_scan(moto_table)
    with pytest.raises(InvalidInput, match="RetryPolicy"):
        transfer_funds(source.account_id, target.account_id, Decimal(1), retry=retry)
    with pytest.raises(InvalidInput, match="RetryPolicy"):
        record_metric("dev", "load", Decimal(1), retry=retry)
    assert raw_scan(moto_table) == before


@pytest.mark.parametrize(("ttl", "maxsize"), [(True, 10), (-1, 10), ("5", 10), (5, True), (5, 0)])
def test_the_cache_refuses_a_ttl_or_size_of_the_wrong_kind(ttl: Any, maxsize: Any) -> None:
    from repositories import cache

    with pytest.raises(InvalidInput):
        cache.configure(ttl_seconds=ttl, maxsize=maxsize)
