"""One observation per call, handed to the observers an application (or the data layer) registers.

``observers`` is a plain list of callables; each receives an ``Observation`` after every call the
engine makes, successful or not (``core.telemetry.add_observer`` is the application's way in).
``attributed(name)`` names the access pattern or function a block's calls serve (``Order.of_user``,
``place_order``); the innermost name wins, and every observation made in the block carries it. An
observation holds no item or key values (only names, counts, capacity and codes), so it can go to
logs, spans and metrics as it is. An observer that raises is reported on this module's logger and
does not change the call's result: a write that was applied must not look failed because a metrics
exporter broke.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final, Generic, ParamSpec, TypeVar

_LOG = logging.getLogger(__name__)
_LOG.addHandler(logging.NullHandler())
_THROTTLED_REASONS: Final = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})


@dataclass(frozen=True, slots=True)
class Observation:
    """What one call did. ``latency`` is in seconds, retries and backoff included.

    ``outcome`` is ``"ok"``, DynamoDB's error code, or the exception's class name when no answer
    came. ``consumed_capacity`` is the call's total capacity units (``None`` when the answer did not
    report any); ``capacity_by_index`` splits it per ``"table"`` and index name when DynamoDB did.
    ``throttling_reasons`` gathers every attempt's: ``{"reason", "resource"}`` from a throttling
    error, ``{"item", "reason"}`` from a cancelled transaction's throttled items.
    ``access_pattern``: the name ``attributed`` gave the block the call ran in. ``consumed``: the
    answer's ``ConsumedCapacity`` entries as DynamoDB gave them (names and units only).
    ``cancellation_reasons``: a cancelled transaction's reason codes, in item order.
    ``started_at``: wall-clock start, in nanoseconds since the epoch (for spans).
    """

    operation: str
    table: str | None
    index: str | None
    outcome: str
    latency: float
    attempts: int
    status: int | None = None
    request_id: str | None = None
    consumed_capacity: float | None = None
    capacity_by_index: Mapping[str, float] = field(default_factory=dict)
    items_returned: int | None = None
    items_read: int | None = None
    throttling_reasons: tuple[Mapping[str, Any], ...] = ()
    access_pattern: str | None = None
    consumed: tuple[Mapping[str, Any], ...] = ()
    cancellation_reasons: tuple[str | None, ...] = ()
    started_at: int | None = None


Observer = Callable[[Observation], None]
T = TypeVar("T")
_P = ParamSpec("_P")
_R = TypeVar("_R")
observers: list[Observer] = []
ACCESS_PATTERN: ContextVar[str | None] = ContextVar("datalayer_access_pattern", default=None)
# The calling function of a call awaited by core.engine.bridge, since the loop's stack (where the call
# is observed) does not hold it: its name, or the frame the call was made from (its code's stack,
# paused while the call is awaited), where it is looked for only if the call is observed.
CALLER: ContextVar[str | FrameType | None] = ContextVar("datalayer_caller", default=None)


class _Bound(Generic[T]):
    """A block (or a decorated function) in which a context variable holds a value (a class, not a
    generator: it wraps every write, query and awaited call)."""

    def __init__(self, variable: ContextVar[T], value: T) -> None:
        self._variable, self._value = variable, value
        self._token: Token[T] | None = None

    def __call__(self, fn: Callable[_P, _R]) -> Callable[_P, _R]:
        """``fn`` run in such a block, each call its own."""

        @functools.wraps(fn)
        def bound(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with _Bound(self._variable, self._value):
                return fn(*args, **kwargs)

        return bound

    def __enter__(self) -> None:
        self._token = self._variable.set(self._value)

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            self._variable.reset(self._token)
            self._token = None


def attributed(name: str) -> _Bound[str | None]:
    """Attribute the calls made in this block (this thread or task), or in the decorated function,
    to ``name``."""
    return _Bound(ACCESS_PATTERN, name)


def caller_pinned(pinned: str | FrameType | None) -> _Bound[str | FrameType | None]:
    """While a call is handed to the loop, keep its calling function: its name, or the frame the
    call is made from (``core.logs`` looks on from there only when the call is observed; the frame
    must stay on a paused stack until the block ends)."""
    return _Bound(CALLER, pinned)


def notify(observation: Observation) -> None:
    """Hand ``observation`` to every observer; one that raises is logged and skipped."""
    for observer in tuple(observers):
        try:
            observer(observation)
        except Exception:
            _LOG.exception("an engine observer failed on %s", observation.operation)


def tables(params: Mapping[str, Any]) -> str | None:
    """The table (or tables of a batch or transaction, sorted, comma-separated) a call addresses."""
    table = params.get("TableName")
    if isinstance(table, str):
        return table
    names = {str(name) for name in params.get("RequestItems") or ()}
    for item in params.get("TransactItems") or ():
        if isinstance(item, Mapping):
            for action in item.values():
                if isinstance(action, Mapping) and action.get("TableName"):
                    names.add(str(action["TableName"]))
    return ",".join(sorted(names)) or None


def consumed_entries(parsed: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The ``ConsumedCapacity`` entries of an answer (one for a single-table call, a list otherwise)."""
    consumed = parsed.get("ConsumedCapacity")
    if isinstance(consumed, Mapping):
        return (consumed,)
    if isinstance(consumed, list):
        return tuple(entry for entry in consumed if isinstance(entry, Mapping))
    return ()


