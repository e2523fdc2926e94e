"""The quiet library on DynamoDB Local: it honours ``ClientRequestToken``, so a replayed transfer is
answered by DynamoDB itself (``IdempotentParameterMismatchException``), which moto never does."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from core.localdb import LocalDynamoDB
from tests.unit.test_quiet_library import REFUSALS_SCRIPT, run_script

pytestmark = pytest.mark.integration


def test_a_script_without_logging_configuration_prints_nothing_for_every_expected_refusal(
    dynamodb_local: LocalDynamoDB, tmp_path: Path
) -> None:
    run = run_script(REFUSALS_SCRIPT, tmp_path, AWS_ENDPOINT_URL_DYNAMODB=dynamodb_local.endpoint,
                     TABLE_NAME=f"quiet-{uuid.uuid4().hex[:12]}")
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
