"""The asyncio transport: ``AsyncLeanClient``, ``await client.call(operation, params) -> dict``.

The same call as ``core.engine.sync.LeanClient`` in every respect but the waiting: the body is
serialized once (``core.engine.requests``), each attempt signed with the current credentials and
sent through one connection pool (``core.engine.aiowire``: the engine's own HTTP/1.1 keep-alive
client on asyncio, the request bytes and the answer's parser shared with the synchronous client),
the answer parsed by the same functions, retried by the same decisions (``core.engine.retries``:
botocore's standard mode, the client's retry quota, full-jitter backoff awaited with
``asyncio.sleep``, a lost answer re-sent without quota), finished into the same result or
``ClientError`` with botocore's contents, and observed once (``core.engine.calls``: the same
``Observation``, access pattern from the same context variable, which every task inherits). A
transport failure is botocore's exception, as ``LeanClient`` raises it (``EndpointConnectionError``
marked ``core.error_codes.NOTHING_SENT`` when no attempt reached the endpoint, ``ReadTimeoutError``,
``ConnectionClosedError``, ...).

No proxy: the client connects directly to the endpoint, as the aiohttp session it replaced did
(it did not read the environment) and as ``LeanClient`` does behind one (see ``core.engine.transport``).

**One loop, one pool.** A client is bound to the event loop of its first call; a call from another
loop raises ``RuntimeError`` (make one client per loop). Its calls share one pool of at most
``max_connections`` keep-alive connections: a call that finds them all busy waits for one (that wait
is bounded by the caller's own timeout, not by ``connect_timeout``). ``await client.close()``, or
``async with AsyncLeanClient(...) as client:``, closes the pool; a closed client refuses calls.

**Credentials.** botocore's provider chain, as ``LeanClient`` reads it, but never on the loop's hot
path: the chain is resolved, and refreshing credentials are refreshed, in a worker thread
(``asyncio.to_thread``, one fetch at a time); between fetches the frozen credentials are reused, and
every ``CREDENTIALS_CHECK_SECONDS`` the client asks the credentials (``refresh_needed()``, no I/O)
whether botocore would refresh them now. botocore refreshes 15 minutes before expiry (10 at the
latest), so a key is never used near its end; credentials already inside that window when fetched
are checked at every attempt, as botocore would refresh them at every use.

**Cancellation.** A call whose task is cancelled raises ``asyncio.CancelledError`` (the same
instance, so asyncio's bookkeeping is kept), after recording its ``Observation`` with outcome
``"cancelled"``. Before it leaves the call, the exception is given ``REQUEST_SENT``
(``request_sent(exc)`` reads it): ``False`` only when no byte of any attempt of the call can have
reached the network (cancelled while waiting for credentials, for a pooled connection or for the
connection to open); ``True`` as soon as an attempt's request is about to be written (just before
``transport.write``), or an earlier attempt was sent. A connection whose answer was abandoned is
closed, never reused. ``True`` means DynamoDB may have applied the request: a write path
turns it into ``WriteOutcomeUnknown`` naming the keys (or settles it as it settles a lost answer);
``False`` means nothing was written. A cancelled request is never re-sent.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, Final

import botocore.session
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import NoCredentialsError, NoRegionError, SSLError
from botocore.httpsession import where

from core.config import Settings, get_settings
from core.engine import calls, http1, observe
from core.engine.aiowire import AsyncPool
from core.engine.requests import Endpoint, endpoint_for, finish, parse, serialize, signed
from core.engine.retries import CallState, Outcome, RetryPolicy
from core.engine.signing import TIMESTAMP_FORMAT
from core.engine.sync import MAX_POOL_CONNECTIONS, METHODS
from core.engine.transport import direct_origin, transport_error

__all__ = ["REQUEST_SENT", "AsyncLeanClient", "request_sent"]

REQUEST_SENT: Final = "datalayer_request_sent"  # set on the CancelledError a cancelled call raises
CREDENTIALS_CHECK_SECONDS: Final = 30.0


def request_sent(exc: BaseException) -> bool | None:
    """For the ``CancelledError`` of a cancelled call: may any byte of its request have been sent?
    ``None`` for an exception that did not come out of a cancelled ``AsyncLeanClient`` call."""
    sent = getattr(exc, REQUEST_SENT, None)
    return sent if isinstance(sent, bool) else None


class _Attempt:
    """One attempt's progress: ``sent`` once its request is about to be written."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


