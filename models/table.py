"""The one table: its settings, keys, shared attributes and global secondary indexes.

Every entity subclasses ``TableModel`` with a discriminator value (stored as ``EntityType``) and an
``EntityKeys`` declaration. Keys are derived from the entity's own attributes by the templates,
filled in when the entity is created and again before every write, so repositories never build
key strings by hand. The physical layout (``PK``/``SK``, ``GSI1``, ``Email-Index``, ``ExpiresAt``)
matches the migrations that provision the table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, TypeVar

from pynamodb.attributes import (
    Attribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.connection.table import TableConnection
from pynamodb.constants import NULL, PAY_PER_REQUEST_BILLING_MODE, STREAM_NEW_AND_OLD_IMAGE
from pynamodb.exceptions import AttributeDeserializationError, AttributeNullError, PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb_attributes import UnicodeDatetimeAttribute

from core.client import model_client
from core.config import Settings, get_settings
from core.errors import InvalidInput, UnreadableItem
from models import writes
from models.actions import check_numbers
from models.keys import EntityKeys, KeyTemplate
from models.queries import Query
from models.rules import Rule

_M = TypeVar("_M", bound="TableModel")
_R = TypeVar("_R", bound=Rule)

PK = "PK"
SK = "SK"
GSI1_NAME = "GSI1"
EMAIL_INDEX_NAME = "Email-Index"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class _SettingsFromEnvironment(type):
    """``Meta``'s metaclass: table name, endpoint and region are read when used, not at import."""

    @property
    def table_name(cls) -> str:
        return get_settings().table_name

    @property
    def host(cls) -> str | None:
        return get_settings().endpoint_url

    @property
    def region(cls) -> str | None:
        return get_settings().region

    @property
    def max_retry_attempts(cls) -> int:
        return get_settings().max_retry_attempts

    @property
    def connect_timeout_seconds(cls) -> float:
        return get_settings().connect_timeout_seconds

    @property
    def read_timeout_seconds(cls) -> float:
        return get_settings().read_timeout_seconds


class TableIndex(GlobalSecondaryIndex[_M]):  # type: ignore[no-untyped-call]
    """A global secondary index of the table, typed to its entity: subclass it with a ``Meta``
    (``index_name``, ``projection``) and the key attributes, as ``GSI1`` does.

    PynamoDB's ``Index.__init_subclass__`` is untyped, so ``mypy --strict`` refuses a subclass of
    ``GlobalSecondaryIndex`` (``no-untyped-call``); this class types it once for every index.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # type: ignore[no-untyped-call]


class GSI1(TableIndex[_M]):
    """The overloaded index: ``GSI1PK`` (for example ``STATUS#PAID``) and the table's ``SK``."""

    class Meta:
        index_name = GSI1_NAME
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True, attr_name="GSI1PK")
    sk = UnicodeAttribute(range_key=True, attr_name=SK)


class EmailIndex(TableIndex[_M]):
    """Sparse index on ``Email``: only items that carry an email (users) appear in it."""

    class Meta:
        index_name = EMAIL_INDEX_NAME
        projection = AllProjection()

    email = UnicodeAttribute(hash_key=True, attr_name="Email")


def _fast_deserializer(attribute: Attribute[Any]) -> Callable[[Any], Any] | None:
    """``attribute.deserialize``, or what gives the same for less: nothing for an attribute that
    keeps the stored value as is (strings), ``_read_version`` for a version."""
    deserialize = type(attribute).deserialize
    if deserialize is Attribute.deserialize:
        return None
    if deserialize is VersionAttribute.deserialize:
        return _read_version
    return attribute.deserialize


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


def _start_values(defaults: dict[str, Any], computed: Defaults) -> dict[str, Any]:
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

    defaults: dict[str, Any]
    computed_defaults: Defaults
    # name, attr_name, type, deserialize (None: the stored value as is)
    fields: tuple[tuple[str, str, str, Callable[[Any], Any] | None], ...]
    through_descriptor: tuple[str, ...]  # attributes set through their descriptor (maps)


class _Writer(NamedTuple):
    """How a model serializes an entity for a write (computed once per model)."""

    # name, attr_name, type, serialize, null allowed, container (serialized the way PynamoDB does)
    fields: tuple[tuple[str, str, str, Callable[[Any], Any], bool, bool], ...]


