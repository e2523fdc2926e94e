"""The ledger: which revisions were applied, what happened when, TTL changes, backfill checkpoints.

It lives in its own small table, ``<TABLE_NAME>-migrations`` (hash key ``PK``), because the first
revision creates the application table and the ledger must exist before it. The item layout is
drawn in the package docstring (``migrations/__init__.py``); the lock is in ``lock.py``.
"""

from __future__ import annotations

import json
import uuid
from base64 import b64decode, b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from migrations.calls import Caller, error_code
from migrations.lock import Lease, Lock

_METHODS = {"Put": "put_item", "Delete": "delete_item", "Update": "update_item"}

REVISION_PREFIX = "REVISION#"
EVENT_PREFIX = "EVENT#"
TTL_PREFIX = "TTL#"
BACKFILL_PREFIX = "BACKFILL#"


@dataclass(frozen=True)
class TTLChange:
    """The last TTL change this runner made on a table."""

    at: datetime
    enabled: bool
    attribute: str
    revision: str


@dataclass
class SegmentCheckpoint:
    """Where one scan segment of a backfill stands, and what it counted so far."""

    segment: int
    position: dict[str, Any] | None = None  # the scan's LastEvaluatedKey; None: from the start
    done: bool = False
    scanned: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)  # {"key": json, "reason": text}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: next(iter(v.values())) for k, v in item.items()}


