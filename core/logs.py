"""Structured logging through the standard library: one event per DynamoDB call, no item or key values.

Every call ends with one ``core.engine.Observation`` (``core.telemetry.record``), whichever
transport sent it: the lean one reports it itself, and ``instrument(client)`` hooks a botocore
client's event system to build the same observation, so PynamoDB's calls and the migrations runner's
calls are logged the same way: one ``dynamodb.call`` event per call on the ``logging`` logger
``"dynamodb"``. A call that succeeded, and a refusal the caller handles (a condition that did not
hold, which becomes ``AlreadyExists``, ``ConflictError``, ``InsufficientFunds`` or an idempotent
replay; a transaction conflict, retried), is logged at DEBUG; only an unexpected failure (an error
after botocore's retries, no answer at all) at WARNING. Each event carries the operation, table
(every table of a transaction or batch), index, the access pattern (``access_pattern``:
``Order.of_user`` for a declared query, the write's name such as ``place_order`` or ``Order.save``;
``core.telemetry.attributed``), the calling function (``caller``: the nearest frame outside the data
layer's own files, botocore, PynamoDB, urllib3 and OpenTelemetry's instrumentation), duration,
consumed capacity (``consumed_capacity``, the total, and ``capacity_by_index``), items returned and
read, attempts and retries, throttling reasons (when DynamoDB gave any), HTTP status, outcome and
the AWS request id. Request and response bodies are never logged: they hold keys and items, and
emails are personal data. Every data call asks for consumed capacity:
``ReturnConsumedCapacity=INDEXES`` unless the caller chose (the models' transports widen PynamoDB's
own ``TOTAL`` to it); the event's ``consumed_capacity`` is the call's total, table and indexes together.

``metering()`` measures what the calls of a block cost (``Meter``: per call, the operation, its
capacity units in total and per table or index, items read and returned), from the same observation;
the page engine uses it to check access patterns' cost budgets (``core.budgets``). Outside such a
block a call pays one context variable lookup for it.

A library stays quiet unless asked: the data layer's loggers carry a ``logging.NullHandler``, so
with no logging configured nothing reaches Python's last-resort handler (which would print WARNING
records to stderr).

structlog goes through ``logging`` (``structlog.stdlib``), so an application's handlers, levels and
filters apply. A record's message is the event rendered as JSON, and the event's fields are also
attributes of the record (``record.caller``, ``record.table``, ...; ``record.event_dict`` holds them
all). When a logger is not enabled for a level, the hooks do no work for it: a successful call costs
a cached ``isEnabledFor(DEBUG)`` check.

``LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR or CRITICAL; unset: the application decides) sets the
level of the ``"dynamodb"`` logger and gives it a default handler on stderr (JSON lines when stderr
is not a terminal, structlog's console rendering when it is) that, like ``logging.lastResort``,
writes only when no other handler would receive the record. The data layer never adds a handler to
the root logger. A malformed ``LOG_LEVEL`` raises ``ConfigurationError``.

PynamoDB and botocore log whole requests and responses at DEBUG (``Calling PutItem with arguments
{...}``, ``Response body: ...``). Importing this module puts a filter on those loggers that replaces
such arguments with a placeholder, so that ``logging.basicConfig(level=DEBUG)`` in an application
prints no item or key values either.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from core.engine import bridge, observe
from core.engine.observe import CALLER, Observation
from core.error_codes import (
    CONDITION_FAILED,
    CONDITIONAL_CHECK_FAILED_EXCEPTION,
    IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION,
    TRANSACTION_CONFLICT,
    TRANSACTION_CONFLICT_EXCEPTION,
)
from core.errors import ConfigurationError

if TYPE_CHECKING:  # structlog itself is imported when the first event is logged (see _structlog)
    from structlog.typing import EventDict, WrappedLogger

LOGGER_NAME = "dynamodb"
LOG_LEVEL_ENV = "LOG_LEVEL"
LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
_MARK = "_datalayer_instrumented"
_LOGGER = logging.getLogger(LOGGER_NAME)
# Every logger the data layer writes to. The NullHandler keeps records away from logging.lastResort
# when the application configured nothing (records still propagate to its handlers when it did).
LIBRARY_LOGGERS = (LOGGER_NAME, "core.fast_parse")


def _add_null_handlers() -> None:
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())


_add_null_handlers()

_lock = threading.Lock()
_configured = False
_structlog_ready = False  # structlog imported, and configured unless the application had done it
_applied_env: str | None = None  # the LOG_LEVEL value the "dynamodb" logger was set up for
_applied_level: int | None = None  # the level configure_logging gave the "dynamodb" logger


def log_level() -> int | None:
    """``LOG_LEVEL`` as a ``logging`` level; ``None`` when unset or empty.

    Raises ``ConfigurationError`` for anything but DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).
    """
    raw = os.environ.get(LOG_LEVEL_ENV, "")
    name = raw.strip().upper()
    if not name:
        return None
    level = LEVELS.get(name)
    if level is None:
        raise ConfigurationError(
            f"{LOG_LEVEL_ENV} must be one of {', '.join(LEVELS)} (any case) or unset, got {raw!r}"
        )
    return level


# --- structlog, rendered into a standard library record -------------------------------------

# A record's own attributes: an event field with one of these names stays in the message only.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


def _to_record(_: WrappedLogger, __: str, event_dict: EventDict) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The last processor: the JSON message, with the fields as the record's attributes."""
    message = json.dumps(event_dict, default=repr)
    extra = {key: value for key, value in event_dict.items() if key not in _RECORD_ATTRIBUTES}
    extra["event_dict"] = dict(event_dict)
    return (message,), {"extra": extra}


