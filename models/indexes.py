"""Global secondary indexes, declared once on the entity that fills them in.

``by_status = GlobalIndex("GSI1", pk=IndexKey("GSI1PK", "STATUS#{status}"), sk="sk")`` says
everything about one index of one entity: its physical name, its partition key (a key attribute
derived from a template, or an attribute the entity already has, such as ``"email"``), its sort key
(``"sk"``, the table's, or another derived key; none by default), its projection and whether it is
sparse. ``TableModel`` derives the rest when the class is created:

- the key attribute (``gsi1pk``, stored as ``GSI1PK``), kept by the write path like every key;
- the key template, composed before every write and moved by ``update()`` with its parts;
- the PynamoDB index the migrations read the table's schema from (``migrations.declared``).

Several entities may declare the same physical index (an overloaded ``GSI1``); they must agree on
its key attributes and projection, else the second class fails when it is created.

``sparse=False`` (the default) promises that every entity is in the index: each part of a derived
key, or the attribute used as the key, must then be a required attribute. ``sparse=True`` lets an
entity with a part unset leave the index (its key attribute is removed from the item).

``projection``: ``"ALL"``, ``"KEYS_ONLY"`` (the table's and the index's keys) or ``"INCLUDE"``
with ``include=`` naming the entity's attributes it also carries (``EntityType`` is always added,
so a read can tell the entities apart). A declared query of an index that does not project every
attribute is declared ``partial=True`` and reads partial entities (see ``models.queries``); a
``KEYS_ONLY`` index cannot be queried (its items do not say which entity they are).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection

if TYPE_CHECKING:
    from models.table import TableModel

ProjectionType = Literal["ALL", "KEYS_ONLY", "INCLUDE"]
PROJECTIONS: tuple[ProjectionType, ...] = ("ALL", "KEYS_ONLY", "INCLUDE")


@dataclass(frozen=True)
class IndexKey:
    """A key attribute an index adds to the item: its stored name and the template it is made by
    (``IndexKey("GSI1PK", "STATUS#{status}")``). The attribute's Python name is the stored name in
    lower case (``gsi1pk``)."""

    stored_name: str
    template: str

    @property
    def name(self) -> str:
        """The Python attribute that holds the key on the entity."""
        return self.stored_name.lower()


KeySource = IndexKey | str  # a derived key, or the name of an attribute the entity declares


@dataclass(frozen=True)
class IndexSchema:
    """What every entity declaring one physical index must agree on."""

    hash_key: str
    range_key: str | None
    projection: ProjectionType
    include: tuple[str, ...]


# Physical index name -> its schema and the entity that first declared it.
_SCHEMAS: dict[str, tuple[IndexSchema, str]] = {}


class TableIndex(GlobalSecondaryIndex[Any]):  # type: ignore[no-untyped-call]
    """The PynamoDB index a ``GlobalIndex`` derives (typed once for ``mypy --strict``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # type: ignore[no-untyped-call]


@dataclass(eq=False)
class GlobalIndex:
    """One global secondary index of an entity (see the module docstring)."""

    index_name: str
    pk: KeySource
    sk: KeySource | None = None
    projection: ProjectionType = "ALL"
    include: tuple[str, ...] = ()
    sparse: bool = False
    model: type[TableModel] | None = field(default=None, init=False, repr=False)
    attribute_name: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.index_name, str) or not 3 <= len(self.index_name) <= 255:
            raise TypeError(f"an index name is 3 to 255 characters, got {self.index_name!r}")
        if self.projection not in PROJECTIONS:
            raise TypeError(f"projection must be one of {', '.join(PROJECTIONS)}, got {self.projection!r}")
        if bool(self.include) != (self.projection == "INCLUDE"):
            raise TypeError("include= names the attributes of an INCLUDE projection, and only of one")
        self.include = tuple(self.include)

    def __set_name__(self, owner: type[TableModel], name: str) -> None:
        self.attribute_name = name

    @property
    def pynamodb_attribute(self) -> str:
        """The name under which the entity holds the PynamoDB index this declaration derives."""
        return f"_{self.attribute_name}_index"

    def derived_keys(self) -> dict[str, str]:
        """Python attribute name -> template, for each key attribute this index adds."""
        return {key.name: key.template for key in (self.pk, self.sk) if isinstance(key, IndexKey)}

    def key_attributes(self) -> tuple[str, str | None]:
        """The Python names of the entity's attributes that are this index's partition and sort keys."""
        def name(key: KeySource | None) -> str | None:
            return key.name if isinstance(key, IndexKey) else key
        partition = name(self.pk)
        assert partition is not None
        return partition, name(self.sk)

    def projected(self, model: type[TableModel]) -> frozenset[str] | None:
        """The Python names of the attributes a query of this index reads; ``None``: all of them."""
        if self.projection == "ALL":
            return None
        table_keys = ("pk", "sk")
        index_keys = tuple(k for k in self.key_attributes() if k is not None)
        carried = (*self.include, "entity_type") if self.projection == "INCLUDE" else ()
        return frozenset((*table_keys, *index_keys, *carried))

    def bind(self, model: type[TableModel]) -> None:
        """Derive the key attributes and the PynamoDB index on ``model`` (at class creation)."""
        self.model = model
        for key in (self.pk, self.sk):
            if isinstance(key, IndexKey) and key.name not in vars(model):
                if not key.name.isidentifier():
                    raise TypeError(f"{model.__name__}.{self.attribute_name}: {key.stored_name!r} "
                                    "is not a usable attribute name")
                setattr(model, key.name, UnicodeAttribute(attr_name=key.stored_name, null=True))
        partition, sort = self.key_attributes()
        attributes = {name: getattr(model, name, None) for name in (partition, sort) if name is not None}
        for name, declared in attributes.items():
            if not isinstance(declared, UnicodeAttribute):
                raise TypeError(f"{model.__name__}.{self.attribute_name}: key {name!r} must be a string "
                                f"attribute of {model.__name__}")
        for name in self.include:
            if not hasattr(model, name):
                raise TypeError(f"{model.__name__}.{self.attribute_name}: includes {name!r}, "
                                f"which {model.__name__} does not have")
        self._check_schema(model, attributes)
        setattr(model, self.pynamodb_attribute, self._pynamodb_index(model, attributes))

    def check_sparse(self, model: type[TableModel]) -> None:
        """A non-sparse index: every entity must be in it (its key's parts are required)."""
        if self.sparse:
            return
        parts: list[str] = []
        for key in (self.pk, self.sk):
            if isinstance(key, IndexKey):
                parts.extend(model.key_template(key.name).fields)
            elif key is not None:
                parts.append(key)
        for part in parts:
            attribute = getattr(model, part, None)  # (PynamoDB collects the attributes after this)
            if getattr(attribute, "null", False):
                raise TypeError(f"{model.__name__}.{self.attribute_name}: {part!r} may be absent, so not "
                                "every entity is in the index: declare it sparse=True")

    def pynamodb_index(self) -> Any:
        """The PynamoDB index derived for the entity (to query)."""
        return getattr(self.model, self.pynamodb_attribute)

    def _check_schema(self, model: type[TableModel], attributes: dict[str, Any]) -> None:
        partition, sort = self.key_attributes()
        schema = IndexSchema(
            hash_key=attributes[partition].attr_name,
            range_key=None if sort is None else attributes[sort].attr_name,
            projection=self.projection,
            include=self._included(model),
        )
        known = _SCHEMAS.get(self.index_name)
        if known is not None and known[0] != schema and known[1] != model.__qualname__:
            raise TypeError(f"{model.__name__}.{self.attribute_name}: {self.index_name} is declared by "
                            f"{known[1]} as {known[0]}, not {schema}")
        if known is None or known[1] == model.__qualname__:
            _SCHEMAS[self.index_name] = (schema, model.__qualname__)

    def _included(self, model: type[TableModel]) -> tuple[str, ...]:
        """The stored names an INCLUDE projection carries: ``include``, and ``EntityType`` (a read
        builds each item as its own entity, and keeps to the queried one, by it)."""
        if self.projection != "INCLUDE":
            return ()
        return tuple(sorted({getattr(model, name).attr_name for name in self.include} | {"EntityType"}))

    def _pynamodb_index(self, model: type[TableModel], attributes: dict[str, Any]) -> TableIndex:
        partition, sort = self.key_attributes()
        projection: Any
        if self.projection == "ALL":
            projection = AllProjection()
        elif self.projection == "KEYS_ONLY":
            projection = KeysOnlyProjection()
        else:
            projection = IncludeProjection(list(self._included(model)))
        meta = type("Meta", (), {"index_name": self.index_name, "projection": projection})
        namespace: dict[str, Any] = {
            "Meta": meta,
            partition: UnicodeAttribute(hash_key=True, attr_name=attributes[partition].attr_name),
        }
        if sort is not None:
            namespace[sort] = UnicodeAttribute(range_key=True, attr_name=attributes[sort].attr_name)
        index_class = type(f"{model.__name__}_{self.attribute_name}", (TableIndex,), namespace)
        return index_class()  # type: ignore[no-any-return]
