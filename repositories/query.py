"""Runs the access patterns entities declare (``models.queries.Query``): one page, every item, or
one entity by its key parts.

``page`` composes the partition key and the sort-key condition from the entity's key templates,
queries the table or the declared index, and returns a ``Page`` with an exact ``has_more`` and a
encrypted, query-bound cursor (``repositories.paging``); DynamoDB's errors become the error tree.
A repository function over a declared query validates its own arguments, then calls ``page``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.pagination import ResultIterator

from core.config import get_settings
from core.error_codes import raise_unexpected
from core.errors import NotFound
from models.keys import format_part
from models.queries import Query
from models.table import TableModel
from repositories.paging import Page, RawKey, check_limit, paginate

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
    """One page of ``query`` in the partition of ``keys``; ``cursor`` continues the same query."""
    limit = check_limit(limit)
    forward = not newest_first
    model = query.model
    partition = model.key_template(query.partition).compose(**keys)
    condition, bounds = sort_condition(query, prefix=prefix, between=between)
    binding = {
        "fn": query.qualified_name, "table": get_settings().table_name, "index": query.index_name(),
        "keys": {name: format_part(value) for name, value in keys.items()},
        "forward": forward, "limit": limit, "range": bounds,
    }
    source = query.source()

    def run(start_key: RawKey | None, count: int) -> ResultIterator[M]:
        results: ResultIterator[M] = source.query(
            partition, range_key_condition=condition, scan_index_forward=forward, limit=count,
            last_evaluated_key=start_key,
        )
        return results

    try:
        return paginate(run, binding=binding, limit=limit, cursor=cursor,
                        index=None if query.index is None else source)
    except PynamoDBException as exc:
        raise_unexpected(exc, query.qualified_name)


def every(
    query: Query[M], partition: str, condition: Condition, *, filter_condition: Condition | None = None,
    page_size: int | None = None,
) -> list[M]:
    """Every item of ``query`` in one partition (all pages), in sort-key order."""
    try:
        return list(query.source().query(partition, condition, filter_condition=filter_condition,
                                         page_size=page_size))
    except PynamoDBException as exc:
        raise_unexpected(exc, query.qualified_name)


def find_one(model: type[M], *, consistent_read: bool = True, **parts: Any) -> M | None:
    """The ``model`` entity at the key its templates compose from ``parts``; ``None`` if none.

    Strongly consistent by default: what is read may be cached, or compared with a write just made.
    """
    try:
        return get_one(model, consistent_read=consistent_read, **parts)
    except NotFound:
        return None


def get_one(model: type[M], *, consistent_read: bool = True, **parts: Any) -> M:
    """As ``find_one``, but ``NotFound`` when there is no such entity."""
    pk, sk = (model.key_template(name).compose(**parts) for name in ("pk", "sk"))
    try:
        return model.get(pk, sk, consistent_read=consistent_read)
    except model.DoesNotExist as exc:
        raise NotFound(f"no {model.__name__.lower()} with this id") from exc
    except PynamoDBException as exc:
        raise_unexpected(exc, f"reading a {model.__name__}")
