"""Infrastructure failures become the typed error that names the fix, on a write and on a read.

An unreachable endpoint is simulated at botocore's ``before-send`` (the request never leaves, and
botocore retries as it would); DynamoDB's refusals are answered at ``before-call`` as in
``tests/conftest.py``'s ``client_hooks``, or come from moto itself (a table that was never created).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from core.config import Settings, get_settings
from core.localdb import free_port
from core.retry import RetryPolicy
from models import Account, Order, Product, TableModel, User, sending, transaction
from repositories import accounts, orders, products, users
from repositories.batch import batch_get, batch_write
from repositories.errors import (
    AccessDenied,
    CredentialsExpired,
    CredentialsRejected,
    DataLayerError,
    EndpointUnreachable,
    InfrastructureError,
    RetriesExhausted,
    TableMissing,
    Throttled,
    WriteOutcomeUnknown,
)
from tests.helpers import off, on, random_email, raw_client, raw_scan

Call = Callable[[], Any]


@pytest.fixture(autouse=True)
def _cursor_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages need a cursor secret off a local endpoint."""
    monkeypatch.setenv("DATALAYER_CURSOR_SECRET", "s" * 32)


class Answer:
    """Answer an operation through a model's client with a DynamoDB error response (``extra``: more
    top-level fields, as botocore parses them)."""

    def __init__(self) -> None:
        self._hooks: list[tuple[Any, str, Callable[..., Any]]] = []

    def __call__(self, model: type[TableModel], operation: str, code: str, message: str = "",
                 **extra: Any) -> None:
        parsed: dict[str, Any] = {"Error": {"Code": code, "Message": message}, **extra}

        def handler(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            return AWSResponse("https://dynamodb.invalid", 400, HTTPHeaders(), None), parsed

        client = model._get_connection().connection.client
        on(client, f"before-call.dynamodb.{operation}", handler)
        self._hooks.append((client, f"before-call.dynamodb.{operation}", handler))

    def remove_all(self) -> None:
        for client, event, handler in self._hooks:
            off(client, event, handler)


@pytest.fixture
def answer() -> Iterator[Answer]:
    """``answer(User, "GetItem", "AccessDeniedException", "...")``; removed after the test."""
    hooks = Answer()
    yield hooks
    hooks.remove_all()


# --- endpoint unreachable ------------------------------------------------------------------------


class Unreachable:
    """Fail every attempt before it is sent: ``errors`` are raised in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.errors: list[Callable[[str], Exception]] = [
            lambda url: EndpointConnectionError(endpoint_url=url)
        ]
        self.attempts: list[str] = []

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        self.attempts.append((target.decode() if isinstance(target, bytes) else target).rpartition(".")[2])
        make = self.errors[min(len(self.attempts), len(self.errors)) - 1]
        raise make(request.url)


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[Unreachable]:
    """The models' client pointed at a loopback port nothing listens on; no request leaves."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "1")
    injector = Unreachable()
    client = TableModel._get_connection().connection.client
    on(client, "before-send.dynamodb", injector, first=True)
    yield injector
    off(client, "before-send.dynamodb", injector)


WRITES: dict[str, tuple[Call, str]] = {
    "create_user": (lambda: users.create_user(random_email(), "Ada"), "TransactWriteItems"),
    "open_account": (lambda: accounts.open_account(account_id="a1", balance="5"), "PutItem"),
    "put_product": (lambda: products.put_product("lamp", "Lamp", Decimal("9.99")), "UpdateItem"),
}
READS: dict[str, tuple[Call, str]] = {
    "get_user": (lambda: users.get_user("u1"), "GetItem"),
    "orders_by_status": (lambda: orders.orders_by_status("PENDING"), "Query"),
    "batch_get": (lambda: batch_get(Product, [{"product_id": "p1"}]), "BatchGetItem"),
}


def _assert_says_start_the_local_database(error: EndpointUnreachable) -> None:
    message = str(error)
    assert error.endpoint is not None and error.endpoint.startswith("http://127.0.0.1:")
    assert error.endpoint in message
    assert "make db-start" in message and 'eval "$(make -s db-env)"' in message
    assert "nothing was sent" in message


@pytest.mark.parametrize("name", WRITES)
def test_a_write_to_a_refusing_endpoint_is_endpoint_unreachable_not_an_unknown_outcome(
    unreachable: Unreachable, name: str
) -> None:
    call, operation = WRITES[name]
    with pytest.raises(EndpointUnreachable) as raised:
        call()
    assert not isinstance(raised.value, WriteOutcomeUnknown)
    assert isinstance(raised.value, InfrastructureError)
    assert isinstance(raised.value.__cause__, EndpointConnectionError)
    assert unreachable.attempts == [operation, operation]  # botocore's retry was refused too
    _assert_says_start_the_local_database(raised.value)
    assert "nothing was written" in str(raised.value)


@pytest.mark.parametrize("name", READS)
def test_a_read_from_a_refusing_endpoint_is_endpoint_unreachable(unreachable: Unreachable, name: str) -> None:
    call, operation = READS[name]
    with pytest.raises(EndpointUnreachable) as raised:
        call()
    cause = raised.value.__cause__
    assert isinstance(getattr(cause, "cause", cause), EndpointConnectionError)  # PynamoDB's, or botocore's
    assert set(unreachable.attempts) == {operation}
    _assert_says_start_the_local_database(raised.value)


def test_a_connect_timeout_sent_nothing_either(unreachable: Unreachable) -> None:
    unreachable.errors = [lambda url: ConnectTimeoutError(endpoint_url=url)]
    for call in (WRITES["open_account"][0], READS["get_user"][0]):
        with pytest.raises(EndpointUnreachable) as raised:
            call()
        _assert_says_start_the_local_database(raised.value)


def test_batch_write_to_a_refusing_endpoint_is_endpoint_unreachable(unreachable: Unreachable) -> None:
    with pytest.raises(EndpointUnreachable) as raised:
        batch_write([Product(product_id="p1", name="Lamp", price=Decimal("1"))])
    _assert_says_start_the_local_database(raised.value)


def test_a_write_sent_once_then_refused_is_still_an_unknown_outcome(unreachable: Unreachable) -> None:
    """The first attempt may have been applied (its answer timed out); the endpoint then went away."""
    unreachable.errors = [lambda url: ReadTimeoutError(endpoint_url=url),
                          lambda url: EndpointConnectionError(endpoint_url=url)]
    with pytest.raises(WriteOutcomeUnknown) as raised:
        accounts.open_account(account_id="a1", balance="5")
    assert not isinstance(raised.value, EndpointUnreachable)
    assert isinstance(raised.value.__cause__, EndpointConnectionError)
    assert raised.value.keys == [("ACCOUNT#a1", "BALANCE")]


def test_a_read_sent_once_then_refused_is_endpoint_unreachable(unreachable: Unreachable) -> None:
    unreachable.errors = [lambda url: ReadTimeoutError(endpoint_url=url),
                          lambda url: EndpointConnectionError(endpoint_url=url)]
    with pytest.raises(EndpointUnreachable):
        users.get_user("u1")


def test_an_unreachable_remote_endpoint_names_it_and_not_the_local_database(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "0")
    injector = Unreachable()
    client = TableModel._get_connection().connection.client
    on(client, "before-send.dynamodb", injector, first=True)
    try:
        with pytest.raises(EndpointUnreachable) as raised:
            accounts.open_account(account_id="a1")
    finally:
        off(client, "before-send.dynamodb", injector)
    message = str(raised.value)
    assert raised.value.endpoint == "https://dynamodb.us-east-1.amazonaws.com"
    assert raised.value.endpoint in message and "AWS_ENDPOINT_URL_DYNAMODB" in message
    assert "make db-start" not in message


# --- table or index missing ----------------------------------------------------------------------


@pytest.fixture
def no_table() -> Iterator[Settings]:
    """moto, with no table created: the migrations were never applied (and a request no hook
    answers cannot leave this machine)."""
    with mock_aws():
        yield get_settings()


def _assert_says_migrate(error: TableMissing, settings: Settings) -> None:
    message = str(error)
    assert error.table == settings.table_name and repr(settings.table_name) in message
    assert "make migrate" in message and "python -m migrations upgrade" in message


@pytest.mark.parametrize("name", WRITES)
def test_a_write_to_a_table_never_migrated_is_table_missing(no_table: Settings, name: str) -> None:
    with pytest.raises(TableMissing) as raised:
        WRITES[name][0]()
    assert isinstance(raised.value, InfrastructureError) and raised.value.__cause__ is not None
    _assert_says_migrate(raised.value, no_table)


@pytest.mark.parametrize("name", READS)
def test_a_read_from_a_table_never_migrated_is_table_missing(no_table: Settings, name: str) -> None:
    with pytest.raises(TableMissing) as raised:
        READS[name][0]()
    _assert_says_migrate(raised.value, no_table)


def test_a_query_through_an_index_the_table_lacks_names_the_index(no_table: Settings) -> None:
    raw_client(no_table).create_table(
        TableName=no_table.table_name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                              {"AttributeName": "SK", "AttributeType": "S"}],
    )
    with pytest.raises(TableMissing) as raised:
        orders.orders_by_status("PENDING")
    assert raised.value.index == "GSI1" and "'GSI1'" in str(raised.value)
    _assert_says_migrate(raised.value, no_table)


