"""One structured event per DynamoDB call, with no item or key values in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from core.config import Settings
from core.errors import DataLayerError
from core.logs import configure_logging
from models import Product, User

SECRET_EMAIL = "very.private.person@example.com"


@pytest.fixture(autouse=True)
def info_level(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Log at INFO for these tests (the suite runs at WARNING), and restore afterwards."""
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    configure_logging(force=True)
    yield
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    configure_logging(force=True)


def test_each_call_logs_one_event_with_operation_table_and_capacity(moto_table: Settings) -> None:
    with capture_logs() as events:
        User(user_id="private-id-1", email=SECRET_EMAIL, name="Private Person").save()
        User.get("USER#private-id-1", "PROFILE")
        list(User.by_email.query(SECRET_EMAIL))

    calls = [e for e in events if e["event"] == "dynamodb.call"]
    # A user is put with its email claim, in one transaction.
    assert [c["operation"] for c in calls] == ["TransactWriteItems", "GetItem", "Query"]
    assert {c["table"] for c in calls} == {moto_table.table_name}
    assert calls[2]["index"] == "Email-Index"
    for call in calls:
        assert call["outcome"] == "ok"
        assert call["duration_ms"] >= 0
        assert call["consumed_capacity"] is not None
        assert call["retries"] == 0
    text = repr(events)
    for personal in (SECRET_EMAIL, "private-id-1", "Private Person"):
        assert personal not in text


def test_a_failed_call_is_logged_with_its_error_code(moto_table: Settings) -> None:
    with capture_logs() as events:
        with pytest.raises(User.DoesNotExist):
            User.get("USER#nobody", "PROFILE")
        with pytest.raises(DataLayerError):
            Product(product_id="p", name="X", price=1).save(condition=Product.pk.exists())
    outcomes = [e["outcome"] for e in events if e["event"] == "dynamodb.call"]
    assert outcomes == ["ok", "ConditionalCheckFailedException"]


def test_events_are_json_lines_when_not_on_a_terminal(tmp_path: Path) -> None:
    script = (
        "from core.logs import get_logger\n"
        "get_logger().info('dynamodb.call', operation='GetItem')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2], env={**os.environ, "LOG_LEVEL": "INFO"})
    event = json.loads(done.stderr.strip().splitlines()[-1])
    assert event["event"] == "dynamodb.call"
    assert event["operation"] == "GetItem"
    assert "timestamp" in event
