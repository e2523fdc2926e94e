"""One structured event per DynamoDB call through ``logging``, with no item or key values in any record."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

import core.logs
from core.client import new_client
from core.config import Settings, get_settings
from core.errors import AlreadyExists, ConfigurationError, DataLayerError
from core.logs import LOGGER_NAME, configure_logging
from models import Product, User
from repositories.users import create_user

SECRET_EMAIL = "very.private.person@example.com"
SECRET_ID = "private-id-1"
SECRET_NAME = "Private Person"
PERSONAL = (SECRET_EMAIL, SECRET_ID, SECRET_NAME)
ROOT = Path(__file__).resolve().parents[2]
HERE = "tests.unit.test_logging"
_KEY = {"PK": {"S": "USER#nobody"}, "SK": {"S": "PROFILE"}}


class Records(logging.Handler):
    """An application's handler: keeps every record it receives."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def calls(self) -> list[logging.LogRecord]:
        return [r for r in self.records
                if r.name == LOGGER_NAME and getattr(r, "event", None) == "dynamodb.call"]


def _everything(record: logging.LogRecord) -> str:
    """All a record holds that a handler could print (message, arguments, extra fields, traceback)."""
    return record.getMessage() + repr(record.__dict__)


@pytest.fixture
def log_level(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str | None], None]]:
    """Set (or unset, with None) LOG_LEVEL and apply it; the suite's WARNING is restored afterwards."""

    def apply(level: str | None) -> None:
        if level is None:
            monkeypatch.delenv("LOG_LEVEL", raising=False)
        else:
            monkeypatch.setenv("LOG_LEVEL", level)
        configure_logging(force=True)

    yield apply
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    configure_logging(force=True)


@pytest.fixture
def app_logging() -> Iterator[Callable[[int], Records]]:
    """An application's logging: a handler on the root logger and the root level; undone afterwards."""
    root = logging.getLogger()
    saved = root.level
    installed: list[Records] = []

    def install(level: int) -> Records:
        root.setLevel(level)
        handler = Records()
        root.addHandler(handler)
        installed.append(handler)
        return handler

    yield install
    for handler in installed:
        root.removeHandler(handler)
    root.setLevel(saved)


# --- the events ------------------------------------------------------------------------------


def test_each_call_logs_one_event_with_operation_table_caller_and_capacity(
    moto_table: Settings, log_level: Callable[[str | None], None]
) -> None:
    log_level("DEBUG")
    with capture_logs() as events:
        User(user_id=SECRET_ID, email=SECRET_EMAIL, name=SECRET_NAME).save()
        User.get(f"USER#{SECRET_ID}", "PROFILE")
        User.with_email.first(email=SECRET_EMAIL)

    calls = [e for e in events if e["event"] == "dynamodb.call"]
    # A user is put with its email claim, in one transaction.
    assert [c["operation"] for c in calls] == ["TransactWriteItems", "GetItem", "Query"]
    assert {c["table"] for c in calls} == {moto_table.table_name}
    assert calls[2]["index"] == "Email-Index"
    for call in calls:
        assert call["log_level"] == "debug"
        assert call["outcome"] == "ok"
        assert call["status"] == 200
        assert call["duration_ms"] >= 0
        assert call["consumed_capacity"] is not None
        assert call["retries"] == 0
        assert call["request_id"]
        assert call["caller"] == (
            f"{HERE}.test_each_call_logs_one_event_with_operation_table_caller_and_capacity"
        )
    text = repr(events)
    for personal in PERSONAL:
        assert personal not in text


def test_at_info_successful_calls_are_not_logged(
    moto_table: Settings, log_level: Callable[[str | None], None]
) -> None:
    log_level("INFO")
    with capture_logs() as events, pytest.raises(User.DoesNotExist):
        User.get("USER#nobody", "PROFILE")
    assert events == []


def test_a_refused_condition_is_debug_and_an_unexpected_error_a_warning(
    moto_table: Settings, log_level: Callable[[str | None], None]
) -> None:
    log_level("DEBUG")
    with capture_logs() as events:
        with pytest.raises(User.DoesNotExist):
            User.get("USER#nobody", "PROFILE")
        with pytest.raises(DataLayerError):
            Product(product_id="p", name="X", price=1).save(condition=Product.pk.exists())
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            new_client(get_settings()).get_item(TableName="no-such-table", Key=_KEY)
    calls = [(e["log_level"], e["outcome"]) for e in events if e["event"] == "dynamodb.call"]
    assert calls == [
        ("debug", "ok"),
        ("debug", "ConditionalCheckFailedException"),
        ("warning", "ResourceNotFoundException"),
    ]


