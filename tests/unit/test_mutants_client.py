"""core.client: what the clients are configured with shows on the wire, for raw and model clients.

``test_retry`` checks the retry configuration's value; these tests check its effect: a
``ThrottlingException`` (answered by a ``before-send`` hook, ahead of moto) is retried exactly the
configured number of times, so with retries off (``mode: legacy, max_attempts: 0``) the call
raises, and with botocore's defaults (10 attempts for DynamoDB) it would not give up when told to.
Also: the timeouts reach every client, raw clients validate what they send (the models' client
does not), and the models share one client per settings, in a bounded registry.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError, ParamValidationError
from botocore.retries import standard

import core.client
from core.client import MAX_POOL_CONNECTIONS, lean_client, model_client, new_client
from core.config import Settings, get_settings
from models import Product
from tests.helpers import RawBody, off, on, raw_get


class Throttle:
    """A ``before-send`` hook: the first ``times`` requests get a throttling error, the rest reach moto."""

    def __init__(self, times: int = 1) -> None:
        self.times = times
        self.sent: list[str] = []

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent.append(request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1])
        if len(self.sent) > self.times:
            return None  # moto answers
        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                           "message": "Rate of requests exceeds the allowed throughput."}).encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 400, headers, RawBody(body))


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard mode waits up to a second before its first retry; these tests need not."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def throttle_once() -> Throttle:
    """A fresh hook throttling one request; each test registers it on the client it exercises."""
    return Throttle()


def test_a_raw_client_retries_a_throttled_call_and_succeeds(
    moto_table: Settings, no_backoff: None, throttle_once: Throttle
) -> None:
    client = new_client(moto_table)
    on(client, "before-send.dynamodb", throttle_once, first=True)
    response = client.describe_table(TableName=moto_table.table_name)
    assert response["Table"]["TableName"] == moto_table.table_name
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert throttle_once.sent == ["DescribeTable", "DescribeTable"]


def test_a_model_write_through_the_shared_client_is_retried_after_throttling(
    moto_table: Settings, no_backoff: None, throttle_once: Throttle
) -> None:
    client = Product._get_connection().connection.client
    on(client, "before-send.dynamodb", throttle_once, first=True)
    product_id = uuid.uuid4().hex
    try:
        Product(product_id=product_id, name="Lamp", price=Decimal("9.99")).save()
    finally:
        off(client, "before-send.dynamodb", throttle_once)
    assert len(throttle_once.sent) == 2 and throttle_once.sent[0] == throttle_once.sent[1]
    stored = raw_get(moto_table, Product, product_id=product_id)
    assert stored is not None and stored["Name"] == {"S": "Lamp"} and stored["Price"] == {"N": "9.99"}


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_a_throttled_call_is_retried_as_many_times_as_configured_and_no_more(
    moto_table: Settings, no_backoff: None, monkeypatch: pytest.MonkeyPatch, retries: int
) -> None:
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", str(retries))
    settings = get_settings()
    enough, too_many = Throttle(times=retries), Throttle(times=retries + 1)
    client = new_client(settings)
    on(client, "before-send.dynamodb", enough, first=True)
    response = client.describe_table(TableName=settings.table_name)
    assert response["ResponseMetadata"]["RetryAttempts"] == retries
    client = new_client(settings)
    on(client, "before-send.dynamodb", too_many, first=True)
    with pytest.raises(ClientError) as raised:
        client.describe_table(TableName=settings.table_name)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert len(too_many.sent) == retries + 1  # botocore's default for DynamoDB would be 10 attempts


def test_a_client_takes_its_timeouts_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAMODB_CONNECT_TIMEOUT_SECONDS", "7")
    monkeypatch.setenv("DYNAMODB_READ_TIMEOUT_SECONDS", "11")
    for client in (new_client(), model_client(get_settings())):
        assert client.meta.config.connect_timeout == 7 and client.meta.config.read_timeout == 11
        assert client.meta.config.max_pool_connections == MAX_POOL_CONNECTIONS


def get_with_a_mistyped_parameter(client: Any, settings: Settings) -> dict[str, Any]:
    key = {"PK": {"S": "nothing"}, "SK": {"S": "here"}}
    response: dict[str, Any] = client.get_item(TableName=settings.table_name, Key=key, ConsistentRead="yes")
    return response


def test_a_client_validates_what_it_sends_unless_told_not_to(moto_table: Settings) -> None:
    with pytest.raises(ParamValidationError, match="ConsistentRead"):  # refused before anything is sent
        get_with_a_mistyped_parameter(new_client(moto_table), moto_table)
    assert "Item" not in get_with_a_mistyped_parameter(new_client(moto_table, validate=False), moto_table)


def test_the_models_client_leaves_the_requests_pynamodb_builds_unvalidated(moto_table: Settings) -> None:
    client = Product._get_connection().connection.client
    assert client is model_client(moto_table)
    assert "Item" not in get_with_a_mistyped_parameter(client, moto_table)


def test_model_client_builds_one_client_per_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Settings | None] = []

    def counting_new_client(settings: Settings | None = None, *, validate: bool = True) -> Any:
        built.append(settings)
        return new_client(settings, validate=validate)

    def counting_lean_client(settings: Settings) -> Any:
        built.append(settings)
        return lean_client(settings)

    monkeypatch.setattr(core.client, "new_client", counting_new_client)
    monkeypatch.setattr(core.client, "lean_client", counting_lean_client)
    settings = dataclasses.replace(get_settings(), read_timeout_seconds=1000 + uuid.uuid4().int % 1000)
    first = model_client(settings)
    assert model_client(settings) is first and model_client(dataclasses.replace(settings)) is first
    assert built == [settings]  # a client (and its connection pool) is built once, on either transport


def test_model_clients_stay_bounded_when_settings_keep_changing() -> None:
    sizes = []
    for seconds in range(2000, 2020):
        model_client(dataclasses.replace(get_settings(), read_timeout_seconds=float(seconds)))
        sizes.append(len(core.client._model_clients))
    assert max(sizes) == 16 and sizes[-1] <= 16
