"""What ``models/`` declares about the table, as a ``TableSpec``: read only by ``check`` and
``new --autogenerate`` (the one place the runner imports ``models``, and only when called).

Keys, attribute types, indexes and projections come from PynamoDB's own schema of the base model
and every entity registered under it; the TTL attribute is the model's ``TTLAttribute``; the
stream and billing mode are ``TableModel.Meta.stream_view_type`` and ``.billing_mode`` (the
names PynamoDB itself uses).
"""

from __future__ import annotations

from typing import Any

from migrations.calls import Key
from migrations.schema import IndexSpec, TableSpec, ordered


def _keys(key_schema: list[Any], definitions: list[Any]) -> tuple[Key, ...]:
    types = {d["AttributeName"]: d["AttributeType"] for d in definitions}
    return ordered([Key(k["AttributeName"], types[k["AttributeName"]], k["KeyType"]) for k in key_schema])


def declared_spec() -> TableSpec:
    """The table as ``models/`` declares it."""
    import models  # noqa: F401  (registers every entity, and so every index, under TableModel)
    from models.table import TableModel

    schema: Any = TableModel._get_schema()
    definitions = schema["attribute_definitions"]
    indexes = tuple(
        sorted(
            (
                IndexSpec(
                    name=index["index_name"],
                    keys=_keys(index["key_schema"], definitions),
                    projection=index["projection"]["ProjectionType"],
                    non_key_attributes=tuple(sorted(index["projection"].get("NonKeyAttributes", []))),
                )
                for index in schema["global_secondary_indexes"]
            ),
            key=lambda i: i.name,
        )
    )
    ttl = TableModel._ttl_attribute()  # type: ignore[no-untyped-call]
    return TableSpec(
        keys=_keys(schema["key_schema"], definitions),
        indexes=indexes,
        ttl_attribute=ttl.attr_name if ttl is not None else None,
        stream_view_type=getattr(TableModel.Meta, "stream_view_type", None),
        billing_mode=getattr(TableModel.Meta, "billing_mode", None) or "PROVISIONED",
        local_indexes=tuple(sorted(i["index_name"] for i in schema["local_secondary_indexes"])),
    )
