"""batch_write / batch_get on moto: chunking, versions, validation before sending, retries.

moto never answers with UnprocessedItems/UnprocessedKeys, so a thin proxy around the real client
(``Flaky``) withholds part of each request the way DynamoDB does under throttling: the withheld
part is not written (or read) and comes back as unprocessed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

import models.item_size as item_size_module
from core.client import new_client
from core.config import Settings
from core.errors import (
    AlreadyExists,
    ConflictError,
    DataLayerError,
    InvalidInput,
    InvalidKey,
    RetriesExhausted,
    WriteOutcomeUnknown,
)
from core.retry import RetryPolicy
from models import Account, EmailClaim, Metric, MetricAggregate, Order, Product, Transfer, User
from models.blind_puts import plan_batch_put
from repositories import batch, cache
from repositories.batch import MAX_ITEM_BYTES, batch_get, batch_write, item_size
from repositories.products import get_product

Item = dict[str, Any]


def new_id() -> str:
    return uuid.uuid4().hex


def product(product_id: str | None = None, **extra: Any) -> Product:
    return Product(product_id=product_id or new_id(), name="lamp", price=Decimal("9.99"), **extra)


def stored(settings: Settings) -> dict[tuple[str, str], Item]:
    """Every item of the table, read with raw scans."""
    client, out, kwargs = new_client(settings), {}, {"TableName": settings.table_name}
    while True:
        page = client.scan(**kwargs)
        out.update({(i["PK"]["S"], i["SK"]["S"]): i for i in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def seed_product(settings: Settings, *product_ids: str, version: int = 3, name: str = "seeded") -> None:
    """Write products with raw put_item calls, independently of the code under test."""
    client = new_client(settings)
    for product_id in product_ids:
        client.put_item(TableName=settings.table_name, Item=_raw_product(product_id, version, name))


def _raw_product(product_id: str, version: int, name: str) -> Item:
    return {
        "PK": {"S": Product.key_template("pk").compose(product_id=product_id)},
        "SK": {"S": Product.key_template("sk").compose(product_id=product_id)},
        "EntityType": {"S": "PRODUCT"},
        "ProductId": {"S": product_id},
        "Name": {"S": name},
        "Price": {"N": "5"},
        "Version": {"N": str(version)},
    }


class Flaky:
    """The real client, except that ``withhold(call_number, size)`` items of each batch come back
    unprocessed (and are not sent). Records the size of every request.

    ``batch_write``'s own reads of the stored versions (a ``BatchGetItem`` with a projection) go
    straight through and are recorded in ``version_reads`` instead."""

    def __init__(self, real: Any, withhold: Callable[[int, int], int]) -> None:
        self.real, self.withhold, self.sizes = real, withhold, []
        self.version_reads: list[Item] = []

    def batch_write_item(self, RequestItems: dict[str, list[Item]]) -> Item:
        ((table, requests),) = RequestItems.items()
        self.sizes.append(len(requests))
        keep = len(requests) - self.withhold(len(self.sizes), len(requests))
        if keep:
            self.real.batch_write_item(RequestItems={table: requests[:keep]})
        return {"UnprocessedItems": {table: requests[keep:]} if requests[keep:] else {}}

    def batch_get_item(self, RequestItems: dict[str, Item]) -> Item:
        ((table, request),) = RequestItems.items()
        if "ProjectionExpression" in request:
            self.version_reads.append(request)
            return self.real.batch_get_item(RequestItems=RequestItems)  # type: ignore[no-any-return]
        keys = request["Keys"]
        self.sizes.append(len(keys))
        keep = len(keys) - self.withhold(len(self.sizes), len(keys))
        response = (
            self.real.batch_get_item(RequestItems={table: {**request, "Keys": keys[:keep]}}) if keep else {}
        )
        rest = {table: {"Keys": keys[keep:]}} if keys[keep:] else {}
        return {"Responses": response.get("Responses", {table: []}), "UnprocessedKeys": rest}


@pytest.fixture
def flaky(
    monkeypatch: pytest.MonkeyPatch, moto_table: Settings
) -> Callable[[Callable[[int, int], int]], Flaky]:
    """Install a ``Flaky`` proxy as the client batch.py uses; returns a factory taking ``withhold``."""

    def install(withhold: Callable[[int, int], int]) -> Flaky:
        proxy = Flaky(batch._client(), withhold)
        monkeypatch.setattr(batch, "_client", lambda: proxy)
        return proxy

    return install


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[float, float]]]:
    """Record the jitter window of every backoff (``random.uniform``'s bounds) and wait its top."""
    windows: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        windows.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", uniform)
    yield windows


def no_sleep(max_attempts: int = 8) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, base_delay=0.1, max_delay=0.3, sleep=lambda _: None)


