"""Change data: decode DynamoDB Streams records (NEW_AND_OLD_IMAGES) into typed entities.

A record, as Lambda delivers it or as ``GetRecords`` returns it, carries the item before
(``dynamodb.OldImage``) and after (``dynamodb.NewImage``) the change in DynamoDB's wire format.
``decode_stream_record`` turns them into entities of the right class through the ``EntityType``
discriminator: ``INSERT`` gives ``(None, new)``, ``MODIFY`` ``(old, new)``, ``REMOVE``
``(old, None)``.

An image with no ``EntityType``, or one no model declares (another service sharing the table, a
newer deployment), raises ``InvalidInput`` by default; with ``on_unknown="skip"`` it decodes as
``None`` instead, so a handler can pass over records it does not own (``(None, None)`` then means
"not ours"). A record lacking an image its event must have (the stream is not NEW_AND_OLD_IMAGES)
raises ``InvalidInput``.

An image of a declared entity that does not build into it (a value of the wrong type, a
``Version`` that is not a non-negative integer, an ``EntityType`` that is not a string) raises
``UnreadableItem`` naming the item's keys: a handler can report that record as a batch item
failure. No PynamoDB exception escapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pynamodb.exceptions import PynamoDBException

import models  # noqa: F401 - importing every entity registers its EntityType
from core.errors import InvalidInput, UnreadableItem
from models.table import PK, SK, TableModel

_EXPECTED_IMAGES = {
    "INSERT": (False, True),
    "MODIFY": (True, True),
    "REMOVE": (True, False),
}
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"
# What a malformed image makes PynamoDB or an attribute raise while decoding.
_UNDECODABLE = (TypeError, KeyError, AttributeError, ArithmeticError, PynamoDBException)


def decode_stream_record(
    record: Mapping[str, Any], *, on_unknown: Literal["raise", "skip"] = "raise"
) -> tuple[TableModel | None, TableModel | None]:
    """The ``(old, new)`` entities of one stream record; ``None`` where the event has no image."""
    if on_unknown not in ("raise", "skip"):
        raise InvalidInput("on_unknown must be 'raise' or 'skip'")
    if not isinstance(record, Mapping) or not isinstance(record.get("dynamodb"), Mapping):
        raise InvalidInput("not a DynamoDB stream record: it has no 'dynamodb' mapping")
    event = record.get("eventName")
    if event not in _EXPECTED_IMAGES:
        raise InvalidInput(f"unknown stream eventName {event!r}")
    change = record["dynamodb"]
    images: list[TableModel | None] = []
    for image_name, expected in zip(("OldImage", "NewImage"), _EXPECTED_IMAGES[event], strict=True):
        image = change.get(image_name)
        if expected and image is None:
            message = f"a {event} record without {image_name}: the stream must be NEW_AND_OLD_IMAGES"
            raise InvalidInput(message)
        images.append(None if image is None else _decode(image, on_unknown))
    return images[0], images[1]


def is_ttl_expiry(record: Mapping[str, Any]) -> bool:
    """True when the record is a deletion made by DynamoDB's TTL, not by an application."""
    if not isinstance(record, Mapping):
        raise InvalidInput("not a DynamoDB stream record: it is not a mapping")
    identity = record.get("userIdentity") or {}
    if not isinstance(identity, Mapping):
        return False
    return (
        record.get("eventName") == "REMOVE"
        and identity.get("type") == "Service"
        and identity.get("principalId") == _TTL_PRINCIPAL
    )


def _decode(image: Any, on_unknown: str) -> TableModel | None:
    if not isinstance(image, Mapping):
        raise InvalidInput("a stream image must be a mapping of attribute values")
    image = dict(image)
    try:
        stored = TableModel._get_discriminator_class(image)
    except ValueError:
        stored = None  # an EntityType no model declares
    except _UNDECODABLE as exc:  # an EntityType of another DynamoDB type than a string
        keys = (_key_text(image, PK), _key_text(image, SK))
        raise UnreadableItem(keys, TableModel.__name__, TableModel.entity_type.attr_name) from exc
    if stored is None:
        if on_unknown == "skip":
            return None
        entity_type = image.get(TableModel.entity_type.attr_name)
        raise InvalidInput(f"cannot decode an image with EntityType {entity_type!r}: no model declares it")
    return TableModel.from_raw_data(image)  # UnreadableItem when it does not build into `stored`


def _key_text(image: Mapping[str, Any], name: str) -> str:
    raw = image.get(name)
    value = raw.get("S") if isinstance(raw, Mapping) else None
    return value if isinstance(value, str) else ""
