"""A write of the async API whose answer is lost, or whose task is cancelled, tells the truth.

Lost answers are ``tests/integration/test_lost_responses_local.py``'s (``LoseAnswers``: the request is
applied by DynamoDB Local, then its answer dropped, so the client sends it again), through the
async API. Cancellation needs a request that really reached DynamoDB Local while its task still
waits: ``Relay`` passes requests on to DynamoDB Local and withholds the answers of the first ones,
so a test cancels the task exactly then. A cancelled task raises its ``CancelledError``;
``outcome_of`` it is the ``WriteOutcomeUnknown`` naming the keys when the request was sent, and
``None`` when nothing was.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from core.config import Settings
from core.engine import bridge
from core.errors import TransferOutcomeUnknown, WriteOutcomeUnknown
from core.retry import RetryPolicy
from models import Account, Order, Product, TableModel, Transfer
from repositories.asyncio import accounts, batch, metrics, orders, outcome_of, products, users
from tests.async_helpers import Relay, arun, stored
from tests.conftest import ClientHooks
from tests.helpers import LoseAnswers, RawTable, claims, existing_user, models_client, off, on, random_email

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
ENDPOINT = "AWS_ENDPOINT_URL_DYNAMODB"


# --- lost answers ---------------------------------------------------------------------------------------


def test_a_put_whose_answer_is_lost_succeeds_once(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    injector = lose("PutItem")
    account = arun(lambda: accounts.open_account(balance=Decimal(5)))
    assert injector.lost == 1
    [row] = stored(local_table, "ACCOUNT")
    assert row["AccountId"] == {"S": account.account_id} and row["Version"] == {"N": "1"}


def test_updates_whose_answers_are_lost_succeed_once(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    async def main() -> tuple[Any, ...]:
        user = await users.create_user(random_email(), "Ada")
        order = await orders.place_order(user.user_id, 10)
        injector = lose("UpdateItem", times=3)
        paid = await orders.set_order_status(order, "PAID")
        renamed = await users.update_user(user, name="Ada Lovelace")
        product = await products.put_product("lamp", "Lamp", Decimal("9.99"))  # an upsert: UpdateItem
        assert injector.lost == 3  # each write's first answer was lost
        return (order, paid, await orders.get_order(order.user_id, order.order_id), user, renamed,
                await users.get_user(user.user_id), product)

    order, paid, read, user, renamed, user_now, product = arun(main)
    assert paid.status.value == "PAID" and paid.version == order.version + 1
    assert (read.status, read.version, read.gsi1pk) == (paid.status, order.version + 1, "STATUS#PAID")
    assert user_now.version == renamed.version == user.version + 1 and user_now.name == "Ada Lovelace"
    [row] = stored(local_table, "PRODUCT")
    assert row["Version"] == {"N": "1"} and product.version == 1


def test_transactions_whose_answers_are_lost_succeed_once(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    raw = RawTable(local_table)
    source, target = raw.seed_account("50"), raw.seed_account("0")

    async def main() -> tuple[Any, ...]:
        injector = lose("TransactWriteItems", times=4)
        user = await users.create_user(random_email(), "Ada")
        order = await orders.place_order(user.user_id, 10)
        await metrics.record_metric("d1", "temp", 7, at=AT)
        transfer = await accounts.transfer_funds(source, target, "20")
        assert injector.lost == 4
        return order, transfer, await metrics.get_hourly_aggregates("d1", AT, AT)

    order, transfer, (hourly,) = arun(main)
    assert len(stored(local_table, "USER")) == len(claims(local_table)) == 1
    assert [o["OrderId"]["S"] for o in stored(local_table, "ORDER")] == [order.order_id]
    assert (hourly.sample_count, hourly.total) == (1, 7)  # folded in once
    assert (raw.balance(source), raw.balance(target)) == (Decimal(30), Decimal(20))
    assert [t["TransferId"]["S"] for t in raw.transfers()] == [transfer.transfer_id]


def _drop_unsent(request: Any, **_: Any) -> None:
    """An answer lost before the request reached DynamoDB (nothing applied)."""
    if request.headers.get("X-Amz-Target", b"").endswith(b"PutItem"):
        raise ReadTimeoutError(endpoint_url=request.url)


def test_when_every_answer_is_lost_the_outcome_names_the_keys_and_aresolve_tells(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    user_id = existing_user(local_table)
    client = models_client(TableModel)

    async def main() -> tuple[WriteOutcomeUnknown, Any, WriteOutcomeUnknown, Any]:
        lose("TransactWriteItems", "PutItem", times=100)
        with pytest.raises(WriteOutcomeUnknown) as applied:
            await orders.place_order(user_id, 10)
        lose()
        on(client, "before-send.dynamodb", _drop_unsent, first=True)
        try:
            with pytest.raises(WriteOutcomeUnknown) as dropped:
                await accounts.open_account(account_id="never-stored")
        finally:
            off(client, "before-send.dynamodb", _drop_unsent)
        return applied.value, await applied.value.aresolve(), dropped.value, await dropped.value.aresolve()

    applied, landed, dropped, nothing = arun(main)
    (pk, sk), *_ = applied.keys
    assert pk == Order.key_template("pk").compose(user_id=user_id) and sk.startswith("ORDER#")
    assert "ReadTimeoutError" in str(applied)
    assert isinstance(landed, Order) and landed.sk == sk
    assert [o["SK"]["S"] for o in stored(local_table, "ORDER")] == [sk]
    assert dropped.keys == [(Account.key_template("pk").compose(account_id="never-stored"),
                             Account.key_template("sk").compose(account_id="never-stored"))]
    assert nothing is None and stored(local_table, "ACCOUNT") == []


def test_a_batch_whose_answers_are_lost_says_what_was_written_and_a_rerun_converges(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    products_ = [Product(product_id=f"p{i:03d}", name=f"Product {i}", price=Decimal(i)) for i in range(60)]

    async def main() -> WriteOutcomeUnknown:
        lose("BatchWriteItem", skip=1, times=100)  # the first request answers, every later answer is lost
        with pytest.raises(WriteOutcomeUnknown) as raised:
            await batch.batch_write(products_)
        lose("BatchWriteItem", times=0)
        await batch.batch_write(products_[25:])  # again, what was not known written
        return raised.value

    outcome = arun(main)
    assert (len(outcome.written), len(outcome.keys), len(outcome.not_written)) == (25, 25, 10)
    assert outcome.written == products_[:25] and outcome.not_written == products_[50:]
    rows = stored(local_table, "PRODUCT")
    assert len(rows) == 60 and {item["Version"]["N"] for item in rows} == {"1"}


def test_a_delete_whose_answer_is_lost_succeeds(
    local_table: Settings, lose: Callable[..., LoseAnswers]
) -> None:
    async def main() -> int:
        product = await products.put_product("gone", "Gone", Decimal(1))
        injector = lose("DeleteItem")
        await product.adelete()
        return injector.lost

    assert arun(main) == 1 and stored(local_table, "PRODUCT") == []


# --- cancellation ---------------------------------------------------------------------------------------


@pytest.fixture
def relayed(local_table: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], Relay]:
    """``async with relayed(hold) as relay``: the models send through a ``Relay`` to this test's table
    (set up and checked directly, with raw clients)."""

    def make(hold: int) -> Relay:
        return Relay(str(local_table.endpoint_url), hold=hold,
                     on_start=lambda url: monkeypatch.setenv(ENDPOINT, url))

    return make


async def _cancelled_when_held(relay: Relay, write: Any) -> asyncio.CancelledError:
    task = asyncio.create_task(write)
    async with asyncio.timeout(30):
        await relay.held.wait()  # applied by DynamoDB Local; its answer withheld
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as raised:
        await task
    return raised.value


def test_a_write_cancelled_after_it_was_sent_reports_its_keys_and_lands_once(
    local_table: Settings, relayed: Callable[[int], Relay]
) -> None:
    account_id = uuid.uuid4().hex

    async def main() -> tuple[asyncio.CancelledError, Any, list[str]]:
        async with relayed(1) as relay:
            cancelled = await _cancelled_when_held(relay, accounts.open_account(account_id=account_id))
            sent = list(relay.operations)
            outcome = outcome_of(cancelled)
            assert isinstance(outcome, WriteOutcomeUnknown)
            return cancelled, await outcome.aresolve(), sent

    cancelled, resolved, sent = arun(main)
    outcome = outcome_of(cancelled)
    assert isinstance(outcome, WriteOutcomeUnknown) and cancelled.__cause__ is outcome
    assert outcome.keys == [(Account.key_template("pk").compose(account_id=account_id),
                             Account.key_template("sk").compose(account_id=account_id))]
    assert sent == ["PutItem"]  # no further call once cancelled
    assert isinstance(resolved, Account) and resolved.account_id == account_id
    assert [a["AccountId"]["S"] for a in stored(local_table, "ACCOUNT")] == [account_id]


def test_a_transfer_cancelled_after_it_was_sent_moves_the_money_at_most_once(
    local_table: Settings, relayed: Callable[[int], Relay]
) -> None:
    raw = RawTable(local_table)
    source, target = raw.seed_account("50"), raw.seed_account("0")
    key = f"pay-{uuid.uuid4()}"

    async def main() -> tuple[asyncio.CancelledError, Any, list[str]]:
        async with relayed(1) as relay:
            cancelled = await _cancelled_when_held(relay, accounts.transfer_funds(source, target, "20",
                                                                                  idempotency_key=key))
            sent = list(relay.operations)
            again = await accounts.transfer_funds(source, target, "20", idempotency_key=key)
            return cancelled, again, sent

    cancelled, again, sent = arun(main)
    outcome = outcome_of(cancelled)
    assert isinstance(outcome, TransferOutcomeUnknown) and outcome.transfer_id == again.transfer_id
    assert sent == ["TransactWriteItems"]
    assert (raw.balance(source), raw.balance(target)) == (Decimal(30), Decimal(20))
    assert [t["TransferId"]["S"] for t in raw.transfers()] == [again.transfer_id]


def test_a_write_cancelled_before_anything_was_sent_writes_nothing(
    local_table: Settings, relayed: Callable[[int], Relay]
) -> None:
    size: list[int] = []

    async def main() -> tuple[asyncio.CancelledError, list[str], list[Any]]:
        async with relayed(0) as relay:
            pool = models_client(TableModel).twin().max_connections  # this loop's pool of the models' client
            relay.hold = pool  # every pooled connection will wait for an answer
            size.append(pool)
            busy = [asyncio.create_task(accounts.open_account()) for _ in range(pool)]
            async with asyncio.timeout(30):
                while relay.withheld < pool:
                    await asyncio.sleep(0.01)
            waiting = asyncio.create_task(accounts.open_account(account_id="waits-for-a-connection"))
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError) as raised:
                await waiting
            sent = list(relay.operations)
            for task in busy:
                task.cancel()
            ended = []
            for task in busy:  # gather() would hand back new CancelledErrors, without their outcomes
                with pytest.raises(asyncio.CancelledError) as each:
                    await task
                ended.append(each.value)
            return raised.value, sent, ended

    cancelled, sent, busy = arun(main)
    assert outcome_of(cancelled) is None and cancelled.__cause__ is None
    assert sent == ["PutItem"] * size[0]  # the waiting write never reached the relay
    assert all(isinstance(outcome_of(b), WriteOutcomeUnknown) for b in busy)
    assert "waits-for-a-connection" not in {a["AccountId"]["S"] for a in stored(local_table, "ACCOUNT")}
    assert len(stored(local_table, "ACCOUNT")) == size[0]


def test_a_timeout_around_a_write_whose_request_was_sent_raises_timeout_error(
    local_table: Settings, relayed: Callable[[int], Relay]
) -> None:
    email = random_email()

    async def main() -> TimeoutError:
        async with relayed(1) as relay:
            deadline: list[asyncio.Timeout] = []

            async def create() -> None:
                async with asyncio.timeout(None) as timeout:
                    deadline.append(timeout)
                    await users.create_user(email, "Ada")

            task = asyncio.create_task(create())
            async with asyncio.timeout(30):
                await relay.held.wait()
            deadline[0].reschedule(asyncio.get_running_loop().time())  # expires now, the answer withheld
            with pytest.raises(TimeoutError) as raised:
                await task
            return raised.value

    timed_out = arun(main)
    cancelled = timed_out.__cause__
    assert isinstance(cancelled, asyncio.CancelledError)
    outcome = outcome_of(cancelled)
    assert isinstance(outcome, WriteOutcomeUnknown) and len(outcome.keys) == 2  # the user and its claim
    assert len(stored(local_table, "USER")) == 1
    assert [c["ClaimedEmail"]["S"] for c in claims(local_table)] == [email]


def test_a_transfer_cancelled_while_it_waits_to_retry_moves_nothing_and_has_no_outcome(
    local_table: Settings, client_hooks: ClientHooks
) -> None:
    raw = RawTable(local_table)
    source, target = raw.seed_account("50"), raw.seed_account("0")
    refused = client_hooks.record(Transfer, "TransactWriteItems")
    client_hooks.fail(Transfer, "TransactWriteItems", "TransactionCanceledException",
                      reasons=["TransactionConflict", "None", "None"])  # lost to a concurrent transaction
    patient = RetryPolicy(max_attempts=3, sleep=lambda _: bridge.sleep(60))

    async def main() -> asyncio.CancelledError:
        task = asyncio.create_task(accounts.transfer_funds(source, target, "20", retry=patient))
        async with asyncio.timeout(30):
            while not refused:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # now in the backoff before the second attempt
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as raised:
            await task
        return raised.value

    cancelled = arun(main)
    assert len(refused) == 1  # no second attempt
    assert outcome_of(cancelled) is None and cancelled.__cause__ is None  # nothing was in flight
    assert (raw.balance(source), raw.balance(target)) == (Decimal(50), Decimal(0)) and raw.transfers() == []
