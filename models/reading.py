"""Building entities: from keyword arguments (a new entity) and from stored items (a read).

What PynamoDB's ``__init__`` and ``_instantiate`` do (the stored type's class, its defaults, each
stored attribute deserialized), worked out once per model (``_Maker``, ``_Reader``) instead of per
entity and per attribute, the reading of an item's values compiled once per model
(``_read_function``): reading a page of entities is mostly this. A stored item that does not
build into its entity raises ``UnreadableItem`` naming its keys and the attribute that failed; an
entity is never half built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, TypeVar

from pynamodb.attributes import Attribute, DiscriminatorAttribute, VersionAttribute
from pynamodb.constants import NULL
from pynamodb.exceptions import AttributeDeserializationError, PynamoDBException
from pynamodb.models import Model

from core.errors import UnreadableItem
from models.keys import compiled

_E = TypeVar("_E", bound="EntityReading")

PK = "PK"
SK = "SK"
VERSION = "Version"  # every entity's version (``TableModel.version``)


def _fast_deserializer(attribute: Attribute[Any]) -> Callable[[Any], Any] | None:
    """``attribute.deserialize``, or what gives the same for less: nothing for an attribute that
    keeps the stored value as is (strings), ``_read_version`` for a version, the function a
    ``deserialize`` marked with ``models.attributes.same_as`` only calls."""
    deserialize = type(attribute).deserialize
    if deserialize is Attribute.deserialize:
        return None
    if deserialize is VersionAttribute.deserialize:
        return _read_version
    same: Callable[[Any], Any] | None = getattr(deserialize, "same_as", None)
    return same if same is not None else attribute.deserialize


def _read_version(value: Any) -> int:
    """A stored version: only a non-negative integer. PynamoDB would read ``1.5`` as 1 and ``-1`` as
    -1, and the entity could never be written back (its writes are conditioned on the version)."""
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)  # ValueError beyond int's digit limit: unreadable too
    raise ValueError("a stored Version must be a non-negative integer")


# What a stored value of the wrong form makes a deserializer raise (PynamoDB's, pynamodb-attributes',
# ours): AttributeDeserializationError is a TypeError, decimal.InvalidOperation an ArithmeticError;
# KeyError and AttributeError come from malformed nested values (a stream image is plain JSON).
_UNREADABLE = (ValueError, TypeError, ArithmeticError, KeyError, AttributeError, PynamoDBException)


def _key_text(item: Any, name: str) -> str:
    """The string value of key attribute ``name`` in a stored item ('' when it has none)."""
    raw = item.get(name) if isinstance(item, dict) else None
    value = raw.get("S") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else ""


Defaults = tuple[tuple[str, Callable[[], Any]], ...]  # attribute name, default to call


def start_values(defaults: dict[str, Any], computed: Defaults) -> dict[str, Any]:
    """An entity's values before its own: the defaults, and the callable ones called (None skipped)."""
    values = dict(defaults)
    for name, default in computed:
        value = default()
        if value is not None:
            values[name] = value
    return values


class _Maker(NamedTuple):
    """How a model builds a new entity from keyword arguments (computed once per model)."""

    defaults: dict[str, Any]
    computed_defaults: Defaults
    plain: frozenset[str]  # attributes whose descriptor only stores the value
    names: frozenset[str]


class _Reader(NamedTuple):
    """How a model builds an entity from a stored item (computed once per model)."""

    # name, attr_name, type, deserialize (None: the stored value as is)
    fields: tuple[tuple[str, str, str, Callable[[Any], Any] | None], ...]
    through_descriptor: tuple[str, ...]  # attributes set through their descriptor (maps)
    discriminator: str | None  # the stored name of the model's discriminator (its type), if any
    # discriminator text -> the class PynamoDB resolved it to (a value stays with its class once
    # registered: PynamoDB refuses to give it to another)
    classes: dict[str, type[Any]]
    # a stored item -> the entity's values: its defaults, then ``fields`` read (``_read_function``)
    read: Callable[[dict[str, Any]], dict[str, Any]]



