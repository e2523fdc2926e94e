"""Accounts and transfers: balances move only inside one conditioned ``TransactWriteItems``.

``Transfer`` declares ``Moves`` (``models.rules``): saving one puts the record on
``attribute_not_exists(PK)``, debits ``Balance - :amt`` on ``attribute_exists(PK) AND Balance >=
:amt`` and credits ``Balance + :amt`` on ``attribute_exists(PK)``, all in one transaction, so money
is conserved whatever fails, and a failed debit that returns the account is ``InsufficientFunds``,
one that returns nothing ``NotFound``. ``Account`` declares that its balance changes only so.

Idempotency: a transfer's ``idempotency_key`` is scoped to its source account, as Stripe scopes
keys to an account: the transfer id is a uuid5 of the source and the key, and DynamoDB's
``ClientRequestToken`` is the same string. The transfer record, kept forever, is the key's record
(no ``IdempotencyRecord`` is needed): within DynamoDB's 10-minute token window a repeated request
is answered by DynamoDB itself (``IdempotentParameterMismatch``, since the timestamps differ);
after it, the record's ``attribute_not_exists`` condition fails. Either way the first ``Transfer``
is returned and no money moves a second time, or ``IdempotencyKeyReused`` is raised when the key
was used for another transfer from the same account. Another account's use of the same key is
independent. Keys were once global (``transfer_id_for_key(key)``, no source): the transaction also
checks that no transfer from the same source is stored under that id, and one that is is returned
as the first result, so upgrading never moves money twice.

``open_account(idempotency_key=)`` is scoped to the function: the account id is derived from the
key, and the key's ``IdempotencyRecord`` holds the arguments for 7 days (``models.idempotency``).

Retries: botocore re-sends the same request on throttling, 5xx, transport errors and
``TransactionInProgressException``; the write path re-sends the very same request (same token)
on a cancellation for ``TransactionConflict`` or item-level throttling (``retry=``, default
``CONTENTION_RETRY``). When no attempt got an answer, ``TransferOutcomeUnknown.transfer_id`` names
the transfer to look up with ``get_transfer`` (with an idempotency key, calling again is safe).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from core.errors import (
    AlreadyExists,
    ConflictError,
    IdempotencyKeyReused,
    TransferOutcomeUnknown,
    WriteOutcomeUnknown,
)
from core.ids import uuid4_text
from core.retry import RetryPolicy
from models import idempotency, planning, sending
from models.account import Account
from models.attributes import to_money
from models.idempotency import IdempotencyKey, check_key
from models.transfer import Transfer
from repositories import query
from repositories._common import key_part, retry_policy

__all__ = [
    "get_account",
    "get_transfer",
    "open_account",
    "transfer_funds",
    "transfer_id_for_key",
]

# Fixed forever: changing either would give every idempotency key a new transfer id. Keys scoped
# to the source account have a namespace of their own, so no scoped id is ever a global one.
IDEMPOTENCY_NAMESPACE = uuid.UUID("b465bfce-69c0-4724-bdd2-09d0d83d3941")
SCOPED_IDEMPOTENCY_NAMESPACE = uuid.UUID("5b8e2f1c-9d4a-4c3e-8f6b-2a7d1e9c0b35")
MAX_IDEMPOTENCY_KEY_LENGTH = idempotency.MAX_KEY_LENGTH
# Attempts that lost to a concurrent transaction, or were throttled item by item: botocore cannot
# see those inside a TransactionCanceledException, so the write path sends them again.
CONTENTION_RETRY = RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=2.0)


# --- accounts ------------------------------------------------------------------------------------

def open_account(*, account_id: str | None = None, balance: Decimal | int | str = Decimal("0"),
                 idempotency_key: str | None = None) -> Account:
    """Create an account; ``AlreadyExists`` if the id is taken.

    Without ``account_id`` the id is derived from ``idempotency_key`` (a new uuid4 without a key).
    ``idempotency_key`` (scoped to this function, kept 7 days): called again with the same key and
    the same arguments, the first call's account is returned (as stored now) and nothing is
    written, also when the first call ended in ``WriteOutcomeUnknown``; with other arguments,
    ``IdempotencyKeyReused``.
    """
    given = None if account_id is None else key_part(account_id, "account_id")
    money = to_money(balance, "balance", positive=False)
    key = IdempotencyKey.of("open_account", idempotency_key, owner=None,
                            arguments={"account_id": given, "balance": money})
    account_id = given or str(key.derived_id() if key is not None else uuid.uuid4())
    account = Account(account_id=account_id, balance=money)
    first = idempotency.execute(lambda: planning.plan_put(account), key, Account, what="Account.save")
    return account if first is None else first


def get_account(account_id: str) -> Account:
    """The account, read strongly consistent; ``NotFound`` if there is none."""
    return query.get_one(Account, account_id=key_part(account_id, "account_id"))


# --- transfers -----------------------------------------------------------------------------------

def get_transfer(transfer_id: str) -> Transfer:
    """The transfer record, read strongly consistent; ``NotFound`` if there is none."""
    return query.get_one(Transfer, transfer_id=key_part(transfer_id, "transfer_id"))


def transfer_id_for_key(idempotency_key: str, from_account_id: str | None = None) -> str:
    """The transfer id that ``transfer_funds`` derives from an idempotency key and the source
    account (a uuid5). Without ``from_account_id``: the id of the time keys were global, under
    which a transfer stored then for the same source is still recognised."""
    key = _require_idempotency_key(idempotency_key)
    if from_account_id is None:
        return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, key))
    source = key_part(from_account_id, "from_account_id")  # holds no "#": the name is unambiguous
    return str(uuid.uuid5(SCOPED_IDEMPOTENCY_NAMESPACE, f"{source}#{key}"))


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
    ``InsufficientFunds``; ``NotFound`` for an unknown account; ``IdempotencyKeyReused`` when
    ``idempotency_key`` was used for a different transfer from this account; ``ConflictError`` when
    concurrent transactions kept winning through every retry (``retry``, default
    ``CONTENTION_RETRY``); ``TransferOutcomeUnknown`` (with the ``transfer_id``; its ``resolve()``
    returns the ``Transfer`` if it committed, ``None`` if not) when the request failed without
    saying whether it committed.

    ``idempotency_key`` is scoped to the source account and kept as long as the transfer: the
    same key from the same account with the same target and amount returns the first transfer and
    moves no money, also when the first call's answer was lost; another account's use of the same
    key is a transfer of its own.
    """
    source = key_part(from_account_id, "from_account_id")
    target = key_part(to_account_id, "to_account_id")
    value = to_money(amount, "amount", positive=True)
    policy = retry_policy(retry, CONTENTION_RETRY)
    key = None if idempotency_key is None else _require_idempotency_key(idempotency_key)
    transfer_id = transfer_id_for_key(key, source) if key is not None else uuid4_text()
    transfer = Transfer(
        transfer_id=transfer_id, from_account=source, to_account=target, amount=value, idempotency_key=key
    )
    plan = planning.plan_put(transfer)  # built once: every attempt is the same request, same token
    plan.token = transfer_id
    if key is not None:  # a transfer of this key and account from when keys were global comes first
        plan.add(_no_global_transfer(transfer_id_for_key(key), source), first=True)
    try:
        sending.execute(lambda: plan, what="transfer_funds", retry=policy)
    except AlreadyExists as exc:  # this transfer id (or the global one) was written before
        stored = query.find_one(Transfer, transfer_id=transfer_id)
        if stored is None and key is not None:
            earlier = query.find_one(Transfer, transfer_id=transfer_id_for_key(key))
            stored = earlier if earlier is not None and earlier.from_account == source else None
        return _replay(transfer, stored, exc.__cause__ or exc)
    except WriteOutcomeUnknown as exc:
        raise _outcome_unknown(transfer, exc) from exc.__cause__
    return transfer