def encode_key(key: dict[str, Any]) -> str:
    """A DynamoDB key (wire format) as JSON text; binary values are base64-encoded."""

    def default(value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            return {"__base64__": b64encode(value).decode()}
        raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")

    return json.dumps(key, default=default, sort_keys=True)


def decode_key(text: str) -> dict[str, Any]:
    """The inverse of ``encode_key``."""

    def hook(obj: dict[str, Any]) -> Any:
        return b64decode(obj["__base64__"]) if set(obj) == {"__base64__"} else obj

    decoded: dict[str, Any] = json.loads(text, object_hook=hook)
    return decoded


class Ledger:
    """Read and write the ledger table (and, through ``lock``, its lease)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name
        self.lock = Lock(client, table_name)
        self.lease: Lease | None = None

    # -- fenced writes --------------------------------------------------------------------------

    def fence(self, lease: Lease | None) -> None:
        """Make every later write conditional on ``lease`` still holding the lock (``None``: not)."""
        self.lease = lease

    def _write(self, operation: str, **params: Any) -> None:
        """One write (``Put``, ``Delete`` or ``Update``) to the ledger table. When fenced, it is a
        ``TransactWriteItems`` with a ``ConditionCheck`` that the lock item names our lease's owner
        and has not expired; if not, nothing is written and ``LockLost`` is raised."""
        lease = self.lease
        if lease is None:
            getattr(self.client, _METHODS[operation])(TableName=self.table_name, **params)
            return
        self.lock.fenced_write(lease, operation, params)

    # -- the table ------------------------------------------------------------------------------

    def exists(self) -> bool:
        """True if the ledger table exists."""
        return Caller(self.client, self.table_name).describe() is not None

    def ensure(self) -> None:
        """Create the ledger table if it does not exist yet."""
        caller = Caller(self.client, self.table_name, out=lambda _: None)
        if caller.describe() is None:
            try:
                caller.call(
                    "CreateTable",
                    TableName=self.table_name,
                    KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as exc:  # another runner created it first
                if error_code(exc) != "ResourceInUseException":
                    raise
        caller.wait_until_active()

    def _items(self, prefix: str) -> Iterator[dict[str, Any]]:
        if not self.exists():
            return
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": True,
            "FilterExpression": "begins_with(PK, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": prefix}},
        }
        while True:
            page = self.client.scan(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _get(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.client.get_item(
            TableName=self.table_name, Key={"PK": {"S": pk}}, ConsistentRead=True
        ).get("Item")
        return item

    # -- revisions and events -------------------------------------------------------------------

    def records(self) -> dict[str, dict[str, Any]]:
        """Revision id -> its ledger record (plain values), for every recorded revision."""
        return {_plain(i)["Revision"]: _plain(i) for i in self._items(REVISION_PREFIX)}

    def applied(self) -> set[str]:
        """Ids of the revisions recorded as applied."""
        return {rev for rev, rec in self.records().items() if rec.get("Status") == "applied"}

    def record(
        self,
        revision: str,
        status: str,
        message: str,
        *,
        by: str = "",
        error: str | None = None,
        action: str = "upgrade",
    ) -> None:
        """Record a revision's state (``running``, ``applied``, ``failed``) and log the event."""
        item = {
            "PK": {"S": REVISION_PREFIX + revision},
            "Revision": {"S": revision},
            "Status": {"S": status},
            "Message": {"S": message},
            "At": {"S": _now()},
            "By": {"S": by},
        }
        if error:
            item["Error"] = {"S": error[-4000:]}
        self._write("Put", Item=item)
        if status != "running":
            self.log(revision, action, status, by=by, error=error)

    def forget(self, revision: str, *, by: str = "", outcome: str = "reverted") -> None:
        """Remove a revision's record (it was reverted, or an unfinished run was abandoned by a
        downgrade below it) with its backfill checkpoints, and log the event."""
        self._write("Delete", Key={"PK": {"S": REVISION_PREFIX + revision}})
        self.clear_backfills(revision)
        self.log(revision, "downgrade", outcome, by=by)

    def log(
        self, revision: str, action: str, outcome: str, *, by: str = "", error: str | None = None
    ) -> None:
        """Append one event to the history (never overwritten)."""
        at = _now()
        item = {
            "PK": {"S": f"{EVENT_PREFIX}{at}#{uuid.uuid4().hex[:8]}"},
            "Revision": {"S": revision},
            "Action": {"S": action},
            "Outcome": {"S": outcome},
            "At": {"S": at},
            "By": {"S": by},
        }
        if error:
            item["Error"] = {"S": error.strip().splitlines()[-1][:500]}
        self._write("Put", Item=item)

    def events(self) -> list[dict[str, Any]]:
        """Every logged event, oldest first."""
        return sorted((_plain(i) for i in self._items(EVENT_PREFIX)), key=lambda e: str(e["PK"]))

    # -- TTL changes ----------------------------------------------------------------------------

    def record_ttl_change(
        self, table: str, created: str, *, enabled: bool, attribute: str, revision: str
    ) -> None:
        """Remember when TTL changed on ``table`` (one incarnation of it, named by its creation)."""
        self._write(
            "Put",
            Item={
                "PK": {"S": TTL_PREFIX + table},
                "TableCreatedAt": {"S": created},
                "ChangedAt": {"S": _now()},
                "Enabled": {"BOOL": enabled},
                "AttributeName": {"S": attribute},
                "Revision": {"S": revision},
            },
        )

    def last_ttl_change(self, table: str, created: str) -> TTLChange | None:
        """The last TTL change recorded for this incarnation of ``table``."""
        item = self._get(TTL_PREFIX + table) if self.exists() else None
        if item is None or item["TableCreatedAt"]["S"] != created:
            return None
        return TTLChange(
            datetime.fromisoformat(item["ChangedAt"]["S"]),
            item["Enabled"]["BOOL"],
            item["AttributeName"]["S"],
            item["Revision"]["S"],
        )

    # -- backfill checkpoints -------------------------------------------------------------------

    def start_backfill(self, revision: str, name: str, segments: int) -> tuple[str, int, bool]:
        """(run id, segment count, resumed) of a backfill: a new run, or the one to resume."""
        pk = f"{BACKFILL_PREFIX}{revision}#{name}"
        existing = self._get(pk)
        if existing is not None:
            return existing["RunId"]["S"], int(existing["Segments"]["N"]), True
        run_id = f"{revision}:{name}:{uuid.uuid4().hex[:12]}"
        self._write(
            "Put",
            Item={
                "PK": {"S": pk},
                "Revision": {"S": revision},
                "Name": {"S": name},
                "RunId": {"S": run_id},
                "Segments": {"N": str(segments)},
                "StartedAt": {"S": _now()},
                "Status": {"S": "running"},
            },
        )
        return run_id, segments, False

    def finish_backfill(self, revision: str, name: str, status: str = "done") -> None:
        """Mark a backfill run as finished (``done``) or ``failed``."""
        self._write(
            "Update",
            Key={"PK": {"S": f"{BACKFILL_PREFIX}{revision}#{name}"}},
            UpdateExpression="SET #s = :s, FinishedAt = :at",
            ExpressionAttributeNames={"#s": "Status"},
            ExpressionAttributeValues={":s": {"S": status}, ":at": {"S": _now()}},
        )

    def load_segment(self, revision: str, name: str, segment: int) -> SegmentCheckpoint:
        """The checkpoint of one segment (a fresh one if it never saved any)."""
        item = self._get(f"{BACKFILL_PREFIX}{revision}#{name}#{segment}")
        if item is None:
            return SegmentCheckpoint(segment)
        return SegmentCheckpoint(
            segment=segment,
            position=decode_key(item["Position"]["S"]) if "Position" in item else None,
            done=item["Done"]["BOOL"],
            scanned=int(item["Scanned"]["N"]),
            updated=int(item["Updated"]["N"]),
            unchanged=int(item["Unchanged"]["N"]),
            failures=[json.loads(f["S"]) for f in item.get("Failures", {}).get("L", [])],
        )

    def save_segment(self, revision: str, name: str, checkpoint: SegmentCheckpoint) -> None:
        """Save one segment's position and counts (after every page it finished)."""
        item: dict[str, Any] = {
            "PK": {"S": f"{BACKFILL_PREFIX}{revision}#{name}#{checkpoint.segment}"},
            "Revision": {"S": revision},
            "Name": {"S": name},
            "Segment": {"N": str(checkpoint.segment)},
            "Done": {"BOOL": checkpoint.done},
            "Scanned": {"N": str(checkpoint.scanned)},
            "Updated": {"N": str(checkpoint.updated)},
            "Unchanged": {"N": str(checkpoint.unchanged)},
            "Failed": {"N": str(len(checkpoint.failures))},
            "SavedAt": {"S": _now()},
            "Failures": {"L": [{"S": json.dumps(f, sort_keys=True)} for f in checkpoint.failures]},
        }
        if checkpoint.position is not None:
            item["Position"] = {"S": encode_key(checkpoint.position)}
        self._write("Put", Item=item)

    def backfills(self, revision: str | None = None) -> list[dict[str, Any]]:
        """Every backfill header and segment checkpoint (plain values), optionally of one revision."""
        prefix = BACKFILL_PREFIX + (f"{revision}#" if revision else "")
        return sorted((_plain(i) for i in self._items(prefix)), key=lambda i: str(i["PK"]))

    def clear_backfills(self, revision: str) -> None:
        """Delete the checkpoints of ``revision``'s backfills (it was reverted: a new run starts over)."""
        for item in self.backfills(revision):
            self._write("Delete", Key={"PK": {"S": item["PK"]}})
