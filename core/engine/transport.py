"""How ``LeanClient``'s attempts reach the endpoint, and their failures as botocore's exceptions.

``sender_for`` gives a client its ``Sender``:

- ``WireSender``, the engine's own HTTP/1.1 keep-alive client (``core.engine.wire``): every direct
  connection, plain or TLS. The connection goes to the host urllib3 reads in the URL
  (``urllib3.util.parse_url``), as before: ``core.config.is_loopback_endpoint`` reasons about that host.
- ``URLLib3Sender``, one ``urllib3.PoolManager``: a client given its own ``pool``, and an endpoint
  to which a proxy applies as botocore reads the environment (``HTTPS_PROXY``/``HTTP_PROXY`` for the
  endpoint's scheme, unless ``NO_PROXY`` names it; ``botocore.utils.get_environ_proxies``). The
  engine has no proxy support of its own: such a client keeps the urllib3 path it always had,
  which connects directly too (a ``PoolManager`` is not a ``ProxyManager``).

Either one raises what ``transport_error`` maps to the exception botocore's HTTP session raises for
the same failure (``EndpointConnectionError`` for a connection that could not be made, nothing sent;
``ConnectionClosedError`` for a request written and then no whole answer; ...).
"""

from __future__ import annotations

import socket
from typing import Final, Protocol
from urllib.parse import urlsplit

import urllib3
from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.utils import get_environ_proxies
from urllib3.exceptions import ConnectTimeoutError as URLLib3ConnectTimeoutError
from urllib3.exceptions import NewConnectionError, ProtocolError, ProxyError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError
from urllib3.exceptions import SSLError as URLLib3SSLError
from urllib3.util import parse_url

from core.engine import http1, wire
from core.engine.requests import Request

Answer = tuple[int, dict[str, str], bytes]  # status, headers (lower-cased names), body


class Sender(Protocol):
    """Sends one request and returns its answer (or raises; see ``transport_error``)."""

    def send(self, request: Request) -> Answer:
        """The answer to ``request``."""
        ...

    def close(self) -> None:
        """Close the idle connections."""
        ...


class WireSender:
    """Requests to one origin over ``core.engine.wire``'s keep-alive pool."""

    def __init__(self, origin: wire.Origin, target: str, pool: wire.Pool) -> None:
        self.origin, self.target, self.pool = origin, target, pool

    def send(self, request: Request) -> Answer:
        """The answer to ``request``, written in one ``sendall``."""
        payload = http1.encode(request.method, self.target, request.headers, request.body)
        answer = self.pool.exchange(self.origin, payload)
        return answer.status, answer.headers, answer.body

    def close(self) -> None:
        """Close the idle connections."""
        self.pool.close()


class URLLib3Sender:
    """Requests through a ``urllib3.PoolManager`` (no retries, no redirects, the body preloaded)."""

    def __init__(self, pool: urllib3.PoolManager) -> None:
        self.pool = pool

    def send(self, request: Request) -> Answer:
        """The answer to ``request``."""
        response = self.pool.urlopen(
            request.method, request.url, body=request.body, headers=request.headers,
            retries=False, redirect=False, assert_same_host=False, preload_content=True,
            decode_content=False,
        )
        headers = {name.lower(): response.headers[name] for name in response.headers}
        return response.status, headers, response.data

    def close(self) -> None:
        """Close the pools' connections."""
        self.pool.clear()


def sender_for(url: str, *, connect_timeout: float, read_timeout: float, max_connections: int,
               cafile: str, pool: urllib3.PoolManager | None = None) -> Sender:
    """The sender of a client whose endpoint is ``url`` (see the module docstring): ``pool`` when
    given; else ``core.engine.wire`` for a direct connection, urllib3 when a proxy applies."""
    if pool is not None:
        return URLLib3Sender(pool)
    direct = direct_origin(url)
    if direct is None or get_environ_proxies(url).get(urlsplit(url).scheme):
        return URLLib3Sender(urllib3.PoolManager(
            num_pools=4,
            maxsize=max_connections,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=False,
            ca_certs=cafile,
        ))
    origin, target = direct
    return WireSender(origin, target, wire.Pool(
        connect_timeout=connect_timeout, read_timeout=read_timeout, max_idle=max_connections,
        cafile=cafile))


def direct_origin(url: str) -> tuple[wire.Origin, str] | None:
    """Where a direct connection to ``url`` goes (the host urllib3 reads in it, as urllib3 dials it)
    and the request target; ``None`` for a URL that is not ``http``/``https`` with a host."""
    parts = parse_url(url)
    if parts.scheme not in ("http", "https") or not parts.host:
        return None
    host = parts.host.strip("[]").rstrip(".")
    origin = wire.Origin(parts.scheme, host, parts.port or (443 if parts.scheme == "https" else 80))
    return origin, parts.request_uri


# urllib3's exception -> botocore's (``botocore.httpsession.URLLib3Session.send``), first match wins;
# ``core.engine.wire``'s failures are named for the same botocore exceptions (see its docstring).
_Raised = type[BaseException] | tuple[type[BaseException], ...]
_TRANSPORT_ERRORS: Final[tuple[tuple[_Raised, type[BotoCoreError]], ...]] = (
    ((URLLib3SSLError, http1.TLSFailed), SSLError),
    ((NewConnectionError, socket.gaierror, http1.ConnectFailed), EndpointConnectionError),
    ((URLLib3ConnectTimeoutError, http1.ConnectTimedOut), ConnectTimeoutError),
    ((URLLib3ReadTimeoutError, http1.ReadTimedOut), ReadTimeoutError),
    ((ProtocolError, http1.ConnectionBroken), ConnectionClosedError),
)


def transport_error(exc: Exception, url: str) -> Exception:
    """botocore's exception for what a sender raised."""
    if isinstance(exc, ProxyError):
        return ProxyConnectionError(proxy_url=url, error=exc)
    for raised, botocore_error in _TRANSPORT_ERRORS:
        if isinstance(exc, raised):
            return botocore_error(endpoint_url=url, error=exc)
    return HTTPClientError(error=exc)
