"""The engine decodes an answer into exactly what botocore's client returns, or raises the same error.

A botocore client is answered by a ``before-send`` hook with a drawn status, headers and body; the
engine decodes the same answer; results (and ``ClientError.response`` and message) are compared.
Bodies are drawn from the declared plans (every member, binary values, big numbers, ``null``s), and
from noise (unknown members, wrong types, several members in one attribute value, HTML pages).
"""

from __future__ import annotations

import base64
import json
from binascii import crc32
from typing import Any

import botocore.config
import botocore.session
import pytest
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.engine import requests, shapes
from core.engine.shapes import AV, BLOB, ListOf, MapOf, Plan, Struct
from tests.helpers import RawBody, on

REQUEST = {  # any valid request: the answer alone is under test
    "GetItem": {"TableName": "t", "Key": {"PK": {"S": "a"}}},
    "PutItem": {"TableName": "t", "Item": {"PK": {"S": "a"}}},
    "UpdateItem": {"TableName": "t", "Key": {"PK": {"S": "a"}}},
    "DeleteItem": {"TableName": "t", "Key": {"PK": {"S": "a"}}},
    "Query": {"TableName": "t"},
    "Scan": {"TableName": "t"},
    "BatchGetItem": {"RequestItems": {"t": {"Keys": [{"PK": {"S": "a"}}]}}},
    "BatchWriteItem": {"RequestItems": {"t": [{"DeleteRequest": {"Key": {"PK": {"S": "a"}}}}]}},
    "TransactGetItems": {"TransactItems": [{"Get": {"TableName": "t", "Key": {"PK": {"S": "a"}}}}]},
    "TransactWriteItems": {"TransactItems": [{"Delete": {"TableName": "t", "Key": {"PK": {"S": "a"}}}}],
                           "ClientRequestToken": "token"},
}
OPERATIONS = sorted(REQUEST)

# --- strategies ----------------------------------------------------------------------------------

names = st.text(max_size=5)
base64_text = st.binary(max_size=10).map(lambda data: base64.b64encode(data).decode())
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=6),
                         st.floats(allow_nan=False, allow_infinity=False))
noise = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(names, inner, max_size=3), max_leaves=6)
numbers = st.integers(-(10**20), 10**20).map(str)
wire_scalar_values = st.one_of(
    st.builds(lambda v: {"S": v}, st.text(max_size=8)),
    st.builds(lambda v: {"N": v}, numbers),
    st.builds(lambda v: {"B": v}, base64_text),
    st.builds(lambda v: {"SS": v}, st.lists(st.text(max_size=4), max_size=3)),
    st.builds(lambda v: {"NS": v}, st.lists(numbers, max_size=3)),
    st.builds(lambda v: {"BS": v}, st.lists(base64_text, max_size=3)),
    st.builds(lambda v: {"NULL": v}, st.booleans()),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
)
odd_values = st.one_of(  # what DynamoDB does not send, but a parser must survive or refuse alike
    st.dictionaries(st.sampled_from(["S", "N", "B", "BOOL", "NULL", "X", "__type"]),
                    st.one_of(st.none(), st.text(max_size=3), base64_text, st.booleans()), max_size=3),
    st.builds(lambda v: {"S": v}, json_scalars),
    st.builds(lambda v: {"L": v}, st.lists(st.none() | wire_scalar_values, max_size=2)),
)


def wire_values(odd: bool) -> st.SearchStrategy[Any]:
    """Attribute values as DynamoDB sends them (binary as base64), optionally with odd ones mixed in."""
    leaves = st.one_of(wire_scalar_values, odd_values) if odd else wire_scalar_values
    return st.recursive(
        leaves,
        lambda inner: st.builds(lambda v: {"M": v}, st.dictionaries(names, inner, max_size=3))
        | st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
        max_leaves=8,
    )


