"""Concurrent transfers on DynamoDB Local: money is conserved and every success left one record.

Eight threads move random amounts between a few accounts with small balances, so the debit
condition refuses some transfers and concurrent transactions on the same items collide.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from core.config import Settings
from models import Transfer
from repositories.accounts import get_transfer, transfer_funds
from repositories.errors import ConflictError, InsufficientFunds, NotFound, TransferOutcomeUnknown
from tests.helpers import RawTable

THREADS = 8
ITERATIONS = 40
ACCOUNTS = 5
START_BALANCE = Decimal("20.00")


@pytest.fixture
def raw(local_table: Settings) -> RawTable:
    """This test's own table on DynamoDB Local, seen through a raw botocore client."""
    return RawTable(local_table)


def test_concurrent_random_transfers_conserve_money_and_record_every_success(raw: RawTable) -> None:
    accounts = [raw.seed_account(str(START_BALANCE)) for _ in range(ACCOUNTS)]
    # Warm the models' connection once, so the threads share one botocore client.
    Transfer._get_connection().connection.client  # noqa: B018
    outcomes: Counter[str] = Counter()
    succeeded: list[Transfer] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for i in range(ITERATIONS):
            source, target = rng.sample(accounts, 2)
            amount = Decimal(rng.randint(1, 1500)) / 100
            key = f"{seed}-{i}-{uuid.uuid4()}" if i % 2 else None
            try:
                transfer = transfer_funds(source, target, amount, idempotency_key=key)
            except InsufficientFunds:
                outcome = "insufficient"
            except ConflictError:
                outcome = "conflict"
            except TransferOutcomeUnknown as exc:
                # What a careful caller does: look the transfer up by the id the error carries.
                try:
                    transfer = get_transfer(exc.transfer_id)
                except NotFound:
                    outcome = "not-committed"
                else:
                    outcome = "ok"
                    with lock:
                        succeeded.append(transfer)
            else:
                outcome = "ok"
                with lock:
                    succeeded.append(transfer)
            with lock:
                outcomes[outcome] += 1

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(worker, seed) for seed in range(THREADS)]:
            future.result()

    assert sum(outcomes.values()) == THREADS * ITERATIONS
    assert outcomes["ok"] > 0
    assert outcomes["insufficient"] > 0, "the debit condition was never exercised"
    balances = {account_id: raw.balance(account_id) for account_id in accounts}
    assert sum(balances.values()) == START_BALANCE * ACCOUNTS
    assert all(balance >= 0 for balance in balances.values())

    records = raw.transfers()
    assert len(records) == outcomes["ok"] == len(succeeded)
    assert {r["TransferId"]["S"] for r in records} == {t.transfer_id for t in succeeded}
    # Each balance is exactly its start plus what the recorded transfers moved in and out.
    expected = dict.fromkeys(accounts, START_BALANCE)
    touched: Counter[str] = Counter()
    for record in records:
        amount = Decimal(record["Amount"]["N"])
        expected[record["FromAccount"]["S"]] -= amount
        expected[record["ToAccount"]["S"]] += amount
        touched.update([record["FromAccount"]["S"], record["ToAccount"]["S"]])
    assert balances == expected
    for account_id in accounts:
        item = raw.account(account_id)
        assert item is not None
        assert int(item["Version"]["N"]) == 1 + touched[account_id]


def test_concurrent_calls_with_one_key_move_money_once_and_all_return_that_transfer(raw: RawTable) -> None:
    source, target = raw.seed_account("100"), raw.seed_account("0")
    key = f"double-click-{uuid.uuid4()}"
    Transfer._get_connection().connection.client  # noqa: B018
    barrier = threading.Barrier(THREADS)

    def submit() -> Transfer:
        barrier.wait()
        return transfer_funds(source, target, "30", idempotency_key=key)

    with ThreadPoolExecutor(THREADS) as pool:
        transfers = [future.result() for future in [pool.submit(submit) for _ in range(THREADS)]]

    first = transfers[0]
    assert {(t.transfer_id, t.created_at) for t in transfers} == {(first.transfer_id, first.created_at)}
    assert raw.balance(source) == Decimal("70")
    assert raw.balance(target) == Decimal("30")
    assert len(raw.transfers()) == 1
