"""Idempotency keys on moto: every creating function, the same key again, other arguments, owners.

moto ignores ``ClientRequestToken``, so a repeated key always meets the key's record (or, for a
transfer, the transfer record) exactly as DynamoDB does after its 10-minute token window. Lost
answers on the real engine are in tests/integration/test_retry_outcomes_local.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from core.config import Settings
from models import IdempotencyRecord, TableModel, Transfer
from models.idempotency import RETENTION, IdempotencyKey
from repositories import accounts, metrics, orders, products, users
from repositories.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    IdempotencyKeyReused,
    InvalidInput,
    WriteOutcomeUnknown,
)
from tests.helpers import Item, RawTable, off, on, seed_user

AT = datetime(2026, 5, 1, 10, 30, tzinfo=UTC)


@pytest.fixture
def raw(moto_table: Settings) -> RawTable:
    """The moto table, seen through a raw botocore client."""
    return RawTable(moto_table)


@dataclass(frozen=True)
class Creating:
    """One creating function: how to call it (``other`` changes an argument), what it creates."""

    name: str
    entity_type: str
    owner: Callable[[RawTable, Settings], str]  # a fresh owner of the key (ignored by ownerless ones)
    call: Callable[[str, str, bool], Any]  # (owner, key, other arguments) -> the entity
    ident: Callable[[Any], tuple[str, ...]]


def _no_owner(raw: RawTable, settings: Settings) -> str:
    return "-"


def _user(raw: RawTable, settings: Settings) -> str:
    return seed_user(settings)[0]


def _account(raw: RawTable, settings: Settings) -> str:
    return raw.seed_account("100")


def _name(raw: RawTable, settings: Settings) -> str:
    return f"n{uuid.uuid4().hex[:8]}"


TARGET = "target-account"

CASES = [
    Creating("create_user", "USER", _no_owner,
             lambda _, key, other: users.create_user("ada@example.com", "Bo" if other else "Ada",
                                                     idempotency_key=key),
             lambda user: (user.user_id,)),
    Creating("place_order", "ORDER", _user,
             lambda owner, key, other: orders.place_order(owner, "11" if other else "10",
                                                          idempotency_key=key),
             lambda order: (order.user_id, order.order_id)),
    Creating("open_account", "ACCOUNT", _no_owner,
             lambda _, key, other: accounts.open_account(balance="6" if other else "5", idempotency_key=key),
             lambda account: (account.account_id,)),
    Creating("put_product", "PRODUCT", _name,
             lambda owner, key, other: products.put_product(owner, "Lamp", Decimal("11" if other else "9"),
                                                            idempotency_key=key, colour="red"),
             lambda product: (product.product_id,)),
    Creating("record_metric", "METRIC", _name,
             lambda owner, key, other: metrics.record_metric(owner, "temp", 8 if other else 7, at=AT,
                                                             idempotency_key=key),
             lambda metric: (metric.pk, metric.sk)),
    Creating("transfer_funds", "TRANSFER", _account,
             lambda owner, key, other: accounts.transfer_funds(owner, TARGET, "2" if other else "1",
                                                               idempotency_key=key),
             lambda transfer: (transfer.transfer_id,)),
]
OWNED = [case for case in CASES if case.owner is not _no_owner]


def _of_type(raw: RawTable, entity_type: str) -> list[Item]:
    return [item for item in raw.scan() if item["EntityType"] == {"S": entity_type}]


@pytest.fixture
def world(raw: RawTable) -> RawTable:
    """The transfers' target account, seeded raw."""
    raw.seed_account("0", account_id=TARGET)
    return raw


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_same_key_and_arguments_return_the_first_result_and_write_once(
    world: RawTable, moto_table: Settings, case: Creating
) -> None:
    owner = case.owner(world, moto_table)
    seeded = len(_of_type(world, case.entity_type))
    first = case.call(owner, "key-1", False)
    again = case.call(owner, "key-1", False)
    assert case.ident(again) == case.ident(first)
    assert again.version == first.version and again.created_at == first.created_at
    assert len(_of_type(world, case.entity_type)) == seeded + 1
    # the key's record; a transfer's own record is the transfer itself
    assert len(_of_type(world, "IDEMPOTENCY")) == (0 if case.name == "transfer_funds" else 1)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_the_same_key_with_other_arguments_raises_idempotency_key_reused_and_writes_nothing(
    world: RawTable, moto_table: Settings, case: Creating
) -> None:
    owner = case.owner(world, moto_table)
    case.call(owner, "key-1", False)
    before = world.scan()
    with pytest.raises(IdempotencyKeyReused) as raised:
        case.call(owner, "key-1", True)
    assert not isinstance(raised.value, AlreadyExists)
    assert world.scan() == before