# --- batch_write ----------------------------------------------------------------------------------


def test_batch_write_sends_at_most_25_a_request_and_writes_every_entity(
    moto_table: Settings, flaky: Any
) -> None:
    proxy = flaky(lambda call, size: 0)
    entities = [product() for _ in range(60)]

    batch_write(entities)

    assert proxy.sizes == [25, 25, 10]
    items = stored(moto_table)
    assert {(e.pk, e.sk) for e in entities} == set(items)
    assert all(
        item["Version"] == {"N": "1"} and item["EntityType"] == {"S": "PRODUCT"} for item in items.values()
    )
    assert all(e.version == 1 for e in entities)


def test_batch_write_stamps_one_time_on_every_entity_of_the_call(moto_table: Settings) -> None:
    before = datetime.now(UTC)
    entities = [product() for _ in range(30)]

    batch_write(entities)

    items = stored(moto_table)
    times = {items[(e.pk, e.sk)]["UpdatedAt"]["S"] for e in entities}
    assert len(times) == 1  # one write: one UpdatedAt, also across the two requests it took
    (text,) = times
    assert before <= datetime.fromisoformat(text) <= datetime.now(UTC)
    when = datetime.fromisoformat(text)
    assert {e.updated_at for e in entities} == {e.created_at for e in entities} == {when}
    assert len({e.write_token for e in entities}) == 30  # each put still has its own token


class LosesAnswers:
    """The real client, except that the first ``lose`` BatchWriteItem requests are applied and their
    answers lost (a read timeout, as when the connection drops after DynamoDB wrote)."""

    def __init__(self, real: Any, lose: int) -> None:
        self.real, self.lose = real, lose

    def batch_write_item(self, **kwargs: Any) -> Item:
        answer: Item = self.real.batch_write_item(**kwargs)
        if self.lose:
            self.lose -= 1
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1:9")
        return answer

    def batch_get_item(self, **kwargs: Any) -> Item:
        answer: Item = self.real.batch_get_item(**kwargs)
        return answer


