"""An entity's item: its keys derived from the templates, its timestamps, its values serialized.

What PynamoDB's ``serialize`` does, with the entity's keys filled in first (``fill_keys``: the
table's keys and every index key, an index key left out when a part is unset) and one timestamp
for a whole write (``stamp``); how the keys are filled and each attribute is serialized is compiled
once per model (``_build_fill``, ``_build_writer``). Free-form numbers (maps, lists) are checked
against DynamoDB's range here, as no rule checks them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from pynamodb.attributes import Attribute, ListAttribute, MapAttribute, VersionAttribute
from pynamodb.exceptions import AttributeNullError
from pynamodb.models import Model

from models.actions import check_numbers
from models.item_size import NUMBER_BOUND, UNBOUNDED
from models.keys import KeyTemplate, compiled


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


# name, attr_name, type, serialize (None: the value as is), null allowed, container: 0 a plain value,
# 1 a map or list, or _OWN_GETTER: an attribute whose getter does more than read the stored value
# (both serialized the way PynamoDB does)
_Field = tuple[str, str, str, Callable[[Any], Any] | None, bool, int]
# (entity, its attribute values, null_check) -> its item, and a bound of its size
_Write = Callable[[Any, dict[str, Any], bool], tuple[dict[str, dict[str, Any]], int]]


# (entity, partial) -> None: fills the entity's keys in (``EntityWriting.fill_keys``)
_Fill = Callable[[Any, bool], None]


_OWN_GETTER = 2



class EntityWriting(Model):
    """How ``TableModel`` makes an entity's item (a base of ``TableModel``, with no table of its own)."""

    _key_templates: ClassVar[dict[str, KeyTemplate]] = {}
    _fill: ClassVar[_Fill | None] = None  # how it fills its keys in, compiled at first use
    _writer: ClassVar[_Write | None] = None  # how it serializes an entity, compiled at first use

    # --- keys ---

    @classmethod
    def _find_key_fields(cls) -> tuple[tuple[str, bool], ...]:
        """(field, held as a plain attribute) for each field the key templates read; a field may
        also be a property computed from attributes (a metric's day)."""
        attributes = cls.get_attributes()
        for key_name in cls._key_templates:
            if type(attributes[key_name]).__set__ is not Attribute.__set__:
                raise TypeError(f"{cls.__name__}.{key_name} must be a plain attribute to hold a derived key")
        fields = tuple(
            (f, cls._read_plainly(f))
            for f in dict.fromkeys(f for t in cls._key_templates.values() for f in t.fields)
        )
        return fields

    @classmethod
    def _read_plainly(cls, name: str) -> bool:
        """Whether ``name`` is an attribute whose getter only reads its stored value (read from the
        attribute values, then); anything else is read through its getter (a property computed
        from attributes, such as a metric's day)."""
        attribute = cls.get_attributes().get(name)
        return attribute is not None and type(attribute).__get__ is Attribute.__get__

    def fill_keys(self, *, partial: bool = False) -> None:
        """Derive ``PK``, ``SK`` and index keys from the entity's attributes.

        An index key with a part unset is removed (the entity leaves that sparse index). With
        ``partial``, table keys whose parts are not all set yet are skipped; a part that is set
        but invalid still raises ``InvalidKey``. Nothing is composed again when neither the parts
        nor the keys changed since the last complete fill.
        """
        fill = type(self).__dict__.get("_fill") or type(self)._build_fill()
        fill(self, partial)

    @classmethod
    def _build_fill(cls) -> _Fill:
        fill = _fill_function(cls.__name__, cls._find_key_fields(), cls._key_templates)
        cls._fill = fill
        return fill

    def stamp(self, now: datetime) -> None:
        """Use ``now`` as the time of the next serialization (one timestamp for a whole write)."""
        self.__dict__["_stamp"] = now

    def serialize(self, null_check: bool = True) -> dict[str, dict[str, Any]]:
        """Serialize for a write: fill in keys and timestamps first."""
        return self.serialize_bounded(null_check)[0]

    def serialize_bounded(self, null_check: bool = True) -> tuple[dict[str, dict[str, Any]], int]:
        """``serialize``, and at least the item's size as DynamoDB counts it, found on the way
        (``models.item_size.upper_bound``'s bound, or more)."""
        if self._key_templates:
            self.fill_keys()
        now = self.__dict__.pop("_stamp", None) or utcnow()
        values = self.attribute_values  # the timestamps are plain attributes too
        if values.get("created_at") is None:
            values["created_at"] = now
        values["updated_at"] = now
        writer = type(self).__dict__.get("_writer") or type(self)._build_writer()
        return writer(self, values, null_check)

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
    def _build_writer(cls) -> _Write:
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
        writer = _write_function(cls.__name__, fields)
        cls._writer = writer
        return writer


