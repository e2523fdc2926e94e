"""core.fast_parse: successful reads decode to exactly what botocore's parser returns, faster.

Every test answers requests with a canned HTTP response (a ``before-send`` hook: nothing leaves
the process) on two clients: one built by ``core.client.new_client`` (the fast path installed) and
a plain botocore client with the same configuration. Both must give the same result, compared by
value and by ``repr`` (key order and types: ``bytes`` against ``str``, ``1`` against ``1.0``), or
the same exception. A spy on botocore's ``JSONParser.parse`` shows which bodies botocore saw, so a
test also fails if the fast path is never taken.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import botocore.config
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.retries import standard
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.client import model_client, new_client, retry_config
from core.config import Settings, get_settings
from core.engine.sync import LeanClient
from core.fast_parse import install, is_installed
from tests.helpers import RawBody, on

ENDPOINT = "http://127.0.0.1:1"  # never reached: the canned responder answers first
TABLE = "fast-parse"
REQUEST_ID = "REQ1234567890ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789AB"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- canned responses --------------------------------------------------------------------------


class Canned:
    """A ``before-send`` hook answering every request with one HTTP response."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        self.crc32: str | None = None  # None: the right checksum
        self.sent: list[str] = []

    def answer(self, body: Any, *, status: int = 200, crc32: str | None = None) -> None:
        """Answer with ``body`` (bytes as they are, anything else as DynamoDB's JSON)."""
        self.body = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        self.status = status
        self.crc32 = crc32

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.sent.append(request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1])
        headers = HTTPHeaders()
        headers["Server"] = "Server"
        headers["Date"] = "Mon, 01 Sep 2025 12:00:00 GMT"
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["Content-Length"] = str(len(self.body))
        headers["Connection"] = "keep-alive"
        headers["x-amzn-RequestId"] = REQUEST_ID
        headers["x-amz-crc32"] = self.crc32 or str(zlib.crc32(self.body) & 0xFFFFFFFF)
        return AWSResponse(request.url, self.status, headers, RawBody(self.body))


class Clients:
    """The fast client and a plain botocore client, both answered by one ``Canned`` hook."""

    def __init__(self, settings: Settings) -> None:
        self.canned = Canned()
        self.fast = new_client(settings)
        config = botocore.config.Config(retries=retry_config(settings))  # type: ignore[arg-type]
        self.plain = botocore.session.get_session().create_client(
            "dynamodb", region_name=settings.region, endpoint_url=ENDPOINT, config=config
        )
        for client in (self.fast, self.plain):
            on(client, "before-send.dynamodb", self.canned, first=True)  # type: ignore[arg-type]

    def both(self, operation: str, **params: Any) -> tuple[Any, Any]:
        """The outcome of ``operation`` on each client: its result, or its exception described."""
        return outcome(self.fast, operation, params), outcome(self.plain, operation, params)

    def same(self, body: Any, operation: str = "Query", *, status: int = 200, **params: Any) -> Any:
        """Answer with ``body``; assert that both clients give the same outcome; return it."""
        self.canned.answer(body, status=status)
        fast, plain = self.both(operation, **(params or DEFAULT_PARAMS[operation]))
        assert fast == plain
        assert repr(fast) == repr(plain)
        return fast


DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "GetItem": {"TableName": TABLE, "Key": {"PK": {"S": "k"}, "SK": {"S": "k"}}},
    "Query": {"TableName": TABLE, "KeyConditionExpression": "PK = :pk",
              "ExpressionAttributeValues": {":pk": {"S": "k"}}},
    "Scan": {"TableName": TABLE},
    "BatchGetItem": {"RequestItems": {TABLE: {"Keys": [{"PK": {"S": "k"}, "SK": {"S": "k"}}]}}},
    "PutItem": {"TableName": TABLE, "Item": {"PK": {"S": "k"}, "SK": {"S": "k"}}, "ReturnValues": "ALL_OLD"},
    "DescribeTable": {"TableName": TABLE},
}