def _configure_structlog() -> None:
    import structlog

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _to_record,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,  # structlog.testing.capture_logs must keep working
    )


class _DefaultFormatter(logging.Formatter):
    """The message (JSON) as is; structlog's console rendering on a terminal."""

    def __init__(self, *, console: bool) -> None:
        super().__init__()
        self._console: Any = None
        if console:
            import structlog

            self._console = structlog.dev.ConsoleRenderer()

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event_dict", None)
        if not isinstance(event, dict):
            return super().format(record)
        if self._console is not None:
            return str(self._console(_LOGGER, record.levelname.lower(), dict(event)))
        return record.getMessage()


class _DefaultHandler(logging.Handler):
    """Writes the "dynamodb" logger's records to stderr when no other handler would receive them.

    Like ``logging.lastResort``, it looks ``sys.stderr`` up at each record (a test or an app may
    replace it), and it stays silent once an application has configured handlers of its own.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if self._another_handler_receives():
            return
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)

    def _another_handler_receives(self) -> bool:
        logger: logging.Logger | None = _LOGGER
        while logger is not None:
            if any(handler is not self and not isinstance(handler, logging.NullHandler)
                   for handler in logger.handlers):
                return True
            if not logger.propagate:
                return False
            logger = logger.parent
        return False


_handler = _DefaultHandler()


def _apply_level(level: int | None) -> None:
    global _applied_level
    if level is None:
        # Unset: the application decides. Undo only what configure_logging did itself.
        if _applied_level is not None and _LOGGER.level == _applied_level:
            _LOGGER.setLevel(logging.NOTSET)
        _applied_level = None
        _LOGGER.removeHandler(_handler)
        return
    _LOGGER.setLevel(level)
    _applied_level = level
    _handler.setFormatter(_DefaultFormatter(console=sys.stderr.isatty()))
    if _handler not in _LOGGER.handlers:
        _LOGGER.addHandler(_handler)


def configure_logging(*, force: bool = False) -> None:
    """Configure structlog (once) and the "dynamodb" logger (whenever ``LOG_LEVEL`` changed).

    An application that configured structlog itself keeps its configuration, unless ``force``.
    Raises ``ConfigurationError`` for a malformed ``LOG_LEVEL``.
    """
    global _configured, _applied_env, _structlog_ready
    raw = os.environ.get(LOG_LEVEL_ENV)
    if _configured and not force and raw == _applied_env:
        return
    level = log_level()
    with _lock:
        if force:
            _configure_structlog()
            _structlog_ready = True
        _apply_level(level)
        _quiet_third_party_loggers()
        _configured = True
        _applied_env = raw


def get_logger(name: str = LOGGER_NAME) -> Any:
    """Return a structlog logger on the standard library logger ``name`` (configuring on first use)."""
    configure_logging()
    return _structlog().get_logger(name)


def _structlog() -> Any:
    """structlog, configured for the data layer unless the application configured it itself.

    Imported at the first event logged, not at import: a process whose calls all succeed at the
    default level never loads it (nor the asyncio it imports).
    """
    global _structlog_ready
    import structlog

    if not _structlog_ready:
        with _lock:
            if not _structlog_ready:
                if not structlog.is_configured():
                    _configure_structlog()
                _structlog_ready = True
    return structlog


# --- PynamoDB's and botocore's own DEBUG records ----------------------------------------------

_REDACTED = "<not logged: may hold item or key values>"
# Loggers that log whole requests or responses: PynamoDB's "Calling %s with arguments %s",
# botocore's "Making request for %s with params: %s" and "Response body: %r".
_NOISY_LOGGERS = (
    "pynamodb",
    "pynamodb.connection.base",
    "pynamodb.connection.table",
    "pynamodb.models",
    "botocore.endpoint",
    "botocore.parsers",
)
_CONTAINERS = (Mapping, list, tuple, set, frozenset, bytes, bytearray, memoryview)


class _RedactBodies(logging.Filter):
    """Replaces every container argument of a record (a request, an item, a body) by a placeholder."""

    datalayer_redaction = True

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping):
            record.args = ()  # the message's template is then printed as is
        elif args:
            record.args = tuple(_REDACTED if isinstance(arg, _CONTAINERS) else arg for arg in args)
        return True


_redaction = _RedactBodies()


def _quiet_third_party_loggers() -> None:
    """Put the redacting filter on PynamoDB's and botocore's loggers (idempotent)."""
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(getattr(f, "datalayer_redaction", False) for f in logger.filters):
            logger.addFilter(_redaction)


_quiet_third_party_loggers()


# --- the hooks --------------------------------------------------------------------------------

# Frames between the code that asked for a call and botocore. The data layer's own are told by their
# file, not their module's name: an application may have modules named ``core`` or ``models`` of its
# own, and may vendor the layer under a package of its own.
_LAYER_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LAYER_PLUMBING = (
    os.path.join(_LAYER_ROOT, "core", ""),
    os.path.join(_LAYER_ROOT, "models", ""),
    os.path.join(_LAYER_ROOT, "repositories", "_common.py"),
    os.path.join(_LAYER_ROOT, "repositories", "paging.py"),
    os.path.join(_LAYER_ROOT, "repositories", "query.py"),
)
# Libraries, by module name (opentelemetry and wrapt: OpenTelemetry's botocore instrumentation wraps
# every call).
_LIBRARY_PLUMBING = (
    "botocore",
    "pynamodb",
    "structlog",
    "logging",
    "contextlib",
    "concurrent",
    "threading",
    "tenacity",
    "urllib3",
    "opentelemetry",
    "wrapt",
)
_plumbing_frames: dict[tuple[str, str], bool] = {}


def _is_plumbing(filename: str, module: str) -> bool:
    key = (filename, module)
    known = _plumbing_frames.get(key)
    if known is None:
        known = filename.startswith(_LAYER_PLUMBING) or any(
            module == prefix or module.startswith(prefix + ".") for prefix in _LIBRARY_PLUMBING
        )
        if len(_plumbing_frames) < 4096:
            _plumbing_frames[key] = known
    return known


def _caller() -> str | None:
    """``module.function`` of the nearest frame that is neither the data layer's plumbing nor a library's
    (for a call awaited by ``core.engine.bridge``, the one found on its code's stack, if any)."""
    pinned = CALLER.get()
    if isinstance(pinned, str):
        return pinned
    # A pinned frame: the awaited code's paused stack, then this one's (the awaiting coroutines).
    # Else this stack, then (inside core.engine.bridge.run) the awaiting code's.
    frame: FrameType | None = pinned if pinned is not None else sys._getframe(1)
    outer = True
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not isinstance(module, str) or not _is_plumbing(frame.f_code.co_filename, module):
            return f"{module}.{frame.f_code.co_qualname}"
        frame = frame.f_back
        if frame is None and outer:
            frame, outer = sys._getframe(1) if pinned is not None else bridge.awaiting_frame(), False
    return None


def _tables(params: Mapping[str, Any]) -> str | None:
    table = params.get("TableName")
    if table:
        return str(table)
    names = {str(name) for name in params.get("RequestItems", ())}  # BatchGetItem, BatchWriteItem
    for item in params.get("TransactItems", ()):  # TransactWriteItems, TransactGetItems
        for operation in item.values():
            if isinstance(operation, Mapping) and operation.get("TableName"):
                names.add(str(operation["TableName"]))
    return ",".join(sorted(names)) or None


_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


@dataclass(frozen=True)
class CallCost:
    """What one call cost, as its answer says; ``None`` where it did not say.

    ``units_by_index``: capacity units per ``"table"`` and per index name (all tables together).
    """

    operation: str
    capacity_units: float | None
    items_read: int | None
    items_returned: int | None
    units_by_index: Mapping[str, float] = field(default_factory=dict)

    @property
    def read_units(self) -> float | None:
        """The capacity units of a read operation (``0.0`` for a write, ``None`` when not reported)."""
        if self.capacity_units is None:
            return None
        return self.capacity_units if self.operation in _READS else 0.0


@dataclass(eq=False)
class Meter:
    """The calls answered inside a ``metering()`` block, in order."""

    calls: list[CallCost] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """How many calls were answered."""
        return len(self.calls)

    @property
    def read_units(self) -> float | None:
        """Read capacity units of every call together; ``None`` if no answer reported any."""
        reported = [call.read_units for call in self.calls if call.read_units is not None]
        return sum(reported, 0.0) if reported else None

    @property
    def items_read(self) -> int | None:
        """Items read (``ScannedCount``) by every call together; ``None`` if no answer reported any."""
        reported = [call.items_read for call in self.calls if call.items_read is not None]
        return sum(reported) if reported else None

    @property
    def items_returned(self) -> int | None:
        """Items returned (``Count``) by every call together; ``None`` if no answer reported any."""
        reported = [call.items_returned for call in self.calls if call.items_returned is not None]
        return sum(reported) if reported else None

    def units_by_index(self) -> dict[str, float]:
        """Capacity units per ``"table"`` and per index name, every call together."""
        total: dict[str, float] = {}
        for call in self.calls:
            for name, units in call.units_by_index.items():
                total[name] = total.get(name, 0.0) + units
        return total


_METERS: ContextVar[tuple[Meter, ...]] = ContextVar("datalayer_meters", default=())


@contextmanager
def metering() -> Iterator[Meter]:
    """Measure the DynamoDB calls answered in this block (this thread or task, and tasks it starts).

    Blocks nest: a call counts in every enclosing meter. Calls made in other threads do not count
    unless they run in a copy of this context (``contextvars.copy_context().run``).
    """
    meter = Meter()
    token = _METERS.set((*_METERS.get(), meter))
    try:
        yield meter
    finally:
        _METERS.reset(token)


def metered() -> bool:
    """True when a ``metering()`` block is open in this context."""
    return bool(_METERS.get())


def meter_call(observation: Observation) -> None:
    """Count an answered call in every open ``metering()`` block (a call without an answer costs none)."""
    meters = _METERS.get()
    if not meters or observation.status is None:
        return
    counted = observation.operation in _COUNTED  # only Query and Scan answers say Count
    cost = CallCost(
        operation=observation.operation,
        capacity_units=observation.consumed_capacity if observation.consumed else None,
        items_read=observation.items_read,
        items_returned=observation.items_returned if counted else None,
        units_by_index=dict(observation.capacity_by_index),
    )
    for meter in meters:
        meter.calls.append(cost)


_COUNTED = frozenset({"Query", "Scan"})

# Errors that answer a question rather than report a failure: the migrations runner asks whether a
# table exists with DescribeTable. Logged at DEBUG, like a successful call.
_PROBES = frozenset({("DescribeTable", "ResourceNotFoundException")})
# Refusals the caller handles: a condition that did not hold becomes a typed error (AlreadyExists,
# ConflictError, InsufficientFunds) or an idempotent replay's stored answer, as does a transaction
# sent again with its ClientRequestToken; a conflict with another transaction is retried, then a
# ConflictError. Logged at DEBUG too.
_REFUSALS = frozenset({
    CONDITIONAL_CHECK_FAILED_EXCEPTION,
    TRANSACTION_CONFLICT_EXCEPTION,
    IDEMPOTENT_PARAMETER_MISMATCH_EXCEPTION,
})
_REFUSAL_REASONS = frozenset({"None", CONDITION_FAILED, TRANSACTION_CONFLICT})


def expected(observation: Observation) -> bool:
    """True for a call that succeeded, or failed with a refusal the caller handles (or a probe's answer)."""
    code = observation.outcome
    if code == "ok" or (observation.operation, code) in _PROBES or code in _REFUSALS:
        return True
    if code != "TransactionCanceledException" or observation.status is None:
        return False
    codes = {str(reason) for reason in observation.cancellation_reasons}
    return bool(codes) and codes <= _REFUSAL_REASONS and codes != {"None"}


def _level(observation: Observation) -> int:
    return logging.DEBUG if expected(observation) else logging.WARNING


def debugging() -> bool:
    """True when the ``"dynamodb"`` logger would log a call that went as expected (DEBUG)."""
    return _LOGGER.isEnabledFor(logging.DEBUG)


def log_call(observation: Observation) -> None:
    """Log ``observation`` as one ``dynamodb.call`` event, if the ``"dynamodb"`` logger is enabled for it."""
    level = _level(observation)
    if not _LOGGER.isEnabledFor(level):
        return
    fields: dict[str, Any] = {}
    if observation.cancellation_reasons:  # the codes only: a reason's Item holds values
        fields["cancellation_reasons"] = list(observation.cancellation_reasons)
    if observation.throttling_reasons:
        fields["throttling_reasons"] = [dict(reason) for reason in observation.throttling_reasons]
    logger = _structlog().get_logger(LOGGER_NAME)
    log = logger.warning if level >= logging.WARNING else logger.debug
    log(
        "dynamodb.call",
        operation=observation.operation,
        table=observation.table,
        index=observation.index,
        access_pattern=observation.access_pattern,
        caller=_caller(),
        duration_ms=round(observation.latency * 1000, 3),
        consumed_capacity=observation.consumed_capacity,
        capacity_by_index=dict(observation.capacity_by_index) or None,
        items_returned=observation.items_returned,
        items_read=observation.items_read,
        attempts=observation.attempts,
        retries=observation.attempts - 1 if observation.attempts else None,
        status=observation.status,
        outcome=observation.outcome,
        request_id=observation.request_id,
        **fields,
    )


def caller() -> str | None:
    """The calling function of the call being observed (see ``_caller``)."""
    return _caller()


# --- botocore's client: the same observation from its events ------------------------------------

# Set by ``core.client``'s botocore transport around a call: the hooks leave the observation there,
# and the transport records it once the call has returned (outside OpenTelemetry's suppression).
_PENDING: ContextVar[list[Observation] | None] = ContextVar("datalayer_pending_observation", default=None)


@contextmanager
def collecting() -> Iterator[list[Observation]]:
    """Collect the observations of the botocore calls made in this block instead of recording them."""
    pending: list[Observation] = []
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def _deliver(level: int, build: Callable[[], Observation]) -> None:
    from core import telemetry

    # No work at all unless a logger, meter, tracer or observer would receive the observation.
    if not (_LOGGER.isEnabledFor(level) or telemetry.listening()):
        return
    pending = _PENDING.get()
    if pending is not None:  # the models' botocore transport records it once the call returned
        pending.append(build())
    else:  # the control plane, raw clients: botocore's own instrumentation may trace the call
        telemetry.record(build(), span=False)


def _before_parameter_build(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    context["datalayer_start"] = time.perf_counter()
    context["datalayer_started_at"] = time.time_ns()
    context["datalayer_operation"] = model.name
    context["datalayer_params"] = params  # read only when an observation is built
    # Every data call asks: INDEXES answers the total (CapacityUnits) and its share per table and
    # index. A caller's own choice is kept (the models' transports widen PynamoDB's TOTAL themselves).
    if "ReturnConsumedCapacity" not in params and "ReturnConsumedCapacity" in getattr(
            model.input_shape, "members", ()):
        params["ReturnConsumedCapacity"] = "INDEXES"


def _needs_retry(request_dict: Mapping[str, Any] | None = None, response: Any = None,
                 attempts: int | None = None, **_: Any) -> None:
    """Per attempt: count it, and keep the throttling reasons of its answer."""
    context = request_dict.get("context") if isinstance(request_dict, Mapping) else None
    if not isinstance(context, dict):
        return None
    if isinstance(attempts, int):
        context["datalayer_attempts"] = attempts
    parsed = response[1] if isinstance(response, tuple) and len(response) == 2 else None
    if isinstance(parsed, Mapping) and "Error" in parsed:
        reasons = observe.throttling_reasons(parsed)
        if reasons:
            context.setdefault("datalayer_reasons", []).extend(reasons)
    return None  # botocore's own handler decides whether to retry


def _observation(context: Mapping[str, Any], operation: str, *, outcome: str, status: int | None,
                 parsed: Mapping[str, Any], http_response: Any = None) -> Observation:
    params = context.get("datalayer_params") or {}
    start = context.get("datalayer_start")
    metadata = parsed.get("ResponseMetadata") or {}
    attempts = context.get("datalayer_attempts")
    if not isinstance(attempts, int):
        retries = metadata.get("RetryAttempts")
        attempts = retries + 1 if isinstance(retries, int) else (_retries(context) or 0) + 1
    failed = outcome != "ok"
    total, split = observe.capacity(parsed)
    returned, read = observe.items(operation, parsed) if not failed else (None, None)
    index = params.get("IndexName")
    return Observation(
        operation=operation,
        table=_tables(params),
        index=index if isinstance(index, str) else None,
        outcome=outcome,
        latency=time.perf_counter() - start if start is not None else 0.0,
        attempts=attempts,
        status=status,
        request_id=_request_id(http_response, metadata),
        consumed_capacity=total,
        capacity_by_index=split,
        items_returned=returned,
        items_read=read,
        throttling_reasons=tuple(context.get("datalayer_reasons") or ()),
        access_pattern=observe.ACCESS_PATTERN.get(),
        consumed=observe.consumed_entries(parsed),
        cancellation_reasons=observe.cancellation_codes(parsed) if failed else (),
        started_at=context.get("datalayer_started_at"),
    )


def _retries(context: Mapping[str, Any]) -> int | None:
    attempt = context.get("retries", {}).get("attempt")
    return attempt - 1 if isinstance(attempt, int) else None


def _request_id(http_response: Any, metadata: Mapping[str, Any]) -> str | None:
    request_id = metadata.get("RequestId")
    if not request_id:
        headers = getattr(http_response, "headers", None) or {}
        request_id = headers.get("x-amzn-requestid") or headers.get("x-amzn-RequestId")
    return str(request_id) if request_id else None


def _after_call(
    http_response: Any, parsed: dict[str, Any] | None, model: Any, context: dict[str, Any], **_: Any
) -> None:
    status = getattr(http_response, "status_code", None)
    answer: Mapping[str, Any] = parsed or {}
    failed = (isinstance(status, int) and status >= 300) or "Error" in answer
    outcome = "ok"
    if failed:
        code = context.get("error_code_override") or (answer.get("Error") or {}).get("Code")
        outcome = code or f"HTTP {status}"
    # The level only decides whether a lone log would want it; the observation itself is the same.
    level = logging.WARNING if failed else logging.DEBUG
    _deliver(level, lambda: _observation(context, model.name, outcome=outcome,
                                         status=status if isinstance(status, int) else None,
                                         parsed=answer, http_response=http_response))


def _after_call_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    # No answer (a timeout, a reset connection): botocore sends this event without the operation
    # model, so the name comes from the context.
    operation = str(context.get("datalayer_operation") or "")
    _deliver(logging.WARNING, lambda: _observation(context, operation, outcome=type(exception).__name__,
                                                   status=None, parsed={}))


def instrument(client: Any) -> Any:
    """Register the observing hooks on a botocore DynamoDB client (idempotent); return it.

    Applies ``LOG_LEVEL`` first (``ConfigurationError`` when it is malformed).
    """
    configure_logging()
    _quiet_third_party_loggers()
    if getattr(client, _MARK, False):
        return client
    events = client.meta.events
    events.register("before-parameter-build.dynamodb", _before_parameter_build)
    events.register("needs-retry.dynamodb", _needs_retry, unique_id="datalayer-observe-attempts")
    events.register("after-call.dynamodb", _after_call)
    events.register("after-call-error.dynamodb", _after_call_error)
    setattr(client, _MARK, True)
    return client
