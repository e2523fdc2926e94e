"""Retries: the engine's decisions are botocore's standard mode, and the lean client follows them.

The decisions are compared with botocore's own classes (``botocore.retries.standard``) over a grid of
answers; the client is exercised against a scripted HTTP server on 127.0.0.1. No test waits: the
client's ``sleep`` records the delays instead.
"""

from __future__ import annotations

import http.server
import json
import threading
from binascii import crc32
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.retries import quota, standard

from core import engine
from core.config import Settings
from core.engine.retries import CallState, Outcome, RetryPolicy, RetryQuota
from core.engine.sync import LeanClient
from core.error_codes import nothing_sent
from tests.helpers import RawBody

# --- the decisions, against botocore's classes ------------------------------------------------------

_CODES = [None, "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
          "TransactionInProgressException", "LimitExceededException", "RequestTimeout",
          "PriorRequestNotComplete", "InternalServerError", "ReplicatedWriteConflictException",
          "ConditionalCheckFailedException", "ValidationException", "TransactionCanceledException",
          "SlowDown", "Throttling"]
_STATUSES = [200, 400, 413, 429, 500, 502, 503, 504]
_EXCEPTIONS = [ReadTimeoutError(endpoint_url="u", error="e"),
               EndpointConnectionError(endpoint_url="u", error="e"),
               ConnectTimeoutError(endpoint_url="u", error="e"), ConnectionClosedError(endpoint_url="u"),
               HTTPClientError(error="e"), ValueError("not a transport error")]


@pytest.fixture(scope="module")
def model() -> Any:
    """botocore's DynamoDB service model."""
    return botocore.session.get_session().get_service_model("dynamodb")


def answers() -> Iterator[tuple[int | None, str | None, str | None, BaseException | None]]:
    """(status, code, x-amz-crc32 kind, exception) combinations."""
    for status in _STATUSES:
        for code in _CODES:
            for crc in (None, "good", "bad"):
                yield status, code if status != 200 else None, crc, None
    for exc in _EXCEPTIONS:
        yield None, None, None, exc


def contexts(model: Any, operation: str, attempt: int, status: int | None, code: str | None, crc: str | None,
             exc: BaseException | None) -> tuple[standard.RetryContext, Outcome]:
    """botocore's retry context and the engine's outcome for the same answer."""
    body = json.dumps({"__type": code} if code else {}).encode()
    headers = {"x-amz-retry-after": "1500"} if code == "SlowDown" else {}
    if crc is not None:
        headers["x-amz-crc32"] = str(crc32(body) + (1 if crc == "bad" else 0))
    parsed = ({"Error": {"Code": code, "Message": ""}} if code else {}) if status is not None else None
    http_response = AWSResponse("u", status, headers, RawBody(body)) if status is not None else None
    context = standard.RetryContext(attempt_number=attempt, operation_model=model.operation_model(operation),
                                    parsed_response=parsed, http_response=http_response, caught_exception=exc,
                                    request_context={})
    outcome = Outcome(status=status, headers=headers, body=body, parsed=parsed, error=exc)
    return context, outcome


@pytest.mark.parametrize("operation", ["GetItem", "PutItem", "TransactWriteItems", "BatchWriteItem"])
def test_retry_decisions_delays_and_costs_equal_botocores(model: Any, operation: str) -> None:
    max_attempts = 3
    detector = standard.ThrottlingErrorDetector(standard.RetryEventAdapter())
    conditions = standard.StandardRetryConditions(max_attempts=max_attempts)
    backoff = standard.ExponentialBackoff(random=lambda: 0.7, service_name="dynamodb",
                                          throttling_detector=detector)
    for attempt in (1, 2, 3):
        for status, code, crc, exc in answers():
            context, outcome = contexts(model, operation, attempt, status, code, crc, exc)
            botocore_quota = quota.RetryQuota()
            checker = standard.RetryQuotaChecker(botocore_quota, detector)
            retried = conditions.is_retryable(context) and checker.acquire_retry_quota(context)
            policy = RetryPolicy(max_attempts, random=lambda: 0.7)
            state = CallState(attempts=attempt)
            decision = policy.decide(operation, outcome, state)
            label = (operation, attempt, status, code, crc, exc)
            assert decision.retry == retried, label
            assert state.metadata == context.get_retry_metadata(), label
            if exc is None or not decision.retry:  # a lost answer is re-sent without quota (by design)
                assert policy.quota.available == botocore_quota.available_capacity, label
            if decision.retry:
                assert decision.delay == backoff.delay_amount(context), label


def test_a_success_gives_back_the_last_retrys_cost_or_one() -> None:
    policy = RetryPolicy(3, quota=RetryQuota(500))
    policy.quota.acquire(30)
    policy.succeeded(CallState())
    assert policy.quota.available == 471
    policy.succeeded(CallState(quota_spent=5))
    assert policy.quota.available == 476
    policy.succeeded(CallState(quota_spent=500))
    assert policy.quota.available == 500


