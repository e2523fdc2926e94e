"""Hourly aggregate of a device's metric, beside the points of its day."""

from __future__ import annotations

from typing import ClassVar

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from models.attributes import DecimalAttribute
from models.keys import EntityKeys, KeyTemplate
from models.table import TableModel


class MetricAggregate(TableModel, discriminator="METRIC_AGG"):
    """``DEVICE#{device_id}#{day}`` / ``AGG#{hour}#{metric_name}``: count, sum, min and max.

    Write-sharded like its points: with ``shard`` set it lives in ``DEVICE#{device_id}#{day}#{shard}``
    and sums up that shard's points only.
    """

    keys = EntityKeys(pk="DEVICE#{device_id}#{day}", sk="AGG#{hour}#{metric_name}")
    sharded_pk: ClassVar[KeyTemplate] = KeyTemplate("DEVICE#{device_id}#{day}#{shard}")

    device_id = UnicodeAttribute(attr_name="DeviceId")
    metric_name = UnicodeAttribute(attr_name="MetricName")
    hour = UnicodeAttribute(attr_name="Hour")  # yyyy-mm-ddThh, UTC
    # ``count`` would shadow Model.count(), and sum/min/max the builtins: Python names differ.
    sample_count = NumberAttribute(attr_name="Count", default=0)
    total = DecimalAttribute(attr_name="Sum", null=True)
    minimum = DecimalAttribute(attr_name="Min", null=True)
    maximum = DecimalAttribute(attr_name="Max", null=True)
    shard = NumberAttribute(attr_name="Shard", null=True)

    @property
    def day(self) -> str | None:
        """The day bucket (``yyyy-mm-dd``) the hour belongs to."""
        return None if self.hour is None else self.hour[:10]

    def fill_keys(self, *, partial: bool = False) -> None:
        """As ``TableModel.fill_keys``; a sharded aggregate's partition key also names its shard."""
        super().fill_keys(partial=partial)
        values = {"device_id": self.device_id, "day": self.day, "shard": self.shard}
        if self.shard is not None and not (partial and None in values.values()):
            self.pk = self.sharded_pk.compose(**values)
