"""What a control-plane call would do to a table, for ``plan`` (a dry run): each call is applied to
a simulated copy of ``DescribeTable``'s answer, so later operations see what earlier ones left."""

from __future__ import annotations

import copy
from typing import Any

ABSENT: dict[str, Any] = {}  # marker: the simulated table does not exist


def simulate(table: dict[str, Any] | None, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The table as ``operation`` would leave it (``ABSENT`` once deleted)."""
    if operation == "DeleteTable":
        return ABSENT
    if operation == "CreateTable":
        table = {
            "TableName": params["TableName"],
            "TableStatus": "ACTIVE",
            "KeySchema": params["KeySchema"],
            "AttributeDefinitions": params["AttributeDefinitions"],
            "BillingModeSummary": {"BillingMode": params.get("BillingMode", "PROVISIONED")},
            "GlobalSecondaryIndexes": [
                dict(i, IndexStatus="ACTIVE") for i in params.get("GlobalSecondaryIndexes", [])
            ],
            "_TimeToLive": {"TimeToLiveStatus": "DISABLED"},
        }
        if params.get("StreamSpecification", {}).get("StreamEnabled"):
            table["StreamSpecification"] = params["StreamSpecification"]
        return table
    table = copy.deepcopy(table) if table is not None else {}
    if operation == "UpdateTimeToLive":
        spec = params["TimeToLiveSpecification"]
        table["_TimeToLive"] = (
            {"TimeToLiveStatus": "ENABLED", "AttributeName": spec["AttributeName"]}
            if spec["Enabled"]
            else {"TimeToLiveStatus": "DISABLED"}
        )
    elif operation == "UpdateTable":
        indexes = table.setdefault("GlobalSecondaryIndexes", [])
        for update in params.get("GlobalSecondaryIndexUpdates", []):
            if "Create" in update:
                indexes.append(dict(update["Create"], IndexStatus="ACTIVE"))
            elif "Delete" in update:
                table["GlobalSecondaryIndexes"] = indexes = [
                    i for i in indexes if i["IndexName"] != update["Delete"]["IndexName"]
                ]
        if "StreamSpecification" in params:
            table["StreamSpecification"] = params["StreamSpecification"]
        if "BillingMode" in params:
            table["BillingModeSummary"] = {"BillingMode": params["BillingMode"]}
            if "ProvisionedThroughput" in params:
                table["ProvisionedThroughput"] = params["ProvisionedThroughput"]
    return table