class TableModel(Model):
    """Base of every entity stored in the single table."""

    class Meta(metaclass=_SettingsFromEnvironment):
        # What the migrations' `check` compares with the live table (PynamoDB's own Meta names).
        billing_mode = PAY_PER_REQUEST_BILLING_MODE
        stream_view_type = STREAM_NEW_AND_OLD_IMAGE

    # keys
    pk = UnicodeAttribute(hash_key=True, attr_name=PK)
    sk = UnicodeAttribute(range_key=True, attr_name=SK)
    # data shared by every entity
    entity_type = DiscriminatorAttribute(attr_name="EntityType")
    created_at = UnicodeDatetimeAttribute(attr_name="CreatedAt", force_utc=True, null=True)
    updated_at = UnicodeDatetimeAttribute(attr_name="UpdatedAt", force_utc=True, null=True)
    # index keys (GSI1's sort key is the table's SK)
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK", null=True)
    # optimistic locking, and the tokens of the last write and the one before it (a write re-sent
    # after a lost answer recognises its own effect by them, also after one other write)
    version = VersionAttribute(attr_name="Version")
    write_token = UnicodeAttribute(attr_name="WriteToken", null=True)
    prior_write_token = UnicodeAttribute(attr_name="PriorWriteToken", null=True)
    # TTL
    expires_at = TTLAttribute(attr_name="ExpiresAt", null=True)

    keys: ClassVar[EntityKeys | None] = None
    rules: ClassVar[tuple[Rule, ...]] = ()
    _key_templates: ClassVar[dict[str, KeyTemplate]] = {}
    _connection_settings: ClassVar[Settings | None] = None
    _reader: ClassVar[_Reader | None] = None
    _maker: ClassVar[_Maker | None] = None
    _watched: ClassVar[tuple[tuple[Rule, ...], frozenset[str]] | None] = None
    _managed: ClassVar[frozenset[str] | None] = None
    _writer: ClassVar[_Writer | None] = None
    _key_fields: ClassVar[tuple[tuple[str, bool], ...] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check the key templates and rules when the class is created, not at the first write."""
        super().__init_subclass__(**kwargs)
        # A connection of its own: an entity's indexes are part of the connection PynamoDB builds.
        cls._connection = None
        cls._connection_settings = None
        cls._reader = None
        cls._maker = None
        cls._writer = None
        if cls.keys is None:
            return
        templates = cls.keys.templates()
        for key_name, template in templates.items():
            if not hasattr(cls, key_name):
                raise TypeError(f"{cls.__name__}.keys.{key_name} names no attribute of {cls.__name__}")
            for field in template.fields:
                if not hasattr(cls, field):
                    raise TypeError(
                        f"{cls.__name__}.keys.{key_name} names {field!r}, which {cls.__name__} does not have"
                    )
        cls._key_templates = templates
        cls._key_fields = None  # known once PynamoDB has collected the attributes (after this hook)
        for rule in cls.rules:
            rule.bind(cls)
        for declared in vars(cls).values():
            if isinstance(declared, Query):
                declared.bind(cls)

    def __init__(self, hash_key: Any = None, range_key: Any = None, _user_instantiated: bool = True,
                 **attributes: Any) -> None:
        if hash_key is not None or range_key is not None or not _user_instantiated:
            super().__init__(hash_key, range_key, _user_instantiated=_user_instantiated, **attributes)
        else:  # what PynamoDB's __init__ does, plain attributes stored without their descriptor
            maker = type(self).__dict__.get("_maker") or type(self)._build_maker()
            values = _start_values(maker.defaults, maker.computed_defaults)
            self.attribute_values = values
            for name, value in attributes.items():
                if name in maker.plain:
                    values[name] = value
                elif name in maker.names:
                    setattr(self, name, value)
                else:
                    raise ValueError(f"Attribute {name} specified does not exist")
        self._stored_values: dict[str, Any] = {}
        if _user_instantiated and self._key_templates:
            self.fill_keys(partial=True)

    # --- declarations, as the write path reads them ---

    @classmethod
    def key_templates(cls) -> dict[str, KeyTemplate]:
        """Python attribute name -> template, for every key the entity fills in."""
        return cls._key_templates

    @classmethod
    def key_template(cls, key_name: str) -> KeyTemplate:
        """The template of one of this entity's keys (``pk``, ``sk``, ``gsi1pk``, ...)."""
        return cls._key_templates[key_name]

    @classmethod
    def rule(cls, kind: type[_R]) -> _R | None:
        """The declared rule of this kind, if any."""
        return next((r for r in cls.rules if isinstance(r, kind)), None)

    @classmethod
    def managed_attributes(cls) -> frozenset[str]:
        """Attributes the write path sets itself: every one ``TableModel`` declares (keys, index
        keys, type, timestamps, version, write tokens, the TTL an ``Expires`` rule sets) and the
        keys the entity's templates derive (worked out once per class)."""
        known: frozenset[str] | None = cls.__dict__.get("_managed")
        if known is None:
            known = frozenset({*TableModel.get_attributes(), *cls._key_templates})
            cls._managed = known
        return known

    @classmethod
    def watched_attributes(cls) -> frozenset[str]:
        """Attributes whose stored value a rule or a derived key depends on (worked out once for
        the declared rules)."""
        known: tuple[tuple[Rule, ...], frozenset[str]] | None = cls.__dict__.get("_watched")
        if known is not None and known[0] is cls.rules:
            return known[1]
        fields = {f for t in cls._key_templates.values() for f in t.fields}
        watched = frozenset(fields.union(*(rule.watched() for rule in cls.rules)))
        cls._watched = (cls.rules, watched)
        return watched

    @staticmethod
    def now() -> datetime:
        """The time the write path stamps on a write (UTC)."""
        return utcnow()

    # --- what the table held when the entity was last read or written ---

    def stored_values(self) -> dict[str, Any]:
        """The values of the watched attributes as last read from, or written to, the table."""
        stored: dict[str, Any] = self.__dict__.get("_stored_values", {})
        return stored

    def remember_stored_values(self) -> None:
        """Record the watched attributes' values as stored (after a read or a write)."""
        self._stored_values = {name: getattr(self, name) for name in self.watched_attributes()}

    def forget_stored_values(self) -> None:
        """The entity is no longer stored (after a delete)."""
        self._stored_values = {}

    @classmethod
    def from_raw_data(cls: type[_M], data: dict[str, Any]) -> _M:
        """An entity from a stored item; it remembers what was stored.

        ``UnreadableItem`` (naming the item's keys) when the item does not build into an entity of
        this class: a value of the wrong type, a ``Version`` that is not a non-negative integer, an
        ``EntityType`` no model declares or of another entity.
        """
        if data is None:
            raise ValueError("Received no data to construct object")
        return cls._instantiate(data)

    @classmethod
    def _instantiate(cls: type[_M], attribute_values: dict[str, dict[str, Any]]) -> _M:
        # What PynamoDB's ``_instantiate`` does (the stored type's class, its defaults, each stored
        # attribute deserialized), without building the entity twice or going through a
        # descriptor per attribute: reading a page of entities is mostly this. The try costs a good
        # item nothing; what failed is worked out again only for a bad one (``_unreadable``).
        try:
            stored_cls = cls._get_discriminator_class(attribute_values)
            if stored_cls and not issubclass(stored_cls, cls):
                raise ValueError(
                    f"Cannot instantiate a {cls.__name__} from the returned class: {stored_cls.__name__}"
                )
            model: type[_M] = stored_cls or cls
            reader = model.__dict__.get("_reader") or model._build_reader()
            values = _start_values(reader.defaults, reader.computed_defaults)
            for name, attr_name, attr_type, deserialize in reader.fields:
                raw = attribute_values.get(attr_name)
                if raw and NULL not in raw:
                    if attr_type not in raw:
                        raise AttributeDeserializationError(attr_name, attr_type)
                    values[name] = raw[attr_type] if deserialize is None else deserialize(raw[attr_type])
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
        model: type[TableModel] = stored_cls or cls
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
        reader = _Reader(defaults, computed, fields, through)
        cls._reader = reader
        return reader

    def deserialize(self, attribute_values: dict[str, dict[str, Any]]) -> None:
        """Load a stored item into this entity; it remembers what was stored.

        ``UnreadableItem`` when the item does not build into this entity (as ``from_raw_data``).
        """
        # Built apart first (``_instantiate``): an unreadable item leaves this entity as it was.
        fresh = type(self)._instantiate(attribute_values)
        self.attribute_values = fresh.attribute_values
        self.__dict__.pop("_derived_keys", None)
        self.remember_stored_values()

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
        if derived is not None and derived[0] == values and all(
                stored.get(key_name) == key for key_name, key in derived[1].items()):
            return  # nothing they are made of changed, and nobody replaced them
        complete = True
        for key_name, template in self._key_templates.items():
            if any(values.get(f) is None for f in template.fields):
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
            if container:
                value = self._serialize_container(name, null_check)
            else:
                value = values.get(name)
                if value is not None:
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
            # VersionAttribute's getter casts a float to int, which its serialize does too.
            container = (isinstance(attribute, (ListAttribute, MapAttribute))
                         or getter not in (Attribute.__get__, VersionAttribute.__get__))
            fields.append((name, attribute.attr_name, attribute.attr_type, attribute.serialize,
                           bool(attribute.null), container))
        writer = _Writer(tuple(fields))
        cls._writer = writer
        return writer

    # --- every write goes through the write path (models.writes) ---

    def save(self, condition: Condition | None = None, *,
             add_version_condition: bool = True) -> dict[str, Any]:
        """Create or replace this entity, keeping every rule it declares (see ``models.writes``).

        ``AlreadyExists`` if a new entity's key (or a unique value) is taken, ``ConflictError`` if
        this copy is stale, ``InvalidInput`` if a rule refuses the write; nothing is written then.
        """
        self._refuse_blind(add_version_condition)
        writes.execute(lambda: writes.plan_put(self, condition), what=f"{type(self).__name__}.save")
        return {}

    def update(self, actions: list[Action], condition: Condition | None = None, *,
               add_version_condition: bool = True) -> Any:
        """Apply ``actions``, conditioned on this copy's version; derived keys move with their parts."""
        self._refuse_blind(add_version_condition)
        writes.execute(lambda: writes.plan_update(self, list(actions), condition),
                       what=f"{type(self).__name__}.update")
        return {}

    def delete(self, condition: Condition | None = None, *, add_version_condition: bool = True) -> Any:
        """Delete this entity (conditioned on its version), with what its rules do on delete."""
        self._refuse_blind(add_version_condition)
        writes.execute(lambda: writes.plan_delete(self, condition), what=f"{type(self).__name__}.delete")
        return {}

    def _refuse_blind(self, add_version_condition: bool) -> None:
        if not add_version_condition:
            raise InvalidInput("writes are always conditioned on the version read (optimistic locking)")

    # PynamoDB's own TransactWrite builds its items with these. It cannot keep what the write path
    # keeps (one operation per item with checks merged, refusals as the layer's errors, values
    # DynamoDB computes read back), so it is refused, naming the transaction that does.
    _TRANSACT_WRITE = ("PynamoDB's TransactWrite cannot keep the entity's rules (merged checks, typed "
                       "refusals); compose the write with models.transaction() instead")

    def get_save_kwargs_from_instance(
        self, condition: Condition | None = None, return_values_on_condition_failure: str | None = None
    ) -> dict[str, Any]:
        """Refused: PynamoDB's ``TransactWrite`` (use ``models.transaction()``)."""
        raise InvalidInput(self._TRANSACT_WRITE)

    def get_update_kwargs_from_instance(self, actions: list[Action], condition: Condition | None = None,
                                        return_values_on_condition_failure: str | None = None, *,
                                        add_version_condition: bool = True) -> dict[str, Any]:
        """Refused: PynamoDB's ``TransactWrite`` (use ``models.transaction()``)."""
        raise InvalidInput(self._TRANSACT_WRITE)

    def get_delete_kwargs_from_instance(self, condition: Condition | None = None,
                                        return_values_on_condition_failure: str | None = None, *,
                                        add_version_condition: bool = True) -> dict[str, Any]:
        """Refused: PynamoDB's ``TransactWrite`` (use ``models.transaction()``)."""
        raise InvalidInput(self._TRANSACT_WRITE)

    @classmethod
    def get_operation_kwargs_from_class(cls, hash_key: Any, range_key: Any | None = None,
                                        condition: Condition | None = None) -> dict[str, Any]:
        """PynamoDB's ``TransactGet`` reads through this; its ``TransactWrite.condition_check`` is
        refused (use ``models.transaction()``'s ``condition_check``)."""
        if condition is not None:
            raise InvalidInput(cls._TRANSACT_WRITE)
        kwargs: dict[str, Any] = super().get_operation_kwargs_from_class(hash_key, range_key=range_key)
        return kwargs

    @classmethod
    def batch_write(cls: type[_M], auto_commit: bool = True) -> Any:
        """Refused: PynamoDB's batch writer neither checks versions nor keeps rules."""
        raise InvalidInput(f"use repositories.batch.batch_write to write {cls.__name__} entities in batches")

    @classmethod
    def _get_connection(cls) -> TableConnection:
        # PynamoDB caches a connection per class forever; rebuild it when the settings change
        # (another endpoint, region or table: ``reload_settings`` gives a new object), and log
        # every call made through it. While they stay, this is one identity check.
        settings = get_settings()
        connection = cls._connection
        if connection is not None and cls._connection_settings is settings:
            return connection
        if connection is not None and cls._connection_settings != settings:
            cls._connection = None
        if cls._connection is None:
            connection = super()._get_connection()
            # Share one instrumented client across entities (PynamoDB checks ``_client`` before
            # building its own).
            connection.connection._client = model_client(settings)
        cls._connection_settings = settings
        return super()._get_connection()
