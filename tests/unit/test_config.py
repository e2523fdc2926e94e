"""Configuration: one module reads the environment; a malformed setting is a ConfigurationError."""

from __future__ import annotations

import uuid

import pytest

from core.config import (
    CACHE_TTL_ENV,
    CURSOR_SECRET_ENV,
    Settings,
    cache_ttl_seconds,
    cursor_secret,
    get_settings,
)
from core.errors import ConfigurationError, DataLayerError
from repositories import cache


def _settings(endpoint: str | None) -> Settings:
    return Settings(table_name="t", endpoint_url=endpoint, region="us-east-1", max_retry_attempts=1,
                    connect_timeout_seconds=1.0, read_timeout_seconds=1.0)  # fmt: skip


@pytest.mark.parametrize("endpoint", [
    "http://127.0.0.1:8000",
    "http://localhost:8000",
    "http://LocalHost:8000/",
    "http://localhost",
    "http://[::1]:8000",
])
def test_a_loopback_endpoint_is_local(endpoint: str) -> None:
    assert _settings(endpoint).is_local


@pytest.mark.parametrize("endpoint", [
    None,
    "https://dynamodb.us-east-1.amazonaws.com",
    "https://localhost.attacker.example",
    "https://127.0.0.1.attacker.example",
    "http://127.0.0.10:8000",
    "http://localhost@attacker.example",
    "http://127.0.0.1:8000@attacker.example",
    "http://[::1].attacker.example",
    "http://localhost:not-a-port",
    "localhost:8000",
])
def test_an_endpoint_that_only_looks_local_is_not_local(endpoint: str | None) -> None:
    assert not _settings(endpoint).is_local


def test_the_cursor_secret_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = uuid.uuid4().hex
    monkeypatch.setenv(CURSOR_SECRET_ENV, secret)
    assert cursor_secret() == secret
    monkeypatch.setenv(CURSOR_SECRET_ENV, "")
    assert cursor_secret() is None
    monkeypatch.delenv(CURSOR_SECRET_ENV)
    assert cursor_secret() is None


def test_the_cursor_secret_never_shows_in_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = uuid.uuid4().hex
    monkeypatch.setenv(CURSOR_SECRET_ENV, secret)
    assert secret not in repr(get_settings())


@pytest.mark.parametrize(("raw", "expected"), [("", None), ("0", None), ("30", 30.0), ("0.5", 0.5)])
def test_the_cache_ttl_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: float | None
) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, raw)
    assert cache_ttl_seconds() == expected


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf"])
def test_a_malformed_cache_ttl_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, raw)
    with pytest.raises(ConfigurationError, match=CACHE_TTL_ENV) as raised:
        cache_ttl_seconds()
    assert isinstance(raised.value, DataLayerError)


def test_the_cache_turns_itself_on_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, "60")
    cache.reset()
    loads: list[str] = []

    def load() -> str:
        loads.append(f"load {len(loads) + 1}")
        return loads[-1]

    key = ("test", uuid.uuid4().hex)
    assert cache.read_through(key, load) == "load 1"
    assert cache.read_through(key, load) == "load 1"  # served from the cache


def test_a_malformed_integer_setting_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "five")
    with pytest.raises(ConfigurationError, match="DYNAMODB_MAX_RETRY_ATTEMPTS"):
        get_settings()
