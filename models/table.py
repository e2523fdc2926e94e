"""The one table: its settings, keys, shared attributes and global secondary indexes.

Every entity subclasses ``TableModel`` with a discriminator value (stored as ``EntityType``) and an
``EntityKeys`` declaration. Keys are derived from the entity's own attributes by the templates,
filled in when the entity is created and again before every write, so repositories never build
key strings by hand. The physical layout (``PK``/``SK``, ``GSI1``, ``Email-Index``, ``ExpiresAt``)
matches the migrations that provision the table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pynamodb.attributes import (
    DiscriminatorAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.connection.table import TableConnection
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE, STREAM_NEW_AND_OLD_IMAGE
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb_attributes import UnicodeDatetimeAttribute

from core.client import model_client
from core.config import Settings, get_settings
from models.keys import EntityKeys, KeyTemplate

_M = TypeVar("_M", bound="TableModel")

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


class GSI1(GlobalSecondaryIndex[_M]):  # type: ignore[no-untyped-call]
    """The overloaded index: ``GSI1PK`` (for example ``STATUS#PAID``) and the table's ``SK``."""

    class Meta:
        index_name = GSI1_NAME
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True, attr_name="GSI1PK")
    sk = UnicodeAttribute(range_key=True, attr_name=SK)


class EmailIndex(GlobalSecondaryIndex[_M]):  # type: ignore[no-untyped-call]
    """Sparse index on ``Email``: only items that carry an email (users) appear in it."""

    class Meta:
        index_name = EMAIL_INDEX_NAME
        projection = AllProjection()

    email = UnicodeAttribute(hash_key=True, attr_name="Email")


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
    # optimistic locking
    version = VersionAttribute(attr_name="Version")
    # TTL
    expires_at = TTLAttribute(attr_name="ExpiresAt", null=True)

    keys: ClassVar[EntityKeys | None] = None
    _key_templates: ClassVar[dict[str, KeyTemplate]] = {}
    _connection_settings: ClassVar[Settings | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check the key templates when the class is created, not at the first query."""
        super().__init_subclass__(**kwargs)
        if cls.keys is None:
            return
        templates = cls.keys.templates()
        for key_name, template in templates.items():
            for field in template.fields:
                if not hasattr(cls, field):
                    raise TypeError(
                        f"{cls.__name__}.keys.{key_name} names {field!r}, which {cls.__name__} does not have"
                    )
        cls._key_templates = templates

    def __init__(self, hash_key: Any = None, range_key: Any = None, _user_instantiated: bool = True,
                 **attributes: Any) -> None:
        super().__init__(hash_key, range_key, _user_instantiated=_user_instantiated, **attributes)
        if _user_instantiated and self._key_templates:
            self.fill_keys(partial=True)

    def key_values(self) -> dict[str, Any]:
        """The values the key templates read, taken from this entity."""
        fields = {f for t in self._key_templates.values() for f in t.fields}
        return {f: getattr(self, f) for f in fields}

    def fill_keys(self, *, partial: bool = False) -> None:
        """Derive ``PK``, ``SK`` and index keys from the entity's attributes.

        With ``partial``, keys whose parts are not all set yet are skipped; a part that is set but
        invalid still raises ``InvalidKey``.
        """
        values = self.key_values()
        for key_name, template in self._key_templates.items():
            if partial and any(values.get(f) is None for f in template.fields):
                continue
            setattr(self, key_name, template.compose(**values))

    def serialize(self, null_check: bool = True) -> dict[str, dict[str, Any]]:
        """Serialize for a write: fill in keys and timestamps first."""
        if self._key_templates:
            self.fill_keys()
        now = utcnow()
        if self.created_at is None:
            self.created_at = now
        self.updated_at = now
        return super().serialize(null_check=null_check)

    @classmethod
    def key_template(cls, key_name: str) -> KeyTemplate:
        """The template of one of this entity's keys (``pk``, ``sk``, ``gsi1pk``)."""
        return cls._key_templates[key_name]

    @classmethod
    def _get_connection(cls) -> TableConnection:
        # PynamoDB caches a connection per class forever; rebuild it when the settings change
        # (another endpoint, region or table), and log every call made through it.
        settings = get_settings()
        if cls._connection is not None and cls._connection_settings != settings:
            cls._connection = None
        if cls._connection is None:
            connection = super()._get_connection()
            # Share one instrumented client across entities (PynamoDB checks ``_client`` before
            # building its own).
            connection.connection._client = model_client(settings)
        cls._connection_settings = settings
        return super()._get_connection()