def _no_global_transfer(global_id: str, source: str) -> planning.Step:
    """A ConditionCheck, in the transfer's own transaction, that no transfer from ``source`` was
    stored under the key's global id (from when keys were not scoped); another account's global
    transfer does not stand in the way."""
    legacy = Transfer(transfer_id=global_id)
    legacy.fill_keys()
    condition = Transfer.pk.does_not_exist() | (Transfer.from_account != source)
    kwargs = Transfer._get_connection().get_operation_kwargs(legacy.pk, range_key=legacy.sk,
                                                             condition=condition)
    return planning.Step("check", kwargs, lambda _: AlreadyExists("a transfer of this key was stored before"))


def _outcome_unknown(transfer: Transfer, cause: WriteOutcomeUnknown) -> TransferOutcomeUnknown:
    if transfer.idempotency_key is not None:
        advice = "call again with the same idempotency_key, or look it up with get_transfer"
    else:
        advice = "look it up with get_transfer before trying again"
    return TransferOutcomeUnknown(
        f"transfer_funds: whether the transfer committed is unknown ({cause}); {advice}",
        transfer.transfer_id, cause.keys, resolver=cause.resolver,
    )


def _replay(transfer: Transfer, stored: Transfer | None, cause: BaseException | None) -> Transfer:
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
        raise IdempotencyKeyReused(
            "this idempotency key was already used for a different transfer from this account (another "
            "target or amount); no money moved"
        ) from cause
    return stored


# --- validation ----------------------------------------------------------------------------------

def _require_idempotency_key(value: Any) -> str:
    # A string, not blank, not too long, no control, bidi or lone surrogate characters (a
    # surrogate would otherwise crash uuid5 outside the error tree).
    return check_key(value)
