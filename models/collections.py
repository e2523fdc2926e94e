"""Collections: entities that share a partition, read together in one query.

``with_user = Collection(User, of_user)``, declared on ``Order``, says that a user's profile and
the orders of ``Order.of_user`` live in one partition (``USER#{user_id}``). ``Order.with_user.page(
user_id=u, limit=20)`` is then one ``Query`` of that partition whose sort-key range runs from the
members' prefix (``ORDER#``) to the owner's sort key (``PROFILE``), read in the direction that puts
the owner first: it returns ``(User, Page[Order])``, each item decoded to its class, and the
page's cursor continues the members (it is a cursor of ``Order.of_user``, in that direction). Items
of other entities whose sort key falls in the range are read and skipped.

The declaration is checked when the class is created: the owner and the members must compose the
same partition key, and the owner's sort key must be a fixed one (no parts) outside the members'
prefix. ``repositories.query.collection_page`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from core.engine import bridge
from models.queries import Query

if TYPE_CHECKING:
    from models.queries import BoundQuery
    from models.table import TableModel
    from repositories.paging import Page

O = TypeVar("O", bound="TableModel")  # noqa: E741 (the owner)
M = TypeVar("M", bound="TableModel")


@dataclass(eq=False)
class Collection(Generic[O]):
    """One ``owner`` item and the ``members`` (a declared table query) that share its partition."""

    owner: type[O]
    members: Query
    name: str = field(default="", init=False)

    def __set_name__(self, owner: type[TableModel], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, model: type[M]) -> BoundCollection[O, M]: ...

    @overload
    def __get__(self, instance: M, model: type[M]) -> BoundCollection[O, M]: ...

    def __get__(self, instance: Any, model: type[M]) -> BoundCollection[O, M]:
        return BoundCollection(self, model)

    def bind(self, model: type[TableModel]) -> None:
        """Check the declaration against the member entity ``model`` (at class creation)."""
        what = f"{model.__name__}.{self.name}"
        if self.members.index is not None or getattr(model, self.members.name, None) is None:
            raise TypeError(f"{what}: members must be a table query declared on {model.__name__}")
        owner_keys, member_keys = self.owner.key_templates(), model.key_templates()
        if owner_keys["pk"].pattern != member_keys["pk"].pattern:
            raise TypeError(f"{what}: {self.owner.__name__} and {model.__name__} are in different partitions")
        owner_sk, prefix = owner_keys["sk"], member_keys["sk"].prefix()
        if owner_sk.fields or owner_sk.pattern.startswith(prefix):
            raise TypeError(f"{what}: {self.owner.__name__}'s sort key must be fixed and outside {prefix!r}")


@dataclass(frozen=True)
class BoundCollection(Generic[O, M]):
    """A declared collection, as ``Member.collection_name`` gives it."""

    declared: Collection[O]
    model: type[M]

    @property
    def qualified_name(self) -> str:
        """``Member.collection_name``: the access pattern's name."""
        return f"{self.model.__name__}.{self.declared.name}"

    @property
    def members(self) -> BoundQuery[M]:
        """The members' declared query."""
        found: BoundQuery[M] = getattr(self.model, self.declared.members.name)
        return found

    def owner_first(self) -> tuple[bool, list[str]]:
        """Whether the range is read newest (highest sort key) first, and its two bounds."""
        owner_sk = self.declared.owner.key_template("sk").pattern
        prefix = self.model.key_template("sk").prefix()
        if owner_sk > prefix:
            return True, [prefix, owner_sk]
        return False, [owner_sk, prefix + "\U0010ffff"]

    def page(self, *, limit: int = 20, cursor: str | None = None, **keys: Any) -> tuple[O, Page[M]]:
        """The owner and one page of members in the partition ``keys`` name, in one ``Query``.

        ``cursor`` (a ``next_cursor`` of this collection, or of the members' query in the same
        direction) continues the members: the owner is then read by its key (a second request).
        ``NotFound`` if the owner does not exist.
        """
        from repositories import query

        return query.collection_page(self, keys=keys, limit=limit, cursor=cursor)

    apage = bridge.awaitable(page)  # the same, awaited (core.engine.bridge)
