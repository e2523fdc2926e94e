"""Declared access patterns: a query names an index of its entity (or the table) and is a typed
method of the entity.

``of_user = Query()`` reads the table (``pk``, sorted by ``sk``); ``in_status = Query(by_status)``
reads the entity's ``GlobalIndex`` ``by_status``. The partition key's template says which parts a
call names, the sort key's template bounds the results to the entity (``begins_with`` its literal
prefix) or to a range:

    page = Order.in_status.page(status="PAID", limit=20, cursor=cursor)      # Page[Order]
    page = Order.of_user.page(user_id=u, between=({"order_id": lo}, {"order_id": hi}))
    user = User.with_email.first(email=address)                             # User | None

Every call checks its key parts before any request, signs a cursor bound to the query, its keys,
range and direction (not to the page size), and keeps ``has_more`` exact; ``repositories.query``
runs them. The IAM policy, the CloudFormation export and ``migrations check`` read these
declarations: a repository reads only through declared queries. A query naming an index the
entity does not declare fails when the class is created.

A query may state what a page may cost (``budget=``, a ``core.budgets.Budget``): the engine checks
the capacity and the items each page reads against it (see ``core.budgets``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from pynamodb.attributes import Attribute

from core.engine import bridge
from core.errors import InvalidInput
from models.indexes import GlobalIndex

if TYPE_CHECKING:
    from pynamodb.expressions.condition import Condition

    from core.budgets import Budget
    from models.partial import Partial
    from models.table import TableModel
    from repositories.paging import Page

M = TypeVar("M", bound="TableModel")
Parts = Mapping[str, Any]


@dataclass(eq=False)
class Query:
    """An access pattern of one entity: the ``index`` it reads (``None``: the table), what a page
    of it may cost (``budget``), and ``partial``: a query of an index that does not project every
    attribute, read only with ``attributes=`` within the projection (without it, such a query fails
    when the class is created)."""

    index: GlobalIndex | None = None
    budget: Budget | None = None
    partial: bool = False
    name: str = field(default="", init=False)
    owner: type[TableModel] | None = field(default=None, init=False, repr=False)

    def __set_name__(self, owner: type[TableModel], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[M]) -> BoundQuery[M]: ...

    @overload
    def __get__(self, instance: M, owner: type[M]) -> BoundQuery[M]: ...

    def __get__(self, instance: Any, owner: type[M]) -> BoundQuery[M]:
        return BoundQuery(self, owner)

    def bind(self, model: type[TableModel]) -> None:
        """Check the declaration against ``model`` (at class creation)."""
        self.owner = model
        if self.index is not None and getattr(model, self.index.attribute_name, None) is not self.index:
            raise TypeError(f"{model.__name__}.{self.name}: its index is not declared on {model.__name__}")
        partition, sort = self.key_names()
        plain = isinstance(getattr(model, partition, None), Attribute)
        if partition not in model.key_templates() and not plain:
            raise TypeError(f"{model.__name__}.{self.name}: no key {partition!r}")
        if self.index is not None and self.index.projection == "KEYS_ONLY":
            raise TypeError(f"{model.__name__}.{self.name}: a KEYS_ONLY index does not project EntityType, "
                            "so its items cannot be told apart: declare it projection=\"INCLUDE\"")
        if self.index is not None and self.index.projected(model) is not None and not self.partial:
            raise TypeError(f"{model.__name__}.{self.name}: {self.index.index_name} projects "
                            f"{self.index.projection}, not every attribute of {model.__name__}: declare "
                            "the index projection=\"ALL\", or the query partial=True (read with attributes=)")
        if sort is not None and sort not in model.key_templates():
            raise TypeError(f"{model.__name__}.{self.name}: sort key {sort!r} is not derived by a template")

    def key_names(self) -> tuple[str, str | None]:
        """The Python names of the partition and sort keys this query reads."""
        if self.index is None:
            return "pk", "sk"
        return self.index.key_attributes()


@dataclass(frozen=True)
class BoundQuery(Generic[M]):
    """A declared query of entity ``model`` (what ``Entity.query_name`` gives)."""

    declared: Query
    model: type[M]

    @property
    def name(self) -> str:
        """The query's name on its entity."""
        return self.declared.name

    @property
    def qualified_name(self) -> str:
        """``Entity.query_name``: what a cursor of this query is bound to."""
        return f"{self.model.__name__}.{self.declared.name}"

    @property
    def budget(self) -> Budget | None:
        """What a page of this query may cost (``None``: no bound)."""
        return self.declared.budget

    @property
    def index(self) -> GlobalIndex | None:
        """The index read, or ``None`` for the table."""
        return self.declared.index

    @property
    def partition(self) -> str:
        """The Python name of the partition key (a templated key, or a plain attribute)."""
        return self.declared.key_names()[0]

    @property
    def sort(self) -> str | None:
        """The Python name of the sort key (templated), or ``None`` for an index without one."""
        return self.declared.key_names()[1]

    def index_name(self) -> str | None:
        """The physical index name, or ``None`` for the table."""
        return None if self.declared.index is None else self.declared.index.index_name

    def source(self) -> Any:
        """What to call PynamoDB's ``query`` on: the derived index, or the entity itself."""
        if self.declared.index is None:
            return self.model
        return getattr(self.model, self.declared.index.pynamodb_attribute)

    @overload
    def page(self, *, limit: int = ..., cursor: str | None = ..., newest_first: bool = ...,
             between: tuple[Parts, Parts] | None = ..., prefix: Parts | None = ..., attributes: None = ...,
             **keys: Any) -> Page[M]: ...

    @overload
    def page(self, *, limit: int = ..., cursor: str | None = ..., newest_first: bool = ...,
             between: tuple[Parts, Parts] | None = ..., prefix: Parts | None = ...,
             attributes: Sequence[str], **keys: Any) -> Page[Partial[M]]: ...

    def page(
        self,
        *,
        limit: int = 20,
        cursor: str | None = None,
        newest_first: bool = False,
        between: tuple[Parts, Parts] | None = None,
        prefix: Parts | None = None,
        attributes: Sequence[str] | None = None,
        **keys: Any,
    ) -> Page[M] | Page[Partial[M]]:
        """One page in the partition ``keys`` name (``status="PAID"``); ``cursor`` continues it.

        ``between``: the sort key's parts at both ends (inclusive); ``prefix``: its first parts.
        ``limit``: 1 to 100, may change from page to page. ``attributes``: read only these (with
        the keys), as ``Partial`` entities. ``InvalidKey``/``InvalidInput`` for a bad part, limit,
        flag or attribute, ``InvalidCursor`` for a cursor of another query, before any request.
        """
        from repositories import query

        if attributes is not None:
            return query.partial_page(self, attributes=attributes, keys=keys, between=between, prefix=prefix,
                                      limit=limit, cursor=cursor, newest_first=newest_first)
        if self.index is not None and self.index.projected(self.model) is not None:
            raise InvalidInput(f"{self.qualified_name}: {self.index.index_name} does not project every "
                               "attribute; read it with attributes=")
        return query.page(self, keys=keys, between=between, prefix=prefix, limit=limit, cursor=cursor,
                          newest_first=newest_first)

    def first(self, **keys: Any) -> M | None:
        """The first entity in the partition ``keys`` name, in sort order; ``None`` if there is none."""
        from repositories import query

        return query.first(self, keys)

    def all(self, *, between: tuple[Parts, Parts] | None = None, filter_condition: Condition | None = None,
            page_size: int | None = None, **keys: Any) -> list[M]:
        """Every entity in the partition ``keys`` name (all pages), in sort order; unreadable items
        are skipped and logged."""
        from repositories import query

        partition = query.partition_key(self, keys)
        condition, _ = query.sort_condition(self, between=between)
        return query.every(self, partition, condition, filter_condition=filter_condition, page_size=page_size)

    # The same reads, awaited (``core.engine.bridge``): ``await Order.of_user.apage(user_id=...)``.
    apage = bridge.awaitable(page)
    afirst = bridge.awaitable(first)
    aall = bridge.awaitable(all)
