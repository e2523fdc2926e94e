"""Fixtures shared by every test folder.

Unit tests run on moto (``moto_table``); integration tests on one DynamoDB Local per test session
(``dynamodb_local``), each test with a table of its own (``local_table``), so tests never see
each other's data.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from moto import mock_aws

from core.config import Settings, get_settings
from core.localdb import LocalDynamoDB
from migrations import runner
from models import ENTITIES, TableModel
from repositories import cache


def _quiet(_: str) -> None:
    return None


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Give each test a known environment and fresh model connections (no state leaks between tests)."""
    for name in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "DYNAMODB_TARGET", "AWS_PROFILE",
                 "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("TABLE_NAME", f"test-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    for model in (TableModel, *ENTITIES):
        model._connection = None
    cache.reset()
    yield
    for model in (TableModel, *ENTITIES):
        model._connection = None


@pytest.fixture
def moto_table() -> Iterator[Settings]:
    """The table at head, migrated by the real runner, on moto (no network)."""
    with mock_aws():
        runner.upgrade(out=_quiet)
        yield get_settings()


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[LocalDynamoDB]:
    """One in-memory DynamoDB Local for the session, on a free 127.0.0.1 port; stopped at the end."""
    server = LocalDynamoDB()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_endpoint(dynamodb_local: LocalDynamoDB, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the data layer at the session's DynamoDB Local (no table created)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    return get_settings()


@pytest.fixture
def local_table(local_endpoint: Settings) -> Iterator[Settings]:
    """A table of this test's own at head on DynamoDB Local; deleted afterwards."""
    runner.upgrade(out=_quiet)
    yield local_endpoint
    from core.client import new_client

    client = new_client(local_endpoint)
    for name in (local_endpoint.table_name, local_endpoint.ledger_table_name):
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=name)
