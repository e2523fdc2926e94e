"""A malformed setting stops every command before it does anything: one ``error:`` line naming the
setting, exit status 2, no traceback."""

from __future__ import annotations

import pytest

from migrations import __main__ as cli


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DYNAMODB_MAX_RETRY_ATTEMPTS", "abc"),
        ("DYNAMODB_MAX_RETRY_ATTEMPTS", "-1"),
        ("DYNAMODB_READ_TIMEOUT_SECONDS", "x"),
        ("DYNAMODB_CONNECT_TIMEOUT_SECONDS", "0"),
        ("LOG_LEVEL", "bogus"),
    ],
)
@pytest.mark.parametrize("command", [["status"], ["upgrade"], ["downgrade", "-1"], ["history"], ["check"]])
def test_a_malformed_setting_is_one_error_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    command: list[str],
) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")  # never reached

    assert cli.main(command) == 2

    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {name} must be ") and captured.err.count("\n") == 1
    assert f"got {value!r}" in captured.err
    assert captured.out == ""