# --- the client, against a scripted server -----------------------------------------------------------

Answer = tuple[int, dict[str, str], bytes] | str  # or "close": read the request, answer nothing


class Scripted(http.server.ThreadingHTTPServer):
    """Answers each request with the next scripted answer (then ``{}``); keeps what was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[Answer] = []
        self.seen: list[tuple[dict[str, str], bytes]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Scripted
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((dict(self.headers), body))
        answer = self.server.script.pop(0) if self.server.script else (200, {}, b"{}")
        if answer == "close":
            self.close_connection = True
            return
        status, headers, payload = answer
        self.send_response(status)
        sent = {"Content-Length": str(len(payload)), "x-amzn-RequestId": "REQ", **headers}
        for name, value in sent.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def server() -> Iterator[Scripted]:
    """A scripted DynamoDB on 127.0.0.1, stopped after the test."""
    scripted = Scripted()
    thread = threading.Thread(target=scripted.serve_forever, daemon=True)
    thread.start()
    yield scripted
    scripted.shutdown()
    scripted.server_close()


def error(code: str, status: int = 400, **members: Any) -> Answer:
    document = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code, **members}
    body = json.dumps(document).encode()
    return status, {"x-amz-crc32": str(crc32(body))}, body


def ok(document: dict[str, Any], *, crc: int | None = None) -> Answer:
    body = json.dumps(document).encode()
    return 200, {"x-amz-crc32": str(crc32(body) if crc is None else crc)}, body


class Recorder:
    """What the client would have slept, and what it observed."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.observations: list[engine.Observation] = []

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Records delays and observations (the observer is removed afterwards)."""
    recording = Recorder()
    engine.observers.append(recording.observations.append)
    yield recording
    engine.observers.remove(recording.observations.append)


def client_for(server_endpoint: str, recorder: Recorder, *, attempts: int = 4, quota_left: int | None = None,
               **kwargs: Any) -> LeanClient:
    settings = Settings(table_name="t", endpoint_url=server_endpoint, region="us-east-1",
                        max_retry_attempts=attempts - 1, connect_timeout_seconds=2, read_timeout_seconds=10)
    retry = RetryPolicy(attempts, quota=RetryQuota(), random=lambda: 0.5)
    if quota_left is not None:
        retry.quota.acquire(retry.quota.available - quota_left)
    return LeanClient(settings, sleep=recorder.sleep, retry=retry, **kwargs)


GET = {"TableName": "t", "Key": {"PK": {"S": "a"}}}


def test_throttled_twice_then_answered(server: Scripted, recorder: Recorder) -> None:
    server.script = [
        error("ThrottlingException", throttlingReasons=[{"reason": "TableReadKeyRangeThroughputExceeded",
                                                         "resource": "arn:table/t"}]),
        error("ProvisionedThroughputExceededException"),
        ok({"Item": {"PK": {"S": "a"}}, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}}),
    ]
    client = client_for(server.endpoint, recorder)
    result = client.call("GetItem", GET)
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
    dates = [headers["X-Amz-Date"] for headers, _ in server.seen]
    assert all(date.endswith("Z") for date in dates)  # each attempt is signed anew


def test_server_errors_are_retried_until_the_attempts_run_out(server: Scripted, recorder: Recorder) -> None:
    server.script = [error("InternalServerError", 500)] * 4
    client = client_for(server.endpoint, recorder, attempts=4)
    with pytest.raises(ClientError) as raised:
        client.call("PutItem", {"TableName": "t", "Item": {"PK": {"S": "a"}}})
    metadata = raised.value.response["ResponseMetadata"]
    assert (metadata["RetryAttempts"], metadata["MaxAttemptsReached"]) == (3, True)
    assert "reached max retries: 3" in str(raised.value)
    assert recorder.delays == [0.0125, 0.025, 0.05]  # DynamoDB's non-throttling base: 25 ms
    assert client.retry.quota.available == 500 - 3 * 14
    assert recorder.observations[0].outcome == "InternalServerError"


def test_a_crc32_mismatch_is_read_again(server: Scripted, recorder: Recorder) -> None:
    server.script = [ok({"Item": {"PK": {"S": "corrupted"}}}, crc=1), ok({"Item": {"PK": {"S": "a"}}})]
    result = client_for(server.endpoint, recorder).call("GetItem", GET)
    assert result["Item"] == {"PK": {"S": "a"}}
    assert result["ResponseMetadata"]["RetryAttempts"] == 1


def test_a_crc32_mismatch_on_the_last_attempt_is_returned_as_botocore_returns_it(
        server: Scripted, recorder: Recorder) -> None:
    server.script = [ok({"Item": {"PK": {"S": "x"}}}, crc=1)] * 2
    result = client_for(server.endpoint, recorder, attempts=2).call("GetItem", GET)
    assert result["ResponseMetadata"]["MaxAttemptsReached"] is True


def test_a_drained_quota_stops_retrying_server_errors(server: Scripted, recorder: Recorder) -> None:
    server.script = [error("InternalServerError", 500), ok({})]
    client = client_for(server.endpoint, recorder, quota_left=13)
    with pytest.raises(ClientError) as raised:
        client.call("GetItem", GET)
    assert raised.value.response["ResponseMetadata"]["RetryQuotaReached"] is True
    assert len(server.seen) == 1
    server.script = [error("ThrottlingException"), ok({})]  # throttling costs 5: still affordable
    assert client.call("GetItem", GET)["ResponseMetadata"]["RetryAttempts"] == 1


def test_a_lost_answer_is_sent_again_even_with_a_drained_quota(server: Scripted, recorder: Recorder) -> None:
    server.script = ["close", ok({"Attributes": {"PK": {"S": "a"}}})]
    client = client_for(server.endpoint, recorder, quota_left=0)
    put = {"TableName": "t", "Item": {"PK": {"S": "a"}}, "ReturnValues": "ALL_OLD"}
    result = client.call("PutItem", put)
    assert result["ResponseMetadata"]["RetryAttempts"] == 1
    assert server.seen[0][1] == server.seen[1][1]  # the same request, re-sent


def test_a_lost_answer_on_the_last_attempt_is_raised_as_botocore_raises_it(
        server: Scripted, recorder: Recorder) -> None:
    server.script = ["close", "close"]
    with pytest.raises(ConnectionClosedError) as raised:
        client_for(server.endpoint, recorder, attempts=2).call("PutItem", {"TableName": "t", "Item": {}})
    assert not nothing_sent(raised.value)
    assert recorder.observations[-1].outcome == "ConnectionClosedError"


def test_a_transaction_is_re_sent_with_the_same_token(server: Scripted, recorder: Recorder) -> None:
    server.script = ["close", ok({})]
    client_for(server.endpoint, recorder).call(
        "TransactWriteItems", {"TransactItems": [{"Delete": {"TableName": "t", "Key": {"PK": {"S": "a"}}}}]})
    tokens = [json.loads(body)["ClientRequestToken"] for _, body in server.seen]
    assert len(tokens) == 2 and tokens[0] == tokens[1]


def test_a_refused_connection_is_reported_as_nothing_sent(recorder: Recorder) -> None:
    probe = Scripted()  # bind, then close: nothing listens on that port any more
    endpoint = probe.endpoint
    probe.server_close()
    with pytest.raises(EndpointConnectionError) as raised:
        client_for(endpoint, recorder, attempts=2).call("PutItem", {"TableName": "t", "Item": {}})
    assert nothing_sent(raised.value)
    assert len(recorder.delays) == 1


def test_every_call_asks_for_capacity_by_index_when_told(server: Scripted, recorder: Recorder) -> None:
    client = client_for(server.endpoint, recorder, return_consumed_capacity="INDEXES")
    client.call("GetItem", GET)
    client.call("GetItem", {**GET, "ReturnConsumedCapacity": "NONE"})
    sent = [json.loads(body).get("ReturnConsumedCapacity") for _, body in server.seen]
    assert sent == ["INDEXES", "NONE"]


def test_refreshing_credentials_are_read_at_every_attempt(server: Scripted, recorder: Recorder) -> None:
    issued: list[str] = []

    def refresh() -> dict[str, str]:
        issued.append(f"AKID{len(issued)}")
        soon = datetime.now(UTC) + timedelta(minutes=5)  # inside the mandatory refresh window
        return {"access_key": issued[-1], "secret_key": "secret", "token": "token",
                "expiry_time": soon.strftime("%Y-%m-%dT%H:%M:%SZ")}

    class Session:
        def get_config_variable(self, name: str) -> None:
            return None

        def get_credentials(self) -> RefreshableCredentials:
            return RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")

    server.script = [error("ThrottlingException"), ok({})]
    client_for(server.endpoint, recorder, session=Session()).call("GetItem", GET)
    keys = [headers["Authorization"].split("Credential=")[1].split("/")[0] for headers, _ in server.seen]
    assert len(set(keys)) == 2 and all(key in issued for key in keys)
    assert all(headers["X-Amz-Security-Token"] == "token" for headers, _ in server.seen)


def test_an_observer_that_fails_does_not_fail_the_call(server: Scripted, recorder: Recorder) -> None:
    def broken(_: engine.Observation) -> None:
        raise RuntimeError("exporter down")

    engine.observers.append(broken)
    try:
        assert "ResponseMetadata" in client_for(server.endpoint, recorder).call("GetItem", GET)
    finally:
        engine.observers.remove(broken)
