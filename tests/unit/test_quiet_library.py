"""A quiet library: refusals the caller handles log nothing an app did not ask for.

With no logging configured the data layer prints nothing (its loggers carry a ``NullHandler``, so
Python's last-resort handler never sees them); an expected refusal is a DEBUG event, an unexpected
failure a WARNING one; ``LOG_LEVEL=DEBUG`` shows one line per call and nothing of botocore's. The
``caller`` of an event is found by file, so an app's own ``core`` or ``models`` modules, and
OpenTelemetry's botocore instrumentation, do not confuse it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from core.config import Settings
from core.logs import LIBRARY_LOGGERS, configure_logging
from models import User

ROOT = Path(__file__).resolve().parents[2]

# Every refusal a caller is expected to handle, each asserted, against moto (no endpoint) or the
# endpoint in the environment. Prints nothing itself: whatever reaches stdout or stderr came from
# the data layer or the libraries under it.
REFUSALS_SCRIPT = textwrap.dedent(
    """
    import contextlib, os, uuid
    from repositories.accounts import open_account, transfer_funds
    from repositories.errors import (
        AlreadyExists, ConflictError, IdempotencyKeyReused, InsufficientFunds, InvalidInput, NotFound,
    )
    from repositories.orders import place_order
    from repositories.users import create_user, get_user, update_user


    def refusals():
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        user = create_user(email, "Ada")
        with contextlib.suppress(AlreadyExists):  # a taken email
            create_user(email.upper(), "Impostor")
            raise SystemExit("AlreadyExists expected")
        update_user(user, name="Ada L.")
        with contextlib.suppress(ConflictError):  # a stale version
            update_user(user, name="Ada Lovelace")
            raise SystemExit("ConflictError expected")
        with contextlib.suppress(NotFound):
            get_user("nobody-" + uuid.uuid4().hex)
            raise SystemExit("NotFound expected")
        with contextlib.suppress(NotFound):  # a condition check on a user that is not there
            place_order("nobody-" + uuid.uuid4().hex, 5)
            raise SystemExit("NotFound expected")
        with contextlib.suppress(InvalidInput):
            create_user("not an email", "Nobody")
            raise SystemExit("InvalidInput expected")
        source, target = open_account(balance=10), open_account(balance=0)
        with contextlib.suppress(InsufficientFunds):
            transfer_funds(source.account_id, target.account_id, 100)
            raise SystemExit("InsufficientFunds expected")
        key = uuid.uuid4().hex
        first = transfer_funds(source.account_id, target.account_id, 1, idempotency_key=key)
        again = transfer_funds(source.account_id, target.account_id, 1, idempotency_key=key)  # a replay
        assert again.transfer_id == first.transfer_id
        with contextlib.suppress(IdempotencyKeyReused):
            transfer_funds(source.account_id, target.account_id, 2, idempotency_key=key)
            raise SystemExit("IdempotencyKeyReused expected")
        account_key = uuid.uuid4().hex
        opened = open_account(balance=5, idempotency_key=account_key)
        assert open_account(balance=5, idempotency_key=account_key).account_id == opened.account_id


    from migrations import runner

    if os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):  # a table of its own
        runner.upgrade(out=lambda _: None)
        refusals()
    else:
        from moto import mock_aws
        from tests.helpers import moto_answers_lean_clients
        moto_answers_lean_clients()  # the lean transport reaches moto too

        with mock_aws():
            runner.upgrade(out=lambda _: None)
            refusals()
    """
)


def run_script(script: str, cwd: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a new interpreter from ``cwd``, with the test's environment (no ``LOG_LEVEL``
    unless given) plus ``environment``."""
    env = {name: value for name, value in os.environ.items() if name != "LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(environment)
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def debug_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``LOG_LEVEL=DEBUG`` for this test; the suite's WARNING afterwards."""
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    configure_logging(force=True)
    yield
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    configure_logging(force=True)


# --- no logging configured: silence -------------------------------------------------------------


def test_a_script_without_logging_configuration_prints_nothing_for_every_expected_refusal(
    tmp_path: Path,
) -> None:
    run = run_script(REFUSALS_SCRIPT, tmp_path)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")


def test_the_data_layers_loggers_carry_a_null_handler() -> None:
    import logging

    for name in LIBRARY_LOGGERS:
        handlers = logging.getLogger(name).handlers
        assert [h for h in handlers if isinstance(h, logging.NullHandler)], name


# --- logging configured: refusals at DEBUG, the unexpected at WARNING ---------------------------


def test_with_logging_at_warning_refusals_log_nothing_and_an_unexpected_failure_one_warning(
    tmp_path: Path,
) -> None:
    script = "import logging; logging.basicConfig(format='%(levelname)s %(name)s %(message)s')\n"
    script += REFUSALS_SCRIPT.replace(
        "        refusals()\n",
        "        refusals()\n"
        "        os.environ['TABLE_NAME'] = 'no-such-table'\n"
        "        from core.config import reload_settings; reload_settings()\n"
        "        from repositories.errors import DataLayerError\n"
        "        with contextlib.suppress(DataLayerError):\n"
        "            get_user('anyone')\n"
        "            raise SystemExit('an error expected')\n",
    )
    run = run_script(script, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    level, logger, message = line.split(" ", 2)
    event = json.loads(message)
    assert (level, logger, event["event"]) == ("WARNING", "dynamodb", "dynamodb.call")
    assert (event["operation"], event["outcome"], event["table"]) == (
        "GetItem", "ResourceNotFoundException", "no-such-table")


def test_with_log_level_debug_every_call_is_one_line_and_botocore_says_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import contextlib, uuid
        from moto import mock_aws
        from tests.helpers import moto_answers_lean_clients
        moto_answers_lean_clients()  # the lean transport reaches moto too
        from migrations import runner
        from repositories.errors import AlreadyExists
        from repositories.users import create_user, get_user

        with mock_aws():
            runner.upgrade(out=lambda _: None)
            email = f"{uuid.uuid4().hex[:10]}@example.com"
            user = create_user(email, "Ada")
            with contextlib.suppress(AlreadyExists):
                create_user(email, "Impostor")
            get_user(user.user_id)
        """
    )
    run = run_script(script, tmp_path, LOG_LEVEL="DEBUG")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stderr.splitlines()]
    assert {event["event"] for event in events} == {"dynamodb.call"}
    app_calls = [e for e in events if e["caller"] == "__main__.<module>" or e["caller"].startswith("repo")]
    assert [(e["operation"], e["outcome"], e["level"]) for e in app_calls[-3:]] == [
        ("TransactWriteItems", "ok", "debug"),
        ("TransactWriteItems", "TransactionCanceledException", "debug"),
        ("GetItem", "ok", "debug"),
    ]


# --- the caller --------------------------------------------------------------------------------


def _function_in(module: str, filename: str, source: str, **names: Any) -> Callable[..., Any]:
    """``call`` defined by ``source`` as if in ``module`` (an application's file ``filename``)."""
    namespace: dict[str, Any] = {"__name__": module, **names}
    exec(compile(textwrap.dedent(source), filename, "exec"), namespace)
    function: Callable[..., Any] = namespace["call"]
    return function


def _callers(events: list[dict[str, Any]]) -> list[str]:
    return [e["caller"] for e in events if e["event"] == "dynamodb.call"]


@pytest.mark.parametrize("module", ["core.jobs", "models.billing", "models", "repositories._common"])
def test_the_caller_is_an_apps_module_even_when_named_like_the_layers(
    module: str, moto_table: Settings, debug_events: None, tmp_path: Path
) -> None:
    filename = str(tmp_path / "app" / (module.replace(".", "/") + ".py"))
    call = _function_in(module, filename, """
        def call(entity, user_id):
            try:
                entity.get(f"USER#{user_id}", "PROFILE")
            except entity.DoesNotExist:
                pass
        """)
    with capture_logs() as events:
        call(User, "nobody-" + uuid.uuid4().hex)
    assert _callers(events) == [f"{module}.call"]


def test_the_caller_skips_opentelemetrys_botocore_instrumentation(
    moto_table: Settings, debug_events: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What opentelemetry.instrumentation.botocore puts between the app and botocore: a wrapper of
    # BaseClient._make_api_call in a module of its own.
    import botocore.client

    original = botocore.client.BaseClient._make_api_call
    wrapper = _function_in(
        "opentelemetry.instrumentation.botocore",
        str(tmp_path / "site-packages" / "opentelemetry" / "instrumentation" / "botocore" / "__init__.py"),
        """
        def call(self, operation_name, api_params):
            return original(self, operation_name, api_params)
        """,
        original=original,
    )
    app = _function_in("billing.reports", str(tmp_path / "billing" / "reports.py"), """
        def call(entity, user_id):
            try:
                entity.get(f"USER#{user_id}", "PROFILE")
            except entity.DoesNotExist:
                pass
        """)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", wrapper)
    with capture_logs() as events:
        app(User, "nobody-" + uuid.uuid4().hex)
    assert _callers(events) == ["billing.reports.call"]
