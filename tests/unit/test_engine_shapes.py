"""The engine's declared shapes are botocore's service model, restated: derived here and compared."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from core.engine import shapes
from core.engine.shapes import AV, BLOB, RAW, ListOf, MapOf, Plan, Struct


@pytest.fixture(scope="module")
def model() -> Any:
    """botocore's DynamoDB service model."""
    return botocore.session.get_session().get_service_model("dynamodb")


def derive(shape: Any) -> Plan:
    """The plan of a botocore shape, in the engine's terms."""
    if shape.name == "AttributeValue":
        return AV
    if shape.type_name == "structure":
        assert all("name" not in member.serialization for member in shape.members.values())
        return Struct(tuple((name, derive(member)) for name, member in shape.members.items()))
    if shape.type_name == "map":
        return MapOf(derive(shape.value))
    if shape.type_name == "list":
        return ListOf(derive(shape.member))
    return BLOB if shape.type_name == "blob" else RAW


def values_only(plan: Plan) -> Plan | None:
    """``plan`` pruned to the members that hold attribute values or blobs (``None``: none do)."""
    if plan in (AV, BLOB):
        return plan
    if isinstance(plan, Struct):
        kept = tuple((name, pruned) for name, member in plan.members
                     if (pruned := values_only(member)) is not None)
        return Struct(kept) if kept else None
    if isinstance(plan, MapOf):
        inner = values_only(plan.value)
        return MapOf(inner) if inner is not None else None
    if isinstance(plan, ListOf):
        inner = values_only(plan.member)
        return ListOf(inner) if inner is not None else None
    return None


def test_the_data_plane_operations_are_the_ten_the_engine_builds() -> None:
    expected = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                "BatchWriteItem", "TransactGetItems", "TransactWriteItems"}
    assert expected == shapes.OPERATIONS


@pytest.mark.parametrize("operation", sorted(shapes.OPERATIONS))
def test_output_plans_equal_the_model(model: Any, operation: str) -> None:
    assert shapes.OUTPUTS[operation] == derive(model.operation_model(operation).output_shape)


@pytest.mark.parametrize("operation", sorted(shapes.OPERATIONS))
def test_request_plans_name_every_attribute_value_of_the_model(model: Any, operation: str) -> None:
    operation_model = model.operation_model(operation)
    assert shapes.INPUT_VALUES[operation] == values_only(derive(operation_model.input_shape))
    assert shapes.INPUT_MEMBERS[operation] == set(operation_model.input_shape.members)
    tokens = operation_model.idempotent_members
    declared = [shapes.IDEMPOTENCY_TOKENS[operation]] if operation in shapes.IDEMPOTENCY_TOKENS else []
    assert declared == tokens
    assert operation_model.http == {"method": "POST", "requestUri": "/"}
    assert operation_model.endpoint is None  # no host prefix


def test_the_attribute_value_members_equal_the_model(model: Any) -> None:
    assert Struct(shapes.AV_MEMBERS) == Struct(tuple(
        (name, derive(member)) for name, member in model.shape_for("AttributeValue").members.items()
    ))
    # A plain structure, not a tagged union: botocore keeps every member set and drops unknown ones.
    assert not model.shape_for("AttributeValue").is_tagged_union


def test_error_plans_equal_every_error_shape_of_the_model(model: Any) -> None:
    derived = {shape.error_code: derive(shape) for shape in model.error_shapes}
    assert derived == shapes.ERRORS


@pytest.mark.parametrize("operation", sorted(shapes.OPERATIONS))
def test_each_operation_knows_its_modeled_and_retryable_errors(model: Any, operation: str) -> None:
    errors = model.operation_model(operation).error_shapes
    assert shapes.OPERATION_ERRORS[operation] == {shape.error_code for shape in errors}
    for shape in errors:
        retryable = shape.metadata.get("retryable")
        assert (retryable is not None) == (shape.error_code in shapes.RETRYABLE_ERRORS)
        assert not (retryable or {}).get("throttling")


def test_the_model_metadata_is_what_requests_send(model: Any) -> None:
    from core.engine import requests

    assert model.metadata["targetPrefix"] == requests.TARGET_PREFIX
    content_type = f"application/x-amz-json-{model.metadata['jsonVersion']}"
    assert content_type == requests.CONTENT_TYPE
    assert model.metadata["protocol"] == "json"
    assert model.signing_name == requests.SERVICE
