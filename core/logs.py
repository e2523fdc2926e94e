"""Structured logging: one event per DynamoDB call, without item or key values.

``instrument(client)`` hooks a botocore client's event system, so PynamoDB's calls and the
migrations runner's calls are logged the same way. Each event carries the operation, table,
index, duration, consumed capacity, retry count and outcome. Request and response bodies are
never logged: they hold keys and items, and emails are personal data.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import structlog

LOGGER_NAME = "dynamodb"
_MARK = "_datalayer_instrumented"
_configured = False


def configure_logging(*, force: bool = False) -> None:
    """Configure structlog once: JSON when not on a terminal, readable on a terminal.

    An application that configured structlog itself keeps its configuration.
    """
    global _configured
    if _configured and not force:
        return
    _configured = True
    if structlog.is_configured() and not force:
        return
    level = logging.getLevelName(os.environ.get("LOG_LEVEL", "INFO").upper())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level if isinstance(level, int) else 20),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = LOGGER_NAME) -> Any:
    """Return a structlog logger (configuring structlog on first use)."""
    configure_logging()
    return structlog.get_logger(name)


def _capacity(parsed: dict[str, Any]) -> float | None:
    consumed = parsed.get("ConsumedCapacity")
    if isinstance(consumed, dict):
        consumed = [consumed]
    if not isinstance(consumed, list):
        return None
    total = 0.0
    for entry in consumed:
        total += float(entry.get("CapacityUnits", 0.0))
    return total


def _before_parameter_build(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    context["datalayer_start"] = time.perf_counter()
    context["datalayer_operation"] = model.name
    tables = {item_op["TableName"] for item in params.get("TransactItems", ()) for item_op in item.values()}
    context["datalayer_table"] = params.get("TableName") or ",".join(
        sorted({*params.get("RequestItems", {}), *tables})
    ) or None
    context["datalayer_index"] = params.get("IndexName")
    members = getattr(model.input_shape, "members", {})
    if "ReturnConsumedCapacity" in members and "ReturnConsumedCapacity" not in params:
        params["ReturnConsumedCapacity"] = "TOTAL"


def _after_call(
    http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
) -> None:
    start = context.get("datalayer_start")
    duration_ms = round((time.perf_counter() - start) * 1000, 3) if start is not None else None
    error = parsed.get("Error", {})
    outcome = error.get("Code") if error else "ok"
    get_logger().info(
        "dynamodb.call",
        operation=model.name,
        table=context.get("datalayer_table"),
        index=context.get("datalayer_index"),
        duration_ms=duration_ms,
        consumed_capacity=_capacity(parsed),
        retries=parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0),
        status=getattr(http_response, "status_code", None),
        outcome=outcome,
    )


def _after_call_error(
    exception: BaseException, context: dict[str, Any], model: Any = None, **_: Any
) -> None:
    # botocore sends this event without the operation model; the name is kept in the context.
    start = context.get("datalayer_start")
    duration_ms = round((time.perf_counter() - start) * 1000, 3) if start is not None else None
    get_logger().warning(
        "dynamodb.call",
        operation=context.get("datalayer_operation"),
        table=context.get("datalayer_table"),
        index=context.get("datalayer_index"),
        duration_ms=duration_ms,
        outcome=type(exception).__name__,
    )


def instrument(client: Any) -> Any:
    """Register the logging hooks on a botocore DynamoDB client (idempotent); return it."""
    if getattr(client, _MARK, False):
        return client
    events = client.meta.events
    events.register("before-parameter-build.dynamodb", _before_parameter_build)
    events.register("after-call.dynamodb", _after_call)
    events.register("after-call-error.dynamodb", _after_call_error)
    setattr(client, _MARK, True)
    return client
