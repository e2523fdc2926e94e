"""Configuration: the one place that reads the environment.

Endpoint, region and credentials follow botocore's conventions. botocore reads
``AWS_ENDPOINT_URL_DYNAMODB`` and ``AWS_DEFAULT_REGION`` itself; it does not read ``AWS_REGION``
(set by Lambda and the AWS CLI v2), so that one is honoured here. Settings are read once, at the
first call of ``get_settings`` (not at import), and kept: every DynamoDB call needs them, and reading
the environment each time cost more than the rest of a write. A process that changes its
environment afterwards (``core.localdb.use_local``, the migrations CLI, a test) calls
``reload_settings``.

The data layer's own settings: ``TABLE_NAME``, ``DYNAMODB_MAX_RETRY_ATTEMPTS``,
``DYNAMODB_CONNECT_TIMEOUT_SECONDS``, ``DYNAMODB_READ_TIMEOUT_SECONDS``, ``DATALAYER_TRANSPORT``
(``lean``, the default: the models' calls go through ``core.engine``'s ``LeanClient``; ``botocore``:
through a plain botocore client) (``get_settings``),
``DATALAYER_CURSOR_SECRET`` (``cursor_secret``; kept out of ``Settings`` so that it never shows in
a repr or a log) and ``DATALAYER_CACHE_TTL_SECONDS`` (``cache_ttl_seconds``). A malformed value
raises ``ConfigurationError``.

For development only, where ``core.localdb`` keeps DynamoDB Local: ``DATALAYER_LOCAL_DIR`` (its
folder: the server's install and data), ``DYNAMODB_LOCAL_HOME`` (the install alone) and the user
cache directory (``$XDG_CACHE_HOME``, else ``~/.cache``) it falls back to (``local_database_dirs``).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from core.errors import ConfigurationError

DEFAULT_TABLE_NAME = "ApplicationData"
_IPV4_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_IPV6_LOOPBACK = ipaddress.ip_address("::1")
# Anything outside printable ASCII, and the characters that let parsers disagree about the host.
_UNSAFE_URL_CHARACTER = re.compile(r"[^\x21-\x7e]|[@\\%?#]")
# A written host (a name, dotted quad or bracketed IPv6 without zone) and an optional decimal port.
_NETLOC = re.compile(r"(?P<host>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")
CURSOR_SECRET_ENV = "DATALAYER_CURSOR_SECRET"  # noqa: S105 (the variable's name, not a secret)
CACHE_TTL_ENV = "DATALAYER_CACHE_TTL_SECONDS"
LOCAL_DIR_ENV = "DATALAYER_LOCAL_DIR"
LOCAL_INSTALL_ENV = "DYNAMODB_LOCAL_HOME"
CACHE_FOLDER = "dynamo-datalayer"  # under the user cache directory
TRANSPORT_ENV = "DATALAYER_TRANSPORT"
TRANSPORTS = ("lean", "botocore")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the data layer needs to know about where it runs."""

    table_name: str
    endpoint_url: str | None
    region: str | None
    max_retry_attempts: int
    connect_timeout_seconds: float
    read_timeout_seconds: float
    transport: str = "lean"  # how the models' data calls are sent: one of TRANSPORTS

    @property
    def ledger_table_name(self) -> str:
        """The table that holds the migrations ledger and lock."""
        return f"{self.table_name}-migrations"

    @property
    def is_local(self) -> bool:
        """True only when the host botocore will connect to is this machine's loopback.

        See ``is_loopback_endpoint``: anything two URL parsers could read differently is not local.
        """
        return self.endpoint_url is not None and is_loopback_endpoint(self.endpoint_url)


@functools.lru_cache(maxsize=32)  # a pure function of the URL, asked at every page without a secret
def is_loopback_endpoint(url: str) -> bool:
    """True when ``url`` names, unambiguously, a loopback host: ``localhost``, 127.0.0.0/8 or ``[::1]``.

    botocore keeps the endpoint's netloc as written (``urlsplit``/``urlunsplit``) and urllib3
    connects to ``urllib3.util.parse_url(url).host``. The two parsers disagree on some URLs:
    ``http://evil.example\\@127.0.0.1`` is host ``127.0.0.1`` to ``urlsplit`` but ``evil.example`` to
    urllib3, which is where the connection goes. So a URL is local only when both parsers, and the
    URL botocore rebuilds, name the same loopback host, and nothing in it invites a third reading:
    no userinfo (``@``), backslash, percent-encoding, whitespace, control or non-ASCII character,
    query or fragment; scheme ``http``/``https``; netloc exactly ``host`` or ``host:digits``;
    IPv4 only as four decimal octets (``0x7f000001``, ``2130706433``, ``127.1`` are refused), no
    IPv6 zone id, no trailing dot.
    """
    host = _unambiguous_host(url)
    if host is None:
        return False
    if host == "localhost":
        return True
    bracketed = host.startswith("[")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:  # a name other than localhost, or a numeric shortcut such as 0x7f000001
        return False
    if bracketed:
        return address == _IPV6_LOOPBACK
    return address.version == 4 and address in _IPV4_LOOPBACK


