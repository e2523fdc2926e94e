"""Partial entities: what a read with ``attributes=`` returns (a projection).

``Partial[Order]`` holds the attributes that were fetched (always with the keys, the attributes
they are made of, and the entity's type) and nothing else: reading one that was not fetched
raises ``NotFetched``, never a silent ``None``; saving, updating or deleting it is refused
(``InvalidInput``), since a write of a part would erase, or be checked against, what was not read.
Pass it to nothing that writes; read the whole entity for that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from core.errors import InvalidInput, NotFetched

if TYPE_CHECKING:
    from models.table import TableModel

M = TypeVar("M", bound="TableModel")

# What a projection always fetches: the table's keys and the discriminator (which class to build),
# and the attributes the table's keys are made of (an order's user_id and order_id).
ALWAYS_FETCHED = ("pk", "sk", "entity_type")


def fetched_names(model: type[TableModel], attributes: Iterable[str], *, extra: Iterable[str] = (),
                  available: frozenset[str] | None = None) -> tuple[frozenset[str], list[str]]:
    """The Python names a projection of ``attributes`` fetches, and their stored names (the
    ``ProjectionExpression``); ``InvalidInput`` for a name ``model`` does not declare or an empty list.
    ``available``: what an index projects (``None``: everything); the table keys' parts are fetched
    only when they are available."""
    if isinstance(attributes, str) or not isinstance(attributes, Iterable):
        raise InvalidInput("attributes must be a list of attribute names")
    wanted = list(attributes)
    if not wanted:
        raise InvalidInput("attributes must name at least one attribute")
    declared = model.get_attributes()
    for name in wanted:
        if not isinstance(name, str) or name not in declared:
            raise InvalidInput(f"{model.__name__} has no attribute {name!r}")
    key_parts = (f for key in ("pk", "sk") for f in model.key_template(key).fields
                 if f in declared and (available is None or f in available))
    names = frozenset((*ALWAYS_FETCHED, *key_parts, *extra, *wanted))
    return names, sorted(declared[name].attr_name for name in names)


class Partial(Generic[M]):
    """Some attributes of an entity of type ``M`` (see the module docstring)."""

    __slots__ = ("_entity", "_fetched")

    def __init__(self, entity: M, fetched: frozenset[str]) -> None:
        self._entity = entity
        self._fetched = fetched

    @property
    def entity_class(self) -> type[M]:
        """The class of the entity this is part of."""
        return type(self._entity)

    @property
    def fetched(self) -> frozenset[str]:
        """The names of the attributes that were fetched."""
        return self._fetched

    def __getattr__(self, name: str) -> Any:
        if name in self._fetched:
            return getattr(self._entity, name)
        if name in type(self._entity).get_attributes():
            raise NotFetched(type(self._entity).__name__, name)
        raise AttributeError(f"{type(self._entity).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__slots__:
            object.__setattr__(self, name, value)
            return
        raise InvalidInput(f"a partial {type(self._entity).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Partial):
            return NotImplemented
        same_values = self._entity.attribute_values == other._entity.attribute_values
        return self._fetched == other._fetched and same_values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self._entity, name)!r}" for name in sorted(self._fetched))
        return f"Partial[{type(self._entity).__name__}]({shown})"

    def save(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: a partial entity cannot be written."""
        self._refuse("saved")

    def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: a partial entity cannot be written."""
        self._refuse("updated")

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: a partial entity cannot be written."""
        self._refuse("deleted")

    def _refuse(self, what: str) -> NoReturn:
        raise InvalidInput(f"a partial {type(self._entity).__name__} (read with attributes=) cannot be "
                           f"{what}: read the whole entity first")
