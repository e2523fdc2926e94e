"""An index is one declaration on its entity: what it derives, and what it refuses when the class is made."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pynamodb.attributes import UnicodeAttribute

from core.errors import InvalidInput, InvalidKey
from models import Order, User
from models.indexes import GlobalIndex, IndexKey
from models.keys import EntityKeys
from models.queries import Query
from models.table import TableModel
from repositories import query
from tests.scratch import scratch_entities


def _name() -> str:
    return f"TestOnly{uuid.uuid4().hex[:8]}"


@pytest.fixture
def made() -> Iterator[list[type[TableModel]]]:
    """Entities a test declares; unregistered afterwards so the real models are as they were."""
    with scratch_entities([]) as entities:
        yield entities


def test_an_index_derives_its_key_attribute_template_and_pynamodb_index() -> None:
    attribute = Order.get_attributes()["gsi1pk"]
    assert (attribute.attr_name, attribute.null) == ("GSI1PK", True)
    assert Order.key_template("gsi1pk").pattern == "STATUS#{status}"
    assert "gsi1pk" in Order.managed_attributes()
    index = Order.in_status.source()
    assert index.Meta.index_name == "GSI1"
    keys = {a.attr_name: (a.is_hash_key, a.is_range_key) for a in index.Meta.attributes.values()}
    assert keys == {"GSI1PK": (True, False), "SK": (False, True)}
    assert "gsi1pk" not in User.get_attributes()  # only the entity that declares the index has its key


def test_an_index_keyed_on_an_attribute_adds_no_attribute() -> None:
    assert User.with_email.partition == "email" and User.with_email.sort is None
    assert User.with_email.index_name() == "Email-Index"
    assert User.get_attributes()["email"].attr_name == "Email"


def test_two_entities_must_agree_on_a_shared_physical_index(made: list[type[TableModel]]) -> None:
    class Shipment(TableModel, discriminator=_name()):
        keys = EntityKeys(pk="SHIP#{ship_id}", sk="SHIP")
        ship_id = UnicodeAttribute(attr_name="ShipId")
        status = UnicodeAttribute(attr_name="Status")
        by_status = GlobalIndex("GSI1", pk=IndexKey("GSI1PK", "SHIPSTATUS#{status}"), sk="sk")
        in_status = Query(by_status)

    made.append(Shipment)  # the same key attributes and projection: GSI1 overloaded
    assert Shipment.in_status.page  # a typed method of its own

    with pytest.raises(TypeError, match="GSI1 is declared by"):
        class Parcel(TableModel, discriminator=_name()):
            keys = EntityKeys(pk="PARCEL#{parcel_id}", sk="PARCEL")
            parcel_id = UnicodeAttribute(attr_name="ParcelId")
            status = UnicodeAttribute(attr_name="Status")
            by_status = GlobalIndex("GSI1", pk=IndexKey("GSI1PK", "P#{status}"), sk="sk",
                                    projection="KEYS_ONLY")


def test_an_index_that_is_not_sparse_refuses_a_part_that_may_be_absent() -> None:
    with pytest.raises(TypeError, match="declare it sparse=True"):
        class Draft(TableModel, discriminator=_name()):
            keys = EntityKeys(pk="DRAFT#{draft_id}", sk="DRAFT")
            draft_id = UnicodeAttribute(attr_name="DraftId")
            due = UnicodeAttribute(attr_name="Due", null=True)
            by_due = GlobalIndex(_name(), pk=IndexKey("DuePK", "DUE#{due}"))


def test_a_query_of_an_index_that_does_not_project_everything_must_be_partial(
    made: list[type[TableModel]],
) -> None:
    for projection, include, refusal in (("INCLUDE", ("topic",), "partial=True"),
                                          ("KEYS_ONLY", (), "cannot be told apart")):
        with pytest.raises(TypeError, match=refusal):
            class Note(TableModel, discriminator=_name()):
                keys = EntityKeys(pk="NOTE#{note_id}", sk="NOTE")
                note_id = UnicodeAttribute(attr_name="NoteId")
                topic = UnicodeAttribute(attr_name="Topic")
                by_topic = GlobalIndex(_name(), pk=IndexKey("TopicPK", "TOPIC#{topic}"),
                                       projection=projection, include=include)  # type: ignore[arg-type]
                on_topic = Query(by_topic, partial=projection == "KEYS_ONLY")

    class Memo(TableModel, discriminator=_name()):
        keys = EntityKeys(pk="MEMO#{memo_id}", sk="MEMO")
        memo_id = UnicodeAttribute(attr_name="MemoId")
        topic = UnicodeAttribute(attr_name="Topic")
        body = UnicodeAttribute(attr_name="Body")
        title = UnicodeAttribute(attr_name="Title")
        by_topic = GlobalIndex(_name(), pk=IndexKey("TopicPK", "TOPIC#{topic}"), projection="INCLUDE",
                               include=("title",))
        on_topic = Query(by_topic, partial=True)

    made.append(Memo)
    with pytest.raises(InvalidInput, match="does not project every attribute"):
        Memo.on_topic.page(topic="t")
    with pytest.raises(InvalidInput, match="does not project 'body'"):
        Memo.on_topic.page(topic="t", attributes=["title", "body"])
    assert Memo.on_topic.source().Meta.projection.non_key_attributes == ["EntityType", "Title"]
    names, stored = query.projection(Memo.on_topic, ["title"])
    assert names == {"pk", "sk", "entity_type", "topicpk", "title"}  # memo_id is not projected
    assert stored == sorted(["PK", "SK", "EntityType", "TopicPK", "Title"])


def test_an_index_declaration_is_checked() -> None:
    for bad in (dict(index_name="ab"), dict(index_name="X-Index", projection="SOME"),
                dict(index_name="X-Index", projection="INCLUDE"), dict(index_name="X-Index", include=("a",))):
        with pytest.raises(TypeError):
            GlobalIndex(pk="email", **bad)  # type: ignore[arg-type]


def test_a_query_keyed_on_an_attribute_checks_its_part_by_the_attribute() -> None:
    with pytest.raises(InvalidInput):
        User.with_email.first(email="not an email")
    with pytest.raises(InvalidKey, match="keyed on 'email'"):
        User.with_email.first(email="ada@example.com", name="Ada")
    with pytest.raises(InvalidKey, match="missing"):
        User.with_email.first()
    with pytest.raises(InvalidInput, match="no sort key"):
        User.with_email.page(email="ada@example.com", prefix={"x": 1})
