"""Transfers on DynamoDB Local: what moto cannot show (ClientRequestToken, exact big numbers).

The tests assert the contract (the same ``Transfer`` back, money moved exactly once, nothing
written on a refusal), which must hold on AWS DynamoDB too. What DynamoDB Local itself answers
to a repeated token is pinned in one test only, ``test_what_dynamodb_local_does_with_client_request_tokens``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from core.config import Settings
from models import Transfer
from models.rules import MAX_BALANCE
from repositories.accounts import get_transfer, open_account, transfer_funds, transfer_id_for_key
from repositories.errors import (
    ConflictError,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidInput,
    InvalidKey,
    NotFound,
    TransferOutcomeUnknown,
)
from repositories.products import put_product
from tests.helpers import RawTable, off, on

AFTER_TRANSACT = "after-call.dynamodb.TransactWriteItems"


@pytest.fixture
def raw(local_table: Settings) -> RawTable:
    """This test's own table on DynamoDB Local, seen through a raw botocore client."""
    return RawTable(local_table)


@pytest.fixture
def outcomes(local_table: Settings) -> Iterator[list[str]]:
    """The outcome DynamoDB gave each TransactWriteItems call: ``ok`` or the error code."""
    seen: list[str] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        seen.append(parsed.get("Error", {}).get("Code", "ok"))

    client = Transfer._get_connection().connection.client
    on(client, AFTER_TRANSACT, record)
    yield seen
    off(client, AFTER_TRANSACT, record)


def test_transfer_with_insufficient_funds_moves_no_money_and_writes_no_record(raw: RawTable) -> None:
    source, target = raw.seed_account("10.00"), raw.seed_account("0")
    before = raw.scan()
    with pytest.raises(InsufficientFunds):
        transfer_funds(source, target, "10.01", idempotency_key=str(uuid.uuid4()))
    assert raw.scan() == before
    assert raw.transfers() == []


@pytest.mark.parametrize("missing", ["source", "target"])
def test_transfer_with_an_unknown_account_raises_not_found_and_writes_nothing(
    raw: RawTable, missing: str
) -> None:
    known = raw.seed_account("10")
    unknown = uuid.uuid4().hex
    source, target = (unknown, known) if missing == "source" else (known, unknown)
    before = raw.scan()
    with pytest.raises(NotFound):
        transfer_funds(source, target, "1")
    assert raw.scan() == before


@pytest.mark.parametrize(
    ("source", "target", "amount", "key", "error"),
    [
        ("a", "b", Decimal("0"), None, InvalidInput),
        ("a", "b", Decimal("-3"), None, InvalidInput),
        ("a", "b", Decimal("NaN"), None, InvalidInput),
        ("a", "b", Decimal("Infinity"), None, InvalidInput),
        ("a", "b", 2.5, None, InvalidInput),
        ("a", "b", "0.005", None, InvalidInput),
        ("a", "a", "1", None, InvalidInput),
        ("a#BALANCE", "b", "1", None, InvalidKey),
        ("a", "", "1", None, InvalidKey),
        ("a", "b", "1", "", InvalidInput),
    ],
)
def test_each_bad_input_raises_its_typed_error_and_leaves_the_table_unchanged(
    raw: RawTable, source: str, target: str, amount: Any, key: str | None, error: type[Exception]
) -> None:
    raw.seed_account("10", account_id="a")
    raw.seed_account("10", account_id="b")
    before = raw.scan()
    with pytest.raises(error):
        transfer_funds(source, target, amount, idempotency_key=key)
    assert raw.scan() == before


def test_repeated_key_within_the_token_window_returns_the_first_transfer_and_moves_money_once(
    raw: RawTable,
) -> None:
    source, target = raw.seed_account("50"), raw.seed_account("0")
    key = f"invoice-{uuid.uuid4()}"
    first = transfer_funds(source, target, "20", idempotency_key=key)
    again = transfer_funds(source, target, "20", idempotency_key=key)
    assert (again.transfer_id, again.created_at, again.amount) == (first.transfer_id, first.created_at, 20)
    assert raw.balance(source) == Decimal("30")
    assert raw.balance(target) == Decimal("20")
    assert len(raw.transfers()) == 1


def test_what_dynamodb_local_does_with_client_request_tokens(raw: RawTable, outcomes: list[str]) -> None:
    """Observes the engine, not our contract (the tests above hold whichever way it answers).

    DynamoDB Local 3.3.0: a repeated token with other parameters (a retry's timestamps differ)
    within the window is ``IdempotentParameterMismatchException``, as AWS documents; and a
    cancelled transaction does not consume its token, so the same token can commit later.
    AWS does not document the second point, so production DynamoDB may answer otherwise.
    """
    source, target = raw.seed_account("50"), raw.seed_account("0")
    key = f"engine-{uuid.uuid4()}"
    transfer_funds(source, target, "20", idempotency_key=key)
    transfer_funds(source, target, "20", idempotency_key=key)
    assert outcomes == ["ok", "IdempotentParameterMismatchException"]

    refused_key = f"refused-{uuid.uuid4()}"
    with pytest.raises(InsufficientFunds):
        transfer_funds(source, target, "40", idempotency_key=refused_key)
    raw.seed_account("40", account_id=source)
    transfer_funds(source, target, "40", idempotency_key=refused_key)
    assert outcomes[2:] == ["TransactionCanceledException", "ok"]