class EntityReading(Model):
    """How ``TableModel`` builds its entities (a base of ``TableModel``, with no table of its own)."""

    _reader: ClassVar[_Reader | None] = None
    _maker: ClassVar[_Maker | None] = None

    def remember_stored_values(self) -> None:
        """Called on every entity read: ``TableModel`` records what its rules watch."""

    @classmethod
    def from_raw_data(cls: type[_E], data: dict[str, Any]) -> _E:
        """An entity from a stored item; it remembers what was stored.

        ``UnreadableItem`` (naming the item's keys) when the item does not build into an entity of
        this class: a value of the wrong type, a ``Version`` that is not a non-negative integer, an
        ``EntityType`` no model declares or of another entity.
        """
        if data is None:
            raise ValueError("Received no data to construct object")
        return cls._instantiate(data)

    @classmethod
    def _instantiate(cls: type[_E], attribute_values: dict[str, dict[str, Any]]) -> _E:
        # What PynamoDB's ``_instantiate`` does (the stored type's class, its defaults, each stored
        # attribute deserialized), without building the entity twice or going through a
        # descriptor per attribute: reading a page of entities is mostly this. The try costs a good
        # item nothing; what failed is worked out again only for a bad one (``_unreadable``).
        try:
            reader = cls.__dict__.get("_reader") or cls._build_reader()
            stored_cls = None
            if reader.discriminator is not None:
                raw_type = attribute_values.get(reader.discriminator)
                text = raw_type.get("S") if type(raw_type) is dict and len(raw_type) == 1 else None
                stored_cls = reader.classes.get(text) if type(text) is str else None
                if stored_cls is None:
                    stored_cls = cls._get_discriminator_class(attribute_values)
                    if stored_cls is not None and type(text) is str:
                        reader.classes[text] = stored_cls
            if stored_cls and not issubclass(stored_cls, cls):
                raise ValueError(
                    f"Cannot instantiate a {cls.__name__} from the returned class: {stored_cls.__name__}"
                )
            model: type[_E] = stored_cls or cls
            if model is not cls:
                reader = model.__dict__.get("_reader") or model._build_reader()
            values = reader.read(attribute_values)
            entity = model.__new__(model)
            entity.attribute_values = values
            for name in reader.through_descriptor:  # maps: their descriptor wraps what deserialize gives
                if name in values:
                    setattr(entity, name, values[name])
            entity.remember_stored_values()
        except _UNREADABLE as exc:
            raise cls._unreadable(attribute_values) from exc
        return entity

    @classmethod
    def _unreadable(cls, attribute_values: Any) -> UnreadableItem:
        """The error for a stored item that does not build into a ``cls``: its keys, the model it
        was read as, and the first attribute that does not deserialize (found by trying each)."""
        keys = (_key_text(attribute_values, PK), _key_text(attribute_values, SK))
        discriminator = cls._get_discriminator_attribute()
        try:
            stored_cls = cls._get_discriminator_class(attribute_values)
        except _UNREADABLE:
            stored_cls = None
            if discriminator is not None:
                return UnreadableItem(keys, cls.__name__, discriminator.attr_name)
        if stored_cls is not None and not issubclass(stored_cls, cls):
            return UnreadableItem(keys, cls.__name__, discriminator.attr_name if discriminator else None)
        model: type[EntityReading] = stored_cls or cls
        reader = model.__dict__.get("_reader") or model._build_reader()
        probe = model.__new__(model)
        probe.attribute_values = {}
        for name, attr_name, attr_type, deserialize in reader.fields:
            try:
                raw = attribute_values.get(attr_name)
                if raw and NULL not in raw:
                    value = raw[attr_type] if deserialize is None else deserialize(raw[attr_type])
                    if name in reader.through_descriptor:
                        setattr(probe, name, value)
            except _UNREADABLE:
                return UnreadableItem(keys, model.__name__, attr_name)
        return UnreadableItem(keys, model.__name__, None)

    @classmethod
    def _defaults(cls, *, new: bool) -> tuple[dict[str, Any], Defaults]:
        """What PynamoDB gives an entity before its values: its type, then each attribute's default
        (``default_for_new`` first for a ``new`` one); the callable ones to call per entity."""
        defaults: dict[str, Any] = {}
        computed: list[tuple[str, Callable[[], Any]]] = []
        discriminator = cls._get_discriminator_attribute()
        if discriminator is not None and discriminator.get_discriminator(cls) is not None:
            defaults[cls._discriminator] = cls  # type: ignore[attr-defined]
        for name, attribute in cls.get_attributes().items():
            default = attribute.default
            if new and attribute.default_for_new is not None:
                default = attribute.default_for_new
            if callable(default):
                computed.append((name, default))
            elif default is not None:
                defaults[name] = default
        return defaults, tuple(computed)

    @classmethod
    def _build_maker(cls) -> _Maker:
        defaults, computed = cls._defaults(new=True)
        attributes = cls.get_attributes()
        plain = frozenset(name for name, attribute in attributes.items()
                          if type(attribute).__set__ is Attribute.__set__)
        maker = _Maker(defaults, computed, plain, frozenset(attributes))
        cls._maker = maker
        return maker

    @classmethod
    def _build_reader(cls) -> _Reader:
        defaults, computed = cls._defaults(new=False)
        fields = tuple((name, attribute.attr_name, attribute.attr_type, _fast_deserializer(attribute))
                       for name, attribute in cls.get_attributes().items())
        # A descriptor that only checks (the discriminator) or casts what deserialize gave already
        # (the version's int) is skipped; others (maps) wrap the value and are set through it.
        plain = (Attribute.__set__, DiscriminatorAttribute.__set__, VersionAttribute.__set__)
        through = tuple(name for name, attribute in cls.get_attributes().items()
                        if type(attribute).__set__ not in plain)
        discriminator = cls._get_discriminator_attribute()
        reader = _Reader(fields, through, discriminator.attr_name if discriminator is not None else None, {},
                         _read_function(cls.__name__, defaults, computed, fields))
        cls._reader = reader
        return reader


