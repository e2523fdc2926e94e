"""Configuration: one module reads the environment; a malformed setting is a ConfigurationError."""

from __future__ import annotations

import ipaddress
import os
import uuid
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from core.config import (
    CACHE_TTL_ENV,
    CURSOR_SECRET_ENV,
    Settings,
    cache_ttl_seconds,
    cursor_secret,
    get_settings,
    reload_settings,
)
from core.errors import ConfigurationError, DataLayerError
from repositories import cache
from tests.helpers import on


def _settings(endpoint: str | None) -> Settings:
    return Settings(table_name="t", endpoint_url=endpoint, region="us-east-1", max_retry_attempts=1,
                    connect_timeout_seconds=1.0, read_timeout_seconds=1.0)  # fmt: skip


# endpoint -> is_local. Local means: the host the connection goes to is loopback, and no parser on
# the way could read the URL otherwise.
ENDPOINTS: list[tuple[str | None, bool]] = [
    ("http://127.0.0.1:8000", True),
    ("http://localhost:8000", True),
    ("http://LocalHost:8000/", True),
    ("http://localhost", True),
    ("https://localhost:8443/dynamodb", True),
    ("http://[::1]:8000", True),
    ("http://[0:0:0:0:0:0:0:1]:8000", True),
    ("http://127.0.0.2:9", True),
    ("http://127.0.0.10:8000", True),
    ("http://127.255.255.254", True),
    (None, False),
    ("", False),
    ("https://dynamodb.us-east-1.amazonaws.com", False),
    # botocore connects to evil.example; urlsplit alone says 127.0.0.1.
    ("http://evil.example\\@127.0.0.1", False),
    ("http://evil.example\\@127.0.0.1:8000/", False),
    ("http://evil.example#@127.0.0.1", False),
    ("http://evil.example?@127.0.0.1", False),
    ("http://127.0.0.1#@evil.example", False),
    ("http://127.0.0.1?@evil.example", False),
    ("http://127.0.0.1.evil.example", False),
    ("https://localhost.attacker.example", False),
    ("http://[::1].evil.example", False),
    ("http://localhost@attacker.example", False),
    ("http://127.0.0.1:8000@attacker.example", False),
    ("http://user@127.0.0.1", False),
    ("http://user:password@localhost:8000", False),
    ("http://127.0.0.1:notaport", False),
    ("http://localhost:not-a-port", False),
    ("http://127.0.0.1:", False),
    ("http://127.0.0.1:+80", False),
    ("http://127.0.0.1:70000", False),
    ("ftp://127.0.0.1", False),
    ("file://localhost/etc/passwd", False),
    ("localhost:8000", False),
    ("//127.0.0.1:8000", False),
    ("http://", False),
    ("http://:8000", False),
    # Numeric shortcuts some resolvers read as 127.0.0.1: ambiguous, so refused.
    ("http://0x7f000001", False),
    ("http://2130706433", False),
    ("http://0177.0.0.1", False),
    ("http://127.1", False),
    ("http://127.000.000.001", False),
    ("http://localhost.", False),
    ("http://127.0.0.1.:8000", False),
    ("http://%6cocalhost", False),
    ("http://127.0.0.%31", False),
    ("http://[::1%25lo]:8000", False),
    ("http://[fe80::1%25eth0]:8000", False),
    ("http://[::ffff:127.0.0.1]", False),
    ("http://[127.0.0.1]", False),
    ("http://[::1", False),
    ("http://127.0.0.1 .evil.example", False),
    ("http://127.0.0.1\t:8000", False),
    ("http://local\nhost:8000", False),
    (" http://127.0.0.1:8000", False),
    ("http://127.0.0.1:8000\x00", False),
    ("http://l\u043ecalhost:8000", False),  # a Cyrillic o
    ("http://0.0.0.0:8000", False),
    ("http://10.0.0.1:8000", False),
    ("http://[::]:8000", False),
]


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


@pytest.mark.parametrize(("endpoint", "expected"), ENDPOINTS)
def test_an_endpoint_is_local_only_when_it_unambiguously_names_loopback(
    endpoint: str | None, expected: bool
) -> None:
    assert _settings(endpoint).is_local is expected
    if expected:
        assert endpoint is not None
        # What urllib3 (and so botocore) would connect to, not only what we parsed.
        assert _loopback(parse_url(endpoint).host)


def _host_botocore_sends_to(endpoint: str) -> str | None:
    """Prepare (not send) a DynamoDB request through botocore and read the host urllib3 would dial."""

    class Stop(Exception):
        pass

    urls: list[str] = []

    def capture(request: AWSPreparedRequest, **_: object) -> None:
        urls.append(request.url)
        raise Stop

    client: Any = botocore.session.get_session().create_client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )
    on(client, "before-send.dynamodb", capture)
    try:
        client.list_tables()
    except Stop:
        pass
    finally:
        client.close()
    return parse_url(urls[0]).host


@pytest.mark.parametrize("endpoint", [endpoint for endpoint, local in ENDPOINTS if local])
def test_every_local_endpoint_is_loopback_in_the_request_botocore_prepares(endpoint: str) -> None:
    assert _loopback(_host_botocore_sends_to(endpoint))


def test_the_backslash_endpoint_really_goes_elsewhere() -> None:
    # Why it is refused: the request botocore prepares is for evil.example.
    assert _host_botocore_sends_to("http://evil.example\\@127.0.0.1") == "evil.example"
    assert not _settings("http://evil.example\\@127.0.0.1").is_local


_URL_PIECES = [
    "127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "[::1]", "::1", "evil.example", "user", "0x7f000001",
    "1", "-", "@", "\\", "#", "?", "%", "%25", "/", ":", ":8000", ".", "[", "]", " ", "\t",
]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "//", ""]),
       st.lists(st.sampled_from(_URL_PIECES), max_size=6))
def test_an_endpoint_said_to_be_local_is_loopback_to_every_parser(scheme: str, pieces: list[str]) -> None:
    endpoint = scheme + "".join(pieces)
    if not _settings(endpoint).is_local:
        return
    assert _loopback(parse_url(endpoint).host)
    assert _loopback(urlsplit(endpoint).hostname)


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


def test_settings_are_read_once_and_read_again_on_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLE_NAME", "first")  # recorded, so the environment is restored afterwards
    first = get_settings()
    os.environ["TABLE_NAME"] = "second"  # changed behind the data layer's back
    assert get_settings() is first and first.table_name == "first"
    assert reload_settings().table_name == "second"
    assert get_settings().table_name == "second"
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "lots")  # (the test fixtures reload on setenv)
    for _ in range(2):  # a malformed setting is reported at every call, not half applied
        with pytest.raises(ConfigurationError, match="DYNAMODB_MAX_RETRY_ATTEMPTS"):
            get_settings()