@pytest.mark.parametrize("case", OWNED, ids=lambda case: case.name)
def test_the_same_key_under_two_owners_makes_two_independent_results(
    world: RawTable, moto_table: Settings, case: Creating
) -> None:
    one, two = case.owner(world, moto_table), case.owner(world, moto_table)
    seeded = len(_of_type(world, case.entity_type))
    first = case.call(one, "shared-key", False)
    second = case.call(two, "shared-key", True)  # other arguments too: another owner's key is not reused
    assert case.ident(first) != case.ident(second)
    assert len(_of_type(world, case.entity_type)) == seeded + 2
    assert case.ident(case.call(one, "shared-key", False)) == case.ident(first)
    assert case.ident(case.call(two, "shared-key", True)) == case.ident(second)


@pytest.mark.parametrize("case", [c for c in CASES if c.name != "transfer_funds"], ids=lambda case: case.name)
def test_a_key_record_expires_by_ttl_after_the_retention(
    world: RawTable, moto_table: Settings, case: Creating
) -> None:
    owner = case.owner(world, moto_table)
    before = time.time()
    entity = case.call(owner, "kept-a-while", False)
    (record,) = _of_type(world, "IDEMPOTENCY")
    expires = int(record["ExpiresAt"]["N"])
    assert before + RETENTION.total_seconds() - 5 <= expires <= time.time() + RETENTION.total_seconds() + 5
    assert (record["ResultPK"], record["ResultSK"]) == ({"S": entity.pk}, {"S": entity.sk})
    assert record["Function"] == {"S": case.name}


def test_ids_are_derived_from_the_key_and_never_reused_by_another_key(raw: RawTable) -> None:
    first = users.create_user("ada@example.com", "Ada", idempotency_key="signup-1")
    assert first.user_id == users.create_user("ada@example.com", "Ada", idempotency_key="signup-1").user_id
    other = users.create_user("bo@example.com", "Bo", idempotency_key="signup-2")
    assert other.user_id != first.user_id
    account = accounts.open_account(idempotency_key="signup-1")
    assert str(uuid.UUID(account.account_id)) == account.account_id != first.user_id


def test_a_key_after_its_record_expired_meets_the_first_entity_not_a_copy(raw: RawTable) -> None:
    first = users.create_user("ada@example.com", "Ada", idempotency_key="late")
    (record,) = _of_type(raw, "IDEMPOTENCY")
    raw.client.delete_item(TableName=raw.table, Key={"PK": record["PK"], "SK": record["SK"]})  # TTL
    with pytest.raises(AlreadyExists):
        users.create_user("ada@example.com", "Ada", idempotency_key="late")
    assert [item["UserId"] for item in _of_type(raw, "USER")] == [{"S": first.user_id}]


def test_a_record_past_its_time_counts_as_expired_though_dynamodb_has_not_deleted_it(
    raw: RawTable, moto_table: Settings
) -> None:
    user_id = seed_user(moto_table)[0]
    orders.place_order(user_id, "10", idempotency_key="old")
    past = str(int(time.time()) - 60)
    (record,) = _of_type(raw, "IDEMPOTENCY")
    raw.client.update_item(TableName=raw.table, Key={"PK": record["PK"], "SK": record["SK"]},
                           UpdateExpression="SET ExpiresAt = :t",
                           ExpressionAttributeValues={":t": {"N": past}})
    orders.place_order(user_id, "99", idempotency_key="old")  # forgotten: a new order
    assert sorted(Decimal(item["Amount"]["N"]) for item in _of_type(raw, "ORDER")) == [10, 99]


