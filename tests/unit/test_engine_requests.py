"""The engine's requests are botocore's: body, target, URL, dates and signature, for every operation.

A real botocore client builds each request and hands it to a ``before-send`` hook, which answers
instead of the network; the engine builds the same request and both are compared. Parameters are
drawn by hypothesis (binary values included), at a fixed time and fixed credentials.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.auth
import botocore.config
import botocore.session
import pytest
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ParamValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine import requests
from core.engine.signing import sign
from tests.helpers import RawBody, on

FIXED_TIME = dt.datetime(2025, 3, 1, 12, 34, 56, tzinfo=dt.UTC)
AMZ_DATE = "20250301T123456Z"
FIXED_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
ACCESS_KEY, SECRET_KEY, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session/token+="

# --- strategies ----------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=6)
numbers = st.integers(-(10**30), 10**30).map(str) | st.decimals(allow_nan=False, allow_infinity=False,
                                                                 places=4).map(str)
scalar_values = st.one_of(
    st.builds(lambda v: {"S": v}, st.text(max_size=12)),
    st.builds(lambda v: {"N": v}, numbers),
    st.builds(lambda v: {"B": v}, st.binary(max_size=12)),
    st.builds(lambda v: {"SS": v}, st.lists(st.text(max_size=5), min_size=1, max_size=3, unique=True)),
    st.builds(lambda v: {"NS": v}, st.lists(numbers, min_size=1, max_size=3, unique=True)),
    st.builds(lambda v: {"BS": v}, st.lists(st.binary(max_size=5), min_size=1, max_size=3, unique=True)),
    st.just({"NULL": True}),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
)
attribute_values = st.recursive(
    scalar_values,
    lambda inner: st.builds(lambda v: {"M": v}, st.dictionaries(names, inner, max_size=3))
    | st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
    max_leaves=8,
)
items = st.dictionaries(names, attribute_values, min_size=1, max_size=4)
keys = st.dictionaries(st.sampled_from(["PK", "SK"]), scalar_values, min_size=1, max_size=2)
tables = st.text(st.characters(whitelist_categories=["Lu", "Ll", "Nd"]), min_size=3, max_size=10)
expression_names = st.dictionaries(names.map(lambda n: f"#{n}"), names, min_size=1, max_size=2)
expression_values = st.dictionaries(names.map(lambda n: f":{n}"), attribute_values, min_size=1, max_size=2)


def with_optional(required: dict[str, Any],
                  optional: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """``required`` (values are strategies) plus any subset of ``optional``."""
    return st.fixed_dictionaries(required, optional=optional)


_WRITE_OPTIONS = {
    "ConditionExpression": st.text(max_size=10),
    "ExpressionAttributeNames": expression_names,
    "ExpressionAttributeValues": expression_values,
    "ReturnValues": st.sampled_from(["NONE", "ALL_OLD"]),
    "ReturnConsumedCapacity": st.sampled_from(["INDEXES", "TOTAL", "NONE"]),
    "ReturnItemCollectionMetrics": st.sampled_from(["SIZE", "NONE"]),
    "ReturnValuesOnConditionCheckFailure": st.sampled_from(["ALL_OLD", "NONE"]),
    "Expected": st.dictionaries(names, st.fixed_dictionaries({"Value": attribute_values}), max_size=2),
}
_PAGE_OPTIONS = {
    "IndexName": names,
    "Limit": st.integers(1, 1000),
    "ExclusiveStartKey": keys,
    "FilterExpression": st.text(max_size=10),
    "ProjectionExpression": st.text(max_size=10),
    "ExpressionAttributeNames": expression_names,
    "ExpressionAttributeValues": expression_values,
    "ReturnConsumedCapacity": st.sampled_from(["INDEXES", "TOTAL"]),
    "ConsistentRead": st.booleans(),
}
_transact_write = st.one_of(
    st.fixed_dictionaries({"Put": st.fixed_dictionaries(
        {"TableName": tables, "Item": items}, optional={"ExpressionAttributeValues": expression_values})}),
    st.fixed_dictionaries({"Update": st.fixed_dictionaries({"TableName": tables, "Key": keys,
                                                           "UpdateExpression": st.text(max_size=8)})}),
    st.fixed_dictionaries({"Delete": st.fixed_dictionaries({"TableName": tables, "Key": keys})}),
    st.fixed_dictionaries({"ConditionCheck": st.fixed_dictionaries(
        {"TableName": tables, "Key": keys, "ConditionExpression": st.text(max_size=8)},
        optional={"ExpressionAttributeValues": expression_values})}),
)
PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "GetItem": with_optional({"TableName": tables, "Key": keys},
                             {"ConsistentRead": st.booleans(), "ProjectionExpression": st.text(max_size=8),
                              "ExpressionAttributeNames": expression_names,
                              "ReturnConsumedCapacity": st.sampled_from(["INDEXES", "TOTAL"])}),
    "PutItem": with_optional({"TableName": tables, "Item": items}, _WRITE_OPTIONS),
    "UpdateItem": with_optional({"TableName": tables, "Key": keys},
                                {**_WRITE_OPTIONS, "UpdateExpression": st.text(max_size=10),
                                 "AttributeUpdates": st.dictionaries(names, st.fixed_dictionaries(
                                     {"Value": attribute_values, "Action": st.just("PUT")}), max_size=2)}),
    "DeleteItem": with_optional({"TableName": tables, "Key": keys}, _WRITE_OPTIONS),
    "Query": with_optional({"TableName": tables, "KeyConditionExpression": st.text(max_size=10)},
                           {**_PAGE_OPTIONS, "ScanIndexForward": st.booleans()}),
    "Scan": with_optional({"TableName": tables},
                          {**_PAGE_OPTIONS, "Segment": st.integers(0, 3), "TotalSegments": st.just(4)}),
    "BatchGetItem": with_optional(
        {"RequestItems": st.dictionaries(tables, st.fixed_dictionaries(
            {"Keys": st.lists(keys, min_size=1, max_size=3)}, optional={"ConsistentRead": st.booleans()}),
            min_size=1, max_size=2)},
        {"ReturnConsumedCapacity": st.sampled_from(["INDEXES", "TOTAL"])}),
    "BatchWriteItem": with_optional(
        {"RequestItems": st.dictionaries(tables, st.lists(st.one_of(
            st.fixed_dictionaries({"PutRequest": st.fixed_dictionaries({"Item": items})}),
            st.fixed_dictionaries({"DeleteRequest": st.fixed_dictionaries({"Key": keys})}),
        ), min_size=1, max_size=3), min_size=1, max_size=2)},
        {"ReturnConsumedCapacity": st.sampled_from(["INDEXES", "TOTAL"]),
         "ReturnItemCollectionMetrics": st.just("SIZE")}),
    "TransactGetItems": with_optional(
        {"TransactItems": st.lists(st.fixed_dictionaries({"Get": st.fixed_dictionaries(
            {"TableName": tables, "Key": keys})}), min_size=1, max_size=3)},
        {"ReturnConsumedCapacity": st.sampled_from(["INDEXES", "TOTAL"])}),
    "TransactWriteItems": with_optional(
        {"TransactItems": st.lists(_transact_write, min_size=1, max_size=3)},
        {"ClientRequestToken": st.uuids().map(str), "ReturnConsumedCapacity": st.just("INDEXES")}),
}
OPERATIONS = sorted(PARAMS)

# --- botocore, captured --------------------------------------------------------------------------


class Captured:
    """A botocore client whose requests are kept and answered with ``{}`` instead of being sent."""

    def __init__(self, endpoint_url: str | None, token: str | None) -> None:
        self.requests: list[Any] = []
        self.client = botocore.session.get_session().create_client(
            "dynamodb", region_name="us-east-1", endpoint_url=endpoint_url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, aws_session_token=token,
            config=botocore.config.Config(parameter_validation=False,
                                          retries={"mode": "standard", "total_max_attempts": 1}),
        )
        on(self.client, "before-send.dynamodb", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        self.requests.append(request)
        return AWSResponse(request.url, 200, {}, RawBody(b"{}"))

    def send(self, operation: str, params: dict[str, Any]) -> Any:
        getattr(self.client, xform_name(operation))(**copy.deepcopy(params))
        return self.requests.pop()


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore signs at ``FIXED_TIME``; generated idempotency tokens are ``FIXED_UUID``."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FIXED_TIME.replace(tzinfo=None))
    monkeypatch.setattr(uuid, "uuid4", lambda: FIXED_UUID)


@pytest.fixture(scope="module", params=[
    (None, None), ("http://127.0.0.1:8000", "session/token+="), ("https://localhost:8443", None),
], ids=["aws", "local-with-token", "https-port"])
def captured(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Captured, requests.Endpoint, ReadOnlyCredentials]]:
    """A captured botocore client, and the engine's endpoint and credentials for the same settings."""
    endpoint_url, token = request.param
    endpoint = requests.endpoint_for(endpoint_url, "us-east-1")
    yield Captured(endpoint_url, token), endpoint, ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, token)