def test_dynamodbs_missing_index_validation_error_is_table_missing_with_the_index(
    moto_table: Settings, answer: Answer
) -> None:
    """DynamoDB (and DynamoDB Local) answer a query on an index the table lacks with a ValidationException."""
    answer(Order, "Query", "ValidationException", "The table does not have the specified index: GSI1")
    with pytest.raises(TableMissing) as raised:
        orders.orders_by_status("PENDING")
    assert raised.value.index == "GSI1" and "has no index 'GSI1'" in str(raised.value)
    _assert_says_migrate(raised.value, moto_table)


# --- DynamoDB's refusals, answered at before-call ------------------------------------------------


DENIED = ("User: arn:aws:sts::123456789012:assumed-role/app/s is not authorized to perform: "
          "dynamodb:{op} on resource: arn:aws:dynamodb:us-east-1:123456789012:table/T")

# (model, operation, call) for one write and one read of each kind.
PATHS: dict[str, tuple[type[TableModel], str, Call]] = {
    "write PutItem": (Account, "PutItem", lambda: accounts.open_account(account_id=uuid.uuid4().hex)),
    "write TransactWriteItems": (User, "TransactWriteItems",
                                 lambda: users.create_user(random_email(), "Ada")),
    "read GetItem": (User, "GetItem", lambda: users.get_user("u1")),
    "read Query": (Order, "Query", lambda: orders.orders_by_status("PENDING")),
}


