"""The SAM application of ``python -m migrations export --format sam`` on DynamoDB Local: both
handlers run with the environment exactly as the template sets it (its ``Globals`` and the
function's own variables, references resolved: the table, and the cursor secret given as the
deploy would), API requests shaped as the template's ``ANY /{proxy+}`` route delivers them, and
stream batches read from DynamoDB Local's own stream.

With the SAM CLI on the ``PATH`` (or named by ``SAM_CLI``), ``sam validate --lint`` and ``sam
build`` run too, and the handler is imported from the built artifact alone."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.config import Settings, get_settings
from examples import lambda_handler
from examples.lambda_handler import handle, on_stream
from migrations import export
from models import ENTITIES, TableModel
from tests.helpers import random_email
from tests.integration.test_streams_local import read_stream

SECRET = "a-test-secret-of-more-than-sixteen-characters"
CONTEXT = SimpleNamespace(aws_request_id="c0ffee00-1234-4abc-9def-000000000001")


def template_environment(logical_id: str, settings: Settings) -> dict[str, str]:
    """The variables Lambda gives the function ``logical_id``, as the SAM template sets them."""
    body = export.template("sam")
    variables = {**body["Globals"]["Function"]["Environment"]["Variables"],
                 **body["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})}
    references = {export.TABLE: settings.table_name, "CursorSecret": SECRET}
    resolved = {}
    for name, value in variables.items():
        if isinstance(value, dict):
            [(function, target)] = value.items()
            assert function == "Ref" and target in references, f"{name}: {value} is not resolved here"
        resolved[name] = str(references[target] if isinstance(value, dict) else value)
    return resolved


@pytest.fixture
def as_deployed(local_table: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], dict[str, str]]:
    """Give the process the environment of one of the template's functions (and Lambda's region
    variable, ``AWS_REGION``, in place of ``AWS_DEFAULT_REGION``); the endpoint stays DynamoDB Local."""

    def apply(logical_id: str) -> dict[str, str]:
        for other in (export.APP_FUNCTION, export.STREAM_FUNCTION):  # none of another function's
            for name in template_environment(other, local_table):
                monkeypatch.delenv(name, raising=False)
        variables = template_environment(logical_id, local_table)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_REGION", local_table.region or "us-east-1")
        monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
        for model in (TableModel, *ENTITIES):  # as a new Lambda instance: nothing kept from before
            model._connection = None
        return variables

    return apply


def _request(method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event of the template's one route, ``ANY /{proxy+}``."""
    return {
        "version": "2.0", "routeKey": "ANY /{proxy+}", "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json", **(headers or {})},
        "queryStringParameters": query, "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default",
                           "requestId": "request-1", "routeKey": "ANY /{proxy+}"},
        "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
    }


def _call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = handle(_request(method, path, **kwargs), CONTEXT)
    return response["statusCode"], json.loads(response["body"])


def test_the_template_sets_what_the_api_handler_needs(as_deployed: Callable[[str], dict[str, str]]) -> None:
    variables = as_deployed(export.APP_FUNCTION)

    assert set(variables) == {"TABLE_NAME", "LOG_LEVEL", "DATALAYER_CURSOR_SECRET", *export.LAYER_SETTINGS}
    assert os.environ["DATALAYER_CURSOR_SECRET"] == SECRET


def test_the_api_handler_serves_every_route_through_the_catch_all_route(
    as_deployed: Callable[[str], dict[str, str]],
) -> None:
    as_deployed(export.APP_FUNCTION)
    email = random_email()
    key = {"Idempotency-Key": "signup-1"}

    status, user = _call("POST", "/users", body={"email": email, "name": "Ada"}, headers=key)
    assert status == 201
    replayed = _call("POST", "/users", body={"email": email, "name": "Ada"}, headers=key)
    assert replayed == (201, user)
    assert _call("POST", "/users", body={"email": email, "name": "Bob"}, headers=key)[0] == 422
    assert _call("GET", f"/users/{user['user_id']}") == (200, user)

    orders = f"/users/{user['user_id']}/orders"
    once = {"Idempotency-Key": "cart-7"}
    status, order = _call("POST", orders, body={"amount": 12.5}, headers=once)
    assert (status, order["amount"]) == (201, "12.50")
    assert _call("POST", orders, body={"amount": 12.5}, headers=once) == (201, order)  # written once
    assert _call("POST", orders, body={"amount": 3}, headers=once)[0] == 422
    assert _call("POST", orders, body={"amount": 7})[0] == 201

    status, first = _call("GET", orders, query={"limit": "1"})
    assert status == 200 and len(first["items"]) == 1 and first["next_cursor"]
    status, rest = _call("GET", orders, query={"limit": "1", "cursor": first["next_cursor"]})
    assert status == 200 and {o["amount"] for o in first["items"] + rest["items"]} == {"12.50", "7.00"}
    tampered = first["next_cursor"][:-2] + ("AA" if not first["next_cursor"].endswith("AA") else "BB")
    assert _call("GET", orders, query={"limit": "1", "cursor": tampered})[0] == 400

    moved = _call("POST", f"/orders/{user['user_id']}/{order['order_id']}/status", body={"status": "PAID"})
    assert (moved[0], moved[1]["status"]) == (200, "PAID")
    assert _call("DELETE", "/users")[0] == 404


