"""``repositories.asyncio`` mirrors ``repositories`` name for name (as ``redis.asyncio`` mirrors ``redis``):
an app switches API by changing one import.

The modules are found, not listed: a new repository module without its async half fails here. A
function that can send a request is awaited (a coroutine function wrapping the synchronous one, so
its rules are written once); what sends nothing is the synchronous object itself.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any

import pytest

import repositories
from models import Order, TableModel, User
from models.collections import BoundCollection
from models.queries import BoundQuery
from models.writes import Transaction, atransaction, transaction

NOT_MIRRORED = {"_common", "query", "testing", "asyncio"}  # internals, test helpers, the mirror itself
# Functions that never send a request: re-exported as they are.
SENDS_NOTHING = {
    "transfer_id_for_key", "item_size", "check_status", "normalize_email",
    "clear", "configure", "invalidate", "invalidate_each", "read_through", "reset",
    "decode_stream_record", "is_ttl_expiry",
    "cursor_secret", "check_limit", "encode_cursor", "decode_cursor", "item_key", "report_unreadable",
}
MIRRORED = sorted(
    info.name for info in pkgutil.iter_modules(repositories.__path__) if info.name not in NOT_MIRRORED
)


def public_names(module: ModuleType) -> list[str]:
    """``__all__``, or the public functions and classes the module defines itself."""
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return list(declared)
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__ == module.__name__]


def test_every_repository_module_is_mirrored() -> None:
    assert {"accounts", "batch", "metrics", "orders", "products", "users"} <= set(MIRRORED)
    for name in MIRRORED:
        importlib.import_module(f"repositories.asyncio.{name}")


@pytest.mark.parametrize("name", MIRRORED)
def test_the_async_module_exports_every_public_name_of_the_sync_one(name: str) -> None:
    sync = importlib.import_module(f"repositories.{name}")
    mirror = importlib.import_module(f"repositories.asyncio.{name}")
    wanted = public_names(sync)
    assert wanted, f"repositories.{name} exports nothing"
    missing = [n for n in wanted if not hasattr(mirror, n)]
    assert missing == [], f"repositories.asyncio.{name} lacks {missing}"
    assert set(wanted) <= set(mirror.__all__)


@pytest.mark.parametrize("name", MIRRORED)
def test_functions_that_send_are_awaited_wrappers_and_the_rest_are_the_same_objects(name: str) -> None:
    sync = importlib.import_module(f"repositories.{name}")
    mirror = importlib.import_module(f"repositories.asyncio.{name}")
    for export in public_names(sync):
        original, mirrored = getattr(sync, export), getattr(mirror, export)
        if inspect.isfunction(original) and export not in SENDS_NOTHING:
            assert inspect.iscoroutinefunction(mirrored), f"{name}.{export} is not awaited"
            assert mirrored.__wrapped__ is original, f"{name}.{export} does not run the sync function"
            assert (mirrored.__name__, mirrored.__doc__) == (original.__name__, original.__doc__)
            assert inspect.signature(mirrored) == inspect.signature(original)
        else:
            assert mirrored is original, f"{name}.{export} is not the sync object"


def test_the_package_offers_aclose_and_outcome_of() -> None:
    from core.engine.bridge import outcome_of
    from repositories import asyncio as mirror

    assert inspect.iscoroutinefunction(mirror.aclose)
    assert mirror.outcome_of is outcome_of


def wrapped_by(owner: Any, awaited: str, sync: str) -> None:
    method, original = inspect.getattr_static(owner, awaited), inspect.getattr_static(owner, sync)
    assert inspect.iscoroutinefunction(method), f"{owner.__name__}.{awaited}"
    assert method.__wrapped__ is original, f"{owner.__name__}.{awaited} does not run {sync}"


@pytest.mark.parametrize(("awaited", "sync"), [("asave", "save"), ("aupdate", "update"),
                                                ("adelete", "delete")])
def test_entity_writes_have_awaited_twins(awaited: str, sync: str) -> None:
    wrapped_by(TableModel, awaited, sync)
    assert getattr(User, awaited) is getattr(TableModel, awaited)  # no entity overrides one half only
    assert getattr(User, sync) is getattr(TableModel, sync)


@pytest.mark.parametrize("name", ["aget", "abatch_get"])
def test_entity_reads_have_awaited_class_methods(name: str) -> None:
    assert inspect.iscoroutinefunction(getattr(Order, name))
    assert set(inspect.signature(getattr(Order, name)).parameters) <= set(
        inspect.signature(getattr(Order, name[1:])).parameters)


@pytest.mark.parametrize(("awaited", "sync"), [("apage", "page"), ("afirst", "first"), ("aall", "all")])
def test_declared_queries_have_awaited_twins(awaited: str, sync: str) -> None:
    wrapped_by(BoundQuery, awaited, sync)
    assert inspect.iscoroutinefunction(getattr(Order.of_user, awaited))


def test_collections_and_transactions_have_awaited_twins() -> None:
    wrapped_by(BoundCollection, "apage", "page")
    assert inspect.iscoroutinefunction(Order.with_user.apage)
    assert inspect.isasyncgenfunction(inspect.unwrap(atransaction))
    assert inspect.isgeneratorfunction(inspect.unwrap(transaction))
    assert inspect.signature(atransaction).parameters == inspect.signature(transaction).parameters
    assert Transaction.commit.__doc__  # the one commit both context managers end with