def cancellation_codes(parsed: Mapping[str, Any]) -> tuple[str | None, ...]:
    """The codes of a cancelled transaction's reasons (a reason's ``Item`` holds values: left out)."""
    reasons = parsed.get("CancellationReasons")
    if not isinstance(reasons, list):
        return ()
    return tuple(str(reason["Code"]) if isinstance(reason, Mapping) and reason.get("Code") is not None
                 else None for reason in reasons)


def capacity(parsed: Mapping[str, Any]) -> tuple[float | None, dict[str, float]]:
    """The total capacity units of an answer, and their split per ``"table"`` and index."""
    # Reported (even as an empty list, as moto answers a transaction): a total, 0 when nothing.
    total: float | None = 0.0 if isinstance(parsed.get("ConsumedCapacity"), Mapping | list) else None
    split: dict[str, float] = {}
    for entry in consumed_entries(parsed):
        total = (total or 0.0) + float(entry.get("CapacityUnits") or 0.0)
        parts: list[tuple[Any, Any]] = [("table", entry.get("Table"))]
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            indexes = entry.get(kind)
            if isinstance(indexes, Mapping):
                parts += list(indexes.items())
        for name, part in parts:
            if isinstance(part, Mapping) and part.get("CapacityUnits") is not None:
                split[str(name)] = split.get(str(name), 0.0) + float(part["CapacityUnits"])
    return total, split


def items(operation: str, parsed: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Items returned and items read (``ScannedCount``) by an answer, where it says."""
    count, scanned = parsed.get("Count"), parsed.get("ScannedCount")
    if isinstance(count, int):
        return count, scanned if isinstance(scanned, int) else None
    if operation == "GetItem":
        return (1 if "Item" in parsed else 0), None
    responses = parsed.get("Responses")
    if isinstance(responses, Mapping):  # BatchGetItem
        return sum(len(found) for found in responses.values() if isinstance(found, list)), None
    if isinstance(responses, list):  # TransactGetItems
        return sum(1 for found in responses if isinstance(found, Mapping) and "Item" in found), None
    return None, None


def throttling_reasons(parsed: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """DynamoDB's throttling reasons in one parsed error answer (see ``Observation``)."""
    if not parsed or ("Error" not in parsed and "CancellationReasons" not in parsed):
        return []  # a success (the usual answer): nothing to look for
    found: list[dict[str, Any]] = []
    for key in ("ThrottlingReasons", "throttlingReasons"):
        for reason in parsed.get(key) or ():
            if isinstance(reason, Mapping):
                found.append({name: reason[name] for name in ("reason", "resource") if name in reason})
    for position, reason in enumerate(parsed.get("CancellationReasons") or ()):
        if isinstance(reason, Mapping) and reason.get("Code") in _THROTTLED_REASONS:
            found.append({"item": position, "reason": reason["Code"]})
    return found
