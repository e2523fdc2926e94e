"""Metric point: one reading of a device, in a per-day partition, expiring by TTL."""

from __future__ import annotations

from typing import ClassVar

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb_attributes import UnicodeDatetimeAttribute

from models.attributes import DecimalAttribute
from models.keys import EntityKeys, KeyTemplate
from models.table import TableModel


class Metric(TableModel, discriminator="METRIC"):
    """``DEVICE#{device_id}#{day}`` / ``METRIC#{timestamp}#{metric_name}``.

    A write-sharded point (``shard`` set) lives in ``DEVICE#{device_id}#{day}#{shard}`` instead.
    """

    keys = EntityKeys(pk="DEVICE#{device_id}#{day}", sk="METRIC#{timestamp}#{metric_name}")
    sharded_pk: ClassVar[KeyTemplate] = KeyTemplate("DEVICE#{device_id}#{day}#{shard}")

    device_id = UnicodeAttribute(attr_name="DeviceId")
    metric_name = UnicodeAttribute(attr_name="MetricName")
    timestamp = UnicodeDatetimeAttribute(attr_name="Timestamp", force_utc=True)
    value = DecimalAttribute(attr_name="Value")
    dimensions = MapAttribute[str, str](attr_name="Dimensions", null=True)  # type: ignore[no-untyped-call]
    shard = NumberAttribute(attr_name="Shard", null=True)

    @property
    def day(self) -> str | None:
        """The day bucket (``yyyy-mm-dd``, UTC) of the reading."""
        return None if self.timestamp is None else self.timestamp.date().isoformat()

    def fill_keys(self, *, partial: bool = False) -> None:
        """As ``TableModel.fill_keys``; a sharded point's partition key also names its shard."""
        super().fill_keys(partial=partial)
        values = {"device_id": self.device_id, "day": self.day, "shard": self.shard}
        if self.shard is not None and not (partial and None in values.values()):
            self.pk = self.sharded_pk.compose(**values)
