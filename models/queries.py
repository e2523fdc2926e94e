"""Declared access patterns: an entity's query names its index, its partition key and its sort key.

``Order.of_user = Query()`` (the table: ``pk`` and ``sk``) and
``Order.in_status = Query(index="by_status", partition="gsi1pk")`` say everything a query needs:
the key templates compose the partition key and the sort-key bounds, the index (if any) is
queried, and the cursor is bound to the query's name. ``repositories.query`` runs them: each
repository function over a declared query is a few lines. A query naming a key or index the
entity does not declare fails when the class is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pynamodb.indexes import Index

if TYPE_CHECKING:
    from models.table import TableModel

M = TypeVar("M", bound="TableModel")


@dataclass(frozen=True)
class Query(Generic[M]):
    """An access pattern of one entity: ``index`` (an attribute holding a PynamoDB index, or
    ``None`` for the table), and the names of its ``partition`` and ``sort`` keys in the entity's
    ``EntityKeys``. Results keep to the entity through the sort key template's literal prefix."""

    index: str | None = None
    partition: str = "pk"
    sort: str = "sk"
    model: type[M] = field(init=False, repr=False, compare=False)
    name: str = field(init=False, repr=False, compare=False, default="")

    def __set_name__(self, owner: type[M], name: str) -> None:
        object.__setattr__(self, "model", owner)
        object.__setattr__(self, "name", name)

    @property
    def qualified_name(self) -> str:
        """``Entity.query_name``: what a cursor of this query is bound to."""
        return f"{self.model.__name__}.{self.name}"

    def source(self) -> Any:
        """What to call ``query`` on: the index, or the entity itself."""
        return self.model if self.index is None else getattr(self.model, self.index)

    def index_name(self) -> str | None:
        """The physical index name, or ``None`` for the table."""
        return None if self.index is None else str(getattr(self.model, self.index).Meta.index_name)

    def bind(self, model: type[TableModel]) -> None:
        """Check the declaration against ``model`` (at class creation)."""
        keys = model.keys.templates() if model.keys is not None else {}
        for role, key_name in (("partition", self.partition), ("sort", self.sort)):
            if key_name not in keys:
                raise TypeError(f"{model.__name__}.{self.name}: {role} key {key_name!r} is not in its keys")
        if self.index is None:
            if (self.partition, self.sort) != ("pk", "sk"):
                raise TypeError(f"{model.__name__}.{self.name}: a table query uses pk and sk; name an index")
            return
        index = getattr(model, self.index, None)
        if not isinstance(index, Index):
            raise TypeError(f"{model.__name__}.{self.name}: {self.index!r} is not one of its indexes")
        stored = {a.attr_name: role for a in index.Meta.attributes.values()
                  for role in ("hash",) * a.is_hash_key + ("range",) * a.is_range_key}
        wanted = {getattr(model, self.partition).attr_name: "hash",
                  getattr(model, self.sort).attr_name: "range"}
        if stored != wanted:
            raise TypeError(f"{model.__name__}.{self.name}: the keys of {self.index} are not "
                            f"{self.partition} and {self.sort}")
