"""An ``Expires`` rule is kept by every write path, on DynamoDB Local.

A scratch entity declares only ``Expires`` (a rule a blind write can keep), so every path may write
it: ``save()``, ``update()``, a composed transaction, the upsert and ``batch_write``. Each path
leaves ``ExpiresAt`` at the declared start + ``AFTER``, read back with a raw ``get_item``: none
writes the item without its TTL, none removes it. The entity is unregistered afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb_attributes import UnicodeDatetimeAttribute

from core.config import Settings
from models import sending, transaction
from models.blind_puts import plan_upsert
from models.keys import EntityKeys
from models.rules import Expires
from models.table import TableModel
from repositories.batch import batch_write
from tests.helpers import raw_get
from tests.scratch import scratch_entities

pytestmark = pytest.mark.integration

START = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
AFTER = timedelta(days=3)
EXPIRES = int((START + AFTER).timestamp())  # what DynamoDB's TTL reads: epoch seconds


@pytest.fixture
def expiring() -> Iterator[type[TableModel]]:
    """A temporary entity whose one rule is ``Expires(AFTER, start="started_at")``; unregistered
    afterwards, so the declared models are as they were for the next test."""
    discriminator = f"TTL_TEST_{uuid.uuid4().hex[:8].upper()}"

    class Expiring(TableModel, discriminator=discriminator):
        keys = EntityKeys(pk="TTLTEST#{item_id}", sk="TTLTEST")

        item_id = UnicodeAttribute(attr_name="ItemId")
        started_at = UnicodeDatetimeAttribute(attr_name="StartedAt", force_utc=True)
        note = UnicodeAttribute(attr_name="Note", null=True)

        rules = (Expires(AFTER, start="started_at"),)

    with scratch_entities([Expiring]):
        yield Expiring


def _new(model: type[TableModel], **values: Any) -> Any:
    return model(item_id=uuid.uuid4().hex, started_at=START, **values)


def _saved(model: type[TableModel]) -> Any:
    entity = _new(model, note="first")
    entity.save()
    return entity


def _upsert(entity: TableModel) -> None:
    sending.execute(lambda: plan_upsert(entity), what="upsert")


def _save_replacing(model: type[TableModel]) -> Any:
    entity = _saved(model)
    entity.note = "replaced"
    entity.save()
    return entity


def _update(model: type[TableModel]) -> Any:
    entity = _saved(model)
    entity.update([model.get_attributes()["note"].set("updated")])
    return entity


def _transaction_save(model: type[TableModel]) -> Any:
    entity = _new(model)
    with transaction() as composed:
        composed.save(entity)
    return entity


def _transaction_update(model: type[TableModel]) -> Any:
    entity = _saved(model)
    with transaction() as composed:
        composed.update(entity, [model.get_attributes()["note"].set("updated")])
    return entity


def _upsert_new(model: type[TableModel]) -> Any:
    entity = _new(model)
    _upsert(entity)
    return entity


def _upsert_replacing(model: type[TableModel]) -> Any:
    stored = _saved(model)
    entity = model(item_id=stored.item_id, started_at=START, note="upserted")
    _upsert(entity)
    return entity


def _batch_new(model: type[TableModel]) -> Any:
    entity = _new(model)
    batch_write([entity])
    return entity


def _batch_replacing(model: type[TableModel]) -> Any:
    stored = _saved(model)
    entity = model(item_id=stored.item_id, started_at=START, note="batched")
    batch_write([entity], overwrite=True)
    return entity


def _batch_loaded(model: type[TableModel]) -> Any:
    entity = _saved(model)
    entity.note = "batched"
    batch_write([entity])
    return entity


# Each path, given the scratch model, writes one entity and returns it.
PATHS: dict[str, Callable[[type[TableModel]], Any]] = {
    "save": _saved,
    "save replacing": _save_replacing,
    "update": _update,
    "transaction save": _transaction_save,
    "transaction update": _transaction_update,
    "upsert": _upsert_new,
    "upsert replacing": _upsert_replacing,
    "batch_write": _batch_new,
    "batch_write overwrite": _batch_replacing,
    "batch_write loaded": _batch_loaded,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_every_write_path_stores_the_ttl_its_expires_rule_declares(
    local_table: Settings, expiring: type[TableModel], path: str
) -> None:
    entity = PATHS[path](expiring)

    item = raw_get(local_table, expiring, item_id=entity.item_id)
    assert item is not None
    assert item.get("ExpiresAt") == {"N": str(EXPIRES)}, f"{path} wrote the item without its TTL"
    assert item["StartedAt"] == {"S": expiring.get_attributes()["started_at"].serialize(START)}
    assert entity.expires_at == START + AFTER  # the entity as written
