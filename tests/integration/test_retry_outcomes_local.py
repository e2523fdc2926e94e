"""After a lost answer, a caller ends in success, on DynamoDB Local.

Faults are injected at botocore's ``before-send`` event, as in test_lost_responses_local.py: the
request is really sent (DynamoDB Local applies it) and its answer dropped with a read timeout, or it
is dropped before it is sent. botocore then sends the very same request again. With every answer
lost the function raises ``WriteOutcomeUnknown``: ``resolve()`` must tell whether the write landed,
and calling again with the same idempotency key must return the first result, written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from core.config import Settings, get_settings
from models import Order, Product, TableModel
from repositories import accounts, metrics, orders, products, users
from repositories.errors import ConflictError, TransferOutcomeUnknown, WriteOutcomeUnknown
from tests.helpers import off, on, raw_scan, seed_user

AT = datetime(2026, 5, 1, 12, tzinfo=UTC)


class Faults:
    """Drop the answers of the chosen operations: after applying the request (``applied``) or
    before sending it, ``times`` of them; ``meanwhile`` runs after the first applied one, as
    another writer would before botocore sends again."""

    def __init__(self) -> None:
        self.operations: set[str] = set()
        self.times = 0
        self.applied = True
        self.lost = 0
        self.meanwhile: Callable[[], None] | None = None
        self._http = URLLib3Session()

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        name = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        if name not in self.operations or self.lost >= self.times:
            return
        self.lost += 1
        if self.applied:
            self._http.send(request)  # DynamoDB applies it...
        if self.meanwhile is not None:
            another, self.meanwhile = self.meanwhile, None
            another()  # ...another writer changes the item (through the same client)...
        raise ReadTimeoutError(endpoint_url=request.url)  # ...and the answer never arrives


@pytest.fixture
def settings(local_table: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's table, with botocore sending each request at most twice (an unknown outcome comes fast)."""
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "1")
    return get_settings()


@pytest.fixture
def faults(settings: Settings) -> Iterator[Callable[..., Faults]]:
    """``faults("TransactWriteItems", times=2, applied=True)``: arm the fault injector."""
    injector = Faults()
    client = TableModel._get_connection().connection.client
    on(client, "before-send.dynamodb", injector, first=True)

    def arm(*operations: str, times: int = 100, applied: bool = True,
            meanwhile: Callable[[], None] | None = None) -> Faults:
        injector.operations, injector.times, injector.applied = set(operations), times, applied
        injector.lost, injector.meanwhile = 0, meanwhile
        return injector

    yield arm
    off(client, "before-send.dynamodb", injector)


def _of_type(settings: Settings, entity_type: str) -> list[dict[str, Any]]:
    return [item for item in raw_scan(settings) if item["EntityType"]["S"] == entity_type]


@dataclass(frozen=True)
class Creating:
    """A creating function called with an idempotency key, and the ids of what it creates."""

    name: str
    entity_type: str
    call: Callable[[Settings, str], Any]
    ident: Callable[[Any], tuple[str, ...]]


CASES = [
    Creating("create_user", "USER",
             lambda _, key: users.create_user("ada@example.com", "Ada", idempotency_key=key),
             lambda user: (user.user_id,)),
    Creating("place_order", "ORDER",
             lambda settings, key: orders.place_order(_owner(settings), "10", idempotency_key=key),
             lambda order: (order.user_id, order.order_id)),
    Creating("open_account", "ACCOUNT",
             lambda _, key: accounts.open_account(balance="5", idempotency_key=key),
             lambda account: (account.account_id,)),
    Creating("put_product", "PRODUCT",
             lambda _, key: products.put_product("lamp", "Lamp", Decimal("9.99"), idempotency_key=key),
             lambda product: (product.product_id, str(product.version))),
    Creating("record_metric", "METRIC",
             lambda _, key: metrics.record_metric("d1", "temp", 7, idempotency_key=key),
             lambda metric: (metric.pk, metric.sk)),
    Creating("transfer_funds", "TRANSFER",
             lambda _, key: accounts.transfer_funds("source", "target", "12.50", idempotency_key=key),
             lambda transfer: (transfer.transfer_id,)),
]


def _owner(settings: Settings) -> str:
    """The one user of the test's table (seeded raw by ``prepare``)."""
    (user,) = _of_type(settings, "USER")
    return str(user["UserId"]["S"])


def _prepare(settings: Settings, case: Creating) -> None:
    if case.name == "place_order":
        seed_user(settings)
    if case.name == "transfer_funds":
        accounts.open_account(account_id="source", balance="50")
        accounts.open_account(account_id="target", balance="0")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_write_that_landed_resolves_to_its_entity_and_the_same_key_returns_it(
    settings: Settings, faults: Callable[..., Faults], case: Creating
) -> None:
    _prepare(settings, case)
    seeded = len(_of_type(settings, case.entity_type))
    injector = faults("TransactWriteItems")  # applied, every answer lost
    with pytest.raises(WriteOutcomeUnknown) as raised:
        case.call(settings, "lost-answer")
    assert injector.lost == 2  # botocore sent it twice, DynamoDB applied it once
    if case.name == "transfer_funds":
        assert isinstance(raised.value, TransferOutcomeUnknown)
    faults()  # the network is back

    stored = raised.value.resolve()
    assert stored is not None
    again = case.call(settings, "lost-answer")
    assert case.ident(again) == case.ident(stored)
    assert len(_of_type(settings, case.entity_type)) == seeded + 1
    if case.name == "transfer_funds":
        assert (accounts.get_account("source").balance, accounts.get_account("target").balance) == (
            Decimal("37.50"), Decimal("12.50"))
    if case.name == "record_metric":
        (hourly,) = metrics.get_hourly_aggregates("d1", stored.timestamp, stored.timestamp)
        assert hourly.sample_count == 1  # folded in once


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_write_that_did_not_land_resolves_to_none_and_calling_again_writes_it_once(
    settings: Settings, faults: Callable[..., Faults], case: Creating
) -> None:
    _prepare(settings, case)
    seeded = len(_of_type(settings, case.entity_type))
    faults("TransactWriteItems", applied=False)
    with pytest.raises(WriteOutcomeUnknown) as raised:
        case.call(settings, "never-sent")
    faults()
    assert raised.value.resolve() is None
    assert len(_of_type(settings, case.entity_type)) == seeded
    first = case.call(settings, "never-sent")
    assert case.ident(case.call(settings, "never-sent")) == case.ident(first)
    assert len(_of_type(settings, case.entity_type)) == seeded + 1


