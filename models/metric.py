"""Metric point: one reading of a device, in a per-day partition, expiring by TTL."""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import timedelta
from typing import ClassVar

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb_attributes import UnicodeDatetimeAttribute

from core.budgets import Budget
from models.attributes import DecimalAttribute
from models.keys import EntityKeys, KeyTemplate, format_part
from models.metric_aggregate import MetricAggregate
from models.queries import Query
from models.rules import Expires, FoldsInto, WriteShards
from models.table import TableModel

RETENTION = timedelta(days=30)
NO_DIMENSIONS = "-"


class Metric(TableModel, discriminator="METRIC"):
    """``DEVICE#{device_id}#{day}`` / ``METRIC#{timestamp}#{metric_name}#{series}``.

    ``series`` names the reading's dimensions (``-`` for none, else a digest of them), so two
    readings at one instant that differ only in their dimensions are two readings. A write-sharded
    point lives in ``DEVICE#{device_id}#{day}#{shard}``, its shard chosen from its sort key.

    Rules: a reading folds into its hour's ``MetricAggregate`` in the same transaction and is
    never changed or deleted after; it expires ``RETENTION`` after its timestamp (the aggregate
    ``RETENTION`` after its hour ends); the day partitions are spread over ``WriteShards.count``
    shards, which every read fans out over.
    """

    keys = EntityKeys(pk="DEVICE#{device_id}#{day}", sk="METRIC#{timestamp}#{metric_name}#{series}")
    sharded_pk: ClassVar[KeyTemplate] = KeyTemplate("DEVICE#{device_id}#{day}#{shard}")

    device_id = UnicodeAttribute(attr_name="DeviceId")
    metric_name = UnicodeAttribute(attr_name="MetricName")
    timestamp = UnicodeDatetimeAttribute(attr_name="Timestamp", force_utc=True)
    value = DecimalAttribute(attr_name="Value")
    dimensions = MapAttribute[str, str](attr_name="Dimensions", null=True)  # type: ignore[no-untyped-call]
    shard = NumberAttribute(attr_name="Shard", null=True)

    rules = (FoldsInto(MetricAggregate), Expires(RETENTION, start="timestamp"), WriteShards(1))

    # a device's readings of one day (bucket), by time; a name filter reads each name's readings
    in_day = Query(budget=Budget(max_items_read_per_item_returned=5))

    @property
    def day(self) -> str | None:
        """The day bucket (``yyyy-mm-dd``, UTC) of the reading."""
        return None if self.timestamp is None else self.timestamp.date().isoformat()

    @property
    def series(self) -> str:
        """``-`` without dimensions, else the first 16 hex digits of a digest of them."""
        dimensions = self.dimensions
        if isinstance(dimensions, MapAttribute):
            dimensions = dimensions.as_dict()  # type: ignore[no-untyped-call]
        if not dimensions:
            return NO_DIMENSIONS
        canonical = json.dumps(dimensions, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @classmethod
    def shards(cls) -> int:
        """The declared number of write shards (1: unsharded)."""
        declared = cls.rule(WriteShards)
        return 1 if declared is None else declared.count

    def fill_keys(self, *, partial: bool = False) -> None:
        """As ``TableModel.fill_keys``; with several shards the point's partition names its shard."""
        super().fill_keys(partial=partial)
        count = self.shards()
        if self.shard is None and count > 1 and self.timestamp is not None and self.metric_name is not None:
            spread = f"{format_part(self.timestamp)}#{self.metric_name}#{self.series}"
            self.shard = zlib.crc32(spread.encode("utf-8")) % count
        if self.shard is None:
            return
        values = {"device_id": self.device_id, "day": self.day, "shard": self.shard}
        if not (partial and None in values.values()):
            self.pk = self.sharded_pk.compose(**values)
