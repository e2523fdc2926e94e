"""Fixtures for the migrations tests: a DynamoDB Local table name of the test's own (cleaned up
afterwards) and versions directories assembled from real and test revision files."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.client import new_client
from core.config import Settings
from migrations.revisions import VERSIONS_DIR
from tests.migrations.helpers import TEST_REVISIONS


@pytest.fixture
def local(local_endpoint: Settings) -> Iterator[Settings]:
    """The session's DynamoDB Local with a table name of this test's own; both of its tables
    (the application table and the ledger) are deleted afterwards."""
    yield local_endpoint
    client = new_client(local_endpoint)
    for name in (local_endpoint.table_name, local_endpoint.ledger_table_name):
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=name)


@pytest.fixture
def client(local: Settings) -> Any:
    """A raw botocore client on the test's DynamoDB Local."""
    return new_client(local)


@pytest.fixture
def make_versions(tmp_path: Path) -> Callable[..., Path]:
    """Build a versions directory from revision files: real ones by name (``"0003_ttl_and_pitr"``)
    or test ones (``"test:0002_count_things"``); no names copies every real revision."""

    def make(*names: str) -> Path:
        directory = tmp_path / "versions"
        directory.mkdir(exist_ok=True)
        sources = [
            TEST_REVISIONS / f"{n[5:]}.py" if n.startswith("test:") else VERSIONS_DIR / f"{n}.py"
            for n in names
        ] or sorted(VERSIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.py"))
        for source in sources:
            shutil.copy(source, directory / source.name)
        return directory

    return make