def from_plan(plan: Plan, odd: bool) -> st.SearchStrategy[Any]:
    """JSON values of the shape ``plan`` describes (with ``odd``: nulls, noise and unknown members)."""
    extra = (noise,) if odd else ()
    if isinstance(plan, Struct):
        optional = {name: from_plan(member, odd) for name, member in plan.members}
        if odd:
            optional["Unmodeled"] = noise
        return st.fixed_dictionaries({}, optional=optional)
    if isinstance(plan, MapOf):
        return st.dictionaries(names, from_plan(plan.value, odd), max_size=3)
    if isinstance(plan, ListOf):
        return st.lists(st.one_of(from_plan(plan.member, odd), *([st.none()] if odd else [])), max_size=3)
    if plan == AV:
        return wire_values(odd)
    if plan == BLOB:
        return base64_text
    return st.one_of(st.text(max_size=6), st.integers(0, 2**66), st.floats(0, 1e6), st.booleans(), *extra)


_ERROR_CODES = [*sorted(shapes.ERRORS), "ValidationException", "UnrecognizedClientException",
                "SerializationException", "RequestTimeout"]


@st.composite
def error_answers(draw: st.DrawFn) -> tuple[int, dict[str, str], bytes]:
    """A DynamoDB error answer (sometimes a proxy's page, an empty body or text)."""
    status = draw(st.sampled_from([400, 400, 404, 413, 429, 500, 502, 503, 504, 300, 301]))
    kind = draw(st.sampled_from(["json", "json", "json", "html", "empty", "text"]))
    if kind == "html":
        body = b"<html><body>Service Unavailable</body></html>"
    elif kind == "empty":
        body = b""
    elif kind == "text":
        body = draw(st.text(max_size=20)).encode()
    else:
        code = draw(st.sampled_from(_ERROR_CODES))
        prefix = draw(st.sampled_from(["", "com.amazonaws.dynamodb.v20120810#", "x#y#"]))
        suffix = draw(st.sampled_from(["", ":http://internal"]))
        document: dict[str, Any] = {"__type": f"{prefix}{code}{suffix}"}
        document.update(draw(from_plan(shapes.ERRORS.get(code, Struct((("message", "raw"),))), odd=False)))
        if draw(st.booleans()):
            document["Message" if "message" in document else "message"] = draw(st.text(max_size=10))
        body = json.dumps(document).encode()
    return status, draw(headers_for(body)), body


@st.composite
def headers_for(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """The headers DynamoDB sends (request id, CRC32), in any case, sometimes without them."""
    headers = {"Content-Type": "application/x-amz-json-1.0", "Date": "Sat, 01 Mar 2025 12:00:00 GMT"}
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["x-amzn-RequestId", "X-AMZN-REQUESTID"]))] = "REQ" + draw(st.text(
            st.characters(min_codepoint=65, max_codepoint=90), max_size=8))
    if draw(st.booleans()):
        headers["x-amz-crc32"] = str(crc32(body) & 0xFFFFFFFF)
    return headers


# --- botocore, answered --------------------------------------------------------------------------


