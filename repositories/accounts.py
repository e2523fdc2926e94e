"""Accounts and transfers: balances move only inside one conditioned ``TransactWriteItems``.

A transfer is three actions in one transaction, in this order (PynamoDB sends puts before
updates, and cancellation reasons come back in the same order):

0. put the ``Transfer`` record, on condition ``attribute_not_exists(PK)``;
1. debit ``SET Balance = Balance - :amt``, on ``attribute_exists(PK) AND Balance >= :amt``;
2. credit ``SET Balance = Balance + :amt``, on ``attribute_exists(PK)``.

Either all three happen or none does, so money is conserved whatever fails. Every action asks
for ``ReturnValuesOnConditionCheckFailure=ALL_OLD``: a failed debit that returns an item is an
existing account short of funds, one that returns nothing is an unknown account, and a failed
record put returns the transfer that was already stored, all without another read.

Idempotency: ``idempotency_key`` fixes the transfer id (uuid5) and DynamoDB's
``ClientRequestToken`` (the same 36-character string). Within DynamoDB's 10-minute token window
a repeated request is answered by DynamoDB itself (``IdempotentParameterMismatch``, since the
timestamps differ); after it, the record's ``attribute_not_exists`` condition fails. Either way
the first ``Transfer`` is returned and no money moves a second time, or ``AlreadyExists`` is
raised when the key was used for another transfer.

Retries (``core.retry``): botocore re-sends the same request on throttling, 5xx, transport errors
and ``TransactionInProgressException``; this module retries only what botocore cannot see, a
cancellation for ``TransactionConflict`` or item-level throttling (``retry=``, default
``CONTENTION_RETRY``). When botocore's attempts end without saying whether the transaction
committed, ``TransferOutcomeUnknown.transfer_id`` names the transfer to look up with
``get_transfer`` (with an idempotency key, calling again is also safe).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.connection import Connection
from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from core.error_codes import (
    CONDITION_FAILED,
    IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION,
    THROTTLING_CODES,
    THROTTLING_REASONS,
    TRANSACTION_CANCELED_EXCEPTION,
    TRANSACTION_CONFLICT,
    error_code,
    raise_unexpected,
)
from core.errors import (
    AlreadyExists,
    ConflictError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    RetriesExhausted,
    TransferOutcomeUnknown,
)
from core.retry import RetryPolicy, retried_by_botocore
from models import writes
from models.account import Account
from models.attributes import to_money
from models.transfer import Transfer
from repositories import query
from repositories._common import key_part

__all__ = [
    "get_account",
    "get_transfer",
    "open_account",
    "transfer_funds",
    "transfer_id_for_key",
]

# Fixed forever: changing it would give every idempotency key a new transfer id.
IDEMPOTENCY_NAMESPACE = uuid.UUID("b465bfce-69c0-4724-bdd2-09d0d83d3941")
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# Attempts that lost to a concurrent transaction, or were throttled item by item: botocore cannot
# see those inside a TransactionCanceledException, so they are retried here (core.retry).
CONTENTION_RETRY = RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=2.0)

_RECORD, _DEBIT, _CREDIT = 0, 1, 2
_CHECK_FAILED = CONDITION_FAILED
_RETRYABLE_REASONS = frozenset({TRANSACTION_CONFLICT, *THROTTLING_REASONS})
_THROTTLING = THROTTLING_REASONS | THROTTLING_CODES


# --- accounts ------------------------------------------------------------------------------------

def open_account(*, account_id: str | None = None, balance: Decimal | int | str = Decimal("0")) -> Account:
    """Create an account (a new uuid4 id unless given); ``AlreadyExists`` if the id is taken."""
    account_id = str(uuid.uuid4()) if account_id is None else key_part(account_id, "account_id")
    account = Account(account_id=account_id, balance=to_money(balance, "balance", positive=False))
    account.save()
    return account


def get_account(account_id: str) -> Account:
    """The account, read strongly consistent; ``NotFound`` if there is none."""
    return query.get_one(Account, account_id=key_part(account_id, "account_id"))


# --- transfers -----------------------------------------------------------------------------------

def get_transfer(transfer_id: str) -> Transfer:
    """The transfer record, read strongly consistent; ``NotFound`` if there is none."""
    return query.get_one(Transfer, transfer_id=key_part(transfer_id, "transfer_id"))


def transfer_id_for_key(idempotency_key: str) -> str:
    """The transfer id that ``transfer_funds`` derives from an idempotency key."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, _require_idempotency_key(idempotency_key)))


