"""Configuration: the one place that reads the environment.

Endpoint, region and credentials follow botocore's conventions. botocore reads
``AWS_ENDPOINT_URL_DYNAMODB`` and ``AWS_DEFAULT_REGION`` itself; it does not read ``AWS_REGION``
(set by Lambda and the AWS CLI v2), so that one is honoured here. Settings are read on every call,
not cached at import, so a process (or a test) that changes its environment is obeyed.

The data layer's own settings: ``TABLE_NAME``, ``DYNAMODB_MAX_RETRY_ATTEMPTS``,
``DYNAMODB_CONNECT_TIMEOUT_SECONDS``, ``DYNAMODB_READ_TIMEOUT_SECONDS`` (``get_settings``),
``DATALAYER_CURSOR_SECRET`` (``cursor_secret``; kept out of ``Settings`` so that it never shows in
a repr or a log) and ``DATALAYER_CACHE_TTL_SECONDS`` (``cache_ttl_seconds``). A malformed value
raises ``ConfigurationError``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import ConfigurationError

DEFAULT_TABLE_NAME = "ApplicationData"
# Hostnames as urlsplit gives them (an IPv6 address without its brackets).
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CURSOR_SECRET_ENV = "DATALAYER_CURSOR_SECRET"  # noqa: S105 (the variable's name, not a secret)
CACHE_TTL_ENV = "DATALAYER_CACHE_TTL_SECONDS"


@dataclass(frozen=True, slots=True)
class Settings:
    """What the data layer needs to know about where it runs."""

    table_name: str
    endpoint_url: str | None
    region: str | None
    max_retry_attempts: int
    connect_timeout_seconds: float
    read_timeout_seconds: float

    @property
    def ledger_table_name(self) -> str:
        """The table that holds the migrations ledger and lock."""
        return f"{self.table_name}-migrations"

    @property
    def is_local(self) -> bool:
        """True when the endpoint's host is this machine's loopback (the whole host, not a prefix)."""
        if self.endpoint_url is None:
            return False
        try:
            parts = urlsplit(self.endpoint_url)
            host, port = parts.hostname, parts.port
        except ValueError:  # a malformed URL: an unclosed IPv6 bracket, a port that is no number
            return False
        if host not in LOCAL_HOSTS:
            return False
        # urlsplit reads "[::1].attacker.example" as host "::1": the written host must be the
        # whole of it, bracketed if it is IPv6.
        written = parts.netloc.rpartition("@")[2].lower()
        bare = f"[{host}]" if ":" in host else host
        return written in (bare, f"{bare}:{port}")


def cursor_secret() -> str | None:
    """``DATALAYER_CURSOR_SECRET``, the key that signs paging cursors (``None`` when unset or empty)."""
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


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None


def get_settings() -> Settings:
    """Read the current settings from the environment."""
    return Settings(
        table_name=os.environ.get("TABLE_NAME") or DEFAULT_TABLE_NAME,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
        region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None,
        max_retry_attempts=_int("DYNAMODB_MAX_RETRY_ATTEMPTS", 5),
        connect_timeout_seconds=float(_int("DYNAMODB_CONNECT_TIMEOUT_SECONDS", 5)),
        read_timeout_seconds=float(_int("DYNAMODB_READ_TIMEOUT_SECONDS", 30)),
    )