@pytest.mark.parametrize("path", PATHS)
def test_access_denied_names_the_action_the_table_and_the_policy_command(
    no_table: Settings, answer: Answer, path: str
) -> None:
    model, operation, call = PATHS[path]
    answer(model, operation, "AccessDeniedException", DENIED.format(op=operation))
    with pytest.raises(AccessDenied) as raised:
        call()
    message = str(raised.value)
    assert raised.value.action == f"dynamodb:{operation}" and f"dynamodb:{operation}" in message
    assert no_table.table_name in message and raised.value.resource is not None
    assert "python -m migrations policy --role app" in message
    assert isinstance(raised.value, InfrastructureError) and raised.value.__cause__ is not None


@pytest.mark.parametrize("code", ["ExpiredTokenException", "ExpiredToken", "RequestExpired"])
@pytest.mark.parametrize("path", PATHS)
def test_expired_credentials_say_to_refresh_them(
    no_table: Settings, answer: Answer, path: str, code: str
) -> None:
    model, operation, call = PATHS[path]
    answer(model, operation, code, "The security token included in the request is expired")
    with pytest.raises(CredentialsExpired) as raised:
        call()
    message = str(raised.value)
    assert code in message and "refresh them" in message and "aws sso login" in message
    assert isinstance(raised.value, CredentialsRejected) and raised.value.__cause__ is not None


@pytest.mark.parametrize("path", PATHS)
def test_credentials_dynamodb_does_not_recognise_say_which_settings_to_check(
    no_table: Settings, answer: Answer, path: str
) -> None:
    model, operation, call = PATHS[path]
    answer(model, operation, "UnrecognizedClientException",
           "The security token included in the request is invalid.")
    with pytest.raises(CredentialsRejected) as raised:
        call()
    assert not isinstance(raised.value, CredentialsExpired)
    assert "AWS_ACCESS_KEY_ID" in str(raised.value) and "AWS_PROFILE" in str(raised.value)


# --- throttling ----------------------------------------------------------------------------------

REASON = {"reason": "TableWriteProvisionedThroughputExceeded",
          "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/T"}