def transfer_funds(
    from_account_id: str,
    to_account_id: str,
    amount: Decimal | int | str,
    *,
    idempotency_key: str | None = None,
    retry: RetryPolicy | None = None,
) -> Transfer:
    """Move ``amount`` from one account to another in one transaction; return the ``Transfer``.

    Raises ``InvalidInput`` (nothing sent) for a bad amount, id or key, or a self-transfer;
    ``InsufficientFunds``; ``NotFound`` for an unknown account; ``AlreadyExists`` when
    ``idempotency_key`` was used for a different transfer; ``ConflictError`` when concurrent
    transactions kept winning through every retry (``retry``, default ``CONTENTION_RETRY``);
    ``TransferOutcomeUnknown`` (with the ``transfer_id``) when the request failed without saying
    whether it committed. A repeated ``idempotency_key`` returns the first transfer and moves no
    money.
    """
    source = key_part(from_account_id, "from_account_id")
    target = key_part(to_account_id, "to_account_id")
    value = to_money(amount, "amount", positive=True)
    if source == target:
        raise InvalidInput("cannot transfer from an account to itself")
    key = None if idempotency_key is None else _require_idempotency_key(idempotency_key)
    transfer_id = transfer_id_for_key(key) if key is not None else str(uuid.uuid4())
    transfer = Transfer(
        transfer_id=transfer_id, from_account=source, to_account=target, amount=value, idempotency_key=key
    )
    # Built once, so every retry sends the very same request under the same token.
    request = _transfer_request(transfer, value)
    try:
        return (retry or CONTENTION_RETRY).call(_Retryable, _attempt_transfer, transfer, request)
    except _Retryable as exc:
        if exc.code in _THROTTLING:
            raise RetriesExhausted("throttled on every attempt; nothing moved") from exc.cause
        raise ConflictError("concurrent transactions won every attempt; nothing moved") from exc.cause


class _Retryable(Exception):
    """An attempt that lost to a concurrent transaction or to throttling (internal)."""

    def __init__(self, code: str, cause: TransactWriteError) -> None:
        super().__init__(code)
        self.code = code
        self.cause = cause


def _transfer_request(transfer: Transfer, amount: Decimal) -> dict[str, Any]:
    """The keyword arguments of ``Connection.transact_write_items`` for one transfer."""
    # Transfer and Account declare WrittenBy(transfer_funds): this is the function that writes them.
    record = writes.put_kwargs(transfer, Transfer.pk.does_not_exist())
    record["ReturnValuesOnConditionCheckFailure"] = ALL_OLD
    now = transfer.updated_at  # set by serializing the record: one timestamp for the whole transfer
    assert now is not None
    debit = _balance_update(
        transfer.from_account,
        Account.balance.set(Account.balance - amount),
        Account.pk.exists() & (Account.balance >= amount),
        now,
    )
    credit = _balance_update(
        transfer.to_account, Account.balance.set(Account.balance + amount), Account.pk.exists(), now
    )
    return {
        "condition_check_items": [],
        "delete_items": [],
        "put_items": [record],
        "update_items": [debit, credit],
        "client_request_token": transfer.transfer_id,
    }


