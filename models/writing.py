"""An entity's item: its keys derived from the templates, its timestamps, its values serialized.

What PynamoDB's ``serialize`` does, with the entity's keys filled in first (``fill_keys``: the
table's keys and every index key, an index key left out when a part is unset) and one timestamp
for a whole write (``stamp``); how each attribute is serialized is worked out once per model
(``_Writer``). Free-form numbers (maps, lists) are checked against DynamoDB's range here, as no
rule checks them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple

from pynamodb.attributes import Attribute, ListAttribute, MapAttribute, VersionAttribute
from pynamodb.exceptions import AttributeNullError
from pynamodb.models import Model

from models.actions import check_numbers
from models.keys import KeyTemplate


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class _Writer(NamedTuple):
    """How a model serializes an entity for a write (computed once per model)."""

    # name, attr_name, type, serialize (None: the value as is), null allowed, container: 0 a plain
    # value, 1 a map or list, or _OWN_GETTER: an attribute whose getter does more than read the stored
    # value (both serialized the way PynamoDB does)
    fields: tuple[tuple[str, str, str, Callable[[Any], Any] | None, bool, int], ...]


_OWN_GETTER = 2



class EntityWriting(Model):
    """How ``TableModel`` makes an entity's item (a base of ``TableModel``, with no table of its own)."""

    _key_templates: ClassVar[dict[str, KeyTemplate]] = {}
    _key_fields: ClassVar[tuple[tuple[str, bool], ...] | None] = None
    _writer: ClassVar[_Writer | None] = None

    # --- keys ---

    def key_values(self) -> dict[str, Any]:
        """The values the key templates read, taken from this entity."""
        values = self.attribute_values
        fields = type(self)._key_fields or type(self)._find_key_fields()
        return {name: values.get(name) if stored else getattr(self, name) for name, stored in fields}

    @classmethod
    def _find_key_fields(cls) -> tuple[tuple[str, bool], ...]:
        """(field, held as a plain attribute) for each field the key templates read; a field may
        also be a property computed from attributes (a metric's day)."""
        attributes = cls.get_attributes()
        for key_name in cls._key_templates:
            if type(attributes[key_name]).__set__ is not Attribute.__set__:
                raise TypeError(f"{cls.__name__}.{key_name} must be a plain attribute to hold a derived key")
        fields = tuple(
            (f, f in attributes and type(attributes[f]).__get__ is Attribute.__get__)
            for f in dict.fromkeys(f for t in cls._key_templates.values() for f in t.fields)
        )
        cls._key_fields = fields
        return fields

    def fill_keys(self, *, partial: bool = False) -> None:
        """Derive ``PK``, ``SK`` and index keys from the entity's attributes.

        An index key with a part unset is removed (the entity leaves that sparse index). With
        ``partial``, table keys whose parts are not all set yet are skipped; a part that is set
        but invalid still raises ``InvalidKey``.
        """
        values = self.key_values()
        stored = self.attribute_values  # keys are plain attributes (checked when the class is made)
        derived = self.__dict__.get("_derived_keys")  # the parts and keys of the last complete fill
        if derived is not None and derived[0] == values:
            for key_name, key in derived[1].items():
                if stored.get(key_name) != key:
                    break  # replaced: derived again
            else:
                return  # nothing they are made of changed, and nobody replaced them
        complete = True
        for key_name, template in self._key_templates.items():
            if None in map(values.get, template.fields):  # a part not set
                if key_name not in ("pk", "sk"):
                    stored[key_name] = None
                    continue
                if partial:
                    complete = False
                    continue
            stored[key_name] = template.compose(**values)
        if complete:
            self.__dict__["_derived_keys"] = (values, {key_name: stored.get(key_name)
                                                       for key_name in self._key_templates})

    def stamp(self, now: datetime) -> None:
        """Use ``now`` as the time of the next serialization (one timestamp for a whole write)."""
        self.__dict__["_stamp"] = now

    def serialize(self, null_check: bool = True) -> dict[str, dict[str, Any]]:
        """Serialize for a write: fill in keys and timestamps first."""
        if self._key_templates:
            self.fill_keys()
        now = self.__dict__.pop("_stamp", None) or utcnow()
        values = self.attribute_values  # the timestamps are plain attributes too
        if values.get("created_at") is None:
            values["created_at"] = now
        values["updated_at"] = now
        writer = type(self).__dict__.get("_writer") or type(self)._build_writer()
        values = self.attribute_values
        item: dict[str, dict[str, Any]] = {}
        for name, attr_name, attr_type, serialize, nullable, container in writer.fields:
            if container == _OWN_GETTER or (container and values.get(name) is not None):
                value = self._serialize_container(name, null_check)
            elif container:
                value = None  # a map or list attribute not set (its getter reads the stored value)
            else:
                value = values.get(name)
                if value is not None and serialize is not None:
                    value = serialize(value)
            if value is not None:
                item[attr_name] = {attr_type: value}
            elif null_check and not nullable:
                raise AttributeNullError(name)
        return item

    def _serialize_container(self, name: str, null_check: bool) -> Any:
        # PynamoDB's own steps for an attribute that is a map or list, or has a getter of its own.
        attribute = self.get_attributes()[name]
        value = getattr(self, name)
        try:
            if isinstance(value, MapAttribute) and not value.validate(null_check=null_check):
                raise ValueError(f"Attribute '{name}' is not correctly typed")
            if value is None:
                return None
            if isinstance(attribute, (ListAttribute, MapAttribute)):
                serialized = attribute.serialize(value, null_check=null_check)
                # free-form numbers are not checked by any rule: DynamoDB's range is checked here
                check_numbers({attribute.attr_type: serialized}, f"{type(self).__name__}.{name}")
                return serialized
            return attribute.serialize(value)
        except AttributeNullError as exc:
            exc.prepend_path(name)
            raise

    @classmethod
    def _build_writer(cls) -> _Writer:
        fields = []
        for name, attribute in cls.get_attributes().items():
            getter = type(attribute).__get__
            # VersionAttribute's getter casts a float to int, which its serialize does too; a map's
            # getter is the plain one for an entity (``MapAttribute.__get__`` only types it).
            own_getter = getter not in (Attribute.__get__, VersionAttribute.__get__, MapAttribute.__get__)
            nested = isinstance(attribute, (ListAttribute, MapAttribute))
            container = _OWN_GETTER if own_getter else int(nested)
            # Attribute.serialize gives the value back as is (strings): not called
            identity = type(attribute).serialize is Attribute.serialize
            fields.append((name, attribute.attr_name, attribute.attr_type,
                           None if identity else attribute.serialize, bool(attribute.null), container))
        writer = _Writer(tuple(fields))
        cls._writer = writer
        return writer

