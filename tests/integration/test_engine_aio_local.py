"""AsyncLeanClient against DynamoDB Local: every answer equals LeanClient's, and gathered writes land once.

The script of ``tests/integration/test_engine_local.py`` (every data-plane operation, every answer
member the local engine fills, and the errors) runs through ``LeanClient`` on one table and through
``AsyncLeanClient`` on another; results, errors and observations are compared with the table names
and per-answer headers set aside.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core import engine
from core.config import Settings
from core.engine.aio import AsyncLeanClient
from core.engine.observe import Observation
from core.engine.sync import LeanClient
from tests.integration.test_engine_local import answer, create_table, every_type, plain_client, script

pytestmark = pytest.mark.integration


@pytest.fixture
def tables(local_endpoint: Settings) -> Iterator[tuple[Any, str, str]]:
    """A plain botocore client and two fresh tables; deleted afterwards."""
    botocore_client = plain_client(local_endpoint)
    names = (f"aio-a-{uuid.uuid4().hex[:8]}", f"aio-b-{uuid.uuid4().hex[:8]}")
    for name in names:
        create_table(botocore_client, name)
    yield botocore_client, *names
    for name in names:
        botocore_client.delete_table(TableName=name)


@pytest.fixture
def observed() -> Iterator[list[Observation]]:
    """Every observation made from now on (the observer is removed afterwards)."""
    seen: list[Observation] = []
    engine.observers.append(seen.append)
    yield seen
    engine.observers.remove(seen.append)


def comparable(observation: Observation, table: str) -> tuple[Any, ...]:
    """What two clients' observations of the same call must share."""
    return (observation.operation, (observation.table or "").replace(table, "TABLE"), observation.index,
            observation.outcome, observation.attempts, observation.status, observation.consumed_capacity,
            observation.items_returned, observation.items_read, observation.cancellation_reasons)


async def answers_of(client: AsyncLeanClient, table: str) -> list[tuple[str, Any]]:
    """The script's answers through ``client``, one call after the other, set aside as ``answer`` does."""
    found = []
    for operation, params in script(table, str(uuid.uuid4())):
        try:
            outcome: dict[str, Any] | ClientError = await client.call(operation, params)
        except ClientError as exc:
            outcome = exc
        found.append(answer(replaying(outcome), operation, params, table))
    return found


def replaying(outcome: dict[str, Any] | ClientError) -> Any:
    """A call that returns (or raises) what an awaited call returned (or raised)."""
    def call(*_: Any) -> Any:
        if isinstance(outcome, ClientError):
            raise outcome
        return outcome

    return call


def test_every_operation_answers_as_through_leanclient(tables: tuple[Any, str, str], local_endpoint: Settings,
                                                       observed: list[Observation]) -> None:
    _, table_a, table_b = tables
    lean = LeanClient(local_endpoint)
    theirs = [answer(lean.call, operation, params, table_a)
              for operation, params in script(table_a, str(uuid.uuid4()))]
    lean.close()
    lean_observed = list(observed)
    observed.clear()

    async def main() -> list[tuple[str, Any]]:
        async with AsyncLeanClient(local_endpoint) as client:
            return await answers_of(client, table_b)

    ours = asyncio.run(main())
    kinds = [kind for kind, _ in ours]
    assert kinds.count("ok") == 13
    assert {"error ConditionalCheckFailedException", "error TransactionCanceledException",
            "error ValidationException", "error ResourceNotFoundException"} <= set(kinds)
    for operation, mine, leans in zip((op for op, _ in script(table_a, "")), ours, theirs, strict=True):
        assert mine == leans, operation
    assert [comparable(o, table_b) for o in observed] == [comparable(o, table_a) for o in lean_observed]
    assert all(o.request_id for o in observed)


def test_fifty_gathered_puts_all_land_once(tables: tuple[Any, str, str], local_endpoint: Settings,
                                           observed: list[Observation]) -> None:
    botocore_client, table, _ = tables
    run_id = uuid.uuid4().hex[:8]

    async def main() -> list[dict[str, Any]]:
        async with AsyncLeanClient(local_endpoint, max_connections=8) as client:
            return await asyncio.gather(*(client.call("PutItem", {
                "TableName": table, "Item": every_type(f"RUN#{run_id}", f"ITEM#{n:02d}"),
                "ConditionExpression": "attribute_not_exists(PK)"}) for n in range(50)))

    results = asyncio.run(main())
    assert len(results) == 50
    found = botocore_client.query(TableName=table, KeyConditionExpression="PK = :pk", ConsistentRead=True,
                                  ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}})
    assert sorted(item["SK"]["S"] for item in found["Items"]) == [f"ITEM#{n:02d}" for n in range(50)]
    assert [(o.operation, o.outcome, o.attempts) for o in observed] == [("PutItem", "ok", 1)] * 50