def _write_function(model: str, fields: Sequence[_Field]) -> _Write:
    """The serialization of ``fields`` as one function, compiled once per model: for each field in
    order, the steps ``EntityWriting.serialize`` takes (PynamoDB's, for a map, a list or an
    attribute with a getter of its own), unrolled, so no field's description is read at each write;
    it gives the item and the bound of its size ``upper_bound`` would give (``UNBOUNDED`` for a
    value of another type, or a string value that is no ``str``)."""
    scope: dict[str, Any] = {"AttributeNullError": AttributeNullError, "UNBOUNDED": UNBOUNDED}
    lines = ["def write(entity, values, null_check):", "    item = {}", "    bound = 0"]
    for at, (name, attr_name, attr_type, serialize, nullable, container) in enumerate(fields):
        if container == _OWN_GETTER:
            lines.append(f"    value = entity._serialize_container({name!r}, null_check)")
        elif container:
            lines += [f"    value = values.get({name!r})",
                      f"    if value is not None: value = entity._serialize_container({name!r}, null_check)"]
        elif serialize is None:
            lines.append(f"    value = values.get({name!r})")
        else:
            scope[f"serialize_{at}"] = serialize
            lines += [f"    value = values.get({name!r})",
                      f"    if value is not None: value = serialize_{at}(value)"]
        lines += ["    if value is not None:", f"        item[{attr_name!r}] = {{{attr_type!r}: value}}",
                  "        bound += " + _bound(attr_name, attr_type)]
        if not nullable:
            lines += ["    elif null_check:", f"        raise AttributeNullError({name!r})"]
    lines.append("    return item, bound")
    write: _Write = compiled(lines, "write", f"<{model} writer>", scope)
    return write


def _fill_function(model: str, fields: tuple[tuple[str, bool], ...],
                   templates: dict[str, KeyTemplate]) -> _Fill:
    """``fill_keys`` for one model's key ``fields`` and ``templates``, compiled once per model: the
    parts read (a plain attribute from the stored values, anything else through its getter), the
    keys of the last complete fill kept when neither they nor their parts changed, else each key
    composed in the templates' order (an index key with a part unset set to None; a table key
    skipped only when ``partial``)."""
    scope: dict[str, Any] = {}
    at = {name: n for n, (name, _) in enumerate(fields)}
    lines = ["def fill(entity, partial):", "    values = entity.attribute_values"]
    lines += [f"    part_{n} = values.get({name!r})" if plain else f"    part_{n} = entity.{name}"
              for n, (name, plain) in enumerate(fields)]
    parts = "".join(f"part_{n}, " for n in range(len(fields)))
    keys = "".join(f"values.get({key_name!r}), " for key_name in templates)
    lines += [
        f"    parts = ({parts})",
        "    derived = entity.__dict__.get('_derived_keys')  # the parts and keys of the last complete fill",
        f"    if derived is not None and derived[0] == parts and derived[1] == ({keys}):",
        "        return",
        "    complete = True",
    ]
    for key_name, template in templates.items():
        scope[f"compose_{key_name}"] = template.composer
        own = "".join(f"part_{at[name]}, " for name in template.fields)
        unset = f"None in ({own})"
        if key_name in ("pk", "sk"):
            lines += [f"    if partial and {unset}:", "        complete = False", "    else:",
                      f"        values[{key_name!r}] = compose_{key_name}({own})"]
        else:
            lines.append(f"    values[{key_name!r}] = None if {unset} else compose_{key_name}({own})")
    lines += ["    if complete:", f"        entity.__dict__['_derived_keys'] = (parts, ({keys}))"]
    fill: _Fill = compiled(lines, "fill", f"<{model} keys>", scope)
    return fill


def _bound(attr_name: str, attr_type: str) -> str:
    """The expression adding a written value's share to the item's size bound (as ``upper_bound``)."""
    if attr_type == "S":
        return f"{4 * len(attr_name)} + 4 * len(value) if type(value) is str else UNBOUNDED"
    if attr_type == "N":
        return f"{4 * len(attr_name) + NUMBER_BOUND}"
    return "UNBOUNDED"
