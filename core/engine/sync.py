"""The lean synchronous transport: ``LeanClient``, one connection pool, no botocore machinery per call.

A call serializes its parameters once (``core.engine.requests``), then for each attempt signs them
with the current credentials (botocore's provider chain: ``get_frozen_credentials()`` per attempt,
so refreshing credentials refresh), sends them through the client's pool (``core.engine.transport``:
the engine's own keep-alive HTTP/1.1 client, ``core.engine.wire``, for a direct connection; one
``urllib3.PoolManager`` when a proxy applies or a ``pool`` is given), parses the answer, and asks
the retry policy (``core.engine.retries``) whether to send again. The result, the ``ClientError``
and the transport exceptions are botocore's own classes with botocore's contents, so
``core.error_codes`` and PynamoDB read them as they read botocore's. Each call ends with one
``Observation``, handed to ``on_observation`` (by default ``core.engine.observe.notify``: the
``core.engine.observers``; the data layer passes ``core.telemetry.record``).

Three hook lists let a test watch or fault a client without a network of its own, with the
arguments botocore's events of the same names give (so one handler serves both transports):

- ``before_call``: ``hook(params={"body": ..., "url": ..., "url_path": "/", ...},
  model=Operation(name), operation=name)`` once per call; returning ``(http_response, parsed)``
  answers the call with ``parsed`` instead of sending it (an ``Error`` in it raises
  ``ClientError``; no retry).
- ``before_send``: ``hook(request=AWSPreparedRequest, operation=name)`` before each attempt;
  returning an ``AWSResponse`` answers that attempt with it, raising makes the exception the
  attempt's transport error (the retry policy then decides, as for a real one).
- ``after_call``: ``hook(parsed=..., model=Operation(name), operation=name, http_response=None)``
  once per answered call,
  success or error, before the caller sees it; raising replaces the answer with the exception.

PynamoDB 6.1 can use a ``LeanClient`` as its connection's client (``connection._client = client``).
Of a client it uses exactly these names (``pynamodb/connection/base.py``):

- ``_make_api_call(operation_name, operation_kwargs)``: every call (``Connection._make_api_call``);
- ``_request_signer``: read by ``Connection.client`` to decide whether to build a new botocore
  client (``_request_signer and not _request_signer._credentials``); ``None`` here, so it keeps this one;
- ``meta.endpoint_url``: ``Connection.__repr__``.

(``meta.events.register_first`` is called only on a client PynamoDB builds itself.)
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import botocore.session
import urllib3
from botocore import xform_name
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import NoCredentialsError, NoRegionError
from botocore.httpsession import where

from core.config import Settings, get_settings
from core.engine import bridge, calls, observe
from core.engine.calls import Hook
from core.engine.requests import Endpoint, endpoint_for, finish, parse, serialize, signed
from core.engine.retries import CallState, Outcome, RetryPolicy
from core.engine.shapes import INPUT_MEMBERS
from core.engine.signing import TIMESTAMP_FORMAT
from core.engine.transport import Sender, sender_for, transport_error

MAX_POOL_CONNECTIONS: Final = 32  # as core.client: enough for the thread pools that fan reads out
# A loop's twin (``LeanClient.twin``) keeps more: tasks are cheaper than threads, and an app awaits
# many calls at once.
TWIN_MAX_CONNECTIONS: Final = 100
# botocore's method names (``put_item``) of the data-plane operations, for callers that use them.
METHODS: Final = {xform_name(operation): operation for operation in INPUT_MEMBERS}


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """The part of botocore's ``client.meta.config`` that readers of a client use."""

    connect_timeout: float
    read_timeout: float
    max_pool_connections: int


@dataclass(frozen=True, slots=True)
class ClientMeta:
    """The part of botocore's ``client.meta`` that readers of a client use."""

    endpoint_url: str
    region_name: str
    config: ClientConfig