def _balance_update(account_id: str, change: Action, condition: Condition, now: datetime) -> dict[str, Any]:
    """One balance change, bumping ``UpdatedAt`` and ``Version`` (no version condition: the
    balance condition is the one that matters, and a transfer need not read the account first)."""
    probe = Account(account_id=account_id)
    actions = [change, Account.updated_at.set(now), Account.version.add(1)]
    kwargs: dict[str, Any] = Account._get_connection().get_operation_kwargs(
        probe.pk, range_key=probe.sk, actions=actions, condition=condition,
        return_values_on_condition_failure=ALL_OLD,
    )
    return kwargs


def _connection() -> Connection:
    return Transfer._get_connection().connection


def _attempt_transfer(transfer: Transfer, request: dict[str, Any]) -> Transfer:
    try:
        _connection().transact_write_items(**request)
    except TransactWriteError as exc:
        return _settle_failure(transfer, exc)
    transfer.version = 1  # what the put stored, as PynamoDB's own save would record
    return transfer


def _settle_failure(transfer: Transfer, exc: TransactWriteError) -> Transfer:
    """Turn a failed transaction into the stored transfer (a replay) or a typed error."""
    code = error_code(exc)
    if code == IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION:
        # Same token within DynamoDB's window, different request (at least the timestamps).
        return _replay(transfer, query.find_one(Transfer, transfer_id=transfer.transfer_id), exc)
    if code != TRANSACTION_CANCELED_EXCEPTION:
        # botocore has already retried these (core.retry), re-sending the same token. Throttled
        # requests were refused, but a transport error, a 5xx or a transaction still in progress
        # leaves the transfer possibly committed: say which one, so the caller can look it up.
        if retried_by_botocore(code) and code not in _THROTTLING:
            raise _outcome_unknown(transfer, code) from exc
        raise_unexpected(exc, "transfer_funds")
    reasons = list(exc.cancellation_reasons) + [None] * 3
    record, debit, credit = reasons[_RECORD], reasons[_DEBIT], reasons[_CREDIT]
    if record is not None and record.code == _CHECK_FAILED:
        stored = Transfer.from_raw_data(record.raw_item) if record.raw_item else None
        return _replay(transfer, stored or query.find_one(Transfer, transfer_id=transfer.transfer_id), exc)
    for reason in (record, debit, credit):
        if reason is not None and reason.code in _RETRYABLE_REASONS:
            raise _Retryable(reason.code, exc) from exc
    if debit is not None and debit.code == _CHECK_FAILED and not debit.raw_item:
        raise NotFound("the account to debit does not exist") from exc
    if credit is not None and credit.code == _CHECK_FAILED:
        raise NotFound("the account to credit does not exist") from exc
    if debit is not None and debit.code == _CHECK_FAILED:
        raise InsufficientFunds("the balance of the account to debit is lower than the amount") from exc
    raise_unexpected(exc, "transfer_funds")


def _outcome_unknown(transfer: Transfer, code: str | None) -> TransferOutcomeUnknown:
    if transfer.idempotency_key is not None:
        advice = "call again with the same idempotency_key, or look it up with get_transfer"
    else:
        advice = "look it up with get_transfer before trying again"
    return TransferOutcomeUnknown(
        f"transfer_funds: {code or 'the request failed in transit'}, so whether the transfer "
        f"committed is unknown; {advice}",
        transfer.transfer_id,
    )


def _replay(transfer: Transfer, stored: Transfer | None, cause: Exception) -> Transfer:
    """A transfer with this id was committed before: return it if it is the same transfer."""
    if stored is None:
        # DynamoDB knows the token but no transfer was committed under it (yet).
        raise ConflictError(
            "this idempotency key belongs to a request that has not completed; try again later"
        ) from cause
    same = (stored.from_account, stored.to_account, stored.amount) == (
        transfer.from_account, transfer.to_account, transfer.amount
    )
    if not same:
        raise AlreadyExists(
            "this idempotency key was already used for a different transfer (other accounts or amount)"
        ) from cause
    return stored


# --- validation ----------------------------------------------------------------------------------

def _require_idempotency_key(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"idempotency_key must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput("idempotency_key must not be empty")
    if len(value) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidInput(f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return value
