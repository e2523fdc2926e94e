"""Products on moto: put (create or replace), the read-through cache, batched reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException

from core.client import new_client
from core.config import Settings
from core.errors import (
    DataLayerError,
    InvalidInput,
    InvalidKey,
    NotFound,
    Throttled,
    WriteOutcomeUnknown,
)
from models import Product
from repositories import batch, cache
from repositories.products import get_product, get_products, put_product
from tests.conftest import ClientHooks

Item = dict[str, Any]


def new_id() -> str:
    return uuid.uuid4().hex


def keys(product_id: str) -> Item:
    return {
        "PK": {"S": Product.key_template("pk").compose(product_id=product_id)},
        "SK": {"S": Product.key_template("sk").compose(product_id=product_id)},
    }


def raw_get(settings: Settings, product_id: str) -> Item | None:
    item: Item | None = (
        new_client(settings).get_item(TableName=settings.table_name, Key=keys(product_id)).get("Item")
    )
    return item


def seed(settings: Settings, *product_ids: str, name: str = "seeded") -> None:
    """Write products with raw put_item calls, independently of the code under test."""
    client = new_client(settings)
    for product_id in product_ids:
        item = {**keys(product_id), "EntityType": {"S": "PRODUCT"}, "ProductId": {"S": product_id},
                "Name": {"S": name}, "Price": {"N": "12.50"}, "Version": {"N": "1"},
                "Attributes": {"M": {"color": {"S": "red"}}}}  # fmt: skip
        client.put_item(TableName=settings.table_name, Item=item)


@pytest.fixture
def cached() -> Iterator[None]:
    """Turn the read-through cache on for one test (the autouse fixture resets it afterwards)."""
    cache.configure(ttl_seconds=300)
    yield


# --- put_product ----------------------------------------------------------------------------------


def test_put_product_stores_exact_price_attributes_and_version_one(moto_table: Settings) -> None:
    product_id = new_id()

    made = put_product(
        product_id, "Desk lamp", Decimal("19.99"), color="black", sizes=[1, 2], spec={"w": 2.5}
    )

    item = raw_get(moto_table, product_id)
    assert item is not None
    assert item["EntityType"] == {"S": "PRODUCT"} and item["Name"] == {"S": "Desk lamp"}
    assert item["Price"] == {"N": "19.99"} and item["Version"] == {"N": "1"}
    assert item["Attributes"] == {"M": {"color": {"S": "black"}, "sizes": {"L": [{"N": "1"}, {"N": "2"}]},
                                        "spec": {"M": {"w": {"N": "2.5"}}}}}  # fmt: skip
    assert made.price == Decimal("19.99") and made.version == 1 and made.created_at is not None


def test_put_product_again_replaces_the_data_keeps_created_at_and_bumps_the_version(
    moto_table: Settings,
) -> None:
    product_id = new_id()
    first = put_product(product_id, "Lamp", Decimal("10"), color="red")

    second = put_product(product_id, "Lamp v2", Decimal("12"))

    item = raw_get(moto_table, product_id)
    assert item is not None
    assert item["Version"] == {"N": "2"} and item["Name"] == {"S": "Lamp v2"}
    assert "Attributes" not in item  # a put replaces: attributes not given are gone
    assert second.created_at == first.created_at and second.version == 2


@pytest.mark.parametrize(
    "price", [1.5, Decimal("-0.01"), Decimal("NaN"), Decimal("Infinity"), "abc", None, True, Decimal("0.005")]
)
def test_put_product_refuses_a_price_that_is_not_exact_non_negative_money(
    moto_table: Settings, price: Any
) -> None:
    product_id = new_id()
    with pytest.raises(InvalidInput):
        put_product(product_id, "Lamp", price)
    assert raw_get(moto_table, product_id) is None


@pytest.mark.parametrize(
    "attrs",
    [
        {"weight": Decimal("1.5")},
        {"ratio": float("nan")},
        {"tags": {"a", "b"}},
        {"spec": {1: "x"}},
        {"spec": {"": "x"}},
        {"when": object()},
    ],
)
def test_put_product_refuses_attributes_that_are_not_json_like(moto_table: Settings, attrs: Item) -> None:
    product_id = new_id()
    with pytest.raises(InvalidInput):
        put_product(product_id, "Lamp", Decimal(1), **attrs)
    assert raw_get(moto_table, product_id) is None


def test_put_product_refuses_attributes_nested_deeper_than_dynamodb_allows(moto_table: Settings) -> None:
    deep: Any = "leaf"
    for _ in range(32):
        deep = [deep]
    with pytest.raises(InvalidInput, match="nested"):
        put_product(new_id(), "Lamp", Decimal(1), deep=deep)


def test_put_product_refuses_a_bad_id_or_name(moto_table: Settings) -> None:
    with pytest.raises(InvalidKey):
        put_product("a#b", "Lamp", Decimal(1))
    with pytest.raises(InvalidInput):
        put_product(new_id(), "  ", Decimal(1))
    assert new_client(moto_table).scan(TableName=moto_table.table_name)["Items"] == []


# --- get_product ----------------------------------------------------------------------------------


def test_get_product_reads_a_stored_product(moto_table: Settings) -> None:
    product_id = new_id()
    seed(moto_table, product_id)

    found = get_product(product_id)

    assert isinstance(found, Product)
    assert (found.product_id, found.name, found.price, found.version) == (
        product_id,
        "seeded",
        Decimal("12.50"),
        1,
    )
    assert found.attributes is not None and found.attributes["color"] == "red"


def test_get_product_round_trips_what_put_product_stored(moto_table: Settings) -> None:
    product_id = new_id()
    put_product(product_id, "Lamp", Decimal("3"), spec={"w": 2.5, "tags": ["a", None, True]}, count=7)
    found = get_product(product_id)
    assert found.attributes is not None
    assert found.attributes.as_dict() == {"spec": {"w": 2.5, "tags": ["a", None, True]}, "count": 7}


def test_get_product_raises_not_found_for_a_missing_product(moto_table: Settings) -> None:
    with pytest.raises(NotFound):
        get_product(new_id())


def test_get_product_serves_from_the_cache_until_put_product_invalidates_it(
    moto_table: Settings, cached: None
) -> None:
    product_id = new_id()
    seed(moto_table, product_id, name="before")
    assert get_product(product_id).name == "before"

    seed(moto_table, product_id, name="changed elsewhere")
    assert get_product(product_id).name == "before"  # cached: the change made elsewhere shows after the TTL

    put_product(product_id, "after", Decimal(1))
    assert get_product(product_id).name == "after"


def test_get_product_from_the_cache_gives_each_caller_its_own_entity(
    moto_table: Settings, cached: None
) -> None:
    product_id = new_id()
    seed(moto_table, product_id)
    first = get_product(product_id)
    first.name = "mutated by one caller"
    assert get_product(product_id).name == "seeded"


def test_the_cache_loads_a_product_with_a_strongly_consistent_read(
    moto_table: Settings, cached: None, client_hooks: ClientHooks
) -> None:
    # An eventually consistent load right after an invalidation could cache an old copy for a TTL.
    product_id = new_id()
    seed(moto_table, product_id)
    sent = client_hooks.record(Product, "GetItem")
    get_product(product_id)
    get_product(product_id)
    assert [request.get("ConsistentRead") for request in sent] == [True]


@pytest.mark.parametrize(("code", "error"), [
    ("ThrottlingException", Throttled), ("InternalServerError", DataLayerError),
])
def test_put_and_get_product_map_an_unexpected_error_into_the_tree_with_its_cause(
    moto_table: Settings, client_hooks: ClientHooks, code: str, error: type[DataLayerError]
) -> None:
    product_id = new_id()
    seed(moto_table, product_id)
    client_hooks.fail(Product, "GetItem", code)
    client_hooks.fail(Product, "UpdateItem", code)
    # A 5xx that outlived botocore's retries leaves a write's outcome unknown; a read just failed.
    write_error = WriteOutcomeUnknown if code == "InternalServerError" else error
    for call, expected in ((lambda: get_product(product_id), error),
                           (lambda: put_product(product_id, "Lamp", Decimal(1)), write_error)):
        with pytest.raises(expected) as raised:
            call()
        assert type(raised.value) is expected
        assert isinstance(raised.value.__cause__, (PynamoDBException, ClientError))
    stored = raw_get(moto_table, product_id)
    assert stored is not None and stored["Name"] == {"S": "seeded"}


# --- get_products ---------------------------------------------------------------------------------


def test_get_products_batches_any_number_of_ids_in_input_order(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [new_id() for _ in range(150)]
    seed(moto_table, *ids[:140])
    real, sizes = batch._client(), []

    class Counting:
        def batch_get_item(self, **kwargs: Any) -> Item:
            sizes.append(len(next(iter(kwargs["RequestItems"].values()))["Keys"]))
            response: Item = real.batch_get_item(**kwargs)
            return response

    monkeypatch.setattr(batch, "_client", Counting)
    wanted = ids[::-1] + ids[:3]

    found = get_products(wanted)

    assert [p.product_id for p in found] == ids[:140][::-1]
    assert sizes == [100, 50]


def test_get_products_of_no_ids_is_empty(moto_table: Settings) -> None:
    assert get_products([]) == []


def test_get_products_refuses_a_single_string_or_a_bad_id(moto_table: Settings) -> None:
    with pytest.raises(InvalidInput):
        get_products("abc")
    with pytest.raises(InvalidKey):
        get_products(["ok", "a#b"])
