"""The low-level botocore client, for what PynamoDB cannot do (index changes, raw reads).

Same endpoint, region, retry policy and logging as the PynamoDB models: botocore's ``standard``
retry mode retries throttling and 5xx errors with exponential backoff and full jitter. Every client
decodes the items of its successful reads with orjson (``core.fast_parse``) and serializes its data
requests with ``json.dumps`` where that is botocore's body byte for byte (``core.fast_serialize``).
"""

from __future__ import annotations

import threading
from typing import Any

import botocore.config
import botocore.session
from botocore.exceptions import InvalidRegionError, NoRegionError

from core import fast_parse, fast_serialize
from core.config import Settings, get_settings
from core.error_codes import NO_REGION, watch_attempts
from core.errors import ConfigurationError
from core.logs import instrument


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


def model_client(settings: Settings) -> Any:
    """The one client every model shares for these settings (connection pool included).

    PynamoDB would build a client (and a botocore session) per model class and thread; the
    entities all live in one table, so one client serves them all.
    """
    key = (settings.endpoint_url, settings.region, settings.max_retry_attempts,
           settings.connect_timeout_seconds, settings.read_timeout_seconds)
    client = _model_clients.get(key)
    if client is None:
        client = new_client(settings, validate=False)
        with _session_lock:
            if len(_model_clients) >= 16:  # settings rarely change outside tests; stay bounded
                _model_clients.clear()
            client = _model_clients.setdefault(key, client)
    return client