class _Credentials:
    """Frozen credentials from botocore's chain, fetched in a worker thread and reused between checks."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._source: Any = None
        self._frozen: ReadOnlyCredentials | None = None
        self._check_at = 0.0
        self._lock: asyncio.Lock | None = None

    def ready(self) -> ReadOnlyCredentials | None:
        """The credentials to sign the next attempt with, when no check is due (no await needed)."""
        frozen = self._frozen
        return frozen if frozen is not None and time.monotonic() < self._check_at else None

    async def get(self) -> ReadOnlyCredentials:
        """The credentials to sign the next attempt with."""
        frozen = self._frozen
        if frozen is not None and time.monotonic() < self._check_at:
            return frozen
        if frozen is not None and not self._refresh_needed():
            self._check_at = time.monotonic() + CREDENTIALS_CHECK_SECONDS
            return frozen
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            fetched = self._frozen
            if fetched is not None and time.monotonic() < self._check_at:
                return fetched  # another task fetched them meanwhile
            fresh, due = await asyncio.to_thread(self._fetch)
            self._frozen = fresh
            self._check_at = 0.0 if due else time.monotonic() + CREDENTIALS_CHECK_SECONDS
            return fresh

    def _refresh_needed(self) -> bool:
        needed = getattr(self._source, "refresh_needed", None)
        return bool(needed()) if callable(needed) else False

    def _fetch(self) -> tuple[ReadOnlyCredentials, bool]:
        """(In a worker thread.) Resolve the chain once, then freeze (refreshing when due)."""
        if self._source is None:
            self._source = self._session.get_credentials()
        if self._source is None:
            raise NoCredentialsError()
        frozen = self._source.get_frozen_credentials()
        if frozen.access_key is None or frozen.secret_key is None:
            raise NoCredentialsError()
        return frozen, self._refresh_needed()


class AsyncLeanClient:
    """A DynamoDB data-plane client for asyncio: ``await call(operation, params) -> dict``.

    The parameters are ``LeanClient``'s: ``settings`` (endpoint, region, timeouts, attempts),
    ``session`` (the botocore session whose credential chain, region and CA bundle are used),
    ``return_consumed_capacity``, ``clock``, ``retry`` and ``on_observation``; ``sleep`` is awaited
    (``asyncio.sleep`` by default) and ``max_connections`` bounds the pool (``LeanClient``'s 32 by
    default). ``await client.put_item(**params)`` and the other data-plane operations are there under
    botocore's method names. See the module docstring for loops, credentials and cancellation.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        session: botocore.session.Session | None = None,
        max_connections: int = MAX_POOL_CONNECTIONS,
        return_consumed_capacity: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Coroutine[Any, Any, Any]] = asyncio.sleep,
        retry: RetryPolicy | None = None,
        on_observation: Callable[[observe.Observation], None] = observe.notify,
        observing: Callable[[], bool] | None = None,
    ) -> None:
        settings = settings or get_settings()
        session = session or botocore.session.Session()
        region = settings.region or session.get_config_variable("region")
        if not region:
            raise NoRegionError()
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.endpoint: Endpoint = endpoint_for(settings.endpoint_url, str(region))
        self.max_connections = max_connections
        self.retry = retry or RetryPolicy(1 + settings.max_retry_attempts)
        direct = direct_origin(self.endpoint.url)
        if direct is None:
            raise ValueError(f"not an http(s) endpoint: {self.endpoint.url!r}")
        self._origin, self._target = direct
        self._connect_timeout = settings.connect_timeout_seconds
        self._read_timeout = settings.read_timeout_seconds
        self._ca_bundle = session.get_config_variable("ca_bundle") or where()
        self._credentials = _Credentials(session)
        self._capacity = return_consumed_capacity
        self._clock = clock
        self._sleep = sleep
        self._on_observation = on_observation
        self._observing = observing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: AsyncPool | None = None
        self._closed = False
        # The hooks of LeanClient (core.engine.sync), run the same way; a LeanClient's twin shares its lists.
        self.before_call: list[calls.Hook] = []
        self.before_send: list[calls.Hook] = []
        self.after_call: list[calls.Hook] = []

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
        """``await client.put_item(**params)``: botocore's method names for the data-plane operations."""
        operation = METHODS.get(name)
        if operation is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

        async def method(**params: Any) -> dict[str, Any]:
            return await self.call(operation, params)

        method.__name__ = name
        return method

    async def __aenter__(self) -> AsyncLeanClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    # --- the call ----------------------------------------------------------------------------

    async def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``operation`` with ``params``, retrying as botocore's standard mode; return the result.

        Raises what ``LeanClient.call`` raises, and ``asyncio.CancelledError`` (carrying
        ``REQUEST_SENT``) when the calling task is cancelled.
        """
        http = self._http if self._http is not None and self._loop is asyncio.get_running_loop() else None
        start, started_at = time.perf_counter(), time.time_ns()
        params = calls.widened(params, self._capacity)
        state = CallState()
        attempt = _Attempt()
        reasons: list[dict[str, Any]] = []
        outcome: Outcome | None = None
        result: dict[str, Any] | None = None
        failure: BaseException | None = None
        try:
            if http is None:
                http = await self._bound_session()
            body = serialize(operation, params)
            outcome = calls.hooked(self.before_call, self.after_call, operation, body, self.endpoint.url)
            if outcome is not None:
                result = finish(operation, dict(outcome.parsed or {}), retries=0)
                return result
            while True:
                state.attempts += 1
                attempt = _Attempt()
                outcome = await self._attempt(http, operation, body, attempt)
                reasons += observe.throttling_reasons(outcome.parsed)
                decision = self.retry.decide(operation, outcome, state)
                if not decision.retry:
                    break
                await self._sleep(decision.delay)
            result = calls.settled(operation, outcome, state, self.retry, self.after_call)
            return result
        except asyncio.CancelledError as exc:
            failure = exc
            setattr(exc, REQUEST_SENT, state.sent or attempt.sent)
            raise
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if calls.wanted(self._observing, failure):
                self._on_observation(calls.observation(
                    operation, params, start=start, started_at=started_at, state=state, outcome=outcome,
                    result=result, failure=failure, reasons=reasons,
                ))

    async def _attempt(self, http: AsyncPool, operation: str, body: bytes,
                       attempt: _Attempt) -> Outcome:
        """Sign and send one attempt; its answer parsed, or the transport exception."""
        credentials = self._credentials.ready() or await self._credentials.get()
        amz_date = time.strftime(TIMESTAMP_FORMAT, time.gmtime(self._clock()))
        request, _ = signed(operation, body, endpoint=self.endpoint, credentials=credentials,
                            amz_date=amz_date)
        if self.before_send:
            hooked = calls.sent_by_hook(self.before_send, operation, request)
            if hooked is not None:
                attempt.sent = True  # a hook that answers stands for a request that was sent
                return hooked
        try:
            payload = http1.encode(request.method, self._target, request.headers, request.body)
            status, headers, raw = await http.exchange(payload, attempt)
        except Exception as exc:  # botocore's exception, as LeanClient's
            return Outcome(error=transport_error(exc, request.url))
        parsed = parse(operation, status, headers, raw)
        return Outcome(status=status, headers=headers, body=raw, parsed=parsed)

    async def _bound_session(self) -> AsyncPool:
        """The pool of this client's loop: made at the first call, refused from another loop."""
        self._check_loop()
        if self._closed:
            raise RuntimeError("this AsyncLeanClient is closed")
        if self._http is None:
            context = (await asyncio.to_thread(_tls_context, self._ca_bundle, self.endpoint.url)
                       if self._origin.scheme == "https" else None)
            if self._http is None:  # another task may have made it while this one waited
                self._http = AsyncPool(self._origin, connect_timeout=self._connect_timeout,
                                       read_timeout=self._read_timeout,
                                       max_connections=self.max_connections, tls=context)
        return self._http

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("an AsyncLeanClient is bound to the event loop of its first call; "
                               "make one client per event loop")

    async def close(self) -> None:
        """Close the pool's connections (in the client's loop); the client refuses calls from now on."""
        if self._http is not None:
            self._check_loop()
        self._closed = True
        http, self._http = self._http, None
        if http is not None:
            await http.close()


def _tls_context(cafile: str, url: str) -> ssl.SSLContext:
    """(In a worker thread: loading a CA bundle takes milliseconds.) The context that verifies the
    endpoint's certificate against ``cafile``, as ``core.engine.wire``'s; a bundle that cannot be
    read is an SSL error, as urllib3 says."""
    try:
        context = ssl.create_default_context(cafile=cafile)
    except OSError as exc:
        raise SSLError(endpoint_url=url, error=exc) from exc
    context.set_alpn_protocols(["http/1.1"])
    return context
