"""models.table: a model follows the settings of the moment, not those of its first call.

PynamoDB caches a connection per model class for the life of the process; ``TableModel`` drops it
when the table name, region or endpoint change. The conftest resets connections between tests, so
only a change within one test shows whether the model really rebuilds it.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from core.client import model_client
from core.config import Settings, get_settings
from core.errors import NotFound
from migrations import runner
from models import Product, User
from repositories.products import get_product, put_product
from repositories.users import create_user, get_user
from tests.helpers import random_email, raw_get


def _quiet(_: str) -> None:
    return None


def another_table(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Switch the environment (``TABLE_NAME``, ``AWS_DEFAULT_REGION``) and migrate the table it names."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner.upgrade(out=_quiet)
    return get_settings()


def test_a_model_writes_to_the_table_named_when_it_writes(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_id, second_id = uuid.uuid4().hex, uuid.uuid4().hex
    Product(product_id=first_id, name="First", price=Decimal(1)).save()  # connects to the first table
    second = another_table(monkeypatch, TABLE_NAME=f"test-{uuid.uuid4().hex[:12]}")
    Product(product_id=second_id, name="Second", price=Decimal(2)).save()
    assert raw_get(second, Product, product_id=second_id) is not None
    assert raw_get(moto_table, Product, product_id=second_id) is None
    assert raw_get(moto_table, Product, product_id=first_id) is not None
    assert raw_get(second, Product, product_id=first_id) is None
    # PynamoDB itself reconnects on a new table name, but with a client of its own: the model must
    # keep the shared client (instrumented, configured retries) of the new settings.
    assert Product._get_connection().connection.client is model_client(second)


def test_repositories_read_and_write_the_table_named_now(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = create_user(random_email(), "Old")
    put_product("p-1", "Old lamp", Decimal(1))
    second = another_table(monkeypatch, TABLE_NAME=f"test-{uuid.uuid4().hex[:12]}")
    new = create_user(random_email(), "New")  # a transaction (the user and its email claim)
    assert raw_get(second, User, user_id=new.user_id) is not None
    assert raw_get(moto_table, User, user_id=new.user_id) is None
    with pytest.raises(NotFound):
        get_user(old.user_id)  # the old user lives in the first table only
    put_product("p-1", "New lamp", Decimal(2))
    assert get_product("p-1").name == "New lamp"
    stored = raw_get(moto_table, Product, product_id="p-1")
    assert stored is not None and stored["Name"] == {"S": "Old lamp"}


def test_a_model_follows_a_change_of_region(moto_table: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    first_id, second_id = uuid.uuid4().hex, uuid.uuid4().hex
    Product(product_id=first_id, name="Here", price=Decimal(1)).save()
    elsewhere = another_table(monkeypatch, AWS_DEFAULT_REGION="eu-west-1")  # same name, another region
    assert elsewhere.table_name == moto_table.table_name and elsewhere.region == "eu-west-1"
    Product(product_id=second_id, name="There", price=Decimal(2)).save()
    assert raw_get(elsewhere, Product, product_id=second_id) is not None
    assert raw_get(moto_table, Product, product_id=second_id) is None
    assert Product._get_connection().connection.client.meta.region_name == "eu-west-1"


def test_a_model_follows_a_change_of_endpoint(moto_table: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    Product(product_id=uuid.uuid4().hex, name="Here", price=Decimal(1)).save()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")  # never called: nothing listens
    client = Product._get_connection().connection.client
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    assert client is model_client(get_settings())


def test_a_model_keeps_its_connection_while_the_settings_stay(moto_table: Settings) -> None:
    connection = Product._get_connection()
    Product(product_id=uuid.uuid4().hex, name="Lamp", price=Decimal(1)).save()
    assert Product._get_connection() is connection  # rebuilt only when the settings change


def test_meta_reads_the_settings_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    # PynamoDB builds its connections from these; they follow the environment, not the import.
    environment = {"TABLE_NAME": "elsewhere", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:1",
                   "AWS_DEFAULT_REGION": "eu-west-3", "DYNAMODB_MAX_RETRY_ATTEMPTS": "2",
                   "DYNAMODB_CONNECT_TIMEOUT_SECONDS": "3", "DYNAMODB_READ_TIMEOUT_SECONDS": "4"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    meta = User.Meta
    assert (meta.table_name, meta.host, meta.region) == ("elsewhere", "http://127.0.0.1:1", "eu-west-3")
    assert (meta.max_retry_attempts, meta.connect_timeout_seconds, meta.read_timeout_seconds) == (2, 3, 4)
