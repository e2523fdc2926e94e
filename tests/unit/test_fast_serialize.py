"""DynamoDB requests serialized by json.dumps: byte for byte what botocore's serializer builds."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from core.fast_serialize import FAST_OPERATIONS, FastSerializer, install

MODEL = botocore.session.get_session().get_service_model("dynamodb")
TABLE = "ApplicationData"


def _pair(*, validate: bool = False) -> tuple[FastSerializer, Any]:
    botocore_serializer = create_serializer("json", include_validation=validate)
    return FastSerializer(botocore_serializer), botocore_serializer


def _leaf_types(shape: Any, seen: frozenset[str] = frozenset()) -> set[str]:
    if shape.name in seen:
        return set()
    seen = seen | {shape.name}
    if shape.serialization or getattr(shape, "is_document_type", False):
        return {"renamed or document"}
    if shape.type_name == "structure":
        return set().union(*(_leaf_types(member, seen) for member in shape.members.values()))
    if shape.type_name == "list":
        return _leaf_types(shape.member, seen)
    if shape.type_name == "map":
        return _leaf_types(shape.key, seen) | _leaf_types(shape.value, seen)
    return {shape.type_name}


@pytest.mark.parametrize("operation", sorted(FAST_OPERATIONS))
def test_the_operations_declare_nothing_json_dumps_would_send_differently(operation: str) -> None:
    model = MODEL.operation_model(operation)
    assert model.endpoint is None and model.metadata["protocol"] == "json"
    # blob is the one type botocore converts; a request holding bytes goes to botocore's serializer
    assert _leaf_types(model.input_shape) <= {"string", "boolean", "integer", "long", "blob"}


ITEM = {
    "PK": {"S": "USER#ü-😀"}, "SK": {"S": 'ORDER#"quoted"\\\n'}, "Amount": {"N": "12.50"},
    "Flags": {"BOOL": True}, "Gone": {"NULL": True}, "Tags": {"SS": ["a", "b"]},
    "Scores": {"NS": ["1", "2.5"]},
    "Spec": {"M": {"w": {"N": "2.5"}, "tags": {"L": [{"S": "a"}, {"NULL": True}, {"BOOL": False}]}}},
    "Empty": {"S": ""},
}
KEY = {"PK": ITEM["PK"], "SK": ITEM["SK"]}
CONDITION = {"ConditionExpression": "attribute_not_exists (#0) AND #1 = :0",
             "ExpressionAttributeNames": {"#0": "PK", "#1": "Status"},
             "ExpressionAttributeValues": {":0": {"S": "P"}}}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("PutItem", {"TableName": TABLE, "Item": ITEM, **CONDITION,
                 "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
    ("UpdateItem", {"TableName": TABLE, "Key": KEY, "UpdateExpression": "SET #1 = :0", **CONDITION,
                    "ReturnValues": "ALL_NEW", "ReturnConsumedCapacity": "TOTAL"}),
    ("DeleteItem", {"TableName": TABLE, "Key": KEY, **CONDITION}),
    ("GetItem", {"TableName": TABLE, "Key": KEY, "ConsistentRead": True, "ProjectionExpression": "#0"}),
    ("Query", {"TableName": TABLE, "IndexName": "GSI1", "KeyConditionExpression": "#0 = :0", "Limit": 100,
               "ExclusiveStartKey": KEY, "ScanIndexForward": False, "ExpressionAttributeNames": {"#0": "PK"},
               "ExpressionAttributeValues": {":0": {"S": "x"}}}),
    ("Scan", {"TableName": TABLE, "Segment": 1, "TotalSegments": 4, "ExclusiveStartKey": KEY}),
    ("BatchGetItem", {"RequestItems": {TABLE: {"Keys": [KEY, {"PK": {"S": "p"}, "SK": {"S": "s"}}],
                                               "ConsistentRead": True}}}),
    ("BatchWriteItem", {"RequestItems": {TABLE: [{"PutRequest": {"Item": ITEM}},
                                                 {"DeleteRequest": {"Key": KEY}}]}}),
    ("TransactWriteItems", {"ClientRequestToken": "t" * 32, "TransactItems": [
        {"ConditionCheck": {"TableName": TABLE, "Key": KEY, **CONDITION}},
        {"Put": {"TableName": TABLE, "Item": ITEM}},
        {"Update": {"TableName": TABLE, "Key": KEY, "UpdateExpression": "ADD #1 :0", **CONDITION}},
        {"Delete": {"TableName": TABLE, "Key": KEY}}]}),
    ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": TABLE, "Key": KEY}}]}),
]


@pytest.mark.parametrize("validate", [False, True])
@pytest.mark.parametrize(("operation", "params"), REQUESTS, ids=[name for name, _ in REQUESTS])
def test_a_request_without_binary_values_is_serialized_exactly_as_botocore_does(
    operation: str, params: dict[str, Any], validate: bool
) -> None:
    fast, slow = _pair(validate=validate)
    model = MODEL.operation_model(operation)
    assert fast.serialize_to_request(params, model) == slow.serialize_to_request(params, model)
    assert fast.fast_requests == 1


def test_binary_values_an_undeclared_parameter_and_other_operations_go_to_botocore() -> None:
    fast, slow = _pair()
    put = MODEL.operation_model("PutItem")
    binary = {"TableName": TABLE, "Item": {**ITEM, "Blob": {"B": b"\x00\xff"}, "Blobs": {"BS": [b"a"]}}}
    assert fast.serialize_to_request(binary, put) == slow.serialize_to_request(binary, put)
    nested = {"TableName": TABLE, "Item": {"M": {"M": {"b": {"B": b"x"}}}}}
    assert fast.serialize_to_request(nested, put) == slow.serialize_to_request(nested, put)
    describe = MODEL.operation_model("DescribeTable")
    assert fast.serialize_to_request({"TableName": TABLE}, describe) == slow.serialize_to_request(
        {"TableName": TABLE}, describe)
    with pytest.raises(KeyError):  # botocore's own answer to a parameter the operation lacks
        fast.serialize_to_request({"TableName": TABLE, "Item": ITEM, "Bogus": 1}, put)
    assert fast.fast_requests == 0


_VALUES = st.recursive(
    st.one_of(
        st.builds(lambda s: {"S": s}, st.text()),
        st.builds(lambda n: {"N": str(n)},
                  st.integers() | st.decimals(allow_nan=False, allow_infinity=False)),
        st.builds(lambda b: {"BOOL": b}, st.booleans()),
        st.just({"NULL": True}),
        st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(), min_size=1, max_size=3)),
    ),
    lambda inner: st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=3))
    | st.builds(lambda m: {"M": m}, st.dictionaries(st.text(), inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1), _VALUES, min_size=1, max_size=6))
def test_any_item_without_binary_values_is_serialized_exactly_as_botocore_does(item: dict[str, Any]) -> None:
    fast, slow = _pair()
    put = MODEL.operation_model("PutItem")
    params = {"TableName": TABLE, "Item": item}
    assert fast.serialize_to_request(params, put) == slow.serialize_to_request(params, put)
    assert fast.fast_requests == 1


@pytest.mark.parametrize("params", [
    {"TableName": TABLE, "Key": KEY, "ConsistentRead": "yes"},  # a mistyped parameter
    {"TableName": TABLE, "Key": KEY, "Bogus": 1},  # an undeclared one
    {"TableName": TABLE, "Key": {"PK": {"S": 1}}},  # a mistyped value deep inside
    {"Key": KEY},  # a missing one
])
def test_a_validating_client_still_refuses_what_botocore_refuses(params: dict[str, Any]) -> None:
    fast, slow = _pair(validate=True)
    get = MODEL.operation_model("GetItem")
    with pytest.raises(ParamValidationError) as botocore_says:
        slow.serialize_to_request(params, get)
    with pytest.raises(ParamValidationError) as we_say:
        fast.serialize_to_request(params, get)
    assert str(we_say.value) == str(botocore_says.value)
    assert fast.fast_requests == 0


def test_it_counts_every_request_it_serializes_and_is_installed_once() -> None:
    client = botocore.session.get_session().create_client("dynamodb", region_name="us-east-1")
    install(install(client))
    assert isinstance(client._serializer, FastSerializer)
    assert not isinstance(client._serializer._serializer, FastSerializer)  # not wrapped twice
    fast, _ = _pair()
    get = MODEL.operation_model("GetItem")
    for _ in range(3):
        fast.serialize_to_request({"TableName": TABLE, "Key": KEY}, get)
    assert fast.fast_requests == 3
