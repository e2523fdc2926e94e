"""Runs the access patterns entities declare (``models.queries.Query``, called as methods of the
entity: ``Order.in_status.page(status="PAID")``): one page, every item, or one entity by its key
parts.

``page`` composes the partition key and the sort-key condition from the entity's key templates,
queries the table or the declared index, and returns a ``Page`` with an exact ``has_more`` and a
encrypted, query-bound cursor (``repositories.paging``); DynamoDB's errors become the error tree.
A repository function over a declared query validates its own arguments, then calls ``page``.

Every key part is checked again here, before any request, by the attribute the template's field
names: a plain string attribute's part by ``key_part`` (a string, no ``#``, no control or
bidirectional characters, no surrounding whitespace), an enum attribute's by its own ``serialize``
(``InvalidInput`` for a value outside the enum), any other by the template (``InvalidKey``).

An item that does not build into its entity (``UnreadableItem``) is skipped by ``page`` (listed in
``Page.unreadable``) and by ``every`` (logged), and raised by ``get_one`` and ``find_one``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from pynamodb.attributes import Attribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.pagination import ResultIterator
from pynamodb_attributes import UnicodeEnumAttribute

from core.budgets import checked_page
from core.config import get_settings
from core.error_codes import raise_unexpected
from core.errors import InvalidInput, InvalidKey, NotFound, UnreadableItem
from core.telemetry import attributed
from models.collections import BoundCollection
from models.keys import KeyTemplate, format_part
from models.partial import Partial, fetched_names
from models.queries import BoundQuery
from models.table import TableModel
from repositories._common import check_bool, key_part
from repositories.paging import Page, RawKey, check_limit, paginate, read_all, report_unreadable

M = TypeVar("M", bound=TableModel)
O = TypeVar("O", bound=TableModel)  # noqa: E741 (a collection's owner)


def sort_condition(
    query: BoundQuery[M], *, prefix: Mapping[str, Any] | None = None,
    between: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> tuple[Condition | None, list[str] | None]:
    """The sort-key condition: ``begins_with`` the template's prefix up to the first field not in
    ``prefix``, or ``BETWEEN`` the prefixes of ``between``'s two ends; and the bounds it used.
    ``None`` for an index without a sort key."""
    if query.sort is None:
        if prefix or between is not None:
            raise InvalidInput(f"{query.qualified_name} has no sort key to bound")
        return None, None
    template = query.model.key_template(query.sort)
    attribute = getattr(query.model, query.sort)
    if between is None:
        return attribute.startswith(template.prefix(**(prefix or {}))), None
    bounds = [template.prefix(**between[0]), template.prefix(**between[1])]
    return attribute.between(*bounds), bounds


def partition_fields(query: BoundQuery[M]) -> tuple[str, ...]:
    """The parts a call of ``query`` names: the partition template's fields, or the attribute
    itself for an index keyed on a plain attribute (``email``)."""
    templates = query.model.key_templates()
    return templates[query.partition].fields if query.partition in templates else (query.partition,)


def partition_key(query: BoundQuery[M], keys: Any) -> str:
    """The partition key value of ``query`` for ``keys``, each part checked (see the module
    docstring); a plain attribute's value by the attribute's own rule (an email's canonical form)."""
    return _partition(query, _key_parts(query, keys))


def _key_parts(query: BoundQuery[M], keys: Any) -> dict[str, Any]:
    fields = partition_fields(query)
    if query.partition in query.model.key_templates():
        checked = check_parts(query.model, fields, keys, "keys")
    else:  # not part of a composed key: the attribute's own rule, as a write stores it
        checked = dict(keys) if isinstance(keys, Mapping) else check_parts(query.model, fields, keys, "keys")
        unknown = set(checked) - set(fields)
        if unknown:
            raise InvalidKey(f"keys: {query.qualified_name} is keyed on {fields[0]!r}, "
                             f"not {sorted(unknown)[0]!r}")
        checked = {name: getattr(query.model, name).serialize(value) for name, value in checked.items()}
    missing = [name for name in fields if name not in checked]
    if missing:
        raise InvalidKey(f"{query.qualified_name}: key part {missing[0]!r} is missing")
    return checked


def _partition(query: BoundQuery[M], keys: dict[str, Any]) -> str:
    templates = query.model.key_templates()
    if query.partition in templates:
        return templates[query.partition].compose(**keys)
    value: str = keys[query.partition]
    return value


def page(
    query: BoundQuery[M],
    *,
    keys: Mapping[str, Any],
    prefix: Mapping[str, Any] | None = None,
    between: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    limit: Any = 20,
    cursor: str | None = None,
    newest_first: bool = False,
    fetch: list[str] | None = None,
) -> Page[M]:
    """One page of ``query`` in the partition of ``keys``; ``cursor`` continues the same query.

    Unreadable items are skipped and listed in ``Page.unreadable``. ``InvalidKey``/``InvalidInput``
    for a bad key part, limit or flag, before any request. ``fetch``: the stored names to read (a
    projection, see ``partial_page``); every attribute by default.
    """
    limit = check_limit(limit)
    forward = not check_bool(newest_first, "newest_first")
    model = query.model
    if query.sort is None and (prefix is not None or between is not None):
        raise InvalidInput(f"{query.qualified_name} has no sort key to bound")
    sort_fields = () if query.sort is None else model.key_template(query.sort).fields
    keys = _key_parts(query, keys)
    if prefix is not None:
        prefix = check_parts(model, sort_fields, prefix, "prefix")
    if between is not None:
        if not (isinstance(between, tuple) and len(between) == 2):
            raise InvalidInput("between must be a pair of mappings of key parts")
        between = (check_parts(model, sort_fields, between[0], "between"),
                   check_parts(model, sort_fields, between[1], "between"))
    partition = _partition(query, keys)
    condition, bounds = sort_condition(query, prefix=prefix, between=between)
    binding = cursor_binding(query, keys, forward=forward, bounds=bounds)
    source = query.source()

    def run(start_key: RawKey | None, count: int) -> ResultIterator[M]:
        # No total limit: the iterator reads on (pages of `count`) past items it skips as unreadable.
        results: ResultIterator[M] = source.query(
            partition, range_key_condition=condition, scan_index_forward=forward, page_size=count,
            last_evaluated_key=start_key, attributes_to_get=fetch,
        )
        return results

    try:
        with attributed(query.qualified_name):
            return paginate(run, binding=binding, limit=limit, cursor=cursor,
                            index=None if query.index is None else source,
                            pattern=query.qualified_name, budget=query.budget)
    except PynamoDBException as exc:
        raise_unexpected(exc, query.qualified_name, index=query.index_name())


def cursor_binding(query: BoundQuery[M], keys: Mapping[str, Any], *, forward: bool,
                   bounds: list[str] | None) -> dict[str, Any]:
    """What a cursor of ``query`` is bound to: the query, table, index, keys, direction and range.
    Not the limit: the next page may ask for another page size."""
    return {
        "fn": query.qualified_name, "table": get_settings().table_name, "index": query.index_name(),
        "keys": {name: format_part(value) for name, value in keys.items()},
        "forward": forward, "range": bounds,
    }


def collection_page(collection: BoundCollection[O, M], *, keys: Mapping[str, Any], limit: Any,
                    cursor: str | None) -> tuple[O, Page[M]]:
    """The owner and one page of members of ``collection`` (see ``models.collections``): one
    ``Query`` without a cursor; with one, the owner by its key and the members' next page."""
    members = collection.members
    owner_model = collection.declared.owner
    limit = check_limit(limit)
    newest_first, bounds = collection.owner_first()
    keys = _key_parts(members, keys)
    if cursor is not None:
        found = page(members, keys=keys, limit=limit, cursor=cursor, newest_first=newest_first)
        with attributed(collection.qualified_name):
            return get_one(owner_model, consistent_read=False, **keys), found
    partition = _partition(members, keys)
    condition = members.model.sk.between(*bounds)
    owner: list[O] = []

    def run(start_key: RawKey | None, count: int) -> Iterator[M]:
        # One more item than a page of members: the owner comes first (the range is read owner first).
        results = TableModel.query(partition, condition, scan_index_forward=not newest_first,
                                   page_size=count + 1, last_evaluated_key=start_key)
        return _Members(results, owner_model, members.model, owner if start_key is None else None)

    try:
        with attributed(collection.qualified_name):
            binding = cursor_binding(members, keys, forward=not newest_first, bounds=None)
            found = paginate(run, binding=binding, limit=limit, cursor=None,
                             pattern=collection.qualified_name, budget=members.budget)
    except PynamoDBException as exc:
        raise_unexpected(exc, collection.qualified_name)
    if not owner:
        raise NotFound(f"no {owner_model.__name__.lower()} with this id")
    return owner[0], found


class _Members(Generic[O, M]):
    """The members of a collection's query, the owner (first) taken aside into ``owner``; other
    entities skipped. An iterator that goes on after an unreadable item, as PynamoDB's does."""

    def __init__(self, results: Any, owner_model: type[O], member_model: type[M], owner: list[O] | None):
        self._results, self._owner_model, self._member_model = iter(results), owner_model, member_model
        self._owner = owner
        self._source = results

    @property
    def last_evaluated_key(self) -> Any:
        """Where the underlying query would resume (see ``repositories.paging``)."""
        return getattr(self._source, "last_evaluated_key", None)

    def __iter__(self) -> _Members[O, M]:
        return self

    def __next__(self) -> M:
        while True:
            item = next(self._results)
            if isinstance(item, self._member_model):
                return item
            if self._owner is not None and not self._owner and isinstance(item, self._owner_model):
                self._owner.append(item)


def partial_page(query: BoundQuery[M], *, attributes: Iterable[str], **arguments: Any) -> Page[Partial[M]]:
    """As ``page``, reading only ``attributes`` (with the keys): the items are ``Partial`` entities.

    ``InvalidInput`` for a name the entity does not declare, or one the query's index does not
    project, before any request. The cursor is the same as a whole page's (the attributes may
    change from page to page).
    """
    names, stored = projection(query, attributes)
    found = page(query, fetch=stored, **arguments)
    return Page([Partial(item, names) for item in found.items], found.next_cursor, found.has_more,
                found.unreadable)


def projection(query: BoundQuery[M], attributes: Iterable[str]) -> tuple[frozenset[str], list[str]]:
    """What reading ``attributes`` through ``query`` fetches: Python names, and stored names."""
    index_keys = () if query.index is None else tuple(k for k in query.index.key_attributes() if k)
    projected = None if query.index is None else query.index.projected(query.model)
    names, stored = fetched_names(query.model, attributes, extra=index_keys, available=projected)
    if projected is not None and not names <= projected:
        missing = sorted(names - projected)
        raise InvalidInput(f"{query.qualified_name}: {query.index_name()} does not project {missing[0]!r}")
    return names, stored


def every(
    query: BoundQuery[M], partition: str, condition: Condition | None, *,
    filter_condition: Condition | None = None, page_size: int | None = None,
) -> list[M]:
    """Every item of ``query`` in one partition (all pages), in sort-key order; unreadable items are
    skipped (and logged)."""
    if page_size is not None and (isinstance(page_size, bool) or not isinstance(page_size, int)
                                  or page_size < 1):
        raise InvalidInput(f"page_size must be a positive integer or None, got {page_size!r}")
    try:
        with attributed(query.qualified_name):
            results = query.source().query(partition, condition, filter_condition=filter_condition,
                                           page_size=page_size)
            return read_all(results, query.qualified_name, budget=query.budget)
    except PynamoDBException as exc:
        raise_unexpected(exc, query.qualified_name, index=query.index_name())


def first(query: BoundQuery[M], keys: Mapping[str, Any]) -> M | None:
    """The first entity of ``query`` in the partition of ``keys`` (sort order); ``None`` if there is
    none. Unreadable items are skipped (and logged); no cursor, so no cursor secret, is involved."""
    partition = partition_key(query, keys)
    condition, _ = sort_condition(query)
    try:
        with attributed(query.qualified_name), checked_page(query.qualified_name, query.budget) as use:
            results = iter(query.source().query(partition, condition, page_size=2))
            found = _first(results, query.qualified_name)
            use.items = 0 if found is None else 1
        return found
    except PynamoDBException as exc:
        raise_unexpected(exc, query.qualified_name, index=query.index_name())


def _first(results: Iterator[M], what: str) -> M | None:
    while True:
        try:
            return next(results, None)
        except UnreadableItem as exc:
            report_unreadable(exc, what)


def find_one(model: type[M], *, consistent_read: bool = True, **parts: Any) -> M | None:
    """The ``model`` entity at the key its templates compose from ``parts``; ``None`` if none.

    Strongly consistent by default: what is read may be cached, or compared with a write just made.
    ``UnreadableItem`` if the stored item does not build into a ``model``.
    """
    try:
        return get_one(model, consistent_read=consistent_read, **parts)
    except NotFound:
        return None


def get_one(model: type[M], *, consistent_read: bool = True, **parts: Any) -> M:
    """As ``find_one``, but ``NotFound`` when there is no such entity."""
    return _get(model, consistent_read, None, parts)


def get_partial(model: type[M], *, attributes: Iterable[str], consistent_read: bool = True,
                **parts: Any) -> Partial[M]:
    """As ``get_one``, reading only ``attributes`` (with the keys): a ``Partial`` entity.
    ``InvalidInput`` for a name the entity does not declare, before any request."""
    names, stored = fetched_names(model, attributes)
    return Partial(_get(model, consistent_read, stored, parts), names)


def _get(model: type[M], consistent_read: bool, fetch: list[str] | None, parts: dict[str, Any]) -> M:
    check_bool(consistent_read, "consistent_read")
    templates = [model.key_template(name) for name in ("pk", "sk")]
    parts = check_parts(model, (*templates[0].fields, *templates[1].fields), parts, "key parts")
    pk, sk = (template.compose(**parts) for template in templates)
    try:
        return model.get(pk, sk, consistent_read=consistent_read, attributes_to_get=fetch)
    except model.DoesNotExist as exc:
        raise NotFound(f"no {model.__name__.lower()} with this id") from exc
    except PynamoDBException as exc:
        raise_unexpected(exc, f"reading a {model.__name__}")


def check_parts(model: type[TableModel], fields: tuple[str, ...], parts: Any, what: str) -> dict[str, Any]:
    """``parts`` (field name -> value) checked as key parts by ``model``'s attributes (see the module
    docstring); ``InvalidKey`` for a name that is not one of the key's ``fields``."""
    if not isinstance(parts, Mapping):
        raise InvalidInput(f"{what} must be a mapping of key parts, got {type(parts).__name__}")
    attributes = model.get_attributes()
    checked: dict[str, Any] = {}
    for name, value in parts.items():
        if name not in fields:
            raise InvalidKey(f"{what}: {model.__name__}'s key has no part {name!r}")
        checked[name] = _part(attributes.get(name), name, value)
    return checked


def _part(attribute: Attribute[Any] | None, name: str, value: Any) -> Any:
    if isinstance(attribute, UnicodeEnumAttribute):
        return key_part(attribute.serialize(value), name)  # the enum's own rule: its members only
    if isinstance(attribute, UnicodeAttribute):
        return key_part(value, name)
    KeyTemplate.compose_part(name, value)  # a date, a number or a computed part: the template's rules
    return value