def test_the_caller_is_the_repository_function_and_a_taken_email_is_a_debug_refusal(
    moto_table: Settings, log_level: Callable[[str | None], None]
) -> None:
    log_level("DEBUG")
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with capture_logs() as events:
        create_user(email, "Ada")
        with pytest.raises(AlreadyExists):
            create_user(email, "Impostor")
    calls = [e for e in events if e["event"] == "dynamodb.call"]
    writes = [c for c in calls if c["operation"] == "TransactWriteItems"]
    assert [c["log_level"] for c in writes] == ["debug", "debug"]
    assert {c["caller"] for c in writes} == {"repositories.users.create_user"}
    assert writes[1]["outcome"] == "TransactionCanceledException"
    assert "ConditionalCheckFailed" in writes[1]["cancellation_reasons"]
    assert writes[1]["table"] == moto_table.table_name
    assert email not in repr(events) and "Impostor" not in repr(events)


def test_a_call_without_an_answer_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, log_level: Callable[[str | None], None]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("DYNAMODB_MAX_RETRY_ATTEMPTS", "0")
    log_level(None)
    client = new_client(get_settings())
    with capture_logs() as events, pytest.raises(Exception, match="Could not connect"):
        client.get_item(TableName="orders", Key={"PK": {"S": f"USER#{SECRET_ID}"}, "SK": {"S": "PROFILE"}})
    [call] = [e for e in events if e["event"] == "dynamodb.call"]
    assert call["log_level"] == "warning"
    assert call["operation"] == "GetItem" and call["table"] == "orders"
    assert call["outcome"] == "EndpointConnectionError"
    assert call["caller"] == f"{HERE}.test_a_call_without_an_answer_is_a_warning"
    assert SECRET_ID not in repr(events)


# --- through the standard library -------------------------------------------------------------


def test_an_app_handler_at_debug_receives_one_record_per_call_and_no_personal_data(
    moto_table: Settings, log_level: Callable[[str | None], None], app_logging: Callable[[int], Records]
) -> None:
    log_level(None)  # the application decides
    app = app_logging(logging.DEBUG)
    User(user_id=SECRET_ID, email=SECRET_EMAIL, name=SECRET_NAME).save()
    User.get(f"USER#{SECRET_ID}", "PROFILE")
    User.with_email.first(email=SECRET_EMAIL)

    calls = app.calls()
    assert [r.operation for r in calls] == ["TransactWriteItems", "GetItem", "Query"]  # type: ignore[attr-defined]
    # PynamoDB logged each of the same calls itself (with its arguments replaced).
    pynamodb_calls = [r for r in app.records
                      if r.name == "pynamodb.connection.base" and r.msg.startswith("Calling")]
    assert len(pynamodb_calls) == len(calls)
    for record in calls:
        assert record.levelno == logging.DEBUG
        assert record.caller == (  # type: ignore[attr-defined]
            f"{HERE}.test_an_app_handler_at_debug_receives_one_record_per_call_and_no_personal_data"
        )
        assert record.table == moto_table.table_name  # type: ignore[attr-defined]
        assert record.request_id  # type: ignore[attr-defined]
        assert json.loads(record.getMessage())["request_id"] == record.request_id  # type: ignore[attr-defined]
    if moto_table.transport == "botocore":  # the lean transport leaves botocore's loggers out
        assert any(r.name.startswith("botocore.") for r in app.records)
    for record in app.records:
        text = _everything(record)
        for personal in PERSONAL:
            assert personal not in text, f"{record.name}: {record.getMessage()[:200]}"


