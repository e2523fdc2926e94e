"""A table's shape, declared or live, and the differences between two shapes (``check``).

``TableSpec`` holds what ``check`` compares: keys with their attribute types, GSIs with their keys
and projections, the TTL attribute, the stream's view type and the billing mode. ``live_spec``
reads it from DynamoDB; ``migrations.declared`` reads it from ``models/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from migrations.calls import Caller, Key, error_code


@dataclass(frozen=True)
class IndexSpec:
    """One global secondary index."""

    name: str
    keys: tuple[Key, ...]
    projection: str = "ALL"
    non_key_attributes: tuple[str, ...] = ()

    def describe(self) -> str:
        """``(Email S HASH; projection ALL)``."""
        keys = ", ".join(f"{k.name} {k.type} {k.role}" for k in self.keys)
        extra = f" {', '.join(self.non_key_attributes)}" if self.non_key_attributes else ""
        return f"({keys}; projection {self.projection}{extra})"


@dataclass(frozen=True)
class TableSpec:
    """What ``check`` compares between the models and the live table."""

    keys: tuple[Key, ...]
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None
    stream_view_type: str | None = None
    billing_mode: str = "PAY_PER_REQUEST"
    local_indexes: tuple[str, ...] = ()
    provisioned: dict[str, int] = field(default_factory=dict, compare=False)

    def index(self, name: str) -> IndexSpec | None:
        """The index called ``name``, if any."""
        return next((i for i in self.indexes if i.name == name), None)


@dataclass(frozen=True)
class Difference:
    """One way the live table differs from the declaration."""

    kind: str  # table, keys, index-missing, index-extra, index-changed, lsi, ttl, stream, billing
    subject: str
    declared: Any
    live: Any
    message: str

    def __str__(self) -> str:
        return self.message


def ordered(keys: list[Key]) -> tuple[Key, ...]:
    """Keys in DynamoDB's order: the hash key, then the range key."""
    return tuple(sorted(keys, key=lambda k: k.role != "HASH"))


def _keys(schema: list[dict[str, str]], types: dict[str, str]) -> tuple[Key, ...]:
    return ordered(
        [Key(k["AttributeName"], types.get(k["AttributeName"], "?"), k["KeyType"]) for k in schema]
    )


def live_spec(client: Any, table_name: str) -> TableSpec | None:
    """The live table's shape, or ``None`` if it does not exist."""
    table = Caller(client, table_name).describe()
    if table is None:
        return None
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    indexes = tuple(
        IndexSpec(
            i["IndexName"],
            _keys(i["KeySchema"], types),
            i["Projection"].get("ProjectionType", "ALL"),
            tuple(sorted(i["Projection"].get("NonKeyAttributes", []))),
        )
        for i in sorted(table.get("GlobalSecondaryIndexes", []), key=lambda i: str(i["IndexName"]))
    )
    try:
        ttl = client.describe_time_to_live(TableName=table_name).get("TimeToLiveDescription", {})
    except ClientError as exc:
        if error_code(exc) != "UnknownOperationException":
            raise
        ttl = {}
    stream = table.get("StreamSpecification") or {}
    throughput = table.get("ProvisionedThroughput", {})
    return TableSpec(
        keys=_keys(table["KeySchema"], types),
        indexes=indexes,
        ttl_attribute=ttl.get("AttributeName")
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
        else None,
        stream_view_type=stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
        billing_mode=table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
        local_indexes=tuple(sorted(i["IndexName"] for i in table.get("LocalSecondaryIndexes", []))),
        provisioned={
            k: int(throughput[k]) for k in ("ReadCapacityUnits", "WriteCapacityUnits") if k in throughput
        },
    )


def _fmt_keys(keys: tuple[Key, ...]) -> str:
    return ", ".join(f"{k.name} ({k.type}, {k.role})" for k in keys)


def diff(declared: TableSpec, live: TableSpec | None, table_name: str = "the table") -> list[Difference]:
    """Every difference between ``declared`` and ``live``, keys first, then indexes, then settings."""
    if live is None:
        return [Difference("table", table_name, declared, None, f"table {table_name} does not exist")]
    out: list[Difference] = []
    if declared.keys != live.keys:
        out.append(
            Difference(
                "keys",
                "keys",
                declared.keys,
                live.keys,
                f"keys: declared {_fmt_keys(declared.keys)}; live {_fmt_keys(live.keys)}",
            )
        )
    for name in sorted({i.name for i in declared.indexes} | {i.name for i in live.indexes}):
        want, have = declared.index(name), live.index(name)
        if have is None and want is not None:
            out.append(
                Difference(
                    "index-missing",
                    name,
                    want,
                    None,
                    f"index {name}: declared {want.describe()}, missing from the live table",
                )
            )
        elif want is None and have is not None:
            out.append(
                Difference(
                    "index-extra",
                    name,
                    None,
                    have,
                    f"index {name}: on the live table {have.describe()}, not declared",
                )
            )
        elif want is not None and have is not None and want != have:
            out.append(
                Difference(
                    "index-changed",
                    name,
                    want,
                    have,
                    f"index {name}: declared {want.describe()}, live {have.describe()}",
                )
            )
    if declared.local_indexes != live.local_indexes:
        out.append(
            Difference(
                "lsi",
                "local indexes",
                declared.local_indexes,
                live.local_indexes,
                f"local indexes: declared {list(declared.local_indexes)}, "
                f"live {list(live.local_indexes)} (an LSI can only be made with its table)",
            )
        )
    if declared.ttl_attribute != live.ttl_attribute:
        out.append(
            Difference(
                "ttl",
                "ttl",
                declared.ttl_attribute,
                live.ttl_attribute,
                f"TTL: declared {_on(declared.ttl_attribute)}, live {_on(live.ttl_attribute)}",
            )
        )
    if declared.stream_view_type != live.stream_view_type:
        out.append(
            Difference(
                "stream",
                "stream",
                declared.stream_view_type,
                live.stream_view_type,
                f"stream: declared {declared.stream_view_type or 'disabled'}, "
                f"live {live.stream_view_type or 'disabled'}",
            )
        )
    if declared.billing_mode != live.billing_mode:
        out.append(
            Difference(
                "billing",
                "billing",
                declared.billing_mode,
                live.billing_mode,
                f"billing: declared {declared.billing_mode}, live {live.billing_mode}",
            )
        )
    return out


def _on(attribute: str | None) -> str:
    return f"on {attribute}" if attribute else "disabled"
