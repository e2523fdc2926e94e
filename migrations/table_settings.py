"""Table-wide settings for revision files: TTL, the stream, point-in-time recovery, billing.

Each follows DynamoDB's rule for it: TTL changes once an hour per table (the ledger remembers
when this runner changed it, so a change it knows would be refused is refused before any call,
naming when it becomes possible, and a refusal it did not foresee says what it knows); a stream's
view type changes by disabling the stream and enabling a new one (consumers must move to the
new stream ARN, and writes between the two reach no stream); PITR is skipped with a warning
where the endpoint lacks it (DynamoDB Local) and retried while a new table's backups are being
set up; billing switches at most once a day, and PROVISIONED needs capacities for every index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from migrations.calls import Caller, MigrationError, error_code, error_message
from migrations.ledger import Ledger

TTL_COOLDOWN = timedelta(hours=1)


class TTLCooldown(MigrationError):
    """DynamoDB refused a TTL change: TTL can change once an hour per table."""


def _is_ttl_cooldown(exc: ClientError) -> bool:
    message = error_message(exc).lower()
    return error_code(exc) == "ValidationException" and (
        "multiple times within a fixed interval" in message or "time to live has been modified" in message
    )


@dataclass
class TableSettings(Caller):
    """The settings operations of ``MigrationContext`` (its base class)."""

    ledger: Ledger | None = None
    revision: str = ""
    enforce_ttl_cooldown: bool | None = None  # None: where the endpoint enforces it (AWS, not Local)
    # Set by the runner when a later step of the same run deletes the table (cleared by that delete):
    # point-in-time recovery then stays on, see enable_point_in_time_recovery.
    deletes_table_later: bool = False

    def set_ttl(self, attribute: str, *, enabled: bool = True) -> None:
        """Enable (or disable) TTL on ``attribute``. DynamoDB allows one TTL change an hour."""
        current = self.ttl()
        if current is None:
            raise MigrationError(f"table {self.table_name} does not exist: cannot set its TTL")
        status, live = current.get("TimeToLiveStatus", "DISABLED"), current.get("AttributeName")
        on = status in ("ENABLED", "ENABLING")
        if enabled == on and (live == attribute or not enabled):
            self.note(
                f"TTL already {'enabled on ' + attribute if enabled else 'disabled'}: nothing to change"
            )
            return
        if enabled and on:
            raise MigrationError(
                f"TTL is enabled on {live}; DynamoDB changes TTL once an hour, so moving it to {attribute} "
                "takes two revisions an hour apart: one disables it, the next enables it on the new attribute"
            )
        what = f"{'enabling' if enabled else 'disabling'} TTL"
        if cooldown := self._cooldown_message(what, refused=False):
            if self.dry_run:
                self.note(cooldown)
            elif self._enforces_ttl_cooldown():  # it would be refused: say so before any call
                raise TTLCooldown(cooldown)
        name = attribute if enabled else (live or attribute)
        spec = {"Enabled": enabled, "AttributeName": name}
        try:
            self.call("UpdateTimeToLive", TableName=self.table_name, TimeToLiveSpecification=spec)
        except ClientError as exc:
            if _is_ttl_cooldown(exc):
                raise TTLCooldown(self._cooldown_message(what, refused=True)) from exc
            raise
        if not self.dry_run and self.ledger is not None:
            self.ledger.record_ttl_change(
                self.table_name,
                self._created(),
                enabled=enabled,
                attribute=name,
                revision=self.revision,
            )

    def set_stream(self, view_type: str | None) -> None:
        """Set the stream's view type (``None`` disables it). A view type cannot change in place:
        the stream is disabled, then enabled again, and consumers must move to the new stream ARN.
        Writes made between the disable and the enable reach no stream: consumers never see them
        (change it while writes are paused, or reconcile afterwards)."""
        table = self._require_table()
        spec = table.get("StreamSpecification") or {}
        current = spec.get("StreamViewType") if spec.get("StreamEnabled") else None
        if current == view_type:
            self.note(f"stream already {view_type or 'disabled'}: nothing to change")
            return
        if current is not None:
            if view_type is not None:
                self.note(
                    f"a stream's view type cannot change in place: disabling the {current} stream, "
                    f"then enabling a {view_type} one; writes made between the two reach no stream"
                )
            self.wait_until_active()
            self.call("UpdateTable", TableName=self.table_name, StreamSpecification={"StreamEnabled": False})
            self.wait_until_active()
        if view_type is not None:
            self.wait_until_active()
            self.call(
                "UpdateTable",
                TableName=self.table_name,
                StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type},
            )
            self.wait_until_active()
            arn = (self.table() or {}).get("LatestStreamArn", "(known once applied)")
            self.note(
                f"the stream has a new ARN, {arn}: consumers (Lambda event source mappings, "
                "KCL applications) must be pointed at it; the old stream stays readable for 24 hours"
            )

    def enable_point_in_time_recovery(self, *, enabled: bool = True) -> None:
        """Enable (or disable) PITR; where the endpoint does not support it (DynamoDB Local), warn.

        PITR is never turned off before a delete: when a later step of this run deletes the table
        (``deletes_table_later``, set by the runner from its plan of the whole run), disabling is
        skipped and PITR stays on until the table is gone. DynamoDB keeps a deleted table's PITR as
        a system backup (35 days), from which it can be restored; off first, there would be none.
        If the run stops before the delete, PITR is left on, the safe side."""
        if not enabled and self.deletes_table_later:
            self.note(
                "point-in-time recovery stays enabled: a later step deletes the table, and only with "
                "PITR on does DynamoDB keep a backup of a deleted table"
            )
            return
        try:
            if not self.dry_run:
                answer = self.client.describe_continuous_backups(TableName=self.table_name)
                pitr = answer["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
                if (pitr.get("PointInTimeRecoveryStatus") == "ENABLED") == enabled:
                    self.note(f"point-in-time recovery already {'enabled' if enabled else 'disabled'}")
                    return
            self.call(
                "UpdateContinuousBackups",
                TableName=self.table_name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled},
            )
        except ClientError as exc:
            if error_code(exc) != "UnknownOperationException":
                raise
            self.out(
                "  warning: point-in-time recovery is not supported by this endpoint "
                f"({error_code(exc)}); skipped"
            )

    def set_billing(
        self, mode: str, *, read_capacity: int | None = None, write_capacity: int | None = None
    ) -> None:
        """Switch billing to ``PAY_PER_REQUEST`` or ``PROVISIONED`` (with capacities, also for
        every GSI). DynamoDB allows one switch per table every 24 hours."""
        table = self._require_table()
        throughput = {"ReadCapacityUnits": read_capacity, "WriteCapacityUnits": write_capacity}
        live = table.get("ProvisionedThroughput", {})
        if billing_mode(table) == mode and (
            mode == "PAY_PER_REQUEST" or all(live.get(k) == v for k, v in throughput.items())
        ):
            self.note(f"billing already {mode}: nothing to change")
            return
        params: dict[str, Any] = {"TableName": self.table_name, "BillingMode": mode}
        if mode == "PROVISIONED":
            if read_capacity is None or write_capacity is None:
                raise MigrationError("PROVISIONED billing needs read_capacity and write_capacity")
            params["ProvisionedThroughput"] = throughput
            indexes = [
                {"Update": {"IndexName": i["IndexName"], "ProvisionedThroughput": throughput}}
                for i in table.get("GlobalSecondaryIndexes", [])
            ]
            if indexes:
                params["GlobalSecondaryIndexUpdates"] = indexes
        self.wait_until_active()
        self.call("UpdateTable", **params)
        self.wait_until_active()

    # -- data -----------------------------------------------------------------------------------

    # -- helpers --------------------------------------------------------------------------------

    def _require_table(self) -> dict[str, Any]:
        table = self.table()
        if table is None:
            raise MigrationError(f"table {self.table_name} does not exist")
        return table

    def _enforces_ttl_cooldown(self) -> bool:
        """Whether the endpoint refuses a second TTL change within the hour: AWS does, DynamoDB
        Local does not (so upgrade, downgrade, upgrade again works there)."""
        if self.enforce_ttl_cooldown is not None:
            return self.enforce_ttl_cooldown
        host = urlparse(str(getattr(self.client.meta, "endpoint_url", "") or "")).hostname or ""
        return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))

    def _created(self) -> str:
        return str((self.table() or {}).get("CreationDateTime", ""))

    def _cooldown_message(self, what: str, *, refused: bool) -> str:
        """Why ``what`` is (or would be) refused, naming when it becomes possible; empty if it is not."""
        last = None
        if self.ledger is not None and self.table() is not None:
            last = self.ledger.last_ttl_change(self.table_name, self._created())
        rule = "DynamoDB allows one TTL change per table per hour"
        if last is None:
            if not refused:
                return ""
            return (
                f"DynamoDB refused {what} on {self.table_name}: TTL was changed within the last hour, "
                f"not by this runner, so the ledger cannot say when; {rule}: run upgrade again up to "
                "an hour from that change"
            )
        possible = last.at + TTL_COOLDOWN
        left = (possible - datetime.now(UTC)).total_seconds()
        changed = (
            f"TTL on {self.table_name} was last changed at {last.at:%Y-%m-%d %H:%M:%S} UTC "
            f"(by revision {last.revision or 'unknown'})"
        )
        if left <= 0:
            if not refused:
                return ""
            return (
                f"DynamoDB refused {what}: {changed}, over an hour ago, yet {rule}: another change was "
                "made outside this runner since, or the last one is still in progress: try again later"
            )
        return (
            f"{changed}; {rule}, so {what} becomes possible at {possible:%Y-%m-%d %H:%M:%S} UTC, "
            f"in about {max(1, round(left / 60))} min: run upgrade again then"
        )


def billing_mode(table: dict[str, Any]) -> str:
    """The table's billing mode (DynamoDB omits it for tables that were always PROVISIONED)."""
    return str(table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"))
