"""Decode the items of DynamoDB's read responses with orjson, into exactly what botocore returns.

botocore's JSON parser walks the service model for every attribute value of a response: reading a
page of items costs about ten times a plain ``json.loads`` of its body, and on a busy read path
that parsing, not the network, is where the time goes. In DynamoDB's wire format an item already
is the dict botocore returns (``{"S": "..."}``, ``{"N": "..."}``, ...), except that binary values
(``B``, and each member of a ``BS``) arrive base64-encoded and leave botocore as ``bytes``.

``install(client)`` wraps the response parser factory of one botocore DynamoDB client. For a
successful (HTTP 200) ``GetItem``, ``Query``, ``Scan`` or ``BatchGetItem`` response, the parser it
hands out:

1. reads the body with ``orjson.loads``;
2. walks the items (``Item``, ``Items``, ``Responses``) once, checking that they are in the form
   DynamoDB sends, where botocore's parser would return them unchanged but for binary values (every
   attribute value a one-key map of a known type, holding a value of the right JSON type), and
   decoding their binary values in place with ``base64.b64decode``, as botocore's default blob
   parser does. The check is what makes the result exact whatever the body holds; it costs about
   half of ``orjson.loads`` (a check in C, with ``map`` and ``set``, measured no faster);
3. lets botocore's own parser decode everything else of the response (``Count``, ``ScannedCount``,
   ``LastEvaluatedKey``, ``UnprocessedKeys``, ``ConsumedCapacity``, ``ResponseMetadata``): it is
   given the body without the items, which is small;
4. assembles the result in botocore's key order.

Anything else goes through botocore's parser untouched: every other operation, every response that
is not a 200, other protocols, a factory with custom parser defaults. So does a body the fast path
does not recognise (malformed or empty JSON, an unknown attribute type, a ``null``, a number that
orjson reads differently from ``json.loads``, an exception of any kind): botocore then parses the
original response and gives the result or exception it always gives. Signing, retries, the CRC32
check and error handling happen around the parser and are not affected; the endpoint still adds
``RetryAttempts`` to the ``ResponseMetadata`` botocore built.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, Final

import orjson
from botocore.model import Shape
from botocore.parsers import JSONParser, ResponseParser

__all__ = ["install", "is_installed"]

_LOG = logging.getLogger(__name__)

# Output shape -> its member holding items: the only member decoded outside botocore.
_ITEMS_MEMBER: Final[dict[str, str]] = {
    "GetItemOutput": "Item",
    "QueryOutput": "Items",
    "ScanOutput": "Items",
    "BatchGetItemOutput": "Responses",
}

_STR: Final = frozenset({str})
_DICT: Final = frozenset({dict})
# orjson reads an integer outside [-2**63, 2**64) as a float, json.loads as an int.
_EXACT_FLOAT_LIMIT: Final = 2.0**63


class _Unexpected(Exception):
    """The body is not in the form DynamoDB sends: botocore's parser decides what it means."""


# --- the items ---------------------------------------------------------------------------------


def _decode_values(values: Iterable[Any]) -> None:
    """Check attribute values and decode their binary values in place; raise ``_Unexpected`` otherwise.

    Strings and numbers, most of any item, are settled inline: a call per value would cost as much
    as the rest of the walk.
    """
    for value in values:
        if type(value) is not dict or len(value) != 1:
            raise _Unexpected
        if type(value.get("S", value.get("N"))) is str:
            continue
        ((tag, inner),) = value.items()
        decode = _DECODERS.get(tag)
        if decode is None:
            raise _Unexpected
        decoded = decode(inner)
        if decoded is not inner:
            value[tag] = decoded


def _not_a_string(inner: Any) -> Any:
    raise _Unexpected  # an S or N value that is not a JSON string (strings are settled inline)


def _boolean(inner: Any) -> Any:
    if type(inner) is not bool:
        raise _Unexpected
    return inner


def _binary(inner: Any) -> bytes:
    if type(inner) is not str:
        raise _Unexpected
    return base64.b64decode(inner)  # what botocore's default blob parser does


def _string_set(inner: Any) -> Any:
    if type(inner) is not list or not _STR.issuperset(map(type, inner)):
        raise _Unexpected
    return inner


def _binary_set(inner: Any) -> list[bytes]:
    return [base64.b64decode(member) for member in _string_set(inner)]


def _map(inner: Any) -> Any:
    if type(inner) is not dict:
        raise _Unexpected
    _decode_values(inner.values())
    return inner


def _list(inner: Any) -> Any:
    if type(inner) is not list:
        raise _Unexpected
    _decode_values(inner)
    return inner


_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "S": _not_a_string,
    "N": _not_a_string,
    "B": _binary,
    "SS": _string_set,
    "NS": _string_set,
    "BS": _binary_set,
    "M": _map,
    "L": _list,
    "NULL": _boolean,
    "BOOL": _boolean,
}


