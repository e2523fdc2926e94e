"""AsyncLeanClient against a scripted HTTP server on 127.0.0.1: retries, cancellation, loops, credentials.

The server and its answers are ``tests/unit/test_engine_retries.py``'s, with two more scripts: a
request that is read and never answered until the test ends (``"hang"``), and the client's port
recorded for each request (to count pooled connections). No test waits on a clock: the client's
``sleep`` records its delays, and a test that cancels waits for the server to have read the request.
Each test runs its own loop with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from core import engine
from core.config import Settings
from core.engine.aio import REQUEST_SENT, AsyncLeanClient, request_sent
from core.engine.observe import attributed
from core.engine.retries import RetryPolicy, RetryQuota
from core.engine.sync import LeanClient
from core.error_codes import nothing_sent
from tests.unit.test_engine_retries import GET, Scripted, _Handler, error, ok


class Hanging(Scripted):
    """``Scripted``, plus ``"hang"`` (read the request, answer nothing until ``release``) and the
    client port of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = _HangingHandler
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.ports: list[int] = []


class _HangingHandler(_Handler):
    server: Hanging

    def do_POST(self) -> None:
        self.server.ports.append(self.client_address[1])
        if self.server.script and self.server.script[0] == "hang":
            self.server.script.pop(0)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.server.seen.append((dict(self.headers), b""))
            self.server.arrived.set()
            self.server.release.wait()
            self.close_connection = True
            return
        super().do_POST()


@pytest.fixture
def server() -> Iterator[Hanging]:
    """A scripted DynamoDB on 127.0.0.1, stopped (and any hanging request released) after the test."""
    scripted = Hanging()
    thread = threading.Thread(target=scripted.serve_forever, daemon=True)
    thread.start()
    yield scripted
    scripted.release.set()
    scripted.shutdown()
    scripted.server_close()


class Recorder:
    """The delays the client would have slept, and its observations."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.observations: list[engine.Observation] = []

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Records delays and observations (the observer is removed afterwards)."""
    recording = Recorder()
    engine.observers.append(recording.observations.append)
    yield recording
    engine.observers.remove(recording.observations.append)


def settings_for(endpoint: str, attempts: int = 4) -> Settings:
    return Settings(table_name="t", endpoint_url=endpoint, region="us-east-1",
                    max_retry_attempts=attempts - 1, connect_timeout_seconds=2, read_timeout_seconds=10)


def client_for(endpoint: str, recorder: Recorder, *, attempts: int = 4, quota_left: int | None = None,
               **kwargs: Any) -> AsyncLeanClient:
    retry = RetryPolicy(attempts, quota=RetryQuota(), random=lambda: 0.5)
    if quota_left is not None:
        retry.quota.acquire(retry.quota.available - quota_left)
    kwargs.setdefault("sleep", recorder.sleep)
    return AsyncLeanClient(settings_for(endpoint, attempts), retry=retry, **kwargs)


