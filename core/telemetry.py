"""Where each DynamoDB call's ``Observation`` goes: the log, the cost meters, OpenTelemetry, the app's hooks.

Both transports end every call with one ``core.engine.Observation`` (operation, table, index,
access pattern, consumed capacity, items returned and read, latency, attempts, throttling reasons,
outcome, request id; never an item or key value), and hand it to ``record``, which feeds:

1. the ``"dynamodb"`` logger: one ``dynamodb.call`` event (``core.logs``), DEBUG for an answer or a
   refusal the caller handles, WARNING for an unexpected failure;
2. the ``core.logs.metering()`` blocks that are open (the access patterns' cost budgets);
3. OpenTelemetry, when ``opentelemetry-api`` is importable and a tracer provider is set (or one is
   given to ``use_tracer_provider``): one CLIENT span per call, named ``"<operation> <table>"``,
   with the database semantic conventions' attributes (``db.system.name`` ``aws.dynamodb`` and the
   legacy ``db.system``, ``db.operation.name``, ``aws.dynamodb.table_names``,
   ``aws.dynamodb.index_name``, ``aws.dynamodb.consumed_capacity``, ``aws.dynamodb.count``,
   ``aws.dynamodb.scanned_count``, ``aws.request_id``, ``error.type``) and ``datalayer.access_pattern``,
   ``datalayer.attempts``, ``datalayer.throttling_reasons``. When the app also instruments botocore
   (``opentelemetry-instrumentation-botocore``), the botocore transport sends under the
   instrumentation's public ``suppress_instrumentation()``, so the call still has one span: this one;
4. every observer the application added with ``add_observer``: a plain callable, for metrics
   (CloudWatch EMF, Prometheus, StatsD) without the data layer depending on any of them. An
   observer runs on the calling thread after the call; one that raises is logged and skipped.

``attributed(name)`` names the access pattern (``Order.of_user``) or function (``place_order``) that
the block's calls serve; the declared queries and the write path set it themselves.

Example, a counter of read units per access pattern::

    from core import telemetry

    def count(observation: telemetry.Observation) -> None:
        units.labels(observation.access_pattern or observation.operation).inc(
            observation.consumed_capacity or 0)

    telemetry.add_observer(count)
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import nullcontext
from typing import Any, Final

from core.engine import observe
from core.engine.observe import Observation, Observer, attributed

__all__ = ["Observation", "Observer", "add_observer", "attributed", "record", "remove_observer",
           "suppressed_instrumentation", "use_tracer_provider"]

INSTRUMENTATION_NAME: Final = "dynamo-datalayer"
_LOG = logging.getLogger(__name__)
_LOG.addHandler(logging.NullHandler())


def add_observer(observer: Observer) -> None:
    """Call ``observer(observation)`` after every DynamoDB call from now on (once, however often added)."""
    if observer not in observe.observers:
        observe.observers.append(observer)


def remove_observer(observer: Observer) -> None:
    """Stop calling ``observer`` (nothing happens if it was not added)."""
    if observer in observe.observers:
        observe.observers.remove(observer)


def record(observation: Observation, *, span: bool = True) -> None:
    """Feed ``observation`` to the log, the open meters, a span (unless ``span=False``) and the observers.

    ``span=False`` is for calls that botocore's own OpenTelemetry instrumentation may already trace
    (the control-plane client of ``core.client.new_client``).
    """
    from core import logs  # core.logs' botocore hooks call back into this module

    try:
        logs.meter_call(observation)
        logs.log_call(observation)
        if span:
            _span(observation)
    except Exception:  # a broken sink must not turn an applied write into a failure
        _LOG.exception("recording the observation of %s failed", observation.operation)
    if observe.observers:
        observe.notify(observation)


def listening() -> bool:
    """True when an observer, a tracer or a meter would receive an observation (the log aside)."""
    from core import logs

    return bool(observe.observers) or logs.metered() or _tracer() is not None


def observing() -> bool:
    """True when a call that succeeds would be seen: logged (the ``"dynamodb"`` logger enabled for
    DEBUG), metered, traced or observed. False, the engine builds no ``Observation`` for it."""
    logs = sys.modules.get("core.logs")  # imported by record's first call (and by core.client)
    if logs is None:
        return True
    return bool(logs.debugging()) or listening()


# --- OpenTelemetry (optional) -----------------------------------------------------------------

_given_provider: Any = None
_otel: Any = None  # the opentelemetry.trace module, False when not importable
_cached: tuple[Any, Any] | None = None  # (provider, tracer)


def use_tracer_provider(provider: Any) -> None:
    """Trace with ``provider`` instead of the global one (``None``: the global one again)."""
    global _given_provider, _cached
    _given_provider, _cached = provider, None


def _trace_module() -> Any:
    global _otel
    if _otel is None:
        try:
            from opentelemetry import trace
        except ImportError:
            _otel = False
        else:
            _otel = trace
    return _otel


def _tracer() -> Any:
    """The tracer to use, or ``None`` when OpenTelemetry is absent or no tracer provider is set."""
    global _cached
    trace = _trace_module()
    if not trace:
        return None
    provider = _given_provider or trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None  # the application set no tracer provider
    cached = _cached
    if cached is not None and cached[0] is provider:
        return cached[1]
    tracer = provider.get_tracer(INSTRUMENTATION_NAME)
    _cached = (provider, tracer)
    return tracer


def _span(observation: Observation) -> None:
    tracer = _tracer()
    if tracer is None or observation.started_at is None:
        return
    trace = _trace_module()
    from core import logs

    tables = observation.table.split(",") if observation.table else []
    name = f"{observation.operation} {tables[0]}" if len(tables) == 1 else observation.operation
    span = tracer.start_span(name, kind=trace.SpanKind.CLIENT, attributes=span_attributes(observation),
                             start_time=observation.started_at)
    if not logs.expected(observation):
        span.set_status(trace.Status(trace.StatusCode.ERROR, observation.outcome))
    span.end(end_time=observation.started_at + int(observation.latency * 1e9))


def span_attributes(observation: Observation) -> dict[str, Any]:
    """The span attributes of ``observation`` (see the module docstring); absent values are left out."""
    from core import logs

    def as_json(entries: tuple[Any, ...]) -> list[str] | None:
        return [json.dumps(dict(entry), sort_keys=True, default=str) for entry in entries] or None

    optional: dict[str, Any] = {
        "aws.dynamodb.table_names": observation.table.split(",") if observation.table else None,
        "aws.dynamodb.index_name": observation.index,
        "aws.dynamodb.consumed_capacity": as_json(observation.consumed),
        "datalayer.consumed_capacity": observation.consumed_capacity,
        "aws.dynamodb.count": observation.items_returned,
        "aws.dynamodb.scanned_count": observation.items_read,
        "aws.request_id": observation.request_id,
        "http.response.status_code": observation.status,
        "datalayer.access_pattern": observation.access_pattern or logs.caller(),
        "datalayer.throttling_reasons": as_json(observation.throttling_reasons),
        "error.type": None if observation.outcome == "ok" else observation.outcome,
    }
    return {
        "db.system.name": "aws.dynamodb",
        "db.system": "dynamodb",  # the conventions' name before db.system.name
        "db.operation.name": observation.operation,
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDB",
        "rpc.method": observation.operation,
        "datalayer.attempts": observation.attempts,
        **{key: value for key, value in optional.items() if value is not None},
    }


def suppressed_instrumentation() -> Any:
    """A context in which OpenTelemetry's instrumentations (botocore's, urllib3's) trace nothing.

    The public ``opentelemetry.instrumentation.utils.suppress_instrumentation`` when that package is
    installed (every botocore instrumentation depends on it); otherwise there is nothing to suppress.
    """
    suppress = _suppressor()
    return suppress() if suppress is not None else nullcontext()


_suppress: Any = None


def _suppressor() -> Any:
    global _suppress
    if _suppress is None:
        try:
            from opentelemetry.instrumentation.utils import suppress_instrumentation
        except ImportError:
            _suppress = False
        else:
            _suppress = suppress_instrumentation
    return _suppress or None