HOT_KEY = {"reason": "TableReadKeyRangeThroughputExceeded",
           "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/T"}


@pytest.mark.parametrize(("code", "field"), [
    ("ProvisionedThroughputExceededException", "ThrottlingReasons"),
    ("ThrottlingException", "throttlingReasons"),  # that exception's member is camelCase
    ("RequestLimitExceeded", "ThrottlingReasons"),
])
@pytest.mark.parametrize("path", PATHS)
def test_throttling_after_botocores_retries_is_throttled_with_dynamodbs_reasons(
    no_table: Settings, answer: Answer, path: str, code: str, field: str
) -> None:
    model, operation, call = PATHS[path]
    answer(model, operation, code, "Throughput exceeds the current capacity", **{field: [REASON]})
    with pytest.raises(Throttled) as raised:
        call()
    error = raised.value
    # Callers that caught RetriesExhausted for throttling keep working.
    assert isinstance(error, RetriesExhausted) and isinstance(error, InfrastructureError)
    assert error.throttling_reasons == [REASON]
    message = str(error)
    assert code in message and REASON["reason"] in message and REASON["resource"] in message
    assert "Try again later" in message
    assert error.__cause__ is not None


def test_a_hot_key_is_named_as_the_fix(no_table: Settings, answer: Answer) -> None:
    answer(User, "GetItem", "ProvisionedThroughputExceededException", "slow down",
           ThrottlingReasons=[HOT_KEY])
    with pytest.raises(Throttled) as raised:
        users.get_user("u1")
    assert "hot key" in str(raised.value) and raised.value.throttling_reasons == [HOT_KEY]


def test_throttling_without_reasons_still_says_what_to_do(no_table: Settings, answer: Answer) -> None:
    answer(Product, "GetItem", "ThrottlingException", "Rate exceeded")
    with pytest.raises(Throttled) as raised:
        products.get_product("p1")
    assert raised.value.throttling_reasons == []
    assert "Try again later" in str(raised.value) and "Contributor Insights" in str(raised.value)


def test_a_transaction_throttled_item_by_item_is_throttled_with_the_items_reasons(
    moto_table: Settings, answer: Answer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sending, "CONTENTION_RETRY", RetryPolicy(max_attempts=2, sleep=lambda _: None))
    answer(User, "TransactWriteItems", "TransactionCanceledException", "cancelled",
           CancellationReasons=[{"Code": "None"},
                                {"Code": "ThrottlingError", "Message": "Throughput exceeds"}])
    with pytest.raises(Throttled) as raised:
        users.create_user(random_email(), "Ada")
    assert raised.value.throttling_reasons == [{"item": 1, "reason": "ThrottlingError",
                                                "message": "Throughput exceeds"}]
    assert "ThrottlingError" in str(raised.value) and "Try again later" in str(raised.value)
    assert raw_scan(moto_table) == []


def test_a_composed_transaction_throttled_is_throttled_not_a_conflict(
    moto_table: Settings, answer: Answer
) -> None:
    answer(User, "TransactWriteItems", "TransactionCanceledException", "cancelled",
           CancellationReasons=[{"Code": "ThrottlingError"}, {"Code": "None"}])
    with pytest.raises(Throttled) as raised, transaction() as t:
        t.save(Account(account_id="a1", balance=Decimal("1")))
        t.save(Account(account_id="a2", balance=Decimal("1")))
    assert raised.value.throttling_reasons == [{"item": 0, "reason": "ThrottlingError"}]
    assert raw_scan(moto_table) == []


def test_batch_write_throttled_keeps_what_was_not_written(moto_table: Settings, answer: Answer) -> None:
    answer(Product, "BatchWriteItem", "ProvisionedThroughputExceededException", "slow",
           ThrottlingReasons=[REASON])
    lamp = Product(product_id="p1", name="Lamp", price=Decimal("1"))
    with pytest.raises(Throttled) as raised:
        batch_write([lamp])
    assert raised.value.unprocessed == [lamp] and raised.value.throttling_reasons == [REASON]


def test_other_unexpected_errors_stay_plain_data_layer_errors(no_table: Settings, answer: Answer) -> None:
    answer(User, "GetItem", "ValidationException", "One or more parameter values were invalid")
    with pytest.raises(DataLayerError) as raised:
        users.get_user("u1")
    assert type(raised.value) is DataLayerError
