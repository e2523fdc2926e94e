"""Runs the access patterns entities declare (``models.queries.Query``): one page, every item, or
one entity by its key parts.

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

from collections.abc import Mapping
from typing import Any, TypeVar

from pynamodb.attributes import Attribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.pagination import ResultIterator
from pynamodb_attributes import UnicodeEnumAttribute

from core.config import get_settings
from core.error_codes import raise_unexpected
from core.errors import InvalidInput, InvalidKey, NotFound
from models.keys import KeyTemplate, format_part
from models.queries import Query
from models.table import TableModel
from repositories._common import check_bool, key_part
from repositories.paging import Page, RawKey, check_limit, paginate, read_all

M = TypeVar("M", bound=TableModel)


def sort_condition(
    query: Query[M], *, prefix: Mapping[str, Any] | None = None,
    between: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> tuple[Condition, list[str] | None]:
    """The sort-key condition: ``begins_with`` the template's prefix up to the first field not in
    ``prefix``, or ``BETWEEN`` the prefixes of ``between``'s two ends; and the bounds it used."""
    template = query.model.key_template(query.sort)
    attribute = getattr(query.model, query.sort)
    if between is None:
        return attribute.startswith(template.prefix(**(prefix or {}))), None
    bounds = [template.prefix(**between[0]), template.prefix(**between[1])]
    return attribute.between(*bounds), bounds


def page(
    query: Query[M],
    *,
    keys: Mapping[str, Any],
    prefix: Mapping[str, Any] | None = None,
    between: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    limit: Any = 20,
    cursor: str | None = None,
    newest_first: bool = False,
) -> Page[M]:
    """One page of ``query`` in the partition of ``keys``; ``cursor`` continues the same query.

    Unreadable items are skipped and listed in ``Page.unreadable``. ``InvalidKey``/``InvalidInput``
    for a bad key part, limit or flag, before any request.
    """
    limit = check_limit(limit)
    forward = not check_bool(newest_first, "newest_first")
    model = query.model
    sort_template = model.key_template(query.sort)
    keys = check_parts(model, model.key_template(query.partition).fields, keys, "keys")
    if prefix is not None:
        prefix = check_parts(model, sort_template.fields, prefix, "prefix")
    if between is not None:
        if not (isinstance(between, tuple) and len(between) == 2):
            raise InvalidInput("between must be a pair of mappings of key parts")
        between = (check_parts(model, sort_template.fields, between[0], "between"),
                   check_parts(model, sort_template.fields, between[1], "between"))
    partition = model.key_template(query.partition).compose(**keys)
    condition, bounds = sort_condition(query, prefix=prefix, between=between)
    # Not the limit: the next page may ask for another page size.
    binding = {
        "fn": query.qualified_name, "table": get_settings().table_name, "index": query.index_name(),
        "keys": {name: format_part(value) for name, value in keys.items()},
        "forward": forward, "range": bounds,
    }
    source = query.source()

    def run(start_key: RawKey | None, count: int) -> ResultIterator[M]:
        # No total limit: the iterator reads on (pages of `count`) past items it skips as unreadable.
        results: ResultIterator[M] = source.query(
            partition, range_key_condition=condition, scan_index_forward=forward, page_size=count,
            last_evaluated_key=start_key,
        )
        return results

    try:
        return paginate(run, binding=binding, limit=limit, cursor=cursor,
                        index=None if query.index is None else source)
    except PynamoDBException as exc:
        raise_unexpected(exc, query.qualified_name, index=query.index_name())


def every(
    query: Query[M], partition: str, condition: Condition, *, filter_condition: Condition | None = None,
    page_size: int | None = None,
) -> list[M]:
    """Every item of ``query`` in one partition (all pages), in sort-key order; unreadable items are
    skipped (and logged)."""
    if page_size is not None and (isinstance(page_size, bool) or not isinstance(page_size, int)
                                  or page_size < 1):
        raise InvalidInput(f"page_size must be a positive integer or None, got {page_size!r}")
    try:
        results = query.source().query(partition, condition, filter_condition=filter_condition,
                                       page_size=page_size)
        return read_all(results, query.qualified_name)
    except PynamoDBException as exc:
        raise_unexpected(exc, query.qualified_name, index=query.index_name())


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
    check_bool(consistent_read, "consistent_read")
    templates = [model.key_template(name) for name in ("pk", "sk")]
    parts = check_parts(model, (*templates[0].fields, *templates[1].fields), parts, "key parts")
    pk, sk = (template.compose(**parts) for template in templates)
    try:
        return model.get(pk, sk, consistent_read=consistent_read)
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
