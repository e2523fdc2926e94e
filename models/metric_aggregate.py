"""Hourly aggregate of a device's metric, beside the points of its day."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from models.attributes import DecimalAttribute
from models.keys import EntityKeys
from models.table import TableModel


class MetricAggregate(TableModel, discriminator="METRIC_AGG"):
    """``DEVICE#{device_id}#{day}`` / ``AGG#{hour}#{metric_name}``: count, sum, min and max."""

    keys = EntityKeys(pk="DEVICE#{device_id}#{day}", sk="AGG#{hour}#{metric_name}")

    device_id = UnicodeAttribute(attr_name="DeviceId")
    metric_name = UnicodeAttribute(attr_name="MetricName")
    hour = UnicodeAttribute(attr_name="Hour")  # yyyy-mm-ddThh, UTC
    # ``count`` would shadow Model.count(), and sum/min/max the builtins: Python names differ.
    sample_count = NumberAttribute(attr_name="Count", default=0)
    total = DecimalAttribute(attr_name="Sum", null=True)
    minimum = DecimalAttribute(attr_name="Min", null=True)
    maximum = DecimalAttribute(attr_name="Max", null=True)

    @property
    def day(self) -> str | None:
        """The day bucket (``yyyy-mm-dd``) the hour belongs to."""
        return None if self.hour is None else self.hour[:10]
