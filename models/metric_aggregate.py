"""Hourly aggregate of a device's metric, beside the points of its day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import reduce
from typing import TYPE_CHECKING, ClassVar

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from core.error_codes import raise_unexpected
from core.errors import ConflictError
from models.attributes import DecimalAttribute
from models.keys import EntityKeys, KeyTemplate
from models.queries import Query
from models.rules import Expires, WrittenBy
from models.table import TableModel
from models.writes import Step

if TYPE_CHECKING:
    from models.metric import Metric


def _contended(_: object) -> ConflictError:
    return ConflictError("a concurrent reading moved the hour's extremes")


def hour_of(when: datetime) -> str:
    """The hour bucket (``yyyy-mm-ddThh``, UTC) of a time."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H")


class MetricAggregate(TableModel, discriminator="METRIC_AGG"):
    """``DEVICE#{device_id}#{day}`` / ``AGG#{hour}#{metric_name}``: count, sum, min and max.

    Write-sharded like its points: with ``shard`` set it lives in ``DEVICE#{device_id}#{day}#{shard}``
    and sums up that shard's points only.

    Rules: changed only by saving a ``Metric`` (``fold_step``), in the same transaction; expires
    with the last points of its hour.
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

    rules = (WrittenBy("Metric.save() (repositories.metrics.record_metric)"),)

    in_day: ClassVar[Query[MetricAggregate]] = Query()  # a device's hours of one day, by hour

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

    @classmethod
    def fold_step(cls, point: Metric) -> Step:
        """The update that folds ``point`` into its hour: ``ADD`` count and sum, ``SET`` min/max.

        Why no writer loses an extreme: ``Min`` only ever goes down. The stored ``Min`` is read
        first; if it is ``<= v`` it stays so forever and is left alone without a condition. Else
        the ``SET`` is guarded (``attribute_not_exists(Min) OR Min > v``); when a concurrent
        writer went lower meanwhile the whole transaction is cancelled (no point, no count) and
        planned again after a fresh read (``Step.retry``). ``Max`` alike.
        """
        aggregate = cls(device_id=point.device_id, metric_name=point.metric_name,
                        hour=hour_of(point.timestamp), shard=point.shard)
        aggregate.fill_keys()
        low, high = aggregate._extremes()
        number: Decimal = point.value
        now = cls.now()
        retention = type(point).rule(Expires)
        hour_start = point.timestamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        expires = hour_start + timedelta(hours=1) + (retention.after if retention else timedelta(0))
        actions: list[Action] = [
            cls.entity_type.set(cls),
            cls.device_id.set(aggregate.device_id),
            cls.metric_name.set(aggregate.metric_name),
            cls.hour.set(aggregate.hour),
            cls.sample_count.add(1),
            cls.total.add(number),
            cls.created_at.set(cls.created_at | now),
            cls.updated_at.set(now),
            cls.expires_at.set(expires),
            cls.version.add(1),
        ]
        if aggregate.shard is not None:
            actions.append(cls.shard.set(aggregate.shard))
        conditions: list[Condition] = []
        if low is None or number < low:
            actions.append(cls.minimum.set(number))
            conditions.append(cls.minimum.does_not_exist() | (cls.minimum > number))
        if high is None or number > high:
            actions.append(cls.maximum.set(number))
            conditions.append(cls.maximum.does_not_exist() | (cls.maximum < number))
        condition = reduce(lambda a, b: a & b, conditions) if conditions else None
        kwargs = cls._get_connection().get_operation_kwargs(
            aggregate.pk, range_key=aggregate.sk, actions=actions, condition=condition
        )
        return Step("update", kwargs, _contended, retry=True)

    def _extremes(self) -> tuple[Decimal | None, Decimal | None]:
        names = [type(self).minimum.attr_name, type(self).maximum.attr_name]
        try:
            stored = type(self).get(self.pk, self.sk, consistent_read=True, attributes_to_get=names)
        except MetricAggregate.DoesNotExist:
            return None, None
        except PynamoDBException as exc:
            raise_unexpected(exc, "reading the hourly aggregate")
        return stored.minimum, stored.maximum
