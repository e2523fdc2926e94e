"""Entities a test declares for itself, taken out of the registry again afterwards."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from models.table import TableModel


@contextmanager
def scratch_entities(entities: list[type[TableModel]]) -> Iterator[list[type[TableModel]]]:
    """Yield ``entities`` (a list a test appends the entities it declares to); afterwards each is
    unregistered (its discriminator freed, its physical indexes forgotten), so the declared models
    are as they were for the next test."""
    try:
        yield entities
    finally:
        registry: Any = TableModel._get_discriminator_attribute()
        schemas: Any = getattr(sys.modules.get("models.indexes"), "_SCHEMAS", {})
        for entity in entities:
            discriminator = registry.get_discriminator(entity)
            registry._class_map.pop(entity, None)
            registry._discriminator_map.pop(discriminator, None)
            for name, (_, owner) in list(schemas.items()):
                if owner == entity.__qualname__:
                    del schemas[name]
        entities.clear()
        gc.collect()  # gone from TableModel.__subclasses__() too