_SIGNED = re.compile(r"SignedHeaders=([^,]+)")


def text(value: str | bytes) -> str:
    """A header value as text (botocore's prepared request holds bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def assert_same_request(botocore_request: Any, ours: requests.Request, credentials: ReadOnlyCredentials,
                        region: str = "us-east-1") -> None:
    """Same method, URL, body, target, type, date, token; and the signature botocore computed is the
    one the engine's signer computes over the headers botocore signed."""
    assert ours.method == botocore_request.method
    assert ours.url == botocore_request.url
    assert ours.body == botocore_request.body
    sent = {name: text(value) for name, value in botocore_request.headers.items()}
    for name in ("X-Amz-Target", "Content-Type", "X-Amz-Date", "X-Amz-Security-Token"):
        assert ours.headers.get(name) == sent.get(name), name
    authorization = sent["Authorization"]
    signed_names = _SIGNED.search(authorization)[1].split(";")  # type: ignore[index]
    headers = {name: value for name, value in sent.items() if name.lower() in signed_names}
    again = sign(botocore_request.method, botocore_request.url, headers, botocore_request.body,
                 access_key=credentials.access_key, secret_key=credentials.secret_key,
                 amz_date=AMZ_DATE, region=region)
    assert again.authorization == authorization


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_is_sent_as_botocore_sends_it(
    operation: str, captured: tuple[Captured, requests.Endpoint, ReadOnlyCredentials], frozen: None,
) -> None:
    client, endpoint, credentials = captured

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
    @given(params=PARAMS[operation])
    def check(params: dict[str, Any]) -> None:
        ours = requests.build(operation, params, endpoint=endpoint, credentials=credentials,
                              amz_date=AMZ_DATE)
        assert_same_request(client.send(operation, params), ours, credentials)

    check()


