"""Hourly aggregate of a device's metric, beside the points of its day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from functools import reduce
from typing import TYPE_CHECKING, ClassVar

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from core.budgets import Budget
from core.error_codes import raise_unexpected
from core.errors import ConflictError
from models.attributes import (
    MAX_ADJUSTED_EXPONENT,
    MAX_SIGNIFICANT_DIGITS,
    MIN_ADJUSTED_EXPONENT,
    DecimalAttribute,
)
from models.keys import EntityKeys, KeyTemplate
from models.planning import Step
from models.queries import Query
from models.rules import Expires, WrittenBy
from models.table import TableModel

if TYPE_CHECKING:
    from models.metric import Metric


_EXACT_PRECISION = 400  # enough for any sum of two DynamoDB numbers (1E-130 .. 1E+126) exactly


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
    # The sum left DynamoDB's number range (past 9.99E+125): it stays at its last value, and this
    # says it no longer is the sum of the readings (count, min and max still are).
    sum_saturated = BooleanAttribute(attr_name="SumSaturated", null=True)
    shard = NumberAttribute(attr_name="Shard", null=True)

    rules = (WrittenBy("Metric.save() (repositories.metrics.record_metric)"),)

    # a device's hours of one day, by hour; a name filter reads each name's hours
    in_day = Query(budget=Budget(max_read_units_per_page=8, max_items_read_per_item_returned=5))

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

        Why no valid reading is refused for the sum's sake: DynamoDB keeps 38 significant digits
        and refuses an ``ADD`` whose exact result needs more (``1E22`` then ``1E-20``). The sum is
        read with the extremes; while ``Sum + v`` fits in 38 digits it is an exact ``ADD``. When it
        does not, the sum is ``SET`` to ``Sum + v`` rounded half-even to 38 significant digits, on
        condition that ``Sum`` is still the value read (else planned again). So the sum is exact
        while it fits, and from then on as precise as DynamoDB can store it.
        """
        aggregate = cls(device_id=point.device_id, metric_name=point.metric_name,
                        hour=hour_of(point.timestamp), shard=point.shard)
        aggregate.fill_keys()
        low, high = aggregate._extremes()
        number: Decimal = point.value
        add_total, total_condition = cls._fold_total(aggregate.__dict__.get("_stored_total"), number,
                                                     saturated=aggregate.__dict__.get("_saturated", False))
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
            *add_total,
            cls.created_at.set(cls.created_at | now),
            cls.updated_at.set(now),
            cls.expires_at.set(expires),
            cls.version.add(1),
        ]
        if aggregate.shard is not None:
            actions.append(cls.shard.set(aggregate.shard))
        conditions: list[Condition] = [] if total_condition is None else [total_condition]
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

    @classmethod
    def _fold_total(cls, stored: Decimal | None, number: Decimal, *,
                    saturated: bool = False) -> tuple[list[Action], Condition | None]:
        """``ADD Sum :v`` while the exact sum fits in 38 digits, else a guarded ``SET`` of it rounded;
        a sum that would leave DynamoDB's range is kept and marked ``SumSaturated`` (the reading
        is never refused for its sake)."""
        if saturated:
            return [], None
        if stored is None:
            return [cls.total.add(number)], None
        with localcontext() as exact:
            exact.prec = _EXACT_PRECISION
            candidate = stored + number
        fits = candidate.is_zero() or _digits(candidate, stored, number) <= MAX_SIGNIFICANT_DIGITS
        if fits and _in_range(candidate):
            return [cls.total.add(number)], None
        with localcontext() as rounded:
            rounded.prec, rounded.rounding = MAX_SIGNIFICANT_DIGITS, ROUND_HALF_EVEN
            candidate = +candidate
        if candidate.is_zero() or candidate.adjusted() < MIN_ADJUSTED_EXPONENT:
            return [cls.total.set(Decimal(0))], cls.total == stored  # below 1E-130: DynamoDB's zero
        if candidate.adjusted() > MAX_ADJUSTED_EXPONENT:
            return [cls.sum_saturated.set(True)], cls.total == stored
        return [cls.total.set(candidate)], cls.total == stored

    def _extremes(self) -> tuple[Decimal | None, Decimal | None]:
        """The stored ``Min`` and ``Max`` (and, kept on the aggregate, ``Sum``), read consistently."""
        names = [type(self).minimum.attr_name, type(self).maximum.attr_name, type(self).total.attr_name,
                 type(self).sum_saturated.attr_name]
        try:
            stored = type(self).get(self.pk, self.sk, consistent_read=True, attributes_to_get=names)
        except MetricAggregate.DoesNotExist:
            return None, None
        except PynamoDBException as exc:
            raise_unexpected(exc, "reading the hourly aggregate")
        self.__dict__["_stored_total"] = stored.total
        self.__dict__["_saturated"] = bool(stored.sum_saturated)
        return stored.minimum, stored.maximum


def _in_range(number: Decimal) -> bool:
    """Zero, or a magnitude DynamoDB stores (1E-130 .. below 1E+126)."""
    return number.is_zero() or MIN_ADJUSTED_EXPONENT <= number.adjusted() <= MAX_ADJUSTED_EXPONENT


def _digits(total: Decimal, *parts: Decimal) -> int:
    """Significant digits ``total`` needs at the finest precision of ``parts``."""
    finest = min(_exponent(part) for part in parts)
    return total.adjusted() - finest + 1


def _exponent(number: Decimal) -> int:
    exponent = number.normalize().as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0