def _read_function(model: str, defaults: dict[str, Any], computed: Defaults,
                   fields: tuple[tuple[str, str, str, Callable[[Any], Any] | None], ...],
                   ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An entity's values from a stored item, as one function compiled once per model: the
    defaults (``start_values``), then for each field in order what PynamoDB's ``_instantiate`` does
    (a missing or NULL value skipped, a value of another type ``AttributeDeserializationError``,
    else the stored value deserialized), unrolled, so no field's description is read at each read."""
    scope: dict[str, Any] = {"defaults": defaults,
                             "AttributeDeserializationError": AttributeDeserializationError}
    lines = ["def read(item):", "    values = dict(defaults)", "    get = item.get"]
    for at, (name, default) in enumerate(computed):
        scope[f"default_{at}"] = default
        lines += [f"    value = default_{at}()", "    if value is not None:",
                  f"        values[{name!r}] = value"]
    for at, (name, attr_name, attr_type, deserialize) in enumerate(fields):
        stored = f"raw[{attr_type!r}]"
        if deserialize is not None:
            scope[f"deserialize_{at}"] = deserialize
            stored = f"deserialize_{at}({stored})"
        lines += [f"    raw = get({attr_name!r})", f"    if raw and {NULL!r} not in raw:",
                  f"        if {attr_type!r} not in raw:",
                  f"            raise AttributeDeserializationError({attr_name!r}, {attr_type!r})",
                  f"        values[{name!r}] = {stored}"]
    lines.append("    return values")
    read: Callable[[dict[str, Any]], dict[str, Any]] = compiled(lines, "read", f"<{model} reader>", scope)
    return read