def test_a_string_under_b_is_encoded_as_botocore_encodes_it(
    captured: tuple[Captured, requests.Endpoint, ReadOnlyCredentials], frozen: None,
) -> None:
    client, endpoint, credentials = captured
    item = {"PK": {"S": "k"}, "data": {"B": "héllo"}, "set": {"BS": ["a", b"b"]}}
    params = {"TableName": "t", "Item": item}
    ours = requests.build("PutItem", params, endpoint=endpoint, credentials=credentials, amz_date=AMZ_DATE)
    assert_same_request(client.send("PutItem", params), ours, credentials)


def test_an_attribute_named_b_is_not_mistaken_for_a_binary_value(
    captured: tuple[Captured, requests.Endpoint, ReadOnlyCredentials], frozen: None,
) -> None:
    client, endpoint, credentials = captured
    params = {"RequestItems": {"B": [{"PutRequest": {"Item": {"B": {"S": "x"}, "BS": {"N": "1"}}}}]}}
    ours = requests.build("BatchWriteItem", params, endpoint=endpoint, credentials=credentials,
                          amz_date=AMZ_DATE)
    assert_same_request(client.send("BatchWriteItem", params), ours, credentials)


def test_a_transaction_without_a_token_gets_one_that_every_attempt_reuses(frozen: None) -> None:
    params = {"TransactItems": [{"Delete": {"TableName": "t", "Key": {"PK": {"S": "a"}}}}]}
    body = requests.serialize("TransactWriteItems", params)
    assert body.endswith(f'"ClientRequestToken": "{FIXED_UUID}"}}'.encode())
    assert "ClientRequestToken" not in params  # the caller's parameters are left alone


def test_an_unknown_parameter_or_operation_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ParamValidationError, match="Unknown parameter in input: 'Tablename'"):
        requests.serialize("GetItem", {"Tablename": "t", "Key": {}})
    with pytest.raises(ValueError, match="not a DynamoDB data-plane operation"):
        requests.serialize("CreateTable", {"TableName": "t"})


@pytest.mark.parametrize(("endpoint_url", "url", "host"), [
    (None, "https://dynamodb.eu-west-1.amazonaws.com/", "dynamodb.eu-west-1.amazonaws.com"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/", "127.0.0.1:8000"),
    ("http://LOCALHOST:80/", "http://LOCALHOST:80/", "localhost"),
    ("https://[::1]:8443", "https://[::1]:8443/", "[::1]:8443"),
    ("https://proxy.example/dynamodb", "https://proxy.example/dynamodb", "proxy.example"),
])
def test_the_endpoint_comes_from_the_settings_as_botocore_joins_it(endpoint_url: str | None, url: str,
                                                                   host: str) -> None:
    endpoint = requests.endpoint_for(endpoint_url, "eu-west-1")
    assert (endpoint.url, endpoint.host, endpoint.region) == (url, host, "eu-west-1")

