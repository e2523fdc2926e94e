"""Walk a JSON value along a plan (``core.engine.shapes``) into exactly what botocore's parser returns.

Two walkers, one result:

- ``fast`` takes what ``orjson.loads`` read and accepts only the form DynamoDB sends: every
  attribute value a one-key map of a known type holding a value of the right JSON type, structures
  as objects, lists as arrays, no number that ``orjson`` may read differently from ``json.loads``
  (an integer beyond 64 bits becomes a float there). Items are checked and their binary values
  decoded in place: strings and numbers, most of any item, cost one type check each. Anything else
  raises ``Irregular``.
- ``faithful`` is botocore's JSON parser restated for these shapes (``botocore.parsers``): it takes
  what ``json.loads`` read, keeps only modeled members in model order, drops ``null`` members, keeps
  ``null`` list members and decodes blobs with ``base64.b64decode``. An attribute value is a plain
  structure in botocore's model (``tests/unit/test_engine_shapes.py`` checks it is no tagged
  union): members it does not know are dropped, two members set are both kept. Where botocore
  would fail with whatever Python error its walk meets (a string where a map belongs), this raises
  ``ResponseParserError``.

A body goes to ``fast`` first and, when that raises, is read again with ``json.loads`` for
``faithful``: the result is botocore's either way (``tests/unit/test_engine_decode.py`` draws bodies
and compares).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from itertools import chain
from typing import Any, Final

from botocore.parsers import ResponseParserError

from core.engine.shapes import AV, AV_MEMBERS, BLOB, RAW, ListOf, MapOf, Plan, Struct

_AV_PLANS: Final[dict[str, Plan]] = dict(AV_MEMBERS)
_EXACT_FLOAT_LIMIT: Final = 2.0**63  # orjson reads an integer outside [-2**63, 2**64) as a float
_STR: Final = frozenset({str})
_DICT: Final = frozenset({dict})


class Irregular(Exception):
    """The value is not in the form DynamoDB sends: the faithful walk decides what it means."""


# --- fast ----------------------------------------------------------------------------------------


def fast(plan: Plan, value: Any) -> Any:
    """``value`` (from ``orjson.loads``, not ``None``) decoded along ``plan``; ``Irregular`` otherwise."""
    kind = type(plan)
    if kind is Struct:
        return _fast_struct(plan, value)  # type: ignore[arg-type]
    if kind is MapOf:
        return _fast_map(plan, value)  # type: ignore[arg-type]
    if kind is ListOf:
        return _fast_list(plan, value)  # type: ignore[arg-type]
    if plan == AV:
        _values((value,))
        return value
    if plan == BLOB:
        return _binary(value)
    return _raw(value)


def _fast_struct(plan: Struct, value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise Irregular
    result = {}
    for name, member in plan.members:
        found = value.get(name)
        if found is not None:
            result[name] = fast(member, found)
    return result


def _fast_map(plan: MapOf, value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise Irregular
    if plan.value == AV:  # an item: checked and decoded in place
        _values(value.values())
        return value
    return {key: _fast_present(plan.value, member) for key, member in value.items()}


def _fast_list(plan: ListOf, value: Any) -> list[Any]:
    if type(value) is not list:
        raise Irregular
    member_plan = plan.member
    if type(member_plan) is MapOf and member_plan.value == AV:  # a list of items
        if not _DICT.issuperset(map(type, value)):
            raise Irregular
        _values(chain.from_iterable(map(dict.values, value)))
        return value
    return [None if member is None else fast(member_plan, member) for member in value]


def _fast_present(plan: Plan, value: Any) -> Any:
    if value is None:  # a null map value: botocore's handling depends on the shape
        raise Irregular
    return fast(plan, value)


def _raw(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is bool or kind is int:
        return value
    if kind is float and abs(value) < _EXACT_FLOAT_LIMIT:
        return value
    raise Irregular  # a container where a scalar belongs, or a number orjson may have misread


def _values(values: Iterable[Any]) -> None:
    """Check attribute values and decode their binary values in place; ``Irregular`` otherwise."""
    for value in values:
        if type(value) is not dict or len(value) != 1:
            raise Irregular
        if type(value.get("S", value.get("N"))) is str:
            continue
        ((tag, inner),) = value.items()
        if tag == "M":
            if type(inner) is not dict:
                raise Irregular
            _values(inner.values())
        elif tag == "L":
            if type(inner) is not list:
                raise Irregular
            _values(inner)
        else:
            decoded = _scalar(tag, inner)
            if decoded is not inner:
                value[tag] = decoded


def _scalar(tag: str, inner: Any) -> Any:
    """A value that is neither a string, a number, a map nor a list, checked (binary decoded)."""
    if tag == "B":
        return _binary(inner)
    if tag in ("SS", "NS") and type(inner) is list and _STR.issuperset(map(type, inner)):
        return inner
    if tag == "BS" and type(inner) is list:
        return [_binary(member) for member in inner]
    if tag in ("NULL", "BOOL") and type(inner) is bool:
        return inner
    raise Irregular


def _binary(inner: Any) -> bytes:
    if type(inner) is not str:
        raise Irregular
    try:
        return base64.b64decode(inner)  # botocore's default blob parser
    except ValueError:
        raise Irregular from None


# --- faithful ------------------------------------------------------------------------------------


def faithful(plan: Plan, value: Any) -> Any:
    """``value`` (from ``json.loads``) decoded along ``plan`` as botocore's JSON parser does."""
    try:
        return _faithful(plan, value)
    except ResponseParserError:
        raise
    except (AttributeError, TypeError, ValueError, IndexError) as exc:
        raise ResponseParserError(f"Unexpected value in a DynamoDB response: {type(exc).__name__}") from exc


def _faithful(plan: Plan, value: Any) -> Any:
    if value is None:
        if plan in (RAW, AV) or type(plan) is Struct:
            return None
        raise ResponseParserError("null where a list, map or blob belongs")
    if type(plan) is Struct:
        return _structure(plan.members, value)
    if type(plan) is MapOf:
        if not isinstance(value, dict):
            raise ResponseParserError("a map that is not a JSON object")
        return {key: _faithful(plan.value, member) for key, member in value.items()}
    if type(plan) is ListOf:
        return [None if member is None else _faithful(plan.member, member) for member in value]
    return _attribute_value(value) if plan == AV else base64.b64decode(value) if plan == BLOB else value


def _structure(members: tuple[tuple[str, Plan], ...], value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResponseParserError("a structure that is not a JSON object")
    result = {}
    for name, member in members:
        found = value.get(name)
        if found is not None:
            result[name] = _faithful(member, found)
    return result


def _attribute_value(value: Any) -> dict[str, Any]:
    # A plain structure in botocore's model (not a tagged union): its present members, in order.
    return _structure(AV_MEMBERS, value)
