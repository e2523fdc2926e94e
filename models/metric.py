"""Metric point: one reading of a device, in a per-day partition, expiring by TTL."""

from __future__ import annotations

from pynamodb.attributes import MapAttribute, UnicodeAttribute
from pynamodb_attributes import UnicodeDatetimeAttribute

from models.attributes import DecimalAttribute
from models.keys import EntityKeys
from models.table import TableModel


class Metric(TableModel, discriminator="METRIC"):
    """``DEVICE#{device_id}#{day}`` / ``METRIC#{timestamp}#{metric_name}``."""

    keys = EntityKeys(pk="DEVICE#{device_id}#{day}", sk="METRIC#{timestamp}#{metric_name}")

    device_id = UnicodeAttribute(attr_name="DeviceId")
    metric_name = UnicodeAttribute(attr_name="MetricName")
    timestamp = UnicodeDatetimeAttribute(attr_name="Timestamp", force_utc=True)
    value = DecimalAttribute(attr_name="Value")
    dimensions = MapAttribute[str, str](attr_name="Dimensions", null=True)  # type: ignore[no-untyped-call]

    @property
    def day(self) -> str | None:
        """The day bucket (``yyyy-mm-dd``, UTC) of the reading."""
        return None if self.timestamp is None else self.timestamp.date().isoformat()
