"""PynamoDB's private names the layer uses: the whole list, each checked for what the layer relies on.

PynamoDB is pinned (``pynamodb==6.1.0`` in pyproject.toml). An upgrade that renames, removes or
changes one of these fails here, by name, before it can change what the layer does. The list:

1. ``Model._get_connection()`` and ``Model._connection``: the cached connection, overridden in
   ``models.table`` (rebuilt when the settings change);
2. ``Connection._client``: set to the layer's client (``core.client.model_client``); PynamoDB's
   ``Connection.client`` keeps a client whose ``_request_signer`` is ``None`` and calls its
   ``_make_api_call(operation, params)``;
3. ``Model._instantiate(attribute_values)``: overridden in ``models.reading`` (entity building);
4. ``Model._get_discriminator_class``, ``_get_discriminator_attribute`` and a discriminated
   class's ``_discriminator``: the stored ``EntityType`` to class (``models.reading``,
   ``repositories.streams``, ``repositories.batch``);
5. ``Model._get_hash_range_key_serialized_values()``: an entity's key (``models.planning``, ``sending``);
6. ``Model._get_schema()`` and ``Model._ttl_attribute()``: the declared table (``migrations.declared``);
7. ``Model.__init__(..., _user_instantiated=...)``: entity construction (``models.table``);
8. ``pynamodb.expressions.operand._Increment``, ``_Decrement``, ``_IfNotExists``, ``_ListAppend``
   and their ``values``: update actions checked against the rules (``models.actions``).
"""

from __future__ import annotations

import inspect
from typing import Any

import pynamodb
from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection.base import Connection
from pynamodb.expressions.operand import Path, Value, _Decrement, _IfNotExists, _Increment, _ListAppend
from pynamodb.models import Model

from models import Order, TableModel, User
from models.table import PK, SK


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_pinned_version_is_the_one_these_checks_were_written_for() -> None:
    assert pynamodb.__version__ == "6.1.0"


def test_the_connection_keeps_a_client_without_a_botocore_signer_and_calls_its_make_api_call() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    class Client:
        _request_signer = None

        def _make_api_call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
            calls.append((operation, params))
            return {"Item": {PK: {"S": "P"}, SK: {"S": "S"}}}

    connection = Connection(region="us-east-1")
    client = Client()
    connection._client = client  # type: ignore[assignment]
    assert connection.client is client
    answer = connection.dispatch("GetItem", {"TableName": "some-table", "Key": {PK: {"S": "P"}}})
    assert answer["Item"][PK] == {"S": "P"}
    assert calls and calls[0][0] == "GetItem" and calls[0][1]["TableName"] == "some-table"


def test_models_get_their_connection_from_a_class_cache() -> None:
    TableModel._connection = None
    connection = TableModel._get_connection()
    assert TableModel._connection is not None
    assert connection.connection._client is not None  # the layer's client, set by models.table
    assert _parameters(TableModel._get_connection) == []


def test_instantiate_builds_the_stored_class_from_attribute_values() -> None:
    assert _parameters(TableModel._instantiate) == ["attribute_values"]
    user = User(user_id="u1", email="ada@example.com", name="Ada")
    user.fill_keys()
    built = TableModel._instantiate(user.serialize())
    assert type(built) is User and built.name == "Ada"


def test_the_discriminator_names_the_stored_class() -> None:
    attribute = TableModel._get_discriminator_attribute()
    assert attribute is not None and attribute.attr_name == "EntityType"
    assert TableModel._get_discriminator_class({"EntityType": {"S": "ORDER"}}) is Order
    assert TableModel._get_discriminator_class({}) is None
    assert Order._discriminator == "entity_type"  # type: ignore[attr-defined]


def test_an_entity_gives_its_serialized_key() -> None:
    user = User(user_id="u1", email="ada@example.com", name="Ada")
    user.fill_keys()
    assert user._get_hash_range_key_serialized_values() == (user.pk, user.sk)


def test_the_schema_and_the_ttl_attribute_describe_the_declared_table() -> None:
    schema = TableModel._get_schema()
    names = {definition["AttributeName"] for definition in schema["attribute_definitions"]}
    assert {PK, SK} <= names
    assert {"key_schema", "global_secondary_indexes"} <= set(schema)
    ttl = TableModel._ttl_attribute()  # type: ignore[no-untyped-call]
    assert ttl is not None and ttl.attr_name == "ExpiresAt"


def test_entities_are_built_with_user_instantiated() -> None:
    assert "_user_instantiated" in _parameters(TableModel.__init__)
    stored = User(_user_instantiated=False, name="Ada")
    assert stored.name == "Ada"


def test_the_update_operands_keep_their_sides_in_values() -> None:
    class Probe(Model):
        class Meta:
            table_name = "probe"

        key = UnicodeAttribute(hash_key=True)
        count = NumberAttribute()
        tags = ListAttribute(of=UnicodeAttribute)

    for operand, kind in ((Probe.count + 1, _Increment), (Probe.count - 1, _Decrement)):
        assert isinstance(operand, kind)
        left, right = operand.values
        assert isinstance(left, Path) and left.path == ["count"] and isinstance(right, Value)
    fallback = Probe.count | 0
    assert isinstance(fallback, _IfNotExists)
    source, default = fallback.values
    assert isinstance(source, Path) and source.path == ["count"] and isinstance(default, Value)
    appended = Probe.tags.append(["a"])
    assert isinstance(appended, _ListAppend)
    first, second = appended.values
    assert isinstance(first, Path) and first.path == ["tags"] and isinstance(second, Value)