def test_only_a_call_with_a_key_writes_a_record(raw: RawTable, moto_table: Settings) -> None:
    user_id = seed_user(moto_table)[0]
    orders.place_order(user_id, "10")
    accounts.open_account()
    products.put_product("lamp", "Lamp", Decimal("1"))
    metrics.record_metric("d1", "temp", 1, at=AT)
    assert _of_type(raw, "IDEMPOTENCY") == []  # a write without a key costs what it did
    orders.place_order(user_id, "10", idempotency_key="k")
    assert len(_of_type(raw, "IDEMPOTENCY")) == 1


def test_a_product_replayed_by_its_key_keeps_its_version(raw: RawTable) -> None:
    products.put_product("lamp", "Lamp", Decimal("1"))
    put = products.put_product("lamp", "Lamp", Decimal("2"), idempotency_key="reprice")
    assert put.version == 2 and put.price == Decimal("2")
    again = products.put_product("lamp", "Lamp", Decimal("2"), idempotency_key="reprice")
    assert again.version == 2
    (item,) = _of_type(raw, "PRODUCT")
    assert item["Version"] == {"N": "2"}


def test_a_reading_replayed_by_its_key_is_folded_into_its_hour_once(raw: RawTable) -> None:
    first = metrics.record_metric("d1", "temp", 7, idempotency_key="r1")  # at now: a new time each call
    again = metrics.record_metric("d1", "temp", 7, idempotency_key="r1")
    assert (again.pk, again.sk, again.timestamp) == (first.pk, first.sk, first.timestamp)
    (hourly,) = _of_type(raw, "METRIC_AGG")
    assert hourly["Count"] == {"N": "1"}


def test_a_transfer_stored_when_keys_were_global_is_the_first_result_for_its_source(raw: RawTable) -> None:
    source, other = raw.seed_account("10"), raw.seed_account("10")
    raw.seed_account("0", account_id=TARGET)
    legacy = accounts.transfer_id_for_key("invoice-7")
    Transfer(transfer_id=legacy, from_account=source, to_account=TARGET, amount=Decimal("3")).save()
    again = accounts.transfer_funds(source, TARGET, "3", idempotency_key="invoice-7")
    assert again.transfer_id == legacy
    assert raw.balance(source) == Decimal("7")  # moved once, by the first transfer
    with pytest.raises(IdempotencyKeyReused):
        accounts.transfer_funds(source, TARGET, "4", idempotency_key="invoice-7")
    mine = accounts.transfer_funds(other, TARGET, "3", idempotency_key="invoice-7")  # another source's key
    assert mine.transfer_id == accounts.transfer_id_for_key("invoice-7", other) != legacy
    assert raw.balance(other) == Decimal("7") and len(raw.transfers()) == 2


def test_a_transfer_id_is_scoped_to_its_source_account() -> None:
    assert accounts.transfer_id_for_key("k", "a") != accounts.transfer_id_for_key("k", "b")
    assert accounts.transfer_id_for_key("k", "a") == accounts.transfer_id_for_key("k", "a")
    assert accounts.transfer_id_for_key("k#x", None) != accounts.transfer_id_for_key("x", "k")


def test_any_key_text_is_a_valid_key_part_and_a_bad_key_is_refused_before_sending(raw: RawTable) -> None:
    user = users.create_user("ada@example.com", "Ada", idempotency_key="a#b/c\u00e9 " * 20)
    assert user.user_id
    bad_keys: tuple[Any, ...] = ("", "   ", "k" * 256, 7, "a\x00b")
    for bad in bad_keys:
        with pytest.raises(InvalidInput):
            users.create_user("bo@example.com", "Bo", idempotency_key=bad)
    assert len(_of_type(raw, "USER")) == 1


