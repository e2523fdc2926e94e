"""Missing region or credentials are a ConfigurationError that says how to fix it, not a botocore
traceback, and nothing is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import client
from core.config import Settings
from core.errors import ConfigurationError
from models import TableModel
from repositories.batch import batch_write
from repositories.orders import get_user_orders
from repositories.products import get_product
from repositories.users import create_user
from tests.helpers import raw_scan


@pytest.fixture
def no_credentials(local_table: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The table exists on DynamoDB Local, but this process has no credentials to sign with."""
    empty = tmp_path / "empty"
    empty.write_text("")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask a metadata service
    monkeypatch.setattr(client, "_session", None)  # a session resolves credentials once; start anew
    monkeypatch.setattr(client, "_model_clients", {})
    TableModel._connection = None
    return local_table


def test_without_credentials_every_call_says_how_to_fix_it_and_writes_nothing(
    no_credentials: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import Product

    for call in (lambda: create_user("ada@example.com", "Ada"), lambda: get_product("p1"),
                 lambda: get_user_orders("u1"),
                 lambda: batch_write([Product(product_id="p", name="P", price=1)])):
        with pytest.raises(ConfigurationError, match="AWS_ACCESS_KEY_ID"):
            call()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    assert raw_scan(no_credentials) == []


def test_without_a_region_the_error_names_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        create_user("ada@example.com", "Ada")