class Answered:
    """A botocore client (one attempt, no validation) whose answers come from the test."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        self.client = botocore.session.get_session().create_client(
            "dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:1", aws_access_key_id="a",
            aws_secret_access_key="s", config=botocore.config.Config(
                parameter_validation=False, retries={"mode": "standard", "total_max_attempts": 1}),
        )
        on(self.client, "before-send.dynamodb", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        status, headers, body = self.answer
        return AWSResponse(request.url, status, headers, RawBody(body))

    def call(self, operation: str) -> tuple[str, Any]:
        try:
            return "ok", getattr(self.client, xform_name(operation))(**REQUEST[operation])
        except ClientError as exc:
            return "error", (exc.response, str(exc))
        except Exception as exc:  # botocore's own walk failed on a malformed body
            return "raised", type(exc).__name__


@pytest.fixture(scope="module")
def botocore_client() -> Answered:
    """One answered botocore client for the module."""
    return Answered()


def engine(operation: str, status: int, headers: dict[str, str], body: bytes) -> tuple[str, Any]:
    """The engine's decoding of the answer, as ``Answered.call`` reports botocore's."""
    try:  # botocore's one attempt is its last: it notes MaxAttemptsReached
        return "ok", requests.decode(operation, status, headers, body,
                                     retry_metadata={"MaxAttemptsReached": True})
    except ClientError as exc:
        return "error", (exc.response, str(exc))
    except ResponseParserError:
        return "raised", "ResponseParserError"


def assert_same(botocore_client: Answered, operation: str, status: int, headers: dict[str, str],
                body: bytes) -> None:
    botocore_client.answer = (status, headers, body)
    theirs = botocore_client.call(operation)
    ours = engine(operation, status, headers, body)
    if theirs[0] == "raised":
        assert ours[0] == "raised", (theirs, ours)
    else:
        assert ours == theirs


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("operation", OPERATIONS)
def test_successful_answers_decode_as_botocore_decodes_them(operation: str,
                                                            botocore_client: Answered) -> None:
    @_SETTINGS
    @given(document=from_plan(shapes.OUTPUTS[operation], odd=False), data=st.data())
    def check(document: dict[str, Any], data: st.DataObject) -> None:
        body = json.dumps(document).encode()
        assert_same(botocore_client, operation, 200, data.draw(headers_for(body)), body)

    check()


@pytest.mark.parametrize("operation", OPERATIONS)
def test_odd_successful_answers_decode_or_fail_as_botocore_does(operation: str,
                                                                botocore_client: Answered) -> None:
    @_SETTINGS
    @given(document=from_plan(shapes.OUTPUTS[operation], odd=True) | noise, data=st.data())
    @example(document={"Item": {"a": {"S": "x", "N": "1"}}, "Count": 2**65}, data=None)
    def check(document: Any, data: st.DataObject | None) -> None:
        body = json.dumps(document).encode()
        headers = data.draw(headers_for(body)) if data is not None else {}
        assert_same(botocore_client, operation, 200, headers, body)

    check()


@pytest.mark.parametrize("operation", OPERATIONS)
def test_error_answers_raise_the_client_error_botocore_raises(operation: str,
                                                              botocore_client: Answered) -> None:
    @_SETTINGS
    @given(answer=error_answers())
    def check(answer: tuple[int, dict[str, str], bytes]) -> None:
        assert_same(botocore_client, operation, *answer)

    check()


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b"not json", b"\xff\xfe", b'{"Items": "x"}',
                                  b'{"Count": NaN}', b'{"Item": {"a": {"S": "\\ud800"}}}'])
def test_bodies_that_are_not_dynamodbs_end_as_in_botocore(body: bytes, botocore_client: Answered) -> None:
    for operation in ("GetItem", "Query"):
        assert_same(botocore_client, operation, 200, {}, body)


def test_a_cancelled_transaction_keeps_its_reasons_and_items(botocore_client: Answered) -> None:
    body = json.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                   "[ConditionalCheckFailed, None]",
        "CancellationReasons": [
            {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
             "Item": {"PK": {"S": "a"}, "Blob": {"B": "AAE="}}},
            {"Code": "None"},
        ],
    }).encode()
    headers = {"x-amzn-RequestId": "REQ1", "x-amz-crc32": str(crc32(body))}
    assert_same(botocore_client, "TransactWriteItems", 400, headers, body)
    _, (response, _) = engine("TransactWriteItems", 400, headers, body)
    assert response["CancellationReasons"][0]["Item"]["Blob"] == {"B": b"\x00\x01"}
    assert response["Error"]["Code"] == "TransactionCanceledException"


def test_items_decode_in_place_with_binary_values_as_bytes() -> None:
    body = json.dumps({"Items": [{"b": {"B": "AAE="}, "bs": {"BS": ["AQ=="]},
                                  "m": {"M": {"l": {"L": [{"B": "Ag=="}, {"NULL": True}]}}}}],
                       "Count": 1, "ScannedCount": 3}).encode()
    result = requests.decode("Query", 200, {"x-amzn-RequestId": "R"}, body, retries=2)
    assert result["Items"] == [{"b": {"B": b"\x00\x01"}, "bs": {"BS": [b"\x01"]},
                                "m": {"M": {"l": {"L": [{"B": b"\x02"}, {"NULL": True}]}}}}]
    assert result["ResponseMetadata"] == {"RequestId": "R", "HTTPStatusCode": 200,
                                          "HTTPHeaders": {"x-amzn-requestid": "R"}, "RetryAttempts": 2}