def test_a_record_is_written_only_with_the_write_it_guards(raw: RawTable) -> None:
    key = IdempotencyKey.of("create_user", "k", owner=None, arguments={})
    assert key is not None
    record = key.record(users.create_user("ada@example.com", "Ada"))
    with pytest.raises(InvalidInput, match="written only by"):
        record.save()
    assert _of_type(raw, "IDEMPOTENCY") == []


# --- resolve(): an unknown outcome read back ---------------------------------------------------------


@pytest.fixture
def lost(moto_table: Settings) -> Iterator[Callable[[str, bool], None]]:
    """``lost("TransactWriteItems", applied)``: the next such request's answer is lost, after the
    request was applied (``applied``) or before it was sent."""
    client = TableModel._get_connection().connection.client
    hooks: list[tuple[str, Callable[..., Any]]] = []

    def arm(operation: str, applied: bool) -> None:
        armed = [True]

        def lose(**kwargs: Any) -> None:
            if armed[0] and (not applied or "Error" not in kwargs["parsed"]):
                armed[0] = False
                raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid")

        event = f"{'after' if applied else 'before'}-call.dynamodb.{operation}"
        on(client, event, lose, first=True)
        hooks.append((event, lose))

    yield arm
    for event, handler in hooks:
        off(client, event, handler)


def test_resolve_returns_the_stored_entity_when_the_write_landed(
    raw: RawTable, lost: Callable[[str, bool], None]
) -> None:
    lost("TransactWriteItems", True)
    with pytest.raises(WriteOutcomeUnknown) as raised:
        users.create_user("ada@example.com", "Ada", idempotency_key="signup")
    stored = raised.value.resolve()
    assert stored is not None and stored.email == "ada@example.com"
    assert users.create_user("ada@example.com", "Ada", idempotency_key="signup").user_id == stored.user_id
    assert len(_of_type(raw, "USER")) == 1


def test_resolve_returns_none_when_nothing_was_written(
    raw: RawTable, lost: Callable[[str, bool], None]
) -> None:
    lost("PutItem", False)
    with pytest.raises(WriteOutcomeUnknown) as raised:
        accounts.open_account(account_id="acc-1")
    assert raised.value.resolve() is None
    assert accounts.open_account(account_id="acc-1").account_id == "acc-1"  # calling again is safe


def test_resolve_raises_already_exists_when_someone_else_holds_the_key(
    raw: RawTable, lost: Callable[[str, bool], None]
) -> None:
    raw.seed_account("5", account_id="taken")
    lost("PutItem", False)
    with pytest.raises(WriteOutcomeUnknown) as raised:
        accounts.open_account(account_id="taken")
    with pytest.raises(AlreadyExists):
        raised.value.resolve()


def test_resolve_of_an_update_that_did_not_land_is_none_and_conflict_once_the_item_moved_on(
    raw: RawTable, moto_table: Settings, lost: Callable[[str, bool], None]
) -> None:
    user = users.get_user(seed_user(moto_table, claim=False)[0])
    lost("UpdateItem", False)
    with pytest.raises(WriteOutcomeUnknown) as raised:
        users.update_user(user, name="Ada L.")
    assert raised.value.resolve() is None
    users.update_user(user, name="Someone else")
    with pytest.raises(ConflictError, match="changed or was deleted"):
        raised.value.resolve()


def test_resolve_of_a_batch_outcome_says_to_read_the_named_items() -> None:
    outcome = WriteOutcomeUnknown("lost", [("PK", "SK")], written=[1])
    with pytest.raises(DataLayerError, match="written"):
        outcome.resolve()


def test_records_are_a_declared_entity_of_the_table() -> None:
    import models

    assert IdempotencyRecord in models.ENTITIES
    assert IdempotencyRecord.key_template("pk").compose(function="f", scope="s") == "IDEMPOTENCY#f#s"
    assert timedelta(days=7) == RETENTION