def test_an_internal_error_is_logged_at_error_with_the_request_id_and_no_personal_data(
    as_deployed: Callable[[str], dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    as_deployed(export.APP_FUNCTION)
    monkeypatch.setenv("TABLE_NAME", "no-such-table-here")  # the stack was deployed without its table
    email = random_email()

    with caplog.at_level(logging.DEBUG):
        status, body = _call("POST", "/users", body={"email": email, "name": "Grace Hopper"})

    assert (status, body) == (500, {"error": "internal error"})
    [record] = [r for r in caplog.records if r.name == lambda_handler.__name__]
    assert record.levelno == logging.ERROR
    assert CONTEXT.aws_request_id in record.getMessage()
    assert "POST /users" in record.getMessage()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert email not in logged and email.split("@")[0] not in logged and "Grace" not in logged


def test_a_batch_with_one_failing_record_reports_exactly_that_record(
    as_deployed: Callable[[str], dict[str, str]],
) -> None:
    as_deployed(export.APP_FUNCTION)
    _, user = _call("POST", "/users", body={"email": random_email(), "name": "Ada"})
    for amount in (5, 6):
        _call("POST", f"/users/{user['user_id']}/orders", body={"amount": amount})
    as_deployed(export.STREAM_FUNCTION)
    records = [{**r, "eventSource": "aws:dynamodb"} for r in read_stream(get_settings(), 4)]
    types = [r["dynamodb"]["NewImage"]["EntityType"]["S"] for r in records]
    broken = types.index("ORDER")  # the first order: the user and its claim come before it, an order after
    assert broken < len(records) - 1
    records[broken]["dynamodb"]["NewImage"]["CreatedAt"] = {"S": "not a time"}  # no longer reads as an Order
    seen: list[str] = []

    result = on_stream({"Records": records}, CONTEXT,
                       changed=lambda name, old, new: seen.append(type(new).__name__))

    failing = records[broken]["dynamodb"]["SequenceNumber"]
    assert result == {"batchItemFailures": [{"itemIdentifier": failing}]}
    assert len(seen) == broken  # the records before it were handled, none after (Lambda retries from it)
    mapping = export.template("sam")["Resources"][export.STREAM_MAPPING]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]  # so Lambda reads the answer


def test_a_batch_that_decodes_reports_no_failure(as_deployed: Callable[[str], dict[str, str]]) -> None:
    as_deployed(export.APP_FUNCTION)
    _call("POST", "/users", body={"email": random_email(), "name": "Ada"})
    as_deployed(export.STREAM_FUNCTION)
    records = read_stream(get_settings(), 2)

    assert len(records) == 2 and on_stream({"Records": records}, CONTEXT) == {"batchItemFailures": []}


def _sam_cli() -> str | None:
    return os.environ.get("SAM_CLI") or shutil.which("sam")


@pytest.mark.sam  # make sam: installs the SAM CLI once (slow), so not part of make test
def test_sam_validates_and_builds_an_artifact_that_serves_on_its_own(
    tmp_path: Path, as_deployed: Callable[[str], dict[str, str]],
) -> None:
    found = _sam_cli()
    if found is None:
        pytest.fail("no SAM CLI: run `make sam`, or set SAM_CLI to one")
    sam = str(found)
    template = tmp_path / "template.json"
    args = argparse.Namespace(format="sam", output=template, handler=export.HANDLER,
                              stream_handler=export.STREAM_HANDLER)
    assert export.run(args) == 0
    sam_env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    for command in (["validate", "--lint", "-t", str(template)],
                    ["build", "-t", str(template), "--build-dir", str(tmp_path / "built")]):
        done = subprocess.run([sam, *command], cwd=tmp_path, env=sam_env, capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    variables = as_deployed(export.APP_FUNCTION)
    artifact = tmp_path / "built" / export.APP_FUNCTION
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1])\n"
        "from examples.lambda_handler import handle\n"
        "event = {'routeKey': 'ANY /{proxy+}', 'rawPath': '/users', 'requestContext': {'http': "
        "{'method': 'POST'}}, 'body': json.dumps({'email': sys.argv[2], 'name': 'Ada'})}\n"
        "print(handle(event, None)['statusCode'])\n"
    )
    # -S: no site-packages, so every module but the standard library's comes from the artifact
    done = subprocess.run([sys.executable, "-S", "-c", script, str(artifact), random_email()],
                          cwd=tmp_path, env={**os.environ, **variables}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "201"), done.stderr