def test_a_lost_response_then_the_same_key_returns_the_committed_transfer_and_moves_money_once(
    raw: RawTable, local_table: Settings
) -> None:
    source, target = raw.seed_account("50"), raw.seed_account("0")
    key = f"lost-{uuid.uuid4()}"

    def lose_the_response(parsed: dict[str, Any], **_: Any) -> None:
        if "Error" not in parsed:  # committed: the client never hears of it
            raise ReadTimeoutError(endpoint_url=local_table.endpoint_url)

    client = Transfer._get_connection().connection.client
    on(client, AFTER_TRANSACT, lose_the_response, first=True)
    try:
        with pytest.raises(TransferOutcomeUnknown, match="same idempotency_key") as raised:
            transfer_funds(source, target, "12.50", idempotency_key=key)
    finally:
        off(client, AFTER_TRANSACT, lose_the_response)
    assert raised.value.transfer_id == transfer_id_for_key(key, source)
    assert raw.balance(source) == Decimal("37.50")  # it did commit

    transfer = transfer_funds(source, target, "12.50", idempotency_key=key)
    assert transfer.transfer_id == transfer_id_for_key(key, source)
    assert get_transfer(transfer.transfer_id).created_at == transfer.created_at
    assert raw.balance(source) == Decimal("37.50")
    assert raw.balance(target) == Decimal("12.50")
    assert len(raw.transfers()) == 1


def test_same_key_with_a_different_amount_raises_and_moves_no_money(raw: RawTable) -> None:
    source, target = raw.seed_account("50"), raw.seed_account("0")
    key = f"order-{uuid.uuid4()}"
    transfer_funds(source, target, "5", idempotency_key=key)
    before = raw.scan()
    with pytest.raises(IdempotencyKeyReused, match="idempotency key"):
        transfer_funds(source, target, "6", idempotency_key=key)
    assert raw.scan() == before


def test_a_key_whose_first_attempt_was_refused_never_moves_money_twice(raw: RawTable) -> None:
    source, target = raw.seed_account("1"), raw.seed_account("0")
    key = f"retry-{uuid.uuid4()}"
    with pytest.raises(InsufficientFunds):
        transfer_funds(source, target, "5", idempotency_key=key)
    assert raw.transfers() == []
    raw.seed_account("5", account_id=source)
    # Whether a cancelled transaction consumed its token is the engine's business (see
    # test_what_dynamodb_local_does_with_client_request_tokens): either way, money moves at most once.
    try:
        transfer = transfer_funds(source, target, "5", idempotency_key=key)
    except ConflictError:
        assert (raw.balance(source), raw.balance(target), raw.transfers()) == (5, 0, [])
    else:
        assert transfer.transfer_id == transfer_id_for_key(key, source)
        assert get_transfer(transfer.transfer_id).amount == 5
        assert (raw.balance(source), raw.balance(target), len(raw.transfers())) == (0, 5, 1)


def test_big_amounts_are_moved_exactly(raw: RawTable) -> None:
    balance = "9" * 36 + ".99"
    source = open_account(balance=balance).account_id
    target = open_account().account_id
    transfer_funds(source, target, "9" * 35 + ".99")
    assert raw.balance(source) == Decimal("9" + "0" * 35)
    assert raw.balance(target) == Decimal("9" * 35 + ".99")


def test_a_credit_past_what_an_account_holds_is_refused_and_moves_nothing(raw: RawTable) -> None:
    full = open_account(balance="9" * 35 + "8.99").account_id  # MAX_BALANCE - 1
    source = open_account(balance="5").account_id
    before = raw.scan()
    with pytest.raises(InvalidInput, match="most an account holds"):
        transfer_funds(source, full, "2")
    assert raw.scan() == before
    transfer_funds(source, full, "1")  # up to the limit is fine
    assert raw.balance(full) == MAX_BALANCE


@pytest.mark.parametrize("key", ["\ud800", "a\x00b", "pay\u202e1", " ", "k" * 256])
def test_a_hostile_idempotency_key_is_refused_before_anything_is_sent(raw: RawTable, key: str) -> None:
    source, target = open_account(balance="5").account_id, open_account().account_id
    before = raw.scan()
    with pytest.raises(InvalidInput):
        transfer_funds(source, target, "1", idempotency_key=key)
    assert raw.scan() == before


def test_an_over_size_product_is_refused_before_anything_is_sent(raw: RawTable) -> None:
    before = raw.scan()
    with pytest.raises(InvalidInput, match="item limit"):
        put_product("huge", "Huge", Decimal(1), blob="x" * 410_000)
    assert raw.scan() == before