def outcome(client: Any, operation: str, params: dict[str, Any]) -> Any:
    method = getattr(client, _snake(operation))
    try:
        return ("ok", method(**params))
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc), getattr(exc, "response", None))


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard mode waits before a retry; these tests need not."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch, no_backoff: None) -> Clients:
    """A fast and a plain client on a loopback endpoint, answered by canned responses."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", ENDPOINT)
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "2")
    return Clients(get_settings())


# --- attribute values --------------------------------------------------------------------------

BLOB = bytes(range(256))
EVERY_TYPE: dict[str, Any] = {
    "PK": {"S": "USER#1"},
    "SK": {"S": "PROFILE"},
    "Unicode": {"S": "Zoë — 東京 Ωμέγα 🚀👩‍👩‍👧"},
    "Escapes": {"S": 'quote " backslash \\ slash / tab \t newline \n nul \u0000 bell \u0007 \u2028'},
    "Empty": {"S": ""},
    "Number": {"N": "-12.500"},
    "BigNumber": {"N": "99999999999999999999999999999999999999E+125"},
    "Binary": {"B": b64(BLOB)},
    "EmptyBinary": {"B": ""},
    "Strings": {"SS": ["a", "ü", "🚀"]},
    "Numbers": {"NS": ["1", "2.5", "-0.000001"]},
    "Binaries": {"BS": [b64(b"\x00"), b64(b"\xff\xfe"), b64(BLOB)]},
    "Null": {"NULL": True},
    "True": {"BOOL": True},
    "False": {"BOOL": False},
    "EmptyMap": {"M": {}},
    "EmptyList": {"L": []},
    "Map": {"M": {
        "Bin": {"B": b64(b"in a map")},
        "Set": {"BS": [b64(b"set in a map")]},
        "Name": {"S": "x"},
        "Inner": {"M": {"List": {"L": [{"B": b64(b"in a list in a map")}, {"S": "y"}, {"M": {}},
                                       {"BS": [b64(b"a"), b64(b"b")]}, {"NULL": True}]}}},
    }},
    "List": {"L": [{"N": "1"}, {"L": [{"B": b64(b"in a list in a list")}]}, {"BOOL": False}, {"SS": ["s"]}]},
}


def deep(levels: int) -> dict[str, Any]:
    """An attribute value nested ``levels`` deep, alternating maps and lists, binary at the bottom."""
    value: dict[str, Any] = {"M": {"B": {"B": b64(b"bottom")}, "BS": {"BS": [b64(b"bottom set")]}}}
    for level in range(levels):
        value = {"L": [value, {"B": b64(bytes([level]))}]} if level % 2 else {"M": {f"m{level}": value}}
    return value


def order(number: int) -> dict[str, Any]:
    """An order as the data layer stores it: string and number attributes only."""
    return {
        "PK": {"S": "USER#0f8fad5bd9cb469fa16570867728950e"},
        "SK": {"S": f"ORDER#01JNH2YQ{number:018d}"},
        "GSI1PK": {"S": "STATUS#PENDING"},
        "EntityType": {"S": "ORDER"},
        "UserId": {"S": "0f8fad5bd9cb469fa16570867728950e"},
        "OrderId": {"S": f"01JNH2YQ{number:018d}"},
        "Amount": {"N": f"{number}.99"},
        "Status": {"S": "PENDING"},
        "CreatedAt": {"S": "2025-03-01T12:00:00+00:00"},
        "UpdatedAt": {"S": "2025-03-01T12:00:00+00:00"},
        "Version": {"N": "1"},
    }


CAPACITY = {
    "TableName": TABLE,
    "CapacityUnits": 1.5,
    "ReadCapacityUnits": 1.5,
    "Table": {"CapacityUnits": 1.0, "ReadCapacityUnits": 1.0},
    "GlobalSecondaryIndexes": {"GSI1": {"CapacityUnits": 0.5, "ReadCapacityUnits": 0.5}},
}


# --- results equal botocore's ------------------------------------------------------------------


@pytest.mark.parametrize("ensure_ascii", [False, True], ids=["utf8", "escaped"])
def test_get_item_of_every_attribute_type_decodes_as_botocore_does(
    clients: Clients, ensure_ascii: bool
) -> None:
    body = json.dumps({"Item": EVERY_TYPE, "ConsumedCapacity": CAPACITY}, ensure_ascii=ensure_ascii).encode()
    result = clients.same(body, "GetItem")[1]
    item = result["Item"]
    assert item["Binary"] == {"B": BLOB} and item["EmptyBinary"] == {"B": b""}
    assert item["Binaries"] == {"BS": [b"\x00", b"\xff\xfe", BLOB]}
    assert item["Map"]["M"]["Inner"]["M"]["List"]["L"][0] == {"B": b"in a list in a map"}
    assert item["Unicode"] == EVERY_TYPE["Unicode"] and item["Escapes"] == EVERY_TYPE["Escapes"]
    assert result["ConsumedCapacity"] == CAPACITY
    metadata = result["ResponseMetadata"]
    assert metadata["RequestId"] == REQUEST_ID and metadata["HTTPStatusCode"] == 200
    assert metadata["RetryAttempts"] == 0 and metadata["HTTPHeaders"]["x-amzn-requestid"] == REQUEST_ID


@pytest.mark.parametrize("operation", ["Query", "Scan"])
def test_a_page_with_binary_keys_decodes_as_botocore_does(clients: Clients, operation: str) -> None:
    items = [EVERY_TYPE, order(1), {"PK": {"B": b64(b"binary key")}, "SK": {"N": "7"}}, {}]
    body = {
        "ConsumedCapacity": CAPACITY,  # not in botocore's order: the result must be
        "Count": 4,
        "Items": items,
        "LastEvaluatedKey": {"PK": {"B": b64(b"\x00last")}, "SK": {"B": b64(b"\xffkey")}},
        "ScannedCount": 10,
    }
    result = clients.same(body, operation)[1]
    assert list(result) == ["Items", "Count", "ScannedCount", "LastEvaluatedKey", "ConsumedCapacity",
                            "ResponseMetadata"]
    assert result["LastEvaluatedKey"] == {"PK": {"B": b"\x00last"}, "SK": {"B": b"\xffkey"}}
    assert result["Items"][2]["PK"] == {"B": b"binary key"} and result["Items"][3] == {}


def test_a_page_of_orders_decodes_as_botocore_does(clients: Clients) -> None:
    result = clients.same({"Items": [order(n) for n in range(100)], "Count": 100, "ScannedCount": 100})[1]
    assert result["Items"][99] == order(99)


def test_batch_get_responses_and_unprocessed_keys_decode_as_botocore_does(clients: Clients) -> None:
    body = {
        "Responses": {
            TABLE: [EVERY_TYPE, order(2), {"PK": {"B": b64(b"k")}, "Data": {"BS": [b64(b"d")]}}],
            "Other": [],
            "Orders": [order(3)],
        },
        "UnprocessedKeys": {
            TABLE: {"Keys": [{"PK": {"B": b64(b"unprocessed")}, "SK": {"S": "s"}}],
                    "ConsistentRead": True, "ProjectionExpression": "#a, SK",
                    "ExpressionAttributeNames": {"#a": "Data"}},
        },
        "ConsumedCapacity": [CAPACITY, {"TableName": "Other", "CapacityUnits": 0}],
    }
    result = clients.same(body, "BatchGetItem")[1]
    assert result["Responses"][TABLE][2] == {"PK": {"B": b"k"}, "Data": {"BS": [b"d"]}}
    assert result["UnprocessedKeys"][TABLE]["Keys"] == [{"PK": {"B": b"unprocessed"}, "SK": {"S": "s"}}]
    assert result["ConsumedCapacity"][1] == {"TableName": "Other", "CapacityUnits": 0}


def test_deeply_nested_binary_decodes_as_botocore_does(clients: Clients) -> None:
    item = {"PK": {"S": "deep"}, "Deep": deep(30)}
    value = clients.same({"Item": item}, "GetItem")[1]["Item"]["Deep"]
    while "B" not in value.get("M", {}):
        value = value["M"][next(iter(value["M"]))] if "M" in value else value["L"][0]
    assert value["M"]["B"] == {"B": b"bottom"} and value["M"]["BS"] == {"BS": [b"bottom set"]}


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("GetItem", {}),
        ("GetItem", {"Item": {}}),
        ("GetItem", {"ConsumedCapacity": {"TableName": TABLE, "CapacityUnits": 0.5}}),
        ("Query", {"Items": [], "Count": 0, "ScannedCount": 0}),
        ("Scan", {"Items": [], "Count": 0, "ScannedCount": 25, "LastEvaluatedKey": {"PK": {"S": "p"}}}),
        ("BatchGetItem", {"Responses": {TABLE: []}, "UnprocessedKeys": {}}),
        ("BatchGetItem", {"Responses": {}, "UnprocessedKeys": {}}),
    ],
)
def test_empty_results_decode_as_botocore_does(clients: Clients, operation: str, body: Any) -> None:
    clients.same(body, operation)


# --- everything else is botocore's -------------------------------------------------------------

CONDITION_FAILED = {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                    "message": "The conditional request failed", "Item": {"PK": {"B": b64(b"old")}}}
NOT_FOUND = {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
             "message": "Requested resource not found"}
SERVER_ERROR = {"__type": "com.amazon.coral.service#InternalFailure", "message": "boom"}


@pytest.mark.parametrize(
    ("operation", "status", "body"),
    [
        ("PutItem", 400, CONDITION_FAILED),
        ("Query", 400, NOT_FOUND),
        ("GetItem", 400, NOT_FOUND),
        ("BatchGetItem", 400, NOT_FOUND),
        ("Scan", 500, SERVER_ERROR),
        ("GetItem", 500, b""),
        ("Query", 503, b"<html><body>Service Unavailable</body></html>"),
    ],
)
def test_an_error_response_raises_what_botocore_raises(
    clients: Clients, operation: str, status: int, body: Any
) -> None:
    result = clients.same(body, operation, status=status)
    assert result[0] == "raised"
    assert len(clients.canned.sent) == 2 * (3 if status >= 500 else 1)  # retried alike, then raised


def test_other_operations_decode_as_botocore_does(clients: Clients, botocore_bodies: list[bytes]) -> None:
    put = clients.same({"Attributes": EVERY_TYPE, "ConsumedCapacity": CAPACITY}, "PutItem")[1]
    assert put["Attributes"]["Binary"] == {"B": BLOB}
    table = {"Table": {"TableName": TABLE, "TableStatus": "ACTIVE", "CreationDateTime": 1740830400.123,
                       "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}], "ItemCount": 3}}
    described = clients.same(table, "DescribeTable")[1]
    assert described["Table"]["CreationDateTime"].year == 2025  # botocore's timestamp parsing
    assert len(botocore_bodies) == 4 and all(b"TableName" in seen for seen in botocore_bodies)


def test_a_read_with_a_bad_checksum_is_retried_as_botocore_retries_it(clients: Clients) -> None:
    clients.canned.answer({"Items": [order(1)], "Count": 1, "ScannedCount": 1}, crc32="12345")
    fast, plain = clients.both("Query", **DEFAULT_PARAMS["Query"])
    assert fast == plain and repr(fast) == repr(plain)
    assert len(clients.canned.sent) == 2 * 3  # every attempt failed the check


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"not json",
        b"null",
        b"[]",
        b'"Items"',
        b'{"Items": [',
        b"\xef\xbb\xbf{}",
        b'{"Items": [{"A": {"S": "\\ud800"}}]}',  # a lone surrogate: json.loads reads it, orjson does not
        b'{"Items": [{"A": {"S": "\xff"}}]}',  # not UTF-8
        b'{"Items": [], "Count": NaN}',
        b'{"Items": [], "Count": 18446744073709551616}',  # orjson reads it as a float
        b'{"Items": [], "Count": -9223372036854775809}',
        b'{"Items": [], "ConsumedCapacity": {"CapacityUnits": 1e400}}',
        b'{"Items": [{"A": {"S": "x"}}], "Items": [{"B": {"S": "y"}}]}',
        b'{"Items": [{"A": {"S": "x", "A": {"N": "1"}}}]}',
        {"Items": None, "Count": 0},
        {"Items": {"A": {"S": "x"}}},
        {"Items": [None]},
        {"Items": [[]]},
        {"Items": ["item"]},
        {"Items": [{"A": None}]},
        {"Items": [{"A": {}}]},
        {"Items": [{"A": "S"}]},
        {"Items": [{"A": ["S"]}]},
        {"Items": [{"A": {"S": None}}]},
        {"Items": [{"A": {"S": 1}}]},
        {"Items": [{"A": {"S": {"S": "x"}}}]},
        {"Items": [{"A": {"N": 1.5}}]},
        {"Items": [{"A": {"N": "1", "S": "x"}}]},
        {"Items": [{"A": {"X": "unknown type"}}]},
        {"Items": [{"A": {"S": "x", "X": "unknown type"}}]},
        {"Items": [{"A": {"BOOL": "true"}}]},
        {"Items": [{"A": {"NULL": False}}]},
        {"Items": [{"A": {"B": "not base64!"}}]},
        {"Items": [{"A": {"B": "QQ"}}]},  # padding missing
        {"Items": [{"A": {"B": "é"}}]},
        {"Items": [{"A": {"B": 12}}]},
        {"Items": [{"A": {"B": None}}]},
        {"Items": [{"A": {"BS": "QUJD"}}]},
        {"Items": [{"A": {"BS": [None]}}]},
        {"Items": [{"A": {"SS": "abc"}}]},
        {"Items": [{"A": {"SS": ["a", None]}}]},
        {"Items": [{"A": {"NS": [1]}}]},
        {"Items": [{"A": {"M": []}}]},
        {"Items": [{"A": {"M": {"x": None}}}]},
        {"Items": [{"A": {"M": {"x": {"Q": "1"}}}}]},
        {"Items": [{"A": {"L": {"S": "x"}}}]},
        {"Items": [{"A": {"L": ["x"]}}]},
        {"Items": [{"A": {"L": [None]}}]},
        {"Items": [], "Count": "1", "ScannedCount": 1.0},
        {"Items": [], "Unknown": {"B": "QQ=="}, "ResponseMetadata": {"RequestId": "from the body"}},
        {"Items": [], "LastEvaluatedKey": {"PK": {"B": "?"}}},
        {"Items": [], "ConsumedCapacity": ["not", "a", "structure"]},
        {"Items": [order(1)], "ConsumedCapacity": {"CapacityUnits": None, "Table": None}},
    ],
)
def test_a_body_not_in_dynamodb_form_gives_what_botocore_gives(clients: Clients, body: Any) -> None:
    clients.same(body, "Query")


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("GetItem", {"Item": None}),
        ("GetItem", {"Item": []}),
        ("GetItem", {"Item": {"A": {"B": "!"}}}),
        ("BatchGetItem", {"Responses": {TABLE: None}}),
        ("BatchGetItem", {"Responses": [[]]}),
        ("BatchGetItem", {"Responses": {TABLE: [{"A": {"X": "1"}}]}}),
        ("BatchGetItem", {"Responses": {}, "UnprocessedKeys": {TABLE: {"Keys": [{"A": {"B": "!"}}]}}}),
    ],
)
def test_other_reads_not_in_dynamodb_form_give_what_botocore_gives(
    clients: Clients, operation: str, body: Any
) -> None:
    clients.same(body, operation)


def test_a_successful_status_other_than_200_is_botocore_s(
    clients: Clients, botocore_bodies: list[bytes]
) -> None:
    body = json.dumps({"Items": [EVERY_TYPE], "Count": 1}).encode()
    clients.same(body, "Query", status=206)
    assert botocore_bodies == [body, body]


# --- the fast path is taken --------------------------------------------------------------------


def test_a_successful_read_never_reaches_botocore_s_parser_with_its_items(
    clients: Clients, botocore_bodies: list[bytes]
) -> None:
    marker = "never parsed by botocore"
    reads = {
        "GetItem": {"Item": {"PK": {"S": marker}, "Bin": {"B": b64(b"x")}}},
        "Query": {"Items": [order(1), {"PK": {"S": marker}}], "Count": 2, "ScannedCount": 2},
        "Scan": {"Items": [{"PK": {"S": marker}, "Set": {"BS": [b64(b"x")]}}], "Count": 1, "ScannedCount": 1},
        "BatchGetItem": {"Responses": {TABLE: [{"PK": {"S": marker}}]}, "UnprocessedKeys": {}},
    }
    for operation, body in reads.items():
        clients.canned.answer(body)
        result = outcome(clients.fast, operation, DEFAULT_PARAMS[operation])
        assert result[0] == "ok" and marker in repr(result[1])
        assert botocore_bodies and not any(marker.encode() in seen for seen in botocore_bodies)
        botocore_bodies.clear()
        outcome(clients.plain, operation, DEFAULT_PARAMS[operation])
        assert any(marker.encode() in seen for seen in botocore_bodies)  # the spy does see a plain parse
        botocore_bodies.clear()


def test_a_body_not_in_dynamodb_form_is_parsed_by_botocore_from_the_original(
    clients: Clients, botocore_bodies: list[bytes]
) -> None:
    body = json.dumps({"Items": [{"A": {"X": "unknown type"}}], "Count": 1}).encode()
    clients.canned.answer(body)
    outcome(clients.fast, "Query", DEFAULT_PARAMS["Query"])
    assert botocore_bodies[-1] == body


def test_every_client_of_the_data_layer_has_the_fast_path_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", ENDPOINT)
    client = new_client()
    models = model_client(get_settings())  # the lean transport decodes with core.engine, never botocore
    assert is_installed(client) and (isinstance(models, LeanClient) or is_installed(models))
    factory = client._endpoint._response_parser_factory
    assert install(client) is client and client._endpoint._response_parser_factory is factory
    session = botocore.session.get_session()
    plain = session.create_client("dynamodb", region_name="us-east-1")
    assert not is_installed(plain)
    install(plain)
    assert is_installed(plain)
    other = session.create_client("dynamodb", region_name="us-east-1")
    assert not is_installed(other)  # the factory the session shares is left alone


def test_install_refuses_a_client_of_another_service() -> None:
    sqs = botocore.session.get_session().create_client("sqs", region_name="us-east-1")
    with pytest.raises(ValueError, match="DynamoDB"):
        install(sqs)


def test_a_factory_with_a_custom_blob_parser_keeps_botocore_s_parser(
    clients: Clients, botocore_bodies: list[bytes]
) -> None:
    factory = clients.fast._endpoint._response_parser_factory
    factory.set_parser_defaults(blob_parser=lambda value: f"blob:{value}")
    try:
        clients.canned.answer({"Item": {"A": {"B": b64(b"x")}}})
        result = outcome(clients.fast, "GetItem", DEFAULT_PARAMS["GetItem"])
    finally:
        factory.set_parser_defaults(blob_parser=None)
    assert result[1]["Item"] == {"A": {"B": "blob:eA=="}}
    assert len(botocore_bodies) == 1 and b"eA==" in botocore_bodies[0]


# --- properties --------------------------------------------------------------------------------

_scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text()),
    st.builds(lambda n: {"N": str(n)}, st.decimals(allow_nan=False, allow_infinity=False)),
    st.builds(lambda b: {"B": b64(b)}, st.binary()),
    st.builds(lambda s: {"SS": s}, st.lists(st.text(), min_size=1, unique=True)),
    st.builds(lambda s: {"NS": [str(n) for n in s]}, st.lists(st.integers(), min_size=1, unique=True)),
    st.builds(lambda s: {"BS": [b64(b) for b in s]}, st.lists(st.binary(), min_size=1, unique=True)),
    st.just({"NULL": True}),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
)
attribute_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(st.text(), inner, max_size=4)),
        st.builds(lambda values: {"L": values}, st.lists(inner, max_size=4)),
    ),
    max_leaves=12,
)
items = st.dictionaries(st.text(min_size=1), attribute_values, max_size=6)
_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "QQ==", "x", "S"]), st.text(max_size=3),
)
any_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL", "X"])
                        | st.text(max_size=2), inner, max_size=3),
    ),
    max_leaves=10,
)
_property = hypothesis_settings(max_examples=150, deadline=None,
                                suppress_health_check=[HealthCheck.function_scoped_fixture])


@_property
@given(page=st.lists(items, max_size=4), key=st.none() | items)
def test_any_page_of_attribute_values_decodes_as_botocore_does(
    clients: Clients, page: list[dict[str, Any]], key: dict[str, Any] | None
) -> None:
    body: dict[str, Any] = {"Items": page, "Count": len(page), "ScannedCount": len(page)}
    if key:
        body["LastEvaluatedKey"] = key
    clients.same(body, "Scan")
    clients.same({"Item": page[0]} if page else {}, "GetItem")


@_property
@given(value=any_json)
def test_any_json_in_place_of_items_gives_what_botocore_gives(clients: Clients, value: Any) -> None:
    clients.same({"Items": [{"A": value}], "Count": 1})
    clients.same({"Items": value})
    clients.same({"Responses": {TABLE: [{"A": value}]}, "UnprocessedKeys": {}}, "BatchGetItem")