def _decode_items(items: Any) -> Any:
    """Check a list of items and decode their binary values in place; raise ``_Unexpected`` otherwise."""
    if type(items) is not list or not _DICT.issuperset(map(type, items)):
        raise _Unexpected
    _decode_values(chain.from_iterable(map(dict.values, items)))
    return items


def _decode_member(name: str, value: Any) -> Any:
    if name == "Item":
        return _decode_items([value])[0]
    if name == "Items":
        return _decode_items(value)
    if type(value) is not dict:  # Responses: table name -> items
        raise _Unexpected
    for items in value.values():
        _decode_items(items)
    return value


def _exact_numbers(value: Any) -> bool:
    """False when orjson may have read a number of ``value`` differently from ``json.loads``."""
    kind = type(value)
    if kind is float:
        return bool(abs(value) < _EXACT_FLOAT_LIMIT)
    if kind is dict:
        return all(map(_exact_numbers, value.values()))
    if kind is list:
        return all(map(_exact_numbers, value))
    return True


# --- the parser --------------------------------------------------------------------------------


class _FastReadParser:
    """botocore's JSON parser, but the items of a successful read are decoded with orjson."""

    def __init__(self, delegate: ResponseParser) -> None:
        self.delegate = delegate

    def parse(self, response: dict[str, Any], shape: Shape | None) -> Any:
        """What ``delegate.parse(response, shape)`` returns, decoded faster where it can be."""
        member = _ITEMS_MEMBER.get(shape.name) if shape is not None else None
        if member is not None and shape is not None and response.get("status_code") == 200:
            try:
                parsed = self._parse_read(response, shape, member)
            except Exception:
                parsed = None  # botocore's parser, outside this handler, so its exception stays its own
            if parsed is not None:
                return parsed
        return self.delegate.parse(response, shape)  # type: ignore[arg-type]  # None: no output shape

    def _parse_read(self, response: dict[str, Any], shape: Shape, member: str) -> dict[str, Any] | None:
        body = orjson.loads(response["body"])
        if type(body) is not dict:
            return None
        items = body.pop(member, None)
        if items is None or not _exact_numbers(body):
            return None
        decoded = _decode_member(member, items)
        # The rest, with ResponseMetadata, from botocore itself: json.dumps gives back what
        # orjson read (no NaN, no lone surrogate, integers checked above).
        rest = self.delegate.parse({**response, "body": json.dumps(body).encode()}, shape)
        if type(rest) is not dict or member in rest:
            return None
        result: dict[str, Any] = {}
        for name in shape.members:  # type: ignore[attr-defined]
            if name == member:
                result[name] = decoded
            elif name in rest:
                result[name] = rest.pop(name)
        result.update(rest)
        return result


class _FastReadParserFactory:
    """Wraps a client's ``ResponseParserFactory``: its JSON parsers take the fast path for reads."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def create_parser(self, protocol_name: str) -> Any:
        """The wrapped factory's parser; for botocore's plain JSON parser, wrapped in the fast one."""
        parser = self.factory.create_parser(protocol_name)
        if type(parser) is JSONParser and _default_blob_parser(parser):
            return _FastReadParser(parser)
        return parser

    def set_parser_defaults(self, **kwargs: Any) -> None:
        """Forwarded to the wrapped factory (a custom blob parser turns the fast path off)."""
        self.factory.set_parser_defaults(**kwargs)


def _default_blob_parser(parser: JSONParser) -> bool:
    # The fast path decodes binary values the way botocore's default blob parser does.
    default = getattr(ResponseParser, "_default_blob_parser", None)
    blob_parser = getattr(parser, "_blob_parser", None)
    return default is not None and getattr(blob_parser, "__func__", None) is default


# --- public ------------------------------------------------------------------------------------


def install(client: Any) -> Any:
    """Make ``client`` (a botocore DynamoDB client) decode successful reads with orjson; return it.

    Idempotent. Raises ``ValueError`` for a client of another service. A client whose botocore
    internals are not where this module expects them is left as it is (and a warning is logged):
    it stays correct, only slower.
    """
    service = client.meta.service_model.service_name
    if service != "dynamodb":
        raise ValueError(f"fast_parse.install expects a DynamoDB client, got one for {service!r}")
    endpoint = getattr(client, "_endpoint", None)
    factory = getattr(endpoint, "_response_parser_factory", None)
    if not callable(getattr(factory, "create_parser", None)):
        _LOG.warning("botocore client without a response parser factory: reads use botocore's parser")
        return client
    if not isinstance(factory, _FastReadParserFactory):
        endpoint._response_parser_factory = _FastReadParserFactory(factory)  # type: ignore[union-attr]
    return client


def is_installed(client: Any) -> bool:
    """Whether ``install`` has wrapped ``client``'s response parser factory."""
    endpoint = getattr(client, "_endpoint", None)
    return isinstance(getattr(endpoint, "_response_parser_factory", None), _FastReadParserFactory)
