"""The checks and the error mapping every repository shares (repositories._common)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from pynamodb.exceptions import CancellationReason, GetError, TransactWriteError, VerboseClientError

from core.error_codes import raise_unexpected
from core.errors import DataLayerError, InvalidInput, InvalidKey, RetriesExhausted
from repositories._common import aware_utc, key_part, require_iterable


@pytest.mark.parametrize("value", ["u1", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "ada.lovelace", "x y", "é" * 1000])
def test_key_part_accepts_an_id_as_given(value: str) -> None:
    assert key_part(value, "user_id") == value


@pytest.mark.parametrize("value", ["", "   ", "a#b", "#", " padded", "padded\n", "x" * 2049, 42, None, b"id"])
def test_key_part_refuses_what_could_not_be_one_key_part_with_invalid_key(value: Any) -> None:
    with pytest.raises(InvalidKey) as raised:
        key_part(value, "user_id")
    assert isinstance(raised.value, InvalidInput) and "user_id" in str(raised.value)


def test_aware_utc_converts_to_utc() -> None:
    at = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    converted = aware_utc(at, "at")
    assert converted == at and converted.tzinfo is UTC and converted.hour == 12


@pytest.mark.parametrize("value", [datetime(2025, 1, 1), "2025-01-01T00:00:00Z", 0, None,
                                   datetime.max.replace(tzinfo=timezone(timedelta(hours=-1)))])
def test_aware_utc_refuses_what_is_not_an_aware_datetime(value: Any) -> None:
    with pytest.raises(InvalidInput, match="at"):
        aware_utc(value, "at")


@pytest.mark.parametrize("values", ["abc", b"abc", {"a": 1}, 5, None])
def test_require_iterable_refuses_a_single_value(values: Any) -> None:
    with pytest.raises(InvalidInput):
        require_iterable(values, "ids")


def test_require_iterable_lists_a_collection_or_a_generator() -> None:
    assert require_iterable(("a", "b"), "ids") == ["a", "b"]
    assert require_iterable((c for c in "ab"), "ids") == ["a", "b"]


def _client_error(code: str, operation: str = "GetItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "RequestLimitExceeded"])
def test_throttling_that_outlived_botocores_retries_becomes_retries_exhausted(code: str) -> None:
    cause = GetError("get failed", cause=_client_error(code))
    with pytest.raises(RetriesExhausted) as raised:
        raise_unexpected(cause, "get_user")
    assert raised.value.__cause__ is cause and "get_user" in str(raised.value)


def test_a_transaction_cancelled_for_throttling_becomes_retries_exhausted() -> None:
    error = VerboseClientError({"Error": {"Code": "TransactionCanceledException", "Message": "x"}},
                               "TransactWriteItems",
                               cancellation_reasons=[None, CancellationReason(code="ThrottlingError")])
    cause = TransactWriteError("cancelled", cause=error)
    with pytest.raises(RetriesExhausted) as raised:
        raise_unexpected(cause, "create_user")
    assert raised.value.__cause__ is cause


@pytest.mark.parametrize("cause", [
    GetError("get failed", cause=_client_error("InternalServerError")),
    GetError("get failed", cause=ReadTimeoutError(endpoint_url="https://dynamodb.invalid")),
    RuntimeError("something else"),
])
def test_any_other_unexpected_error_becomes_a_plain_data_layer_error_with_its_cause(cause: Exception) -> None:
    with pytest.raises(DataLayerError) as raised:
        raise_unexpected(cause, "get_user")
    assert type(raised.value) is DataLayerError
    assert raised.value.__cause__ is cause and "get_user" in str(raised.value)
