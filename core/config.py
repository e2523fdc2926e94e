"""Configuration: the one place that reads the environment.

Endpoint, region and credentials follow botocore's conventions. botocore reads
``AWS_ENDPOINT_URL_DYNAMODB`` and ``AWS_DEFAULT_REGION`` itself; it does not read ``AWS_REGION``
(set by Lambda and the AWS CLI v2), so that one is honoured here. Settings are read on every call,
not cached at import, so a process (or a test) that changes its environment is obeyed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_TABLE_NAME = "ApplicationData"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


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
        """True when the endpoint is a DynamoDB on this machine."""
        if self.endpoint_url is None:
            return False
        rest = self.endpoint_url.split("://", 1)[-1]
        return rest.startswith(LOCAL_HOSTS)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


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