def run(client: AsyncLeanClient, work: Callable[[AsyncLeanClient], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``work(client)`` in a fresh loop, then close the client."""
    async def main() -> Any:
        async with client:
            return await work(client)

    return asyncio.run(main())


PUT = {"TableName": "t", "Item": {"PK": {"S": "a"}}, "ReturnValues": "ALL_OLD"}


# --- the same retries as LeanClient ------------------------------------------------------------------


def test_throttled_twice_then_answered(server: Hanging, recorder: Recorder) -> None:
    server.script = [
        error("ThrottlingException", throttlingReasons=[{"reason": "TableReadKeyRangeThroughputExceeded",
                                                         "resource": "arn:table/t"}]),
        error("ProvisionedThroughputExceededException"),
        ok({"Item": {"PK": {"S": "a"}}, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}}),
    ]
    client = client_for(server.endpoint, recorder)
    result = run(client, lambda c: c.call("GetItem", GET))
    assert result["Item"] == {"PK": {"S": "a"}}
    assert result["ResponseMetadata"]["RetryAttempts"] == 2
    assert recorder.delays == [0.5, 1.0]  # throttling: base 1 s, full jitter (random() = 0.5)
    assert client.retry.quota.available == 500 - 5 - 5 + 5
    (seen,) = recorder.observations
    assert (seen.operation, seen.table, seen.outcome, seen.attempts, seen.request_id) == (
        "GetItem", "t", "ok", 3, "REQ")
    assert (seen.consumed_capacity, seen.items_returned) == (0.5, 1)
    assert seen.throttling_reasons == ({"reason": "TableReadKeyRangeThroughputExceeded",
                                        "resource": "arn:table/t"},)
    assert len(server.seen) == 3


def test_server_errors_are_retried_until_the_attempts_run_out(server: Hanging, recorder: Recorder) -> None:
    server.script = [error("InternalServerError", 500)] * 4
    client = client_for(server.endpoint, recorder, attempts=4)
    with pytest.raises(ClientError) as raised:
        run(client, lambda c: c.call("PutItem", {"TableName": "t", "Item": {"PK": {"S": "a"}}}))
    metadata = raised.value.response["ResponseMetadata"]
    assert (metadata["RetryAttempts"], metadata["MaxAttemptsReached"]) == (3, True)
    assert recorder.delays == [0.0125, 0.025, 0.05]
    assert client.retry.quota.available == 500 - 3 * 14
    assert [o.outcome for o in recorder.observations] == ["InternalServerError"]


def test_a_lost_answer_is_sent_again_without_quota(server: Hanging, recorder: Recorder) -> None:
    server.script = ["close", ok({"Attributes": {"PK": {"S": "a"}}})]
    client = client_for(server.endpoint, recorder, quota_left=0)
    result = run(client, lambda c: c.call("PutItem", PUT))
    assert result["ResponseMetadata"]["RetryAttempts"] == 1
    assert server.seen[0][1] == server.seen[1][1]  # the same request, re-sent
    assert client.retry.quota.available == 0 + 1  # nothing spent; the success gives back one


def test_a_lost_answer_on_the_last_attempt_is_raised_as_leanclient_raises_it(
        server: Hanging, recorder: Recorder) -> None:
    server.script = ["close", "close"]
    with pytest.raises(ConnectionClosedError) as raised:
        run(client_for(server.endpoint, recorder, attempts=2),
            lambda c: c.call("PutItem", {"TableName": "t", "Item": {}}))
    assert not nothing_sent(raised.value)
    assert recorder.observations[-1].outcome == "ConnectionClosedError"


def test_a_refused_connection_is_reported_as_nothing_sent(recorder: Recorder) -> None:
    probe = Scripted()  # bind, then close: nothing listens on that port any more
    endpoint = probe.endpoint
    probe.server_close()
    with pytest.raises(EndpointConnectionError) as raised:
        run(client_for(endpoint, recorder, attempts=2),
            lambda c: c.call("PutItem", {"TableName": "t", "Item": {}}))
    assert nothing_sent(raised.value)
    assert len(recorder.delays) == 1


def test_answers_and_errors_equal_leanclients(server: Hanging, recorder: Recorder) -> None:
    script = [ok({"Item": {"PK": {"S": "a"}, "B": {"B": "AAE="}}}),
              error("ConditionalCheckFailedException", Item={"PK": {"S": "a"}}),
              error("TransactionCanceledException", CancellationReasons=[{"Code": "ConditionalCheckFailed"}])]
    calls = [("GetItem", GET), ("PutItem", PUT),
             ("TransactWriteItems", {"TransactItems": [{"ConditionCheck": {
                 "TableName": "t", "Key": {"PK": {"S": "a"}},
                 "ConditionExpression": "attribute_exists(PK)"}}], "ClientRequestToken": "token"})]

    def outcome(result: Any) -> Any:
        answer = result.response if isinstance(result, ClientError) else result
        answer["ResponseMetadata"].pop("HTTPHeaders")
        return answer

    server.script = list(script)
    lean = LeanClient(settings_for(server.endpoint))
    theirs = []
    for operation, params in calls:
        try:
            theirs.append(outcome(lean.call(operation, params)))
        except ClientError as exc:
            theirs.append(outcome(exc))
    lean.close()

    async def ours(client: AsyncLeanClient) -> list[Any]:
        found = []
        for operation, params in calls:
            try:
                found.append(outcome(await client.call(operation, params)))
            except ClientError as exc:
                found.append(outcome(exc))
        return found

    server.script = list(script)
    assert run(client_for(server.endpoint, recorder), ours) == theirs
    sync_bodies, async_bodies = server.seen[:3], server.seen[3:]
    assert [body for _, body in sync_bodies] == [body for _, body in async_bodies]
    assert [o.outcome for o in recorder.observations] == [
        "ok", "ConditionalCheckFailedException", "TransactionCanceledException"] * 2
    assert recorder.observations[2].cancellation_reasons == ("ConditionalCheckFailed",)


# --- one loop, one bounded pool, one observation per call --------------------------------------------


def test_gathered_calls_share_one_bounded_pool(server: Hanging, recorder: Recorder) -> None:
    client = client_for(server.endpoint, recorder, max_connections=4)

    async def gathered(c: AsyncLeanClient) -> list[dict[str, Any]]:
        return await asyncio.gather(*(c.call("PutItem", {"TableName": "t", "Item": {"PK": {"S": str(n)}}})
                                      for n in range(50)))

    results = run(client, gathered)
    assert len(results) == 50 and len(server.seen) == 50
    assert sorted(json.loads(body)["Item"]["PK"]["S"] for _, body in server.seen) == sorted(
        str(n) for n in range(50))
    assert len(set(server.ports)) <= 4
    assert len(recorder.observations) == 50 and {o.attempts for o in recorder.observations} == {1}


def test_each_task_observes_its_own_access_pattern(server: Hanging, recorder: Recorder) -> None:
    async def serving(c: AsyncLeanClient, name: str) -> None:
        with attributed(name):
            await asyncio.sleep(0)  # the other task runs in between
            await c.call("GetItem", GET)

    async def both(c: AsyncLeanClient) -> None:
        await asyncio.gather(serving(c, "Order.of_user"), serving(c, "User.by_email"))
        await c.call("GetItem", GET)

    run(client_for(server.endpoint, recorder), both)
    assert sorted(str(o.access_pattern) for o in recorder.observations) == [
        "None", "Order.of_user", "User.by_email"]


def test_a_client_is_bound_to_the_loop_of_its_first_call(server: Hanging, recorder: Recorder) -> None:
    client = client_for(server.endpoint, recorder)

    async def first(c: AsyncLeanClient) -> None:
        await c.call("GetItem", GET)
        with pytest.raises(RuntimeError, match="bound to the event loop"):  # its pool, from another loop
            await asyncio.to_thread(asyncio.run, c.close())
        await c.close()

    asyncio.run(first(client))
    with pytest.raises(RuntimeError, match="bound to the event loop"):
        asyncio.run(client.call("GetItem", GET))
    assert [o.outcome for o in recorder.observations] == ["ok", "RuntimeError"]


def test_a_closed_client_refuses_calls(server: Hanging, recorder: Recorder) -> None:
    async def closed_then_called(c: AsyncLeanClient) -> None:
        await c.call("GetItem", GET)
        await c.close()
        with pytest.raises(RuntimeError, match="closed"):
            await c.call("GetItem", GET)

    run(client_for(server.endpoint, recorder), closed_then_called)


def test_a_sync_clients_twin_is_its_loops_and_a_new_one_after_aclose(server: Hanging) -> None:
    """The twin of the loop's last call is reused; after ``aclose`` (its pool closed) the next call on
    the same loop gets a new twin, and another loop gets its own."""
    sync = LeanClient(settings_for(server.endpoint))
    twins: list[Any] = []

    async def calls() -> None:
        first = sync.twin()
        assert sync.twin() is first
        await first.call("GetItem", GET)
        await sync.aclose()
        second = sync.twin()
        assert second is not first
        await second.call("GetItem", GET)  # a closed twin would refuse it
        twins.extend((first, second))
        await sync.aclose()

    asyncio.run(calls())
    asyncio.run(calls())
    assert len({id(twin) for twin in twins}) == 4


def test_botocore_method_names_are_awaitable(server: Hanging, recorder: Recorder) -> None:
    server.script = [ok({"Item": {"PK": {"S": "a"}}})]
    result = run(client_for(server.endpoint, recorder), lambda c: c.get_item(**GET))
    assert result["Item"] == {"PK": {"S": "a"}}
    with pytest.raises(AttributeError):
        _ = client_for(server.endpoint, recorder).create_table


# --- cancellation ------------------------------------------------------------------------------------


def test_a_write_cancelled_in_flight_is_observed_and_says_it_was_sent(
        server: Hanging, recorder: Recorder) -> None:
    server.script = ["hang"]

    async def cancelled(c: AsyncLeanClient) -> BaseException:
        task = asyncio.create_task(c.call("PutItem", PUT))
        await asyncio.to_thread(server.arrived.wait)  # the server has read the whole request
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as raised:
            await task
        return raised.value

    exc = run(client_for(server.endpoint, recorder), cancelled)
    assert request_sent(exc) is True and getattr(exc, REQUEST_SENT) is True
    (seen,) = recorder.observations
    assert (seen.operation, seen.outcome, seen.attempts, seen.status) == ("PutItem", "cancelled", 1, None)
    assert len(server.seen) == 1  # a cancelled request is never re-sent


def test_a_call_cancelled_before_its_request_left_says_nothing_was_sent(
        server: Hanging, recorder: Recorder) -> None:
    server.script = ["hang"]

    async def cancelled(c: AsyncLeanClient) -> tuple[BaseException, Any]:
        holding = asyncio.create_task(c.call("GetItem", GET))  # takes the pool's only connection
        await asyncio.to_thread(server.arrived.wait)
        waiting = asyncio.create_task(c.call("PutItem", PUT))  # waits for that connection
        for _ in range(5):
            await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError) as raised:
            await waiting
        holding.cancel()
        with pytest.raises(asyncio.CancelledError) as held:
            await holding
        return raised.value, held.value

    waited, held = run(client_for(server.endpoint, recorder, max_connections=1), cancelled)
    assert request_sent(waited) is False
    assert request_sent(held) is True
    assert [(o.operation, o.outcome) for o in recorder.observations] == [
        ("PutItem", "cancelled"), ("GetItem", "cancelled")]
    assert len(server.seen) == 1


def test_a_call_cancelled_in_its_backoff_after_a_lost_answer_says_it_was_sent(
        server: Hanging, recorder: Recorder) -> None:
    server.script = ["close"]
    backing_off = asyncio.Event()

    async def never(_: float) -> None:
        backing_off.set()
        await asyncio.Future()  # until cancelled

    async def cancelled(c: AsyncLeanClient) -> BaseException:
        task = asyncio.create_task(c.call("PutItem", PUT))
        await backing_off.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as raised:
            await task
        return raised.value

    exc = run(client_for(server.endpoint, recorder, sleep=never), cancelled)
    assert request_sent(exc) is True
    assert recorder.observations[0].outcome == "cancelled"


def test_request_sent_is_none_for_other_exceptions() -> None:
    assert request_sent(asyncio.CancelledError()) is None
    assert request_sent(ValueError()) is None


# --- credentials -------------------------------------------------------------------------------------


class CountingSession:
    """A botocore session stand-in whose credential chain is counted."""

    def __init__(self, credentials: Callable[[], Any]) -> None:
        self.resolved = 0
        self._credentials = credentials

    def get_config_variable(self, name: str) -> None:
        return None

    def get_credentials(self) -> Any:
        self.resolved += 1
        return self._credentials()


def test_static_credentials_are_resolved_once(server: Hanging, recorder: Recorder) -> None:
    session = CountingSession(lambda: botocore.session.get_session().get_credentials())

    async def many(c: AsyncLeanClient) -> None:
        await asyncio.gather(*(c.call("GetItem", GET) for _ in range(10)))
        await c.call("GetItem", GET)

    run(client_for(server.endpoint, recorder, session=session), many)  # type: ignore[arg-type]
    assert session.resolved == 1


def test_refreshing_credentials_near_expiry_are_refreshed_at_every_attempt(
        server: Hanging, recorder: Recorder) -> None:
    issued: list[str] = []

    def refresh() -> dict[str, str]:
        issued.append(f"AKID{len(issued)}")
        soon = datetime.now(UTC) + timedelta(minutes=5)  # inside the mandatory refresh window
        return {"access_key": issued[-1], "secret_key": "secret", "token": "token",
                "expiry_time": soon.strftime("%Y-%m-%dT%H:%M:%SZ")}

    session = CountingSession(lambda: RefreshableCredentials.create_from_metadata(refresh(), refresh, "test"))
    server.script = [error("ThrottlingException"), ok({})]
    run(client_for(server.endpoint, recorder, session=session), lambda c: c.call("GetItem", GET))  # type: ignore[arg-type]
    keys = [headers["Authorization"].split("Credential=")[1].split("/")[0] for headers, _ in server.seen]
    assert len(set(keys)) == 2 and all(key in issued for key in keys)
    assert session.resolved == 1


def test_refreshing_credentials_far_from_expiry_are_reused(server: Hanging, recorder: Recorder) -> None:
    refreshed: list[int] = []

    def refresh() -> dict[str, str]:
        refreshed.append(1)
        later = datetime.now(UTC) + timedelta(hours=1)
        return {"access_key": "AKID", "secret_key": "secret", "token": "token",
                "expiry_time": later.strftime("%Y-%m-%dT%H:%M:%SZ")}

    session = CountingSession(lambda: RefreshableCredentials.create_from_metadata(refresh(), refresh, "test"))
    server.script = [error("ThrottlingException"), ok({}), ok({})]

    async def twice(c: AsyncLeanClient) -> None:
        await c.call("GetItem", GET)
        await c.call("GetItem", GET)

    run(client_for(server.endpoint, recorder, session=session), twice)  # type: ignore[arg-type]
    assert len(refreshed) == 1 and len(server.seen) == 3