class LeanClient:
    """A DynamoDB data-plane client: ``call(operation, params) -> dict``, as botocore's client returns.

    ``settings``: endpoint, region, timeouts and attempts (``core.config``); ``session``: the botocore
    session whose credential chain (and region, when the settings name none) is used.
    ``return_consumed_capacity="INDEXES"`` asks every call that would ask for ``TOTAL`` (or nothing)
    for ``INDEXES`` instead, as the logging hooks of ``core.logs`` do for botocore's client; an
    explicit ``NONE`` is kept. ``pool``: a ``urllib3.PoolManager`` to send through instead of the
    engine's own connections. ``clock``, ``sleep`` and ``retry`` are injectable for tests;
    ``on_observation`` receives each call's ``Observation``; with ``observing``, a call that succeeded
    while ``observing()`` is false builds none (a failed call always does). ``put_item(**params)``
    and the other data-plane operations are there under botocore's method names.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        session: botocore.session.Session | None = None,
        pool: urllib3.PoolManager | None = None,
        return_consumed_capacity: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        on_observation: Callable[[observe.Observation], None] = observe.notify,
        observing: Callable[[], bool] | None = None,
    ) -> None:
        settings = settings or get_settings()
        session = session or botocore.session.Session()
        region = settings.region or session.get_config_variable("region")
        if not region:
            raise NoRegionError()
        self.endpoint: Endpoint = endpoint_for(settings.endpoint_url, str(region))
        self._settings, self._session = settings, session
        self._credentials = session.get_credentials()
        self._sender: Sender = sender_for(
            self.endpoint.url, connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds, max_connections=MAX_POOL_CONNECTIONS,
            cafile=session.get_config_variable("ca_bundle") or where(), pool=pool)
        self.retry = retry or RetryPolicy(1 + settings.max_retry_attempts)
        self._capacity = return_consumed_capacity
        self._clock = clock
        self._sleep = sleep
        config = ClientConfig(connect_timeout=settings.connect_timeout_seconds,
                              read_timeout=settings.read_timeout_seconds,
                              max_pool_connections=MAX_POOL_CONNECTIONS)
        self.meta = ClientMeta(endpoint_url=self.endpoint.url.rstrip("/"),
                               region_name=self.endpoint.region, config=config)
        self._request_signer = None  # PynamoDB: no botocore signer whose credentials could be missing
        self._on_observation = on_observation
        self._observing = observing
        self.before_call: list[Hook] = []
        self.before_send: list[Hook] = []
        self.after_call: list[Hook] = []
        self._twins: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._last_twin: tuple[weakref.ref[Any], weakref.ref[Any]] | None = None

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        """``client.put_item(**params)``: botocore's method names for the data-plane operations."""
        operation = METHODS.get(name)
        if operation is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

        def method(**params: Any) -> dict[str, Any]:
            return self._make_api_call(operation, params)  # awaited on the loop inside bridge.run

        method.__name__ = name
        return method

    # --- PynamoDB's entry point --------------------------------------------------------------

    def _make_api_call(self, operation_name: str, api_params: dict[str, Any]) -> dict[str, Any]:
        """PynamoDB's name for ``call``; inside ``core.engine.bridge.run``, the call is awaited on
        this loop's ``twin()`` instead."""
        if bridge.active():  # the caller is looked for on this stack (paused meanwhile) if observed
            with observe.caller_pinned(sys._getframe(1)):
                return bridge.wait(self.twin().call(operation_name, api_params))
        return self.call(operation_name, api_params)

    def twin(self) -> Any:
        """This client's ``AsyncLeanClient`` for the running loop (made at its first use): the same
        settings, credentials, capacity, retry quota, observation and hook lists."""
        import asyncio

        loop = asyncio.get_running_loop()
        last = self._last_twin  # the loop of the last call and its twin (both weakly held)
        if last is not None and last[0]() is loop:
            known = last[1]()
            if known is not None:
                return known
        twin = self._twins.get(loop)
        if twin is None:
            from core.engine.aio import AsyncLeanClient

            twin = AsyncLeanClient(self._settings, session=self._session,
                                   max_connections=TWIN_MAX_CONNECTIONS,
                                   return_consumed_capacity=self._capacity, clock=self._clock,
                                   retry=self.retry, on_observation=self._on_observation,
                                   observing=self._observing)
            twin.before_call, twin.before_send = self.before_call, self.before_send
            twin.after_call = self.after_call
            self._twins[loop] = twin
        self._last_twin = (weakref.ref(loop), weakref.ref(twin))
        return twin

    async def aclose(self) -> None:
        """Close the pool of this client's twin on the running loop, if it has one."""
        import asyncio

        twin = self._twins.pop(asyncio.get_running_loop(), None)
        self._last_twin = None
        if twin is not None:
            await twin.close()

    # --- the call ----------------------------------------------------------------------------

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``operation`` with ``params``, retrying as botocore's standard mode; return the result.

        Raises botocore's ``ClientError`` for an error answer and its transport exceptions
        (``EndpointConnectionError``, ``ReadTimeoutError``, ...) when no answer came; a connection
        error after which nothing of the call was sent carries ``core.error_codes.NOTHING_SENT``.
        """
        start, started_at = time.perf_counter(), time.time_ns()
        params = calls.widened(params, self._capacity)
        state = CallState()
        reasons: list[dict[str, Any]] = []
        outcome: Outcome | None = None
        result: dict[str, Any] | None = None
        failure: BaseException | None = None
        try:
            body = serialize(operation, params)
            outcome = calls.hooked(self.before_call, self.after_call, operation, body, self.endpoint.url)
            if outcome is not None:
                result = finish(operation, dict(outcome.parsed or {}), retries=0)
                return result
            while True:
                state.attempts += 1
                outcome = self._attempt(operation, body)
                reasons += observe.throttling_reasons(outcome.parsed)
                decision = self.retry.decide(operation, outcome, state)
                if not decision.retry:
                    break
                self._sleep(decision.delay)
            result = calls.settled(operation, outcome, state, self.retry, self.after_call)
            return result
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if calls.wanted(self._observing, failure):
                self._on_observation(calls.observation(
                    operation, params, start=start, started_at=started_at, state=state, outcome=outcome,
                    result=result, failure=failure, reasons=reasons,
                ))

    def _attempt(self, operation: str, body: bytes) -> Outcome:
        """Sign and send one attempt; its answer parsed, or the transport exception."""
        credentials = self._frozen_credentials()
        amz_date = time.strftime(TIMESTAMP_FORMAT, time.gmtime(self._clock()))
        request, _ = signed(operation, body, endpoint=self.endpoint, credentials=credentials,
                            amz_date=amz_date)
        if self.before_send:
            hooked = calls.sent_by_hook(self.before_send, operation, request)
            if hooked is not None:
                return hooked
        try:
            status, headers, raw = self._sender.send(request)
        except Exception as exc:  # mapped to botocore's exception, as its HTTP session maps it
            return Outcome(error=transport_error(exc, request.url))
        parsed = parse(operation, status, headers, raw)
        return Outcome(status=status, headers=headers, body=raw, parsed=parsed)

    def _frozen_credentials(self) -> ReadOnlyCredentials:
        if self._credentials is None:
            raise NoCredentialsError()
        frozen = self._credentials.get_frozen_credentials()
        if frozen.access_key is None or frozen.secret_key is None:
            raise NoCredentialsError()
        return frozen

    def close(self) -> None:
        """Close the pool's idle connections."""
        self._sender.close()
