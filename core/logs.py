"""Structured logging through the standard library: one event per DynamoDB call, no item or key values.

``instrument(client)`` hooks a botocore client's event system, so PynamoDB's calls and the
migrations runner's calls are logged the same way: one ``dynamodb.call`` event per call on the
``logging`` logger ``"dynamodb"``. A call that succeeded, and a refusal the caller handles (a
condition that did not hold, which becomes ``AlreadyExists``, ``ConflictError``,
``InsufficientFunds`` or an idempotent replay; a transaction conflict, retried), is logged at DEBUG;
only an unexpected failure (an error after botocore's retries, no answer at all) at WARNING.
Each event carries the operation, table (every table of a transaction or batch), index, the calling
function (``caller``: the nearest frame outside the data layer's own files, botocore, PynamoDB and
OpenTelemetry's instrumentation), duration, consumed capacity, retries, HTTP status, outcome and the
AWS request id. Request and response bodies are never logged: they hold keys and items, and emails
are personal data.

A library stays quiet unless asked: the data layer's loggers carry a ``logging.NullHandler``, so
with no logging configured nothing reaches Python's last-resort handler (which would print
WARNING records to stderr).

structlog goes through ``logging`` (``structlog.stdlib``), so an application's handlers, levels and
filters apply. A record's message is the event rendered as JSON, and the event's fields are also
attributes of the record (``record.caller``, ``record.table``, ...; ``record.event_dict`` holds
them all). When a logger is not enabled for a level, the hooks do no work for it: a successful
call costs a cached ``isEnabledFor(DEBUG)`` check.

``LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR or CRITICAL; unset: the application decides) sets the
level of the ``"dynamodb"`` logger and gives it a default handler on stderr (JSON lines when stderr
is not a terminal, structlog's console rendering when it is) that, like ``logging.lastResort``,
writes only when no other handler would receive the record. The data layer never adds a handler
to the root logger. A malformed ``LOG_LEVEL`` raises ``ConfigurationError``.

PynamoDB and botocore log whole requests and responses at DEBUG (``Calling PutItem with
arguments {...}``, ``Response body: ...``). Importing this module puts a filter on those loggers
that replaces such arguments with a placeholder, so that ``logging.basicConfig(level=DEBUG)``
in an application prints no item or key values either.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

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
    """``module.function`` of the nearest frame that is neither the data layer's plumbing nor a library's."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not isinstance(module, str) or not _is_plumbing(frame.f_code.co_filename, module):
            return f"{module}.{frame.f_code.co_qualname}"
        frame = frame.f_back
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


def _capacity(parsed: Mapping[str, Any]) -> float | None:
    consumed = parsed.get("ConsumedCapacity")
    if isinstance(consumed, dict):
        consumed = [consumed]
    if not isinstance(consumed, list):
        return None
    return sum((float(entry.get("CapacityUnits", 0.0)) for entry in consumed), 0.0)


def _retries(context: Mapping[str, Any]) -> int | None:
    attempt = context.get("retries", {}).get("attempt")
    return attempt - 1 if isinstance(attempt, int) else None


def _request_id(http_response: Any, metadata: Mapping[str, Any]) -> str | None:
    request_id = metadata.get("RequestId")
    if not request_id:
        headers = getattr(http_response, "headers", None) or {}
        request_id = headers.get("x-amzn-requestid") or headers.get("x-amzn-RequestId")
    return str(request_id) if request_id else None


def _emit(level: int, context: Mapping[str, Any], operation: str | None, **fields: Any) -> None:
    """Build and log the event (only called once the logger is known to be enabled for ``level``)."""
    params = context.get("datalayer_params") or {}
    start = context.get("datalayer_start")
    logger = _structlog().get_logger(LOGGER_NAME)
    log = logger.warning if level >= logging.WARNING else logger.debug
    log(
        "dynamodb.call",
        operation=operation,
        table=_tables(params),
        index=params.get("IndexName"),
        caller=_caller(),
        duration_ms=round((time.perf_counter() - start) * 1000, 3) if start is not None else None,
        **fields,
    )


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


def _is_refusal(code: str | None, parsed: Mapping[str, Any]) -> bool:
    """True for a failed call whose error the data layer turns into an outcome the caller handles."""
    if code in _REFUSALS:
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = parsed.get("CancellationReasons")
    if not isinstance(reasons, list):
        return False
    codes = {str(reason.get("Code")) for reason in reasons if isinstance(reason, Mapping)}
    return bool(codes) and codes <= _REFUSAL_REASONS and codes != {"None"}


def _before_parameter_build(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    context["datalayer_start"] = time.perf_counter()
    context["datalayer_operation"] = model.name
    context["datalayer_params"] = params  # read only when an event is logged
    if _LOGGER.isEnabledFor(logging.DEBUG):
        members = getattr(model.input_shape, "members", {})
        if "ReturnConsumedCapacity" in members and "ReturnConsumedCapacity" not in params:
            params["ReturnConsumedCapacity"] = "TOTAL"


def _after_call(
    http_response: Any, parsed: dict[str, Any] | None, model: Any, context: dict[str, Any], **_: Any
) -> None:
    status = getattr(http_response, "status_code", None)
    parsed = parsed or {}
    failed = (isinstance(status, int) and status >= 300) or "Error" in parsed
    code = None
    if failed:
        code = context.get("error_code_override") or (parsed.get("Error") or {}).get("Code")
        expected = (model.name, code) in _PROBES or _is_refusal(code, parsed)
        level = logging.DEBUG if expected else logging.WARNING
    else:
        level = logging.DEBUG
    if not _LOGGER.isEnabledFor(level):
        return
    metadata = parsed.get("ResponseMetadata") or {}
    fields: dict[str, Any] = {}
    if failed:
        outcome = code or f"HTTP {status}"
        reasons = parsed.get("CancellationReasons")
        if isinstance(reasons, list):  # the codes only: a reason's Item holds values
            fields["cancellation_reasons"] = [reason.get("Code") for reason in reasons]
    else:
        outcome = "ok"
    retries = metadata.get("RetryAttempts")
    _emit(
        level,
        context,
        model.name,
        consumed_capacity=_capacity(parsed),
        retries=retries if retries is not None else _retries(context),
        status=status,
        outcome=outcome,
        request_id=_request_id(http_response, metadata),
        **fields,
    )


def _after_call_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    # No answer (a timeout, a reset connection): botocore sends this event without the operation
    # model, so the name comes from the context.
    if not _LOGGER.isEnabledFor(logging.WARNING):
        return
    _emit(
        logging.WARNING,
        context,
        context.get("datalayer_operation"),
        consumed_capacity=None,
        retries=_retries(context),
        status=None,
        outcome=type(exception).__name__,
        request_id=None,
    )


def instrument(client: Any) -> Any:
    """Register the logging hooks on a botocore DynamoDB client (idempotent); return it.

    Applies ``LOG_LEVEL`` first (``ConfigurationError`` when it is malformed).
    """
    configure_logging()
    _quiet_third_party_loggers()
    if getattr(client, _MARK, False):
        return client
    events = client.meta.events
    events.register("before-parameter-build.dynamodb", _before_parameter_build)
    events.register("after-call.dynamodb", _after_call)
    events.register("after-call-error.dynamodb", _after_call_error)
    setattr(client, _MARK, True)
    return client
