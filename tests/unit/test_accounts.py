"""Accounts and transfers on moto: validation before any request, the transaction, error mapping.

moto ignores ``ClientRequestToken``, so here a repeated idempotency key always meets the transfer
record's ``attribute_not_exists`` condition: exactly DynamoDB's behaviour after its 10-minute token
window. The token window itself is tested on DynamoDB Local (tests/integration).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from moto import mock_aws
from pynamodb.connection.base import Connection
from pynamodb.exceptions import TransactWriteError

from core.config import Settings
from core.retry import RetryPolicy
from models import Transfer
from repositories.accounts import (
    get_account,
    get_transfer,
    open_account,
    transfer_funds,
    transfer_id_for_key,
)
from repositories.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidInput,
    InvalidKey,
    NotFound,
    RetriesExhausted,
    TransferOutcomeUnknown,
)
from tests.helpers import RawTable, off, on

# --- helpers -------------------------------------------------------------------------------------

def new_id() -> str:
    return uuid.uuid4().hex


def no_wait(max_attempts: int = 6) -> RetryPolicy:
    """A retry policy whose backoff does not really sleep."""
    return RetryPolicy(max_attempts=max_attempts, sleep=lambda _: None)


@pytest.fixture
def raw(moto_table: Settings) -> RawTable:
    """The moto table, seen through a raw botocore client."""
    return RawTable(moto_table)


@pytest.fixture
def offline() -> Iterator[None]:
    """moto with no table at all: cheap, and any request that slipped through would fail."""
    with mock_aws():
        yield


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every request PynamoDB sends in this test, as (operation, parameters)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = Connection._make_api_call

    def recording(self: Connection, operation_name: str, operation_kwargs: dict[str, Any]) -> Any:
        calls.append((operation_name, operation_kwargs))
        return original(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", recording)
    return calls


@pytest.fixture
def fail_transactions(moto_table: Settings) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """Answer the next TransactWriteItems calls with fabricated DynamoDB errors.

    ``fail_transactions("TransactionConflict", None)`` cancels the next call with that reason on
    the debit and lets the one after through; a name ending in ``Exception`` (or
    ``InternalServerError``) is a top-level error code instead. The fabricated answers bypass
    botocore's retry handler, as if its attempts were spent. Returns the bodies of the
    TransactWriteItems requests sent from then on.
    """
    plan: list[str | None] = []
    seen: list[dict[str, Any]] = []
    clients: list[Any] = []

    def handler(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        seen.append(json.loads(params["body"]))
        code = plan.pop(0) if plan else None
        if code is None:
            return None
        if code.endswith("Exception") or code == "InternalServerError":
            parsed: dict[str, Any] = {"Error": {"Code": code, "Message": "injected"}}
        else:
            parsed = {
                "Error": {"Code": "TransactionCanceledException", "Message": "injected"},
                "CancellationReasons": [{"Code": "None"}, {"Code": code, "Message": "x"}, {"Code": "None"}],
            }
        return AWSResponse("https://dynamodb.invalid", 400, HTTPHeaders(), None), parsed

    def arm(*codes: str | None) -> list[dict[str, Any]]:
        # The client of the current settings (a test may have changed them before arming).
        client = Transfer._get_connection().connection.client
        on(client, "before-call.dynamodb.TransactWriteItems", handler)  # type: ignore[arg-type]
        clients.append(client)
        plan.extend(codes)
        return seen

    yield arm
    for client in clients:
        off(client, "before-call.dynamodb.TransactWriteItems", handler)


# --- open_account / get_account ------------------------------------------------------------------

def test_open_account_stores_the_exact_balance_and_returns_the_account(raw: RawTable) -> None:
    account = open_account(account_id="acc-1", balance="1234567890.25")
    item = raw.account("acc-1")
    assert item is not None
    assert item["Balance"] == {"N": "1234567890.25"}
    assert item["EntityType"] == {"S": "ACCOUNT"}
    assert item["Version"] == {"N": "1"}
    assert account.balance == Decimal("1234567890.25")
    assert account.version == 1


def test_open_account_without_id_or_balance_generates_a_uuid_and_starts_at_zero(raw: RawTable) -> None:
    account = open_account()
    assert str(uuid.UUID(account.account_id)) == account.account_id
    assert raw.balance(account.account_id) == 0


def test_open_account_with_a_taken_id_raises_already_exists_and_keeps_the_balance(
    raw: RawTable,
) -> None:
    account_id = raw.seed_account("40")
    with pytest.raises(AlreadyExists) as caught:
        open_account(account_id=account_id, balance=Decimal("1"))
    assert caught.value.__cause__ is not None
    assert raw.balance(account_id) == Decimal("40")


@pytest.mark.parametrize(
    ("balance", "error"),
    [
        (Decimal("-0.01"), InvalidInput),
        (1.5, InvalidInput),
        (Decimal("0.001"), InvalidInput),
        (Decimal("NaN"), InvalidInput),
        ("lots", InvalidInput),
        (True, InvalidInput),
    ],
)
def test_open_account_refuses_a_bad_balance_before_any_request(
    offline: None, sent: list[tuple[str, dict[str, Any]]], balance: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        open_account(account_id=new_id(), balance=balance)
    assert sent == []


@pytest.mark.parametrize("account_id", ["", "   ", "a#b", " padded", "x" * 3000, 42, b"acc"])
def test_open_account_refuses_a_bad_id_with_invalid_key(
    offline: None, sent: list[tuple[str, dict[str, Any]]], account_id: Any
) -> None:
    with pytest.raises(InvalidKey):
        open_account(account_id=account_id)
    assert sent == []


def test_open_account_accepts_int_and_string_balances_and_trailing_zeros(moto_table: Settings) -> None:
    assert open_account(balance=7).balance == Decimal("7")
    assert open_account(balance="2.50").balance == Decimal("2.5")
    assert open_account(balance=Decimal("1.500")).balance == Decimal("1.5")


def test_get_account_reads_a_seeded_account_exactly(raw: RawTable) -> None:
    account_id = raw.seed_account("0.10")
    account = get_account(account_id)
    assert account.account_id == account_id
    assert account.balance == Decimal("0.10")
    assert isinstance(account.balance, Decimal)


def test_get_account_of_an_unknown_id_raises_not_found(moto_table: Settings) -> None:
    with pytest.raises(NotFound):
        get_account(new_id())


def test_get_account_refuses_a_delimiter_in_the_id(
    offline: None, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    with pytest.raises(InvalidKey):
        get_account("other#BALANCE")
    assert sent == []


# --- transfer_funds: the transaction -------------------------------------------------------------

def test_transfer_moves_the_exact_amount_and_writes_one_record(raw: RawTable) -> None:
    source, target = raw.seed_account("100.00"), raw.seed_account("0.05")
    transfer = transfer_funds(source, target, Decimal("33.33"))
    assert raw.balance(source) == Decimal("66.67")
    assert raw.balance(target) == Decimal("33.38")
    (record,) = raw.transfers()
    assert record["TransferId"] == {"S": transfer.transfer_id}
    assert (record["FromAccount"], record["ToAccount"]) == ({"S": source}, {"S": target})
    assert record["Amount"] == {"N": "33.33"}
    assert "IdempotencyKey" not in record
    assert (transfer.amount, transfer.version) == (Decimal("33.33"), 1)
    assert get_transfer(transfer.transfer_id).created_at == transfer.created_at


def test_transfer_bumps_version_and_updated_at_of_both_accounts(raw: RawTable) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("10")
    transfer = transfer_funds(source, target, 4)
    for account_id in (source, target):
        item = raw.account(account_id)
        assert item is not None
        assert item["Version"] == {"N": "2"}
        assert item["UpdatedAt"]["S"] == transfer.updated_at.isoformat()


def test_transfer_is_one_transact_write_items_with_three_conditioned_actions(
    raw: RawTable, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    transfer = transfer_funds(source, target, "1", idempotency_key="order-17")
    # A keyed transfer also checks that none was stored when keys were global (transfer_id_for_key(key)).
    assert [operation for operation, _ in sent] == ["TransactWriteItems"]
    request = sent[0][1]
    assert request["ClientRequestToken"] == transfer.transfer_id == transfer_id_for_key("order-17", source)
    assert len(request["ClientRequestToken"]) <= 36
    put, legacy, *balances = request["TransactItems"]
    assert legacy["ConditionCheck"]["Key"]["PK"] == {"S": f"TRANSACTION#{transfer_id_for_key('order-17')}"}
    assert "attribute_not_exists" in legacy["ConditionCheck"]["ConditionExpression"]
    debit, credit = sorted(balances, key=lambda action: " + " in action["Update"]["UpdateExpression"])
    assert "attribute_not_exists" in put["Put"]["ConditionExpression"]
    assert "attribute_exists" in debit["Update"]["ConditionExpression"]
    assert ">=" in debit["Update"]["ConditionExpression"]
    assert " - " in debit["Update"]["UpdateExpression"]
    assert " + " in credit["Update"]["UpdateExpression"]
    assert "attribute_exists" in credit["Update"]["ConditionExpression"]
    for action in (put["Put"], debit["Update"], credit["Update"]):
        assert action["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_transfers_without_a_key_get_fresh_ids_and_each_moves_money(raw: RawTable) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    first = transfer_funds(source, target, "2")
    second = transfer_funds(source, target, "2")
    assert first.transfer_id != second.transfer_id
    assert str(uuid.UUID(first.transfer_id)) == first.transfer_id
    assert raw.balance(source) == Decimal("6")
    assert len(raw.transfers()) == 2


# --- transfer_funds: refused before any request --------------------------------------------------

BAD_AMOUNTS = [
    Decimal("0"), Decimal("-1"), -5, "0.00", Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"),
    "-Infinity", 1.0, 0.1, Decimal("0.001"), "12.345", True, None, "ten", [1],
]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_transfer_refuses_a_bad_amount_before_any_request(
    offline: None, sent: list[tuple[str, dict[str, Any]]], amount: Any
) -> None:
    with pytest.raises(InvalidInput):
        transfer_funds("a", "b", amount)
    assert sent == []


@pytest.mark.parametrize(
    ("source", "target"),
    [("", "b"), ("a", ""), ("a#x", "b"), ("a", "b#BALANCE"), (" a", "b"), (None, "b"), ("a", 7)],
)
def test_transfer_refuses_bad_account_ids_with_invalid_key(
    offline: None, sent: list[tuple[str, dict[str, Any]]], source: Any, target: Any
) -> None:
    with pytest.raises(InvalidKey):
        transfer_funds(source, target, "1")
    assert sent == []


def test_transfer_to_the_same_account_is_refused(
    offline: None, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    with pytest.raises(InvalidInput, match="itself"):
        transfer_funds("a", "a", "1")
    assert sent == []


@pytest.mark.parametrize("key", ["", "   ", "k" * 256, 12, b"bytes"])
def test_transfer_refuses_a_bad_idempotency_key(
    offline: None, sent: list[tuple[str, dict[str, Any]]], key: Any
) -> None:
    with pytest.raises(InvalidInput):
        transfer_funds("a", "b", "1", idempotency_key=key)
    assert sent == []


def test_invalid_key_is_an_invalid_input_and_a_value_error() -> None:
    assert issubclass(InvalidKey, InvalidInput)
    assert issubclass(InvalidInput, ValueError)


# --- transfer_funds: cancellation reasons become typed errors ------------------------------------

def test_transfer_with_insufficient_funds_moves_no_money(raw: RawTable) -> None:
    source, target = raw.seed_account("5.00"), raw.seed_account("1")
    before = raw.scan()
    with pytest.raises(InsufficientFunds) as caught:
        transfer_funds(source, target, "5.01")
    assert isinstance(caught.value.__cause__, (TransactWriteError, ClientError, BotoCoreError))
    assert raw.scan() == before


def test_transfer_of_the_whole_balance_leaves_zero(raw: RawTable) -> None:
    source, target = raw.seed_account("5.00"), raw.seed_account("0")
    transfer_funds(source, target, "5")
    assert raw.balance(source) == 0


@pytest.mark.parametrize("missing", ["source", "target", "both"])
def test_transfer_with_an_unknown_account_raises_not_found_and_writes_nothing(
    raw: RawTable, missing: str
) -> None:
    source = new_id() if missing in ("source", "both") else raw.seed_account("10")
    target = new_id() if missing in ("target", "both") else raw.seed_account("10")
    before = raw.scan()
    with pytest.raises(NotFound) as caught:
        transfer_funds(source, target, "1")
    assert isinstance(caught.value.__cause__, (TransactWriteError, ClientError, BotoCoreError))
    assert raw.scan() == before


def test_unknown_target_wins_over_insufficient_funds(raw: RawTable) -> None:
    source = raw.seed_account("1")
    with pytest.raises(NotFound, match="credit"):
        transfer_funds(source, new_id(), "2")


# --- idempotency (DynamoDB after its token window; moto ignores tokens) --------------------------

def test_repeated_key_returns_the_first_transfer_and_moves_money_once(raw: RawTable) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    first = transfer_funds(source, target, "3", idempotency_key="pay-1")
    again = transfer_funds(source, target, Decimal("3.00"), idempotency_key="pay-1")
    assert again.transfer_id == first.transfer_id == transfer_id_for_key("pay-1", source)
    assert again.created_at == first.created_at
    assert again.idempotency_key == "pay-1"
    assert raw.balance(source) == Decimal("7")
    assert raw.balance(target) == Decimal("3")
    assert len(raw.transfers()) == 1


def test_repeated_key_returns_the_first_transfer_even_when_the_balance_no_longer_covers_it(
    raw: RawTable,
) -> None:
    source, target = raw.seed_account("3"), raw.seed_account("0")
    first = transfer_funds(source, target, "3", idempotency_key="drain")
    assert transfer_funds(source, target, "3", idempotency_key="drain").transfer_id == first.transfer_id
    assert raw.balance(source) == 0


@pytest.mark.parametrize("change", ["amount", "target"])
def test_reusing_a_key_for_a_different_transfer_raises_idempotency_key_reused_and_moves_nothing(
    raw: RawTable, change: str
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    other = raw.seed_account("10")
    transfer_funds(source, target, "3", idempotency_key="reused")
    before = raw.scan()
    args = {"amount": (source, target, "4"), "target": (source, other, "3")}
    with pytest.raises(IdempotencyKeyReused, match="idempotency key"):
        transfer_funds(*args[change], idempotency_key="reused")
    assert raw.scan() == before


def test_transfer_id_for_key_is_a_stable_uuid5() -> None:
    transfer_id = transfer_id_for_key("invoice 2024/17")
    assert transfer_id == transfer_id_for_key("invoice 2024/17") != transfer_id_for_key("invoice 2024/18")
    assert uuid.UUID(transfer_id).version == 5


# --- retries and DynamoDB-side errors (fabricated responses) -------------------------------------

def test_transaction_conflicts_are_retried_with_the_same_request(
    raw: RawTable, fail_transactions: Callable[..., list[dict[str, Any]]]
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    seen = fail_transactions("TransactionConflict", "TransactionConflict")
    waits: list[float] = []
    transfer = transfer_funds(
        source, target, "4", idempotency_key="retry-me", retry=RetryPolicy(sleep=waits.append)
    )
    assert len(seen) == 3
    assert seen[0] == seen[1] == seen[2]
    assert seen[0]["ClientRequestToken"] == transfer.transfer_id
    assert len(waits) == 2  # backed off before each retry, through the injected sleep
    assert raw.balance(source) == Decimal("6")
    assert len(raw.transfers()) == 1


def test_conflicts_on_every_attempt_raise_conflict_error_and_move_nothing(
    raw: RawTable, fail_transactions: Callable[..., list[dict[str, Any]]]
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    before = raw.scan()
    seen = fail_transactions(*["TransactionConflict"] * 10)
    with pytest.raises(ConflictError) as caught:
        transfer_funds(source, target, "4", retry=no_wait(max_attempts=3))
    assert len(seen) == 3
    assert isinstance(caught.value.__cause__, (TransactWriteError, ClientError, BotoCoreError))
    assert raw.scan() == before


def test_throttling_on_every_attempt_raises_retries_exhausted(
    raw: RawTable, fail_transactions: Callable[..., list[dict[str, Any]]]
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    seen = fail_transactions(*["ThrottlingError"] * 10)
    with pytest.raises(RetriesExhausted):
        transfer_funds(source, target, "4", retry=no_wait(max_attempts=2))
    assert len(seen) == 2


@pytest.mark.parametrize("code", ["TransactionInProgressException", "InternalServerError"])
def test_an_error_botocore_already_retried_is_not_retried_again_and_names_the_transfer(
    raw: RawTable, fail_transactions: Callable[..., list[dict[str, Any]]], code: str
) -> None:
    # Fabricated after botocore's retry handler: this is what reaches us once its attempts are spent.
    source, target = raw.seed_account("10"), raw.seed_account("0")
    seen = fail_transactions(code)
    with pytest.raises(TransferOutcomeUnknown) as caught:
        transfer_funds(source, target, "1", idempotency_key="in-flight", retry=no_wait())
    assert len(seen) == 1
    assert caught.value.transfer_id == transfer_id_for_key("in-flight", source)
    assert caught.value.transfer_id in str(caught.value)
    assert isinstance(caught.value.__cause__, (TransactWriteError, ClientError, BotoCoreError))


def test_idempotent_parameter_mismatch_returns_the_stored_transfer_of_the_same_parameters(
    raw: RawTable, fail_transactions: Callable[..., list[dict[str, Any]]]
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    first = transfer_funds(source, target, "2", idempotency_key="window")
    fail_transactions("IdempotentParameterMismatchException")
    again = transfer_funds(source, target, "2", idempotency_key="window")
    assert (again.transfer_id, again.created_at) == (first.transfer_id, first.created_at)
    assert raw.balance(source) == Decimal("8")


def test_idempotent_parameter_mismatch_for_other_parameters_raises_idempotency_key_reused(
    raw: RawTable, fail_transactions: Callable[..., list[dict[str, Any]]]
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    transfer_funds(source, target, "2", idempotency_key="window")
    fail_transactions("IdempotentParameterMismatchException")
    with pytest.raises(IdempotencyKeyReused) as caught:
        transfer_funds(source, target, "5", idempotency_key="window")
    assert isinstance(caught.value.__cause__, (TransactWriteError, ClientError, BotoCoreError))
    assert raw.balance(source) == Decimal("8")


def test_idempotent_parameter_mismatch_without_a_stored_transfer_raises_conflict_error(
    raw: RawTable, fail_transactions: Callable[..., list[dict[str, Any]]]
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    fail_transactions("IdempotentParameterMismatchException")
    with pytest.raises(ConflictError, match="not completed"):
        transfer_funds(source, target, "5", idempotency_key="never-committed")
    assert raw.balance(source) == Decimal("10")


def test_an_unexpected_dynamodb_error_is_a_data_layer_error_with_its_cause(
    raw: RawTable, fail_transactions: Callable[..., list[dict[str, Any]]]
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    fail_transactions("ValidationException")
    with pytest.raises(DataLayerError, match="ValidationException") as caught:
        transfer_funds(source, target, "5")
    assert type(caught.value) is DataLayerError
    assert isinstance(caught.value.__cause__, (TransactWriteError, ClientError, BotoCoreError))


@pytest.fixture
def lose_responses(moto_table: Settings) -> Iterator[None]:
    """Every TransactWriteItems that commits answers with a read timeout instead (a lost response)."""

    def lose_the_response(parsed: dict[str, Any], **_: Any) -> None:
        if "Error" not in parsed:
            raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid")

    client = Transfer._get_connection().connection.client
    on(client, "after-call.dynamodb.TransactWriteItems", lose_the_response, first=True)
    yield
    off(client, "after-call.dynamodb.TransactWriteItems", lose_the_response)


def test_a_lost_response_says_call_again_and_calling_again_moves_no_more_money(
    raw: RawTable, lose_responses: None
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    with pytest.raises(TransferOutcomeUnknown, match="same idempotency_key") as caught:
        transfer_funds(source, target, "4", idempotency_key="lost")
    assert caught.value.transfer_id == transfer_id_for_key("lost", source)
    assert isinstance(caught.value.__cause__, (TransactWriteError, ClientError, BotoCoreError))

    again = transfer_funds(source, target, "4", idempotency_key="lost")
    assert again.transfer_id == transfer_id_for_key("lost", source)
    assert raw.balance(source) == Decimal("6")
    assert len(raw.transfers()) == 1


def test_a_lost_response_without_a_key_names_the_transfer_so_it_can_be_looked_up(
    raw: RawTable, lose_responses: None
) -> None:
    source, target = raw.seed_account("10"), raw.seed_account("0")
    with pytest.raises(TransferOutcomeUnknown, match="get_transfer") as caught:
        transfer_funds(source, target, "4")
    transfer_id = caught.value.transfer_id
    assert transfer_id in str(caught.value)
    assert isinstance(caught.value, DataLayerError)

    committed = get_transfer(transfer_id)  # it did commit: the caller can tell, and need not retry
    assert (committed.from_account, committed.to_account, committed.amount) == (source, target, 4)
    (record,) = raw.transfers()
    assert record["TransferId"] == {"S": transfer_id}
    assert raw.balance(source) == Decimal("6")


def test_get_transfer_of_an_unknown_id_raises_not_found(moto_table: Settings) -> None:
    with pytest.raises(NotFound):
        get_transfer(str(uuid.uuid4()))


@pytest.mark.parametrize(("amount", "stored"), [("0.01", "0.01"), (Decimal("1E+2"), "100"), (7, "7")])
def test_transfer_stores_an_exact_amount_in_plain_notation(raw: RawTable, amount: Any, stored: str) -> None:
    source, target = raw.seed_account("1000"), raw.seed_account("0")
    transfer_funds(source, target, amount)
    assert raw.balance(target) == Decimal(amount)
    assert raw.transfers()[0]["Amount"] == {"N": stored}
