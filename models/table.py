"""The one table: its settings, its keys and the attributes every entity shares, and what an
entity declares (keys, indexes, rules, queries, collections), checked when its class is created.

Every entity subclasses ``TableModel`` with a discriminator value (stored as ``EntityType``) and an
``EntityKeys`` declaration. Keys are derived from the entity's own attributes by the templates,
filled in when the entity is created and again before every write, so repositories never build
key strings by hand. An entity's indexes (``models.indexes.GlobalIndex``) add their key attributes
and templates here. The physical layout (``PK``/``SK``, the declared indexes, ``ExpiresAt``)
matches the migrations that provision the table.

How entities are built (``models.reading``) and how their items are made (``models.writing``) are
``TableModel``'s bases; every write goes through the write path (``models.planning`` builds it,
``models.sending`` sends it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pynamodb.attributes import (
    DiscriminatorAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.connection.table import TableConnection
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE, STREAM_NEW_AND_OLD_IMAGE
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from core.client import model_client
from core.config import Settings, get_settings
from core.engine import bridge
from core.errors import InvalidInput
from models import planning, sending
from models.attributes import TimestampAttribute
from models.collections import Collection
from models.indexes import GlobalIndex
from models.keys import MAX_PARTITION_KEY_BYTES, EntityKeys, KeyTemplate, compiled
from models.queries import Query
from models.reading import PK, SK, VERSION, EntityReading, start_values
from models.writing import EntityWriting, utcnow

if TYPE_CHECKING:
    from models.rules import Rule

__all__ = ["PK", "SK", "TableModel", "utcnow"]

_M = TypeVar("_M", bound="TableModel")
# (the rules it was worked out for, the watched attributes, entity -> None: records their stored values)
_Watching = tuple[tuple["Rule", ...], frozenset[str], Callable[[Any], None]]
_R = TypeVar("_R", bound="Rule")


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


class TableModel(EntityReading, EntityWriting):
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
    created_at = TimestampAttribute(attr_name="CreatedAt", null=True)
    updated_at = TimestampAttribute(attr_name="UpdatedAt", null=True)
    # optimistic locking, and the tokens of the last write and the one before it (a write re-sent
    # after a lost answer recognises its own effect by them, also after one other write)
    version = VersionAttribute(attr_name=VERSION)
    write_token = UnicodeAttribute(attr_name="WriteToken", null=True)
    prior_write_token = UnicodeAttribute(attr_name="PriorWriteToken", null=True)
    # TTL
    expires_at = TTLAttribute(attr_name="ExpiresAt", null=True)

    keys: ClassVar[EntityKeys | None] = None
    rules: ClassVar[tuple[Rule, ...]] = ()
    _connection_settings: ClassVar[Settings | None] = None
    # for the declared rules: the watched attributes, and how their stored values are recorded (``_watching``)
    _watched: ClassVar[_Watching | None] = None
    _managed: ClassVar[frozenset[str] | None] = None

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
        indexes = [value for value in vars(cls).values() if isinstance(value, GlobalIndex)]
        for index in indexes:
            index.bind(cls)
            templates.update({name: KeyTemplate(pattern, MAX_PARTITION_KEY_BYTES)
                              for name, pattern in index.derived_keys().items()})
        for key_name, template in templates.items():
            if not hasattr(cls, key_name):
                raise TypeError(f"{cls.__name__}.keys.{key_name} names no attribute of {cls.__name__}")
            for field in template.fields:
                if not hasattr(cls, field):
                    raise TypeError(
                        f"{cls.__name__}.keys.{key_name} names {field!r}, which {cls.__name__} does not have"
                    )
        cls._key_templates = templates
        cls._fill = None  # compiled at first use, once PynamoDB has collected the attributes
        for index in indexes:
            index.check_sparse(cls)
        for rule in cls.rules:
            rule.bind(cls)
        for declared in vars(cls).values():
            if isinstance(declared, Query):
                declared.bind(cls)
        for declared in vars(cls).values():
            if isinstance(declared, Collection):
                declared.bind(cls)

    def __init__(self, hash_key: Any = None, range_key: Any = None, _user_instantiated: bool = True,
                 **attributes: Any) -> None:
        if hash_key is not None or range_key is not None or not _user_instantiated:
            super().__init__(hash_key, range_key, _user_instantiated=_user_instantiated, **attributes)
        else:  # what PynamoDB's __init__ does, plain attributes stored without their descriptor
            maker = type(self).__dict__.get("_maker") or type(self)._build_maker()
            values = start_values(maker.defaults, maker.computed_defaults)
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

    @staticmethod
    def shared_attributes() -> frozenset[str]:
        """The attributes every entity has (declared by ``TableModel``)."""
        return frozenset(TableModel.get_attributes())

    @classmethod
    def managed_attributes(cls) -> frozenset[str]:
        """Attributes the write path sets itself: every one ``TableModel`` declares (keys, index
        keys, type, timestamps, version, write tokens, the TTL an ``Expires`` rule sets) and the
        keys the entity's templates derive (worked out once per class)."""
        known: frozenset[str] | None = cls.__dict__.get("_managed")
        if known is None:
            known = frozenset({*cls.shared_attributes(), *cls._key_templates})
            cls._managed = known
        return known

    @classmethod
    def watched_attributes(cls) -> frozenset[str]:
        """Attributes whose stored value a rule or a derived key depends on (worked out once for
        the declared rules)."""
        return cls._watching()[1]

    @classmethod
    def _watching(cls) -> _Watching:
        """For the declared rules: the watched attributes, and the function that records their
        stored values (``remember_stored_values``); worked out once, again when ``rules`` is replaced."""
        known: _Watching | None = cls.__dict__.get("_watched")
        if known is not None and known[0] is cls.rules:
            return known
        fields = {f for t in cls._key_templates.values() for f in t.fields}
        watched = frozenset(fields.union(*(rule.watched() for rule in cls.rules)))
        known = cls._watched = (cls.rules, watched, _remember_function(cls, sorted(watched)))
        return known

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
        type(self)._watching()[2](self)

    def forget_stored_values(self) -> None:
        """The entity is no longer stored (after a delete)."""
        self._stored_values = {}

    def deserialize(self, attribute_values: dict[str, dict[str, Any]]) -> None:
        """Load a stored item into this entity; it remembers what was stored.

        ``UnreadableItem`` when the item does not build into this entity (as ``from_raw_data``).
        """
        # Built apart first (``_instantiate``): an unreadable item leaves this entity as it was.
        fresh = type(self)._instantiate(attribute_values)
        self.attribute_values = fresh.attribute_values
        self.__dict__.pop("_derived_keys", None)
        self.remember_stored_values()

    # --- every write goes through the write path (models.planning, models.sending) ---

    def save(self, condition: Condition | None = None, *,
             add_version_condition: bool = True) -> dict[str, Any]:
        """Create or replace this entity, keeping every rule it declares (see ``models.planning``).

        ``AlreadyExists`` if a new entity's key (or a unique value) is taken, ``ConflictError`` if
        this copy is stale, ``InvalidInput`` if a rule refuses the write; nothing is written then.
        """
        self._refuse_blind(add_version_condition)
        sending.execute(lambda: planning.plan_put(self, condition), what=f"{type(self).__name__}.save")
        return {}

    def update(self, actions: list[Action], condition: Condition | None = None, *,
               add_version_condition: bool = True) -> Any:
        """Apply ``actions``, conditioned on this copy's version; derived keys move with their parts."""
        self._refuse_blind(add_version_condition)
        sending.execute(lambda: planning.plan_update(self, list(actions), condition),
                       what=f"{type(self).__name__}.update")
        return {}

    def delete(self, condition: Condition | None = None, *, add_version_condition: bool = True) -> Any:
        """Delete this entity (conditioned on its version), with what its rules do on delete."""
        self._refuse_blind(add_version_condition)
        sending.execute(lambda: planning.plan_delete(self, condition), what=f"{type(self).__name__}.delete")
        return {}

    # The same writes, awaited (``core.engine.bridge``: the code above, its calls awaited on the loop).
    asave = bridge.awaitable(save)
    aupdate = bridge.awaitable(update)
    adelete = bridge.awaitable(delete)

    @classmethod
    async def aget(cls: type[_M], hash_key: Any, range_key: Any | None = None, consistent_read: bool = False,
                   attributes_to_get: Sequence[str] | None = None) -> _M:
        """PynamoDB's ``get``, awaited: the entity at this key, or ``DoesNotExist``."""
        return await bridge.run(cls.get, hash_key, range_key, consistent_read=consistent_read,
                                attributes_to_get=attributes_to_get)

    @classmethod
    async def abatch_get(cls: type[_M], items: Iterable[Any], consistent_read: bool | None = None,
                         attributes_to_get: Sequence[str] | None = None) -> list[_M]:
        """PynamoDB's ``batch_get``, awaited: every entity found at these keys (in no set order)."""
        keys = list(items)
        return await bridge.run(lambda: list(cls.batch_get(keys, consistent_read=consistent_read,
                                                           attributes_to_get=attributes_to_get)))

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


def _remember_function(model: type[TableModel], watched: list[str]) -> Callable[[Any], None]:
    """``remember_stored_values`` for ``model``'s ``watched`` attributes, compiled once per model
    and rules: a plain attribute read from the stored values, any other through its getter (a
    property computed from attributes, such as a metric's day)."""
    entries = "".join(
        f"{name!r}: values.get({name!r}), " if model._read_plainly(name) else f"{name!r}: entity.{name}, "
        for name in watched
    )
    lines = ["def remember(entity):", "    values = entity.attribute_values",
             f"    entity._stored_values = {{{entries}}}"]
    remember: Callable[[Any], None] = compiled(lines, "remember", f"<{model.__name__} stored values>", {})
    return remember

