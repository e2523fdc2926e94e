"""Infrastructure failures on DynamoDB Local say the fix: a table never migrated, an index the table
lacks, a port nothing listens on. And a write whose first attempt was applied before the endpoint
went away stays an unknown outcome (it was sent), which ``resolve()`` settles."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from core.client import new_client
from core.config import Settings, get_settings
from core.localdb import free_port
from models import Account, TableModel
from repositories import accounts, orders, users
from repositories.errors import EndpointUnreachable, TableMissing, WriteOutcomeUnknown
from tests.helpers import off, on, random_email


@pytest.fixture
def never_migrated(local_endpoint: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """DynamoDB Local, and a table name no migration ever created."""
    monkeypatch.setenv("TABLE_NAME", f"never-migrated-{uuid.uuid4().hex[:12]}")
    return get_settings()


def _says_migrate(error: TableMissing, settings: Settings) -> None:
    message = str(error)
    assert error.table == settings.table_name and repr(settings.table_name) in message
    assert "make migrate" in message and "python -m migrations upgrade" in message
    assert error.__cause__ is not None


def test_a_table_never_migrated_is_table_missing_naming_it_and_make_migrate(never_migrated: Settings) -> None:
    for call in (lambda: users.create_user(random_email(), "Ada"),
                 lambda: accounts.open_account(account_id="a1"),
                 lambda: users.get_user("u1"),
                 lambda: orders.orders_by_status("PENDING")):
        with pytest.raises(TableMissing) as raised:
            call()
        _says_migrate(raised.value, never_migrated)


def test_a_query_on_an_index_the_table_lacks_names_the_index(never_migrated: Settings) -> None:
    client = new_client(never_migrated)
    client.create_table(
        TableName=never_migrated.table_name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                              {"AttributeName": "SK", "AttributeType": "S"}],
    )
    try:
        with pytest.raises(TableMissing) as raised:
            orders.orders_by_status("PENDING")
        assert raised.value.index == "GSI1" and "no index 'GSI1'" in str(raised.value)
        _says_migrate(raised.value, never_migrated)
    finally:
        client.delete_table(TableName=never_migrated.table_name)


def test_a_port_nothing_listens_on_is_endpoint_unreachable_naming_it_and_make_db_start(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("DYNAMODB_CONNECT_TIMEOUT_SECONDS", "1")
    for call in (lambda: users.create_user(random_email(), "Ada"),
                 lambda: accounts.open_account(account_id="a1"),
                 lambda: users.get_user("u1")):
        started = time.monotonic()
        with pytest.raises(EndpointUnreachable) as raised:
            call()
        assert time.monotonic() - started < 5  # one retry, no long timeouts
        error = raised.value
        assert not isinstance(error, WriteOutcomeUnknown)
        assert error.endpoint is not None and error.endpoint.startswith(endpoint)
        assert endpoint in str(error) and "make db-start" in str(error) and "nothing was sent" in str(error)


class ApplyThenRefuse:
    """The first ``PutItem`` is applied by DynamoDB Local and its answer lost; then the endpoint
    refuses connections (as a server that died after applying it)."""

    def __init__(self) -> None:
        self.attempts = 0
        self._http = URLLib3Session()

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        if not (target.decode() if isinstance(target, bytes) else target).endswith(".PutItem"):
            return
        self.attempts += 1
        if self.attempts == 1:
            self._http.send(request)
            raise ReadTimeoutError(endpoint_url=request.url)
        raise EndpointConnectionError(endpoint_url=request.url)


@pytest.fixture
def apply_then_refuse(local_table: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApplyThenRefuse]:
    """Arm ``ApplyThenRefuse`` on the models' client (botocore sends each request at most twice)."""
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "1")
    injector = ApplyThenRefuse()
    client = TableModel._get_connection().connection.client
    on(client, "before-send.dynamodb", injector, first=True)
    yield injector
    off(client, "before-send.dynamodb", injector)


def test_a_write_applied_before_the_endpoint_went_away_is_an_unknown_outcome_not_unreachable(
    apply_then_refuse: ApplyThenRefuse
) -> None:
    with pytest.raises(WriteOutcomeUnknown) as raised:
        accounts.open_account(account_id="a1", balance="5")
    assert not isinstance(raised.value, EndpointUnreachable)
    assert apply_then_refuse.attempts == 2
    landed = raised.value.resolve()  # the endpoint answers again
    assert isinstance(landed, Account) and landed.account_id == "a1"