def test_a_batch_whose_answer_was_lost_is_acknowledged_by_the_same_call_again(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = LosesAnswers(batch._client(), lose=1)
    monkeypatch.setattr(batch, "_client", lambda: proxy)
    entities = [product() for _ in range(3)]
    with pytest.raises(WriteOutcomeUnknown):
        batch_write(entities)
    landed = stored(moto_table)
    assert len(landed) == 3 and all(e.version is None for e in entities)  # written, not acknowledged

    batch_write(entities)  # the same entities: their items are recognised, not refused or written again

    assert stored(moto_table) == landed
    for entity in entities:
        item = landed[(entity.pk, entity.sk)]
        assert entity.version == 1 and item["Version"] == {"N": "1"}
        assert entity.write_token == item["WriteToken"]["S"]
        assert entity.created_at == datetime.fromisoformat(item["CreatedAt"]["S"])
        assert entity.updated_at == datetime.fromisoformat(item["UpdatedAt"]["S"])  # not the rerun's time
    batch_write(entities)  # and they are written on from there
    assert {item["Version"]["N"] for item in stored(moto_table).values()} == {"2"}


def test_batch_write_of_nothing_sends_nothing(moto_table: Settings, flaky: Any) -> None:
    proxy = flaky(lambda call, size: 0)
    batch_write([])
    assert proxy.sizes == []


def test_batch_write_of_a_new_entity_over_an_existing_item_raises_already_exists_and_writes_nothing(
    moto_table: Settings, flaky: Any
) -> None:
    # The review's lost update: a fresh entity (no version) over a stored version 3 would have been
    # written as version 1, and a stale copy read at version 1 could then win a conditioned save.
    product_id = new_id()
    seed_product(moto_table, product_id, version=3)
    proxy = flaky(lambda call, size: 0)
    before = stored(moto_table)
    fresh_over_existing, unrelated = product(product_id), product()

    with pytest.raises(AlreadyExists, match="overwrite=True"):
        batch_write([unrelated, fresh_over_existing])

    assert proxy.sizes == []  # no BatchWriteItem at all
    assert stored(moto_table) == before
    assert fresh_over_existing.version is None and unrelated.version is None
    assert unrelated.updated_at is None and unrelated.created_at is None  # local state as before


def test_batch_write_with_overwrite_stores_the_stored_version_plus_one_never_resetting_it(
    moto_table: Settings,
) -> None:
    product_id = new_id()
    seed_product(moto_table, product_id, version=3)
    stale = Product.get(*_keys(product_id))
    replacement = product(product_id)  # no version

    batch_write([replacement], overwrite=True)

    item = stored(moto_table)[_keys(product_id)]
    assert item["Version"] == {"N": "4"} and item["Name"] == {"S": "lamp"}
    assert replacement.version == 4
    stale.name = "stale"
    with pytest.raises(ConflictError):
        stale.save()  # the version moved on: a copy read before cannot silently win


def test_batch_write_keeps_the_stored_created_at_when_replacing(moto_table: Settings) -> None:
    product_id = new_id()
    client = new_client(moto_table)
    item = {**_raw_product(product_id, 2, "seeded"), "CreatedAt": {"S": "2020-01-02T03:04:05+00:00"}}
    client.put_item(TableName=moto_table.table_name, Item=item)

    batch_write([product(product_id)], overwrite=True)

    assert stored(moto_table)[_keys(product_id)]["CreatedAt"] == {"S": "2020-01-02T03:04:05+00:00"}


def test_batch_write_of_a_loaded_entity_stores_the_next_version(moto_table: Settings, flaky: Any) -> None:
    product_id = new_id()
    seed_product(moto_table, product_id, version=3)
    proxy = flaky(lambda call, size: 0)
    loaded = Product.get(*_keys(product_id))
    loaded.name = "renamed"

    batch_write([loaded])

    item = stored(moto_table)[_keys(product_id)]
    assert item["Version"] == {"N": "4"} and item["Name"] == {"S": "renamed"}
    assert loaded.version == 4
    (read,) = proxy.version_reads  # the stored versions, strongly consistent, keys and Version only
    assert read["ConsistentRead"] is True
    projected = set(read["ExpressionAttributeNames"].values())
    assert projected == {"PK", "SK", "Version", "CreatedAt", "UpdatedAt", "WriteToken"}


def test_batch_write_of_a_stale_entity_raises_conflict_error_and_writes_nothing(moto_table: Settings) -> None:
    product_id = new_id()
    seed_product(moto_table, product_id, version=3)
    mine, theirs = Product.get(*_keys(product_id)), Product.get(*_keys(product_id))
    theirs.name = "theirs"
    theirs.save()  # version 4
    mine.name = "mine"
    before = stored(moto_table)

    with pytest.raises(ConflictError, match="overwrite=True"):
        batch_write([product(), mine])

    assert stored(moto_table) == before
    assert mine.version == 3

    batch_write([mine], overwrite=True)  # replacing on purpose: after the stored version, not mine

    item = stored(moto_table)[_keys(product_id)]
    assert item["Version"] == {"N": "5"} and item["Name"] == {"S": "mine"}
    assert mine.version == 5


def test_batch_write_of_an_entity_whose_item_was_deleted_raises_conflict_error(moto_table: Settings) -> None:
    product_id = new_id()
    seed_product(moto_table, product_id, version=3)
    loaded = Product.get(*_keys(product_id))
    new_client(moto_table).delete_item(
        TableName=moto_table.table_name, Key={"PK": {"S": loaded.pk}, "SK": {"S": loaded.sk}}
    )

    with pytest.raises(ConflictError):
        batch_write([loaded])

    assert stored(moto_table) == {}
    batch_write([loaded], overwrite=True)
    assert stored(moto_table)[_keys(product_id)]["Version"] == {"N": "4"}  # above any copy's version


_AT = datetime(2024, 3, 10, 10, 15, tzinfo=UTC)
# Every entity whose declared rules a blind put cannot keep, and the way to write it named instead.
REFUSED: dict[str, tuple[Callable[[], Any], str]] = {
    "User": (lambda: User(user_id=new_id(), email="a@example.com", name="Ada"), r"save\(\)"),
    "EmailClaim": (lambda: EmailClaim(email="a@example.com", user_id=new_id()), "create_user"),
    "Account": (lambda: Account(account_id=new_id(), balance=Decimal("1000000")), "transfer_funds"),
    "Transfer": (
        lambda: Transfer(transfer_id=new_id(), from_account="a", to_account="b", amount=Decimal(1)),
        "transfer_funds",
    ),
    "Order": (lambda: Order(user_id=new_id(), order_id=new_id(), amount=Decimal(5), status="PENDING"),
              r"save\(\)"),
    "Metric": (lambda: Metric(device_id="d1", metric_name="t", timestamp=_AT, value=Decimal(1)), "aggregate"),
    "MetricAggregate": (
        lambda: MetricAggregate(device_id="d1", metric_name="t", hour="2024-03-10T10", sample_count=999),
        "record_metric",
    ),
}


@pytest.mark.parametrize("kind", list(REFUSED))
def test_batch_write_refuses_entities_whose_writes_keep_domain_rules_and_sends_nothing(
    moto_table: Settings, flaky: Any, kind: str
) -> None:
    make, instead = REFUSED[kind]
    proxy = flaky(lambda call, size: 0)
    with pytest.raises(InvalidInput, match=instead):
        batch_write([product(), make()])
    assert proxy.sizes == [] and proxy.version_reads == []
    assert stored(moto_table) == {}


def test_batch_write_of_products_invalidates_their_cached_copies(moto_table: Settings) -> None:
    cache.configure(ttl_seconds=300)
    first, second = new_id(), new_id()
    seed_product(moto_table, first, second, name="cached")
    assert get_product(first).name == get_product(second).name == "cached"  # now in the cache

    renamed = Product.get(*_keys(first))
    renamed.name = "renamed"
    batch_write([renamed, product(second)], overwrite=True)

    assert get_product(first).name == "renamed"
    assert get_product(second).name == "lamp"


@pytest.mark.parametrize("bad", [{"PK": {"S": "x"}}, "not an entity", None])
def test_batch_write_refuses_what_is_not_an_entity(moto_table: Settings, bad: Any) -> None:
    with pytest.raises(InvalidInput):
        batch_write([product(), bad])
    assert stored(moto_table) == {}


def test_batch_write_refuses_a_string_for_the_entities(moto_table: Settings) -> None:
    with pytest.raises(InvalidInput):
        batch_write("abc")  # type: ignore[arg-type]


def test_batch_write_refuses_two_entities_with_one_key_and_writes_nothing(moto_table: Settings) -> None:
    product_id = new_id()
    with pytest.raises(InvalidInput, match="same key"):
        batch_write([product(product_id), product(), product(product_id)])
    assert stored(moto_table) == {}


def test_batch_write_refuses_an_item_over_400_kb_and_writes_nothing(moto_table: Settings) -> None:
    big = product(attributes={"blob": "x" * MAX_ITEM_BYTES})
    small = product()
    with pytest.raises(InvalidInput, match="item limit"):
        batch_write([small, big])
    assert stored(moto_table) == {}
    assert small.updated_at is None and small.created_at is None  # local state as before the call


def test_batch_write_refuses_an_entity_missing_a_required_attribute(moto_table: Settings) -> None:
    incomplete = Product(product_id=new_id(), name="no price")
    with pytest.raises(InvalidInput):
        batch_write([product(), incomplete])
    assert stored(moto_table) == {}


def test_batch_write_refuses_an_invalid_key_part(moto_table: Settings) -> None:
    with pytest.raises(InvalidKey):
        batch_write([product(), Product(product_id="a#b", name="x", price=Decimal(1))])
    assert stored(moto_table) == {}


def test_batch_write_retries_unprocessed_items_with_exponential_backoff_and_full_jitter(
    moto_table: Settings, flaky: Any, waits: list[tuple[float, float]]
) -> None:
    proxy = flaky(lambda call, size: size // 2 if call <= 3 else 0)
    slept: list[float] = []
    entities = [product() for _ in range(20)]

    batch_write(entities, retry=RetryPolicy(base_delay=0.1, max_delay=0.3, sleep=slept.append))

    assert proxy.sizes == [20, 10, 5, 2]
    assert set(stored(moto_table)) == {(e.pk, e.sk) for e in entities}
    assert all(e.version == 1 for e in entities)
    assert waits == [(0, 0.1), (0, 0.2), (0, 0.3)]  # lower bound 0: full jitter; window doubles, capped
    assert slept == [0.1, 0.2, 0.3]


def test_batch_write_raises_retries_exhausted_with_the_entities_not_written(
    moto_table: Settings, flaky: Any
) -> None:
    # The first request writes 20 of 25; nothing more ever gets through.
    proxy = flaky(lambda call, size: 5 if call == 1 else size)
    entities = [product() for _ in range(30)]

    with pytest.raises(RetriesExhausted) as raised:
        batch_write(entities, retry=no_sleep(max_attempts=4))

    assert proxy.sizes == [25, 5, 5, 5]
    assert raised.value.unprocessed == entities[20:]
    assert set(stored(moto_table)) == {(e.pk, e.sk) for e in entities[:20]}
    assert [e.version for e in entities] == [1] * 20 + [None] * 10


def test_batch_write_keeps_the_client_error_as_the_cause(
    monkeypatch: pytest.MonkeyPatch, moto_table: Settings
) -> None:
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    with pytest.raises(DataLayerError) as raised:
        batch_write([product()])
    assert raised.value.__cause__ is not None


def test_batch_write_gives_up_when_the_stored_versions_stay_unread_and_writes_nothing(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    class VersionsNeverRead:
        """Every BatchGetItem comes back fully unprocessed; writes are counted."""

        def __init__(self, real: Any) -> None:
            self.real, self.writes = real, 0

        def batch_get_item(self, RequestItems: dict[str, Item]) -> Item:
            ((table, _),) = RequestItems.items()
            return {"Responses": {table: []}, "UnprocessedKeys": RequestItems}

        def batch_write_item(self, **kwargs: Any) -> Item:
            self.writes += 1
            return self.real.batch_write_item(**kwargs)  # type: ignore[no-any-return]

    proxy = VersionsNeverRead(batch._client())
    monkeypatch.setattr(batch, "_client", lambda: proxy)
    entities = [product() for _ in range(3)]

    with pytest.raises(RetriesExhausted) as raised:
        batch_write(entities, retry=no_sleep(max_attempts=2))

    assert raised.value.unprocessed == entities
    assert proxy.writes == 0
    assert stored(moto_table) == {}
    assert all(e.version is None and e.updated_at is None for e in entities)


def test_item_size_counts_names_values_and_container_overhead() -> None:
    assert item_size({"PK": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"N": "12345"}}) == 1 + 4  # 5 significant digits: 3 bytes + 1
    assert item_size({"m": {"M": {"k": {"BOOL": True}}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size({"l": {"L": [{"NULL": True}, {"S": "é"}]}}) == 1 + 3 + (1 + 1) + (1 + 2)


# --- batch_get ------------------------------------------------------------------------------------


def test_batch_get_reads_100_a_request_in_input_order_skipping_missing_and_repeated_keys(
    moto_table: Settings, flaky: Any
) -> None:
    ids = [new_id() for _ in range(230)]
    seed_product(moto_table, *ids[:220])
    wanted = list(reversed(ids)) + ids[:5]  # the 10 missing ones come first; 5 repeats at the end
    proxy = flaky(lambda call, size: 0)

    found = batch_get(Product, [_keys(product_id) for product_id in wanted])

    assert proxy.sizes == [100, 100, 30]
    assert [p.product_id for p in found] == list(reversed(ids[:220]))
    assert all(isinstance(p, Product) and p.version == 3 for p in found)


def test_batch_get_composes_keys_from_key_fields(moto_table: Settings) -> None:
    product_id = new_id()
    seed_product(moto_table, product_id)
    assert [p.product_id for p in batch_get(Product, [{"product_id": product_id}])] == [product_id]


def test_batch_get_refuses_an_invalid_key_before_sending(moto_table: Settings, flaky: Any) -> None:
    proxy = flaky(lambda call, size: 0)
    with pytest.raises(InvalidKey):
        batch_get(Product, [{"product_id": "ok"}, {"product_id": "a#b"}])
    with pytest.raises(InvalidKey):
        batch_get(Product, [("PK", "")])
    with pytest.raises(InvalidInput):
        batch_get(Product, ["just-a-string"])  # type: ignore[list-item]
    assert proxy.sizes == []


@pytest.mark.parametrize(
    "key",
    [
        ("USER#u1", "PROFILE"),  # another entity's key
        ("PRODUCT#p1", "METADATA#p2"),  # PK and SK disagree on product_id
        ("PRODUCT#p1#x", "METADATA#p1#x"),  # a part holding the delimiter
        ("PRODUCT#" + "p" * 3000, "METADATA#p"),  # too long for DynamoDB
        ("PRODUCT#p1", 7),
        {"product_id": "p1", "user_id": "u1"},  # a field Product's keys do not have
        {"user_id": "u1"},
    ],
    ids=repr,
)
def test_batch_get_refuses_keys_that_do_not_fit_the_models_templates_before_sending(
    moto_table: Settings, flaky: Any, key: Any
) -> None:
    proxy = flaky(lambda call, size: 0)
    with pytest.raises(InvalidInput):
        batch_get(Product, [_keys("ok"), key])
    assert proxy.sizes == []


def test_batch_get_accepts_a_raw_pair_that_parses_with_the_templates(moto_table: Settings) -> None:
    product_id = new_id()
    seed_product(moto_table, product_id)
    assert [p.product_id for p in batch_get(Product, [_keys(product_id)])] == [product_id]


def test_batch_get_reads_a_sharded_metric_by_raw_key_or_key_fields(moto_table: Settings) -> None:
    at = datetime(2024, 3, 10, 10, 15, tzinfo=UTC)
    point = Metric(device_id="d1", metric_name="temp", timestamp=at, value=Decimal(1), shard=3)
    new_client(moto_table).put_item(TableName=moto_table.table_name, Item=point.serialize())
    fields = {"device_id": "d1", "day": "2024-03-10", "shard": 3, "timestamp": at, "metric_name": "temp",
              "series": "-"}

    by_pair, by_fields = batch_get(Metric, [(point.pk, point.sk)]), batch_get(Metric, [fields])

    assert [m.pk for m in by_pair] == [m.pk for m in by_fields] == ["DEVICE#d1#2024-03-10#3"]


def test_batch_get_leaves_out_an_item_of_another_entity_type(moto_table: Settings) -> None:
    product_id = new_id()
    pk, sk = _keys(product_id)
    new_client(moto_table).put_item(  # a stray item at a product's key, of another type
        TableName=moto_table.table_name,
        Item={"PK": {"S": pk}, "SK": {"S": sk}, "EntityType": {"S": "USER"}},
    )
    assert batch_get(Product, [(pk, sk)]) == []


def test_batch_get_refuses_a_model_that_is_not_an_entity(moto_table: Settings) -> None:
    with pytest.raises(InvalidInput):
        batch_get(dict, [("a", "b")])  # type: ignore[type-var]


def test_batch_get_retries_unprocessed_keys(
    moto_table: Settings, flaky: Any, waits: list[tuple[float, float]]
) -> None:
    ids = [new_id() for _ in range(10)]
    seed_product(moto_table, *ids)
    proxy = flaky(lambda call, size: size - 1 if call <= 2 else 0)

    found = batch_get(Product, [_keys(i) for i in ids], retry=no_sleep())

    assert proxy.sizes == [10, 9, 8]
    assert [p.product_id for p in found] == ids
    assert waits == [(0, 0.1), (0, 0.2)]


def test_batch_get_raises_retries_exhausted_with_the_keys_not_read(moto_table: Settings, flaky: Any) -> None:
    ids = [new_id() for _ in range(120)]
    proxy = flaky(lambda call, size: size)

    with pytest.raises(RetriesExhausted) as raised:
        batch_get(Product, [_keys(i) for i in ids], retry=no_sleep(max_attempts=3))

    assert proxy.sizes == [100, 100, 100]
    assert raised.value.unprocessed == [_keys(i) for i in ids]


def _keys(product_id: str) -> tuple[str, str]:
    return (
        Product.key_template("pk").compose(product_id=product_id),
        Product.key_template("sk").compose(product_id=product_id),
    )


def test_an_item_the_stored_version_pushes_over_the_limit_is_refused_and_nothing_written(
    moto_table: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    product_id = new_id()
    seed_product(moto_table, product_id, version=12345)  # the next version, 12346, takes 2 bytes more than 1
    prepared = plan_batch_put(product(product_id)).item
    monkeypatch.setattr(item_size_module, "MAX_ITEM_BYTES", item_size(prepared))  # exactly at the limit
    with pytest.raises(InvalidInput, match="item limit"):
        batch_write([product(product_id)], overwrite=True)
    key = ("PRODUCT#" + product_id, "METADATA#" + product_id)
    assert stored(moto_table)[key]["Version"] == {"N": "12345"}
    monkeypatch.setattr(item_size_module, "MAX_ITEM_BYTES", item_size(prepared) + 2)
    batch_write([product(product_id)], overwrite=True)
    assert stored(moto_table)[key]["Version"] == {"N": "12346"}
