"""A write frees what it planned by reference counting: no plan, step or entity of the layer is left
in a reference cycle for the garbage collector (in an app with a large heap, each collection the
cycles bring on walks that heap)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from core.config import Settings
from models import Product, TableModel, transaction
from models.blind_puts import BatchPut
from models.planning import Plan, Step
from repositories.accounts import open_account, transfer_funds
from repositories.batch import batch_write
from repositories.orders import place_order, set_order_status
from repositories.products import put_product
from repositories.users import create_user, delete_user, update_user

LAYER_TYPES = (Plan, Step, BatchPut, TableModel)


@pytest.fixture
def left_for_the_collector() -> Iterator[Callable[[Callable[[], object]], list[str]]]:
    """Run a write, then name the layer's objects that only the garbage collector would free."""

    def run(write: Callable[[], object]) -> list[str]:
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage, not freed
        try:
            write()
            gc.collect()
            return sorted(type(o).__name__ for o in gc.garbage if isinstance(o, LAYER_TYPES))
        finally:
            gc.set_debug(0)
            gc.garbage.clear()

    yield run


def test_every_write_path_frees_its_plans_steps_and_entities_without_the_collector(
    moto_table: Settings, left_for_the_collector: Callable[[Callable[[], object]], list[str]]
) -> None:
    user = create_user("cy@example.com", "Cy")
    order = place_order(user.user_id, Decimal("3"))
    source, target = open_account(balance=Decimal(10)), open_account()

    def composed() -> None:
        with transaction() as t:
            t.save(Product(product_id="p2", name="Pen", price=Decimal(1)))
            t.save(Product(product_id="p3", name="Ink", price=Decimal(2)))

    writes: dict[str, Callable[[], object]] = {
        "place_order (a transaction)": lambda: place_order(user.user_id, Decimal("2.50")),
        "set_order_status (an update)": lambda: set_order_status(order, "PAID"),
        "update_user": lambda: update_user(user, name="Cy Young"),
        "put_product (an upsert)": lambda: put_product("p1", "Lamp", Decimal("9.99")),
        "transfer_funds": lambda: transfer_funds(source.account_id, target.account_id, Decimal(1)),
        "batch_write": lambda: batch_write([Product(product_id=f"b{i}", name="B", price=Decimal(1))
                                            for i in range(30)]),
        "a composed transaction": composed,
        "delete_user": lambda: delete_user(create_user("dy@example.com", "Dy")),
    }
    left = {name: left_for_the_collector(write) for name, write in writes.items()}
    assert left == {name: [] for name in writes}