def test_at_the_default_level_successful_calls_emit_nothing_and_cost_nothing(
    moto_table: Settings,
    log_level: Callable[[str | None], None],
    app_logging: Callable[[int], Records],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log_level(None)
    app = app_logging(logging.WARNING)  # the standard library's default
    work: list[str] = []
    monkeypatch.setattr(core.logs, "_caller", lambda: work.append("caller"))
    monkeypatch.setattr(core.logs, "_tables", lambda _: work.append("tables"))
    monkeypatch.setattr(structlog, "get_logger", lambda *_: work.append("get_logger"))

    User(user_id=SECRET_ID, email=SECRET_EMAIL, name=SECRET_NAME).save()
    User.get(f"USER#{SECRET_ID}", "PROFILE")

    assert app.records == []
    assert work == []


def test_an_unexpected_failure_logs_one_warning_at_the_default_level_and_a_refusal_nothing(
    moto_table: Settings, log_level: Callable[[str | None], None], app_logging: Callable[[int], Records]
) -> None:
    log_level(None)
    app = app_logging(logging.WARNING)
    with pytest.raises(DataLayerError):
        Product(product_id="p", name="X", price=1).save(condition=Product.pk.exists())
    assert app.records == []
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        new_client(get_settings()).get_item(TableName="no-such-table", Key=_KEY)
    [record] = app.records
    assert record.name == LOGGER_NAME and record.levelno == logging.WARNING
    assert record.operation == "GetItem"  # type: ignore[attr-defined]
    assert record.outcome == "ResourceNotFoundException"  # type: ignore[attr-defined]
    assert record.status == 400  # type: ignore[attr-defined]
    assert record.caller == (  # type: ignore[attr-defined]
        f"{HERE}.test_an_unexpected_failure_logs_one_warning_at_the_default_level_and_a_refusal_nothing"
    )
    assert record.request_id  # type: ignore[attr-defined]


# --- LOG_LEVEL and the default handler --------------------------------------------------------


@pytest.mark.parametrize("level", ["bogus", "verbose", "10", "WARN "])
def test_an_unknown_log_level_is_a_configuration_error(
    level: str, log_level: Callable[[str | None], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = r"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    with pytest.raises(ConfigurationError, match=allowed):
        log_level(level)
    monkeypatch.setenv("LOG_LEVEL", level)
    with pytest.raises(ConfigurationError, match=repr(level)):
        new_client(get_settings())  # a client is instrumented, so LOG_LEVEL is read


@pytest.mark.parametrize(("level", "expected"), [("debug", logging.DEBUG), (" Info ", logging.INFO),
                                                 ("CRITICAL", logging.CRITICAL)])
def test_log_level_sets_the_dynamodb_logger_only(
    level: str, expected: int, log_level: Callable[[str | None], None]
) -> None:
    root_handlers = list(logging.getLogger().handlers)
    log_level(level)
    logger = logging.getLogger(LOGGER_NAME)
    assert logger.level == expected
    [default] = [h for h in logger.handlers if not isinstance(h, logging.NullHandler)]
    assert logging.getLogger().handlers == root_handlers
    log_level(None)
    assert logger.level == logging.NOTSET and default not in logger.handlers
    assert [type(h) for h in logger.handlers] == [logging.NullHandler]  # the library's, always there
    assert logging.getLogger().handlers == root_handlers


def test_pynamodb_and_botocore_loggers_carry_the_redacting_filter() -> None:
    names = ("pynamodb", "pynamodb.connection.base", "pynamodb.models",
             "botocore.endpoint", "botocore.parsers")
    for name in names:
        filters = [f for f in logging.getLogger(name).filters if getattr(f, "datalayer_redaction", False)]
        assert len(filters) == 1, name  # once, however often clients are instrumented
    record = logging.LogRecord("pynamodb.connection.base", logging.DEBUG, "", 0,
                               "Calling %s with arguments %s",
                               ("PutItem", {"Item": {"Email": {"S": SECRET_EMAIL}}}), None)
    assert logging.getLogger("pynamodb.connection.base").filter(record)
    assert record.getMessage() == "Calling PutItem with arguments <not logged: may hold item or key values>"


# --- in a process of its own ------------------------------------------------------------------


def _run(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=ROOT, env={**environment, **env})


def test_events_are_json_lines_when_not_on_a_terminal() -> None:
    script = (
        "from core.logs import get_logger\n"
        "get_logger().info('dynamodb.call', operation='GetItem')\n"
        "get_logger().debug('dynamodb.call', operation='Hidden')\n"
    )
    done = _run(script, LOG_LEVEL="INFO")
    [line] = done.stderr.strip().splitlines()
    event = json.loads(line)
    assert event["event"] == "dynamodb.call"
    assert event["operation"] == "GetItem"
    assert event["level"] == "info"
    assert "timestamp" in event


def test_an_app_with_basic_config_at_debug_sees_the_calls_and_no_personal_data() -> None:
    script = (
        "import logging\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "from moto import mock_aws\n"
        "from tests.helpers import moto_answers_lean_clients\n"
        "moto_answers_lean_clients()\n"
        "from migrations import runner\n"
        "from models import User\n"
        "with mock_aws():\n"
        "    runner.upgrade(out=lambda _: None)\n"
        f"    User(user_id={SECRET_ID!r}, email={SECRET_EMAIL!r}, name={SECRET_NAME!r}).save()\n"
        f"    User.get('USER#{SECRET_ID}', 'PROFILE')\n"
    )
    done = _run(script)
    assert "Calling TransactWriteItems with arguments" in done.stderr  # PynamoDB's own DEBUG records
    assert "Response body" in done.stderr  # botocore's
    lines = [line for line in done.stderr.splitlines() if line.startswith("DEBUG:dynamodb:")]
    user_calls = [json.loads(line.split(":", 2)[2]) for line in lines]
    assert [c["operation"] for c in user_calls][-2:] == ["TransactWriteItems", "GetItem"]
    assert user_calls[-1]["caller"] == "__main__.<module>"
    for personal in PERSONAL:
        assert personal not in done.stderr


def test_a_describe_table_that_finds_no_table_is_an_answer_not_a_warning(
    moto_table: Settings, log_level: Callable[[str | None], None], app_logging: Callable[[int], Records]
) -> None:
    log_level(None)
    app = app_logging(logging.WARNING)
    client = new_client(get_settings())
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_table(TableName="no-such-table")
    assert app.records == []


def test_the_default_handler_renders_for_a_terminal() -> None:
    formatter = core.logs._DefaultFormatter(console=True)
    record = logging.LogRecord(LOGGER_NAME, logging.WARNING, "", 0, "{}", (), None)
    record.event_dict = {"event": "dynamodb.call", "operation": "GetItem", "level": "warning",
                         "timestamp": "2026-01-01T00:00:00Z"}
    text = formatter.format(record)
    assert "dynamodb.call" in text and "GetItem" in text and not text.startswith("{")