def _unambiguous_host(url: str) -> str | None:
    """The host as written (lower-cased, IPv6 in brackets), when every parser on the way agrees on it."""
    if _UNSAFE_URL_CHARACTER.search(url):
        return None
    try:
        parts = urlsplit(url)
        split_host, split_port = parts.hostname, parts.port
        connected = parse_url(url)
        # The URL botocore sends: awsrequest._urljoin rebuilds it from the split parts.
        rebuilt = parse_url(urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", "")))
    except (ValueError, LocationParseError):  # an unclosed IPv6 bracket, a port that is no number, ...
        return None
    written = _NETLOC.fullmatch(parts.netloc.lower())
    if (parts.scheme not in ("http", "https") or parts.query or parts.fragment or not split_host
            or written is None):
        return None
    host = written["host"]
    agree = (host.strip("[]") == split_host and host == connected.host == rebuilt.host
             and split_port == connected.port == rebuilt.port
             and parts.scheme == connected.scheme == rebuilt.scheme and connected.auth is None)
    return host if agree else None


def cursor_secret() -> str | None:
    """``DATALAYER_CURSOR_SECRET``, the secret that keys paging cursors (``None`` when unset or empty)."""
    return os.environ.get(CURSOR_SECRET_ENV) or None


def cache_ttl_seconds() -> float | None:
    """``DATALAYER_CACHE_TTL_SECONDS``: the read-through cache's TTL (``None``, unset, empty or 0: off)."""
    raw = os.environ.get(CACHE_TTL_ENV)
    if not raw:
        return None
    try:
        ttl = float(raw)
    except ValueError:
        raise ConfigurationError(f"{CACHE_TTL_ENV} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(ttl) or ttl < 0:
        raise ConfigurationError(f"{CACHE_TTL_ENV} must be a finite number >= 0, got {raw!r}")
    return ttl or None


@dataclass(frozen=True, slots=True)
class LocalDatabaseDirs:
    """Where the environment says DynamoDB Local lives (``core.localdb`` decides the defaults)."""

    local_dir: str | None  # DATALAYER_LOCAL_DIR, ~ expanded; None when unset or empty
    install_dir: str | None  # DYNAMODB_LOCAL_HOME, ~ expanded; None when unset or empty
    user_cache_dir: str  # $XDG_CACHE_HOME/dynamo-datalayer, else ~/.cache/dynamo-datalayer


def local_database_dirs() -> LocalDatabaseDirs:
    """The local database's folders as the environment sets them (read at each call: development only)."""
    cache = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(cache):  # the XDG specification: a relative path is to be ignored
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    local, install = os.environ.get(LOCAL_DIR_ENV), os.environ.get(LOCAL_INSTALL_ENV)
    return LocalDatabaseDirs(
        local_dir=os.path.expanduser(local) if local else None,
        install_dir=os.path.expanduser(install) if install else None,
        user_cache_dir=os.path.join(cache, CACHE_FOLDER),
    )


def _int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:  # botocore would refuse it later, with a message naming its own option
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return value


def _transport() -> str:
    raw = os.environ.get(TRANSPORT_ENV) or TRANSPORTS[0]
    name = raw.strip().lower()
    if name not in TRANSPORTS:
        raise ConfigurationError(
            f"{TRANSPORT_ENV} must be one of {', '.join(TRANSPORTS)} or unset, got {raw!r}")
    return name


_current: Settings | None = None


def get_settings() -> Settings:
    """The settings, read from the environment at the first call and kept until ``reload_settings``."""
    settings = _current
    return settings if settings is not None else reload_settings()


def reload_settings() -> Settings:
    """Read the settings from the environment again (after it changed) and keep them.

    Raises ``ConfigurationError`` for a malformed value; the settings kept before stay in force only
    until then, so a bad environment is reported at every call rather than half applied.
    """
    global _current
    _current = None
    settings = Settings(
        table_name=os.environ.get("TABLE_NAME") or DEFAULT_TABLE_NAME,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
        region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None,
        max_retry_attempts=_int("DYNAMODB_MAX_RETRY_ATTEMPTS", 5, minimum=0),
        connect_timeout_seconds=float(_int("DYNAMODB_CONNECT_TIMEOUT_SECONDS", 5, minimum=1)),
        read_timeout_seconds=float(_int("DYNAMODB_READ_TIMEOUT_SECONDS", 30, minimum=1)),
        transport=_transport(),
    )
    _current = settings
    return settings
