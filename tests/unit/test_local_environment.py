"""The public way to reach the local database: export lines for a shell, or the process itself."""

from __future__ import annotations

import os
import shlex

import pytest

from core import localdb
from core.config import get_settings


def test_env_prints_export_lines_that_point_the_data_layer_at_the_local_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(localdb, "ensure_running", lambda: ("http://127.0.0.1:8123", False))
    assert localdb.main(["env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    exported = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in lines)
    assert all(line.startswith("export ") for line in lines)
    assert exported == {
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8123", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
    }
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    assert get_settings().is_local and get_settings().endpoint_url == "http://127.0.0.1:8123"


def test_use_local_points_this_process_at_it_and_keeps_settings_already_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(localdb, "ensure_running", lambda: ("http://127.0.0.1:8124", True))
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "unset after the test")  # restored by monkeypatch
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert localdb.use_local() == "http://127.0.0.1:8124"
    assert os.environ["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:8124"
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert get_settings().endpoint_url == "http://127.0.0.1:8124"  # the process follows at once
