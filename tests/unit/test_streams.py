"""Stream records built from real serialized entities decode into typed (old, new) pairs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.errors import InvalidInput, UnreadableItem
from models import ENTITIES, Metric, Order, OrderStatus, Product, TableModel
from repositories.streams import decode_stream_record, is_ttl_expiry

Record = dict[str, Any]
UNDECLARED_ENTITY_TYPE = "NOT_DECLARED_BY_ANY_MODEL"


def record(event: str, old: TableModel | None = None, new: TableModel | None = None, **extra: Any) -> Record:
    """A record shaped as Lambda delivers it (JSON), images serialized by the models themselves."""
    change: Record = {"StreamViewType": "NEW_AND_OLD_IMAGES", "SequenceNumber": "1"}
    for name, entity in (("OldImage", old), ("NewImage", new)):
        if entity is not None:
            change[name] = entity.serialize()
            change["Keys"] = {"PK": change[name]["PK"], "SK": change[name]["SK"]}
    built = {
        "eventID": uuid.uuid4().hex,
        "eventName": event,
        "eventSource": "aws:dynamodb",
        "dynamodb": change,
    }
    return json.loads(json.dumps({**built, **extra}))  # type: ignore[no-any-return]


def order(status: OrderStatus = OrderStatus.PENDING) -> Order:
    return Order(user_id=uuid.uuid4().hex, order_id="01HZX3", amount=Decimal("25.10"), status=status)


def test_an_insert_decodes_to_none_and_the_new_entity() -> None:
    placed = order()

    old, new = decode_stream_record(record("INSERT", new=placed))

    assert old is None
    assert isinstance(new, Order)
    assert (new.user_id, new.amount, new.status, new.pk, new.sk) == (
        placed.user_id, Decimal("25.10"), OrderStatus.PENDING, placed.pk, placed.sk,
    )  # fmt: skip


def test_a_modify_decodes_to_the_old_and_the_new_entity() -> None:
    before = Product(
        product_id="p1", name="Lamp", price=Decimal("10"), attributes={"color": "red"}, version=1
    )
    after = Product(
        product_id="p1", name="Lamp", price=Decimal("12.5"), attributes={"color": "blue"}, version=2
    )

    old, new = decode_stream_record(record("MODIFY", old=before, new=after))

    assert isinstance(old, Product) and isinstance(new, Product)
    assert (old.price, old.version, old.attributes["color"]) == (Decimal("10"), 1, "red")
    assert (new.price, new.version, new.attributes["color"]) == (Decimal("12.5"), 2, "blue")


def test_a_remove_decodes_to_the_old_entity_and_none() -> None:
    reading = Metric(device_id="d1", metric_name="temp", timestamp=datetime(2024, 5, 1, 12, tzinfo=UTC),
                     value=Decimal("21.375"))  # fmt: skip

    old, new = decode_stream_record(record("REMOVE", old=reading))

    assert new is None
    assert isinstance(old, Metric)
    assert old.value == Decimal("21.375")  # exact, although Lambda's JSON carried it
    assert old.timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_an_unknown_entity_type_raises_by_default_and_is_none_when_skipped() -> None:
    discriminator: Any = TableModel._get_discriminator_attribute()
    assert UNDECLARED_ENTITY_TYPE not in {discriminator.get_discriminator(m) for m in ENTITIES}
    foreign = record("INSERT", new=order())
    foreign["dynamodb"]["NewImage"]["EntityType"] = {"S": UNDECLARED_ENTITY_TYPE}

    with pytest.raises(InvalidInput, match=UNDECLARED_ENTITY_TYPE):
        decode_stream_record(foreign)
    assert decode_stream_record(foreign, on_unknown="skip") == (None, None)


def test_an_image_without_entity_type_raises_by_default_and_is_none_when_skipped() -> None:
    untyped = record("MODIFY", old=order(), new=order(OrderStatus.PAID))
    del untyped["dynamodb"]["OldImage"]["EntityType"]

    with pytest.raises(InvalidInput):
        decode_stream_record(untyped)
    old, new = decode_stream_record(untyped, on_unknown="skip")
    assert old is None and isinstance(new, Order) and new.status is OrderStatus.PAID


def test_a_modify_without_its_old_image_says_the_stream_must_carry_both_images() -> None:
    keys_only = record("MODIFY", old=order(), new=order())
    del keys_only["dynamodb"]["OldImage"]
    with pytest.raises(InvalidInput, match="NEW_AND_OLD_IMAGES"):
        decode_stream_record(keys_only)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"eventName": "INSERT"},
        {"eventName": "UPSERT", "dynamodb": {}},
        {"eventName": "INSERT", "dynamodb": []},
    ],
)
def test_what_is_not_a_stream_record_is_refused(bad: Record) -> None:
    with pytest.raises(InvalidInput):
        decode_stream_record(bad)


def test_an_image_that_does_not_fit_its_model_is_an_unreadable_item_naming_its_keys() -> None:
    broken = record("INSERT", new=order())
    broken["dynamodb"]["NewImage"]["Status"] = {"S": "LOST"}
    image = broken["dynamodb"]["NewImage"]
    with pytest.raises(UnreadableItem) as caught:
        decode_stream_record(broken)
    assert caught.value.keys == (image["PK"]["S"], image["SK"]["S"])
    assert (caught.value.entity, caught.value.attribute) == ("Order", "Status")


def test_is_ttl_expiry_tells_a_ttl_deletion_from_an_application_delete() -> None:
    ttl = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    reading = Metric(
        device_id="d1", metric_name="t", timestamp=datetime(2024, 5, 1, tzinfo=UTC), value=Decimal(1)
    )
    assert is_ttl_expiry(record("REMOVE", old=reading, userIdentity=ttl))
    assert not is_ttl_expiry(record("REMOVE", old=reading))
    assert not is_ttl_expiry(record("INSERT", new=reading, userIdentity=ttl))
