"""Numbers at the edges of DynamoDB's range, on DynamoDB Local: a valid reading is never refused
for its hour's sum, and a number DynamoDB cannot store is refused before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.config import Settings
from core.errors import InvalidInput
from repositories.metrics import get_hourly_aggregates, get_metrics, record_metric
from tests.helpers import raw_scan

AT = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)


def test_an_hours_sum_past_dynamodbs_range_saturates_and_every_reading_is_kept(local_table: Settings) -> None:
    big = Decimal("9E+125")
    for second in range(3):
        record_metric("dev-sat", "load", big, at=AT + timedelta(seconds=second))
    (hour,) = get_hourly_aggregates("dev-sat", AT - timedelta(hours=1), AT + timedelta(hours=1))
    assert hour.sample_count == 3
    assert hour.total == big and hour.sum_saturated is True  # the last sum that fit, marked
    assert hour.minimum == big and hour.maximum == big
    assert len(get_metrics("dev-sat", AT - timedelta(hours=1), AT + timedelta(hours=1))) == 3


def test_a_sum_that_stays_in_range_is_not_marked(local_table: Settings) -> None:
    record_metric("dev-ok", "load", Decimal("9E+124"), at=AT)
    record_metric("dev-ok", "load", Decimal("-9E+124"), at=AT + timedelta(seconds=1))
    (hour,) = get_hourly_aggregates("dev-ok", AT - timedelta(hours=1), AT + timedelta(hours=1))
    assert hour.total == 0 and hour.sum_saturated is None and hour.sample_count == 2


@pytest.mark.parametrize("value", [10 ** 50, Decimal("1E+126"), Decimal("1E-131"), "1" * 39])
def test_a_reading_dynamodb_cannot_store_is_refused_before_sending(
    local_table: Settings, value: object,
) -> None:
    before = raw_scan(local_table)
    with pytest.raises(InvalidInput):
        record_metric("dev-bad", "load", value, at=AT)  # type: ignore[arg-type]
    assert raw_scan(local_table) == before
