"""The clients: the models' data-plane client (``model_client``) and botocore's (``new_client``).

``model_client`` is what every model sends through (``models.table``). By default it is the lean
transport, ``core.engine.sync.LeanClient``: the same wire as botocore's, without its per-call
machinery. ``DATALAYER_TRANSPORT=botocore`` makes it a ``BotocoreTransport``: a plain botocore client
(as ``new_client`` builds) behind the same entry point. Either way each call is one
``core.engine.Observation`` for ``core.telemetry.record`` (log event, cost meters, span, observers).

``new_client`` is botocore's client, for what PynamoDB cannot do (the migrations' control plane,
raw reads in tests). Same endpoint, region, retry policy and logging as the models: botocore's
``standard`` retry mode retries throttling and 5xx errors with exponential backoff and full jitter.
Every such client decodes the items of its successful reads with orjson (``core.fast_parse``) and
serializes its data requests with ``json.dumps`` where that is botocore's body byte for byte
(``core.fast_serialize``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import botocore.config
import botocore.session
from botocore import xform_name
from botocore.exceptions import InvalidRegionError, NoRegionError

from core import fast_parse, fast_serialize, telemetry
from core.config import Settings, get_settings
from core.engine import bridge, observe
from core.error_codes import NO_REGION, watch_attempts
from core.errors import ConfigurationError
from core.logs import caller, collecting, configure_logging, instrument

if TYPE_CHECKING:
    from core.engine.sync import LeanClient


def retry_config(settings: Settings) -> dict[str, Any]:
    """botocore's retry configuration, shared by every client of the data layer."""
    return {"mode": "standard", "total_max_attempts": 1 + settings.max_retry_attempts}


# Enough for the thread pools that fan reads out (metrics buckets, shards).
MAX_POOL_CONNECTIONS = 32

_session_lock = threading.Lock()
_model_clients: dict[tuple[object, ...], Any] = {}
_session: botocore.session.Session | None = None


def _shared_session() -> botocore.session.Session:
    # Building a botocore session loads its data files (~0.1 s); one per process is enough.
    global _session
    if _session is None:
        _session = botocore.session.get_session()
    return _session


def new_client(settings: Settings | None = None, *, validate: bool = True) -> Any:
    """Create an instrumented botocore DynamoDB client for the current settings.

    ``validate=False`` skips botocore's client-side parameter validation, as PynamoDB does for
    the requests it builds itself. Successful reads are decoded by ``core.fast_parse``, data
    requests serialized by ``core.fast_serialize``.
    """
    settings = settings or get_settings()
    config = botocore.config.Config(
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        retries=retry_config(settings),  # type: ignore[arg-type]
        parameter_validation=validate,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    try:
        with _session_lock:  # botocore's create_client is not thread-safe
            client = _shared_session().create_client(
                "dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
            )
    except (NoRegionError, InvalidRegionError) as exc:
        raise ConfigurationError(NO_REGION) from exc
    # watch_attempts: a refused connection is reported as such only if no earlier attempt was sent.
    return instrument(watch_attempts(fast_serialize.install(fast_parse.install(client))))


class BotocoreTransport:
    """A botocore client behind the models' entry point, each call one observation and one span.

    PynamoDB calls ``_make_api_call(operation, params)``; this sends it through the botocore
    client's public method (``put_item``...), asking for ``INDEXES`` capacity where PynamoDB asks for
    ``TOTAL`` (as ``LeanClient`` does), inside OpenTelemetry's ``suppress_instrumentation()``
    (when installed), so that an app's botocore instrumentation does not trace the call a second
    time, then records the observation its hooks (``core.logs.instrument``) built. ``meta``, the
    method names and everything else are the botocore client's own.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.meta = client.meta
        self._request_signer = None  # PynamoDB: keep this client (it checks a botocore signer's credentials)

    def _make_api_call(self, operation_name: str, api_params: dict[str, Any]) -> dict[str, Any]:
        """PynamoDB's entry point: send ``operation_name`` with ``api_params``. Inside
        ``core.engine.bridge.run`` the botocore call runs in a worker thread, awaited."""
        if bridge.active():
            import asyncio

            with observe.caller_pinned(caller()):  # found now: the call is observed on another thread
                return bridge.wait(asyncio.to_thread(self._send, operation_name, api_params))
        return self._send(operation_name, api_params)

    async def aclose(self) -> None:
        """Nothing to close per loop: the botocore client's pool is shared by every caller."""

    def _send(self, operation_name: str, api_params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self.client, xform_name(operation_name))
        if api_params.get("ReturnConsumedCapacity") == "TOTAL":  # PynamoDB's, widened as LeanClient does
            api_params = {**api_params, "ReturnConsumedCapacity": "INDEXES"}
        with collecting() as observed:
            try:
                with telemetry.suppressed_instrumentation():
                    result: dict[str, Any] = method(**api_params)
            finally:
                for observation in observed:
                    telemetry.record(observation)
        return result

    def __getattr__(self, name: str) -> Any:
        from core.engine.sync import METHODS

        if name in METHODS:  # a data-plane operation: observed as PynamoDB's calls are
            operation = METHODS[name]
            return lambda **params: self._make_api_call(operation, params)
        return getattr(self.client, name)


def lean_client(settings: Settings) -> LeanClient:
    """A ``LeanClient`` for ``settings``: botocore's shared session's credentials, INDEXES capacity asked
    on every data call, observations to ``core.telemetry.record`` (none built for a call that succeeded
    while nothing would receive it: ``core.telemetry.observing``). (The engine is imported here, at the
    first client, not when the layer is imported.)"""
    from core.engine.sync import LeanClient

    try:
        return LeanClient(settings, session=_shared_session(), return_consumed_capacity="INDEXES",
                          on_observation=telemetry.record, observing=telemetry.observing)
    except NoRegionError as exc:
        raise ConfigurationError(NO_REGION) from exc


async def aclose_model_clients() -> None:
    """Close the pools the models' clients opened on the running loop (``repositories.asyncio.aclose``)."""
    for client in list(_model_clients.values()):
        await client.aclose()


def model_client(settings: Settings) -> Any:
    """The one client every model shares for these settings (connection pool included).

    PynamoDB would build a client (and a botocore session) per model class and thread; the
    entities all live in one table, so one client serves them all. Its transport is the settings'
    (``DATALAYER_TRANSPORT``): a ``LeanClient`` or a ``BotocoreTransport``.
    """
    key = (settings.endpoint_url, settings.region, settings.max_retry_attempts,
           settings.connect_timeout_seconds, settings.read_timeout_seconds, settings.transport)
    client = _model_clients.get(key)
    if client is None:
        if settings.transport == "botocore":
            client = BotocoreTransport(new_client(settings, validate=False))
        else:
            configure_logging()  # LOG_LEVEL applied (and checked) as for a botocore client
            client = lean_client(settings)
        with _session_lock:
            if len(_model_clients) >= 16:  # settings rarely change outside tests; stay bounded
                _model_clients.clear()
            client = _model_clients.setdefault(key, client)
    return client