@pytest.mark.parametrize("applied", [True, False], ids=["landed", "not-sent"])
def test_single_writes_without_a_key_resolve_too(
    settings: Settings, faults: Callable[..., Faults], applied: bool
) -> None:
    faults("PutItem", "UpdateItem", applied=applied)
    with pytest.raises(WriteOutcomeUnknown) as put:
        accounts.open_account(account_id="acc-1", balance="3")
    with pytest.raises(WriteOutcomeUnknown) as upsert:
        products.put_product("desk", "Desk", Decimal("120"))
    faults()
    account, product = put.value.resolve(), upsert.value.resolve()
    if applied:
        assert (account.account_id, account.balance, account.version) == ("acc-1", 3, 1)
        assert (product.product_id, product.version) == ("desk", 1)
    else:
        assert (account, product) == (None, None)


# --- the race: landed, answer lost, another writer, then the re-send ---------------------------------


def test_an_order_status_move_that_landed_before_another_writer_is_reported_as_success(
    settings: Settings, faults: Callable[..., Faults]
) -> None:
    user_id, _ = seed_user(settings)
    order = orders.place_order(user_id, "10")

    def cancel() -> None:
        fresh = Order.get(order.pk, order.sk, consistent_read=True)
        orders.set_order_status(fresh, "CANCELLED")

    injector = faults("UpdateItem", times=1, meanwhile=cancel)
    paid = orders.set_order_status(order, "PAID")  # not ConflictError: this write was applied
    assert injector.lost == 1
    assert paid.status.value == "PAID" and paid.version == order.version + 1
    stored = Order.get(order.pk, order.sk, consistent_read=True)
    assert (stored.status.value, stored.version) == ("CANCELLED", order.version + 2)


def test_a_user_update_that_landed_before_another_writer_is_reported_as_success(
    settings: Settings, faults: Callable[..., Faults]
) -> None:
    user = users.create_user("ada@example.com", "Ada")

    def rename() -> None:
        users.update_user(users.get_user(user.user_id), name="Someone else")

    injector = faults("UpdateItem", times=1, meanwhile=rename)
    renamed = users.update_user(user, name="Ada Lovelace")
    assert injector.lost == 1
    assert renamed.name == "Ada Lovelace" and renamed.version == user.version + 1
    stored = users.get_user(user.user_id)
    assert (stored.name, stored.version) == ("Someone else", user.version + 2)


def test_after_two_other_writers_a_landed_update_is_reported_as_a_conflict(
    settings: Settings, faults: Callable[..., Faults]
) -> None:
    # The documented limit: the item keeps this write's token and the one before it only.
    user = users.create_user("grace@example.com", "Grace")

    def rename_twice() -> None:
        for name in ("First other", "Second other"):
            users.update_user(users.get_user(user.user_id), name=name)

    injector = faults("UpdateItem", times=1, meanwhile=rename_twice)
    with pytest.raises(ConflictError):
        users.update_user(user, name="Grace Hopper")
    assert injector.lost == 1
    stored = users.get_user(user.user_id)
    assert (stored.name, stored.version) == ("Second other", user.version + 3)  # this write landed too


def _reprice_by_upsert() -> None:
    products.put_product("lamp", "Lamp", Decimal("3"))


def _reprice_by_replacing_save() -> None:
    fresh = products.get_product("lamp")  # carries the token it read into its put
    fresh.price = Decimal("3")
    fresh.save()


@pytest.mark.parametrize("another", [_reprice_by_upsert, _reprice_by_replacing_save], ids=["upsert", "save"])
def test_an_upsert_that_landed_before_another_writer_is_not_applied_again(
    settings: Settings, faults: Callable[..., Faults], another: Callable[[], None]
) -> None:
    products.put_product("lamp", "Lamp", Decimal("1"))
    injector = faults("UpdateItem", times=1, meanwhile=another)
    products.put_product("lamp", "Lamp", Decimal("2"))
    assert injector.lost == 1
    stored = Product.get("PRODUCT#lamp", "METADATA#lamp", consistent_read=True)
    assert (stored.price, stored.version) == (Decimal("3"), 3)  # the later writer's price; ours once


def test_a_replacing_save_that_landed_before_another_writer_is_reported_as_success(
    settings: Settings, faults: Callable[..., Faults]
) -> None:
    products.put_product("lamp", "Lamp", Decimal("1"))
    mine = products.get_product("lamp")
    mine.name = "Desk lamp"
    injector = faults("PutItem", times=1, meanwhile=_reprice_by_upsert)
    mine.save()  # not ConflictError: this put was applied before the upsert
    assert injector.lost == 1 and mine.version == 2
    stored = Product.get("PRODUCT#lamp", "METADATA#lamp", consistent_read=True)
    assert (stored.name, stored.price, stored.version) == ("Lamp", Decimal("3"), 3)
