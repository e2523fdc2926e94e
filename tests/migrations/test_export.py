"""``export``: the declared table as CloudFormation and SAM templates that cfn-lint accepts; the
CloudFormation one, deployed (on moto), makes the table ``runner.upgrade`` builds (on DynamoDB
Local)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.api import ManualArgs, lint
from moto import mock_aws

from core.client import new_client
from core.config import DEFAULT_TABLE_NAME, Settings
from migrations import __main__ as cli
from migrations import export, policy, runner
from migrations.calls import Key, MigrationError
from migrations.declared import declared_spec
from migrations.schema import IndexSpec, TableSpec
from tests.migrations.helpers import quiet

REGION = "us-east-1"


def lint_errors(body: dict[str, Any]) -> list[str]:
    """cfn-lint's errors (not its warnings or notes) about the template ``body``."""
    matches = lint(export.render(body), config=ManualArgs(regions=[REGION]))
    return [str(match) for match in matches if match.rule.id.startswith("E")]


def shape(table: dict[str, Any]) -> dict[str, Any]:
    """What a deployed table and a migrated one must agree on, from ``describe_table``, as plain
    values in a fixed order."""
    stream = table.get("StreamSpecification") or {}
    return {
        "keys": table["KeySchema"],
        "attributes": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "indexes": {
            index["IndexName"]: {
                "keys": index["KeySchema"],
                "projection": index["Projection"]["ProjectionType"],
                "non_key_attributes": sorted(index["Projection"].get("NonKeyAttributes", [])),
            }
            for index in table.get("GlobalSecondaryIndexes", [])
        },
        "billing": table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
        "stream": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
    }


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_cfn_lint_finds_no_error_in_the_template(fmt: str) -> None:
    assert lint_errors(export.template(fmt)) == []


def test_cfn_lint_finds_an_error_in_a_broken_template() -> None:
    """The lint is not a no-op: an index keyed on an undefined attribute is reported."""
    body = export.template("cloudformation")
    body["Resources"][export.TABLE]["Properties"]["AttributeDefinitions"].pop()

    assert lint_errors(body) != []


def test_the_table_keeps_its_data_through_stack_deletion_and_replacement() -> None:
    body = export.template("cloudformation")
    table = body["Resources"][export.TABLE]
    properties = table["Properties"]

    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert properties["DeletionProtectionEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TableName"] == {"Ref": "TableName"}
    assert body["Parameters"]["TableName"]["Default"] == DEFAULT_TABLE_NAME


def test_the_template_declares_what_models_declare() -> None:
    spec = declared_spec()
    properties = export.template("cloudformation")["Resources"][export.TABLE]["Properties"]

    assert properties["BillingMode"] == spec.billing_mode
    assert properties["StreamSpecification"] == {"StreamViewType": spec.stream_view_type}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    assert [i["IndexName"] for i in properties["GlobalSecondaryIndexes"]] == [i.name for i in spec.indexes]


def test_the_deployed_template_makes_the_table_the_runner_builds(
    local: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = export.render(export.template("cloudformation"))
    # moto first, DynamoDB Local after, not nested: mock_aws patches botocore for the whole process.
    with monkeypatch.context() as patched, mock_aws():
        patched.delenv("AWS_ENDPOINT_URL_DYNAMODB")
        stacks = boto3.client("cloudformation", region_name=REGION)
        stacks.create_stack(StackName="app", TemplateBody=body,
                            Parameters=[{"ParameterKey": "TableName", "ParameterValue": local.table_name}])
        assert stacks.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        tables = boto3.client("dynamodb", region_name=REGION)
        deployed = tables.describe_table(TableName=local.table_name)["Table"]
    runner.upgrade(out=quiet)
    client = new_client(local)
    migrated = client.describe_table(TableName=local.table_name)["Table"]
    ttl = client.describe_time_to_live(TableName=local.table_name)["TimeToLiveDescription"]

    assert shape(deployed) == shape(migrated)
    assert deployed["DeletionProtectionEnabled"] is True
    # moto leaves TTL out of a deployed table: compare the template's with the migrated table's.
    declared_ttl = json.loads(body)["Resources"][export.TABLE]["Properties"]["TimeToLiveSpecification"]
    assert (declared_ttl["AttributeName"], ttl["TimeToLiveStatus"]) == (ttl["AttributeName"], "ENABLED")


def test_the_sam_template_adds_the_app_and_a_stream_consumer_with_least_privilege() -> None:
    body = export.template("sam")
    resources = body["Resources"]
    app = resources[export.APP_FUNCTION]["Properties"]
    consumer = resources[export.STREAM_FUNCTION]["Properties"]
    table_arn = {"Fn::GetAtt": [export.TABLE, "Arn"]}
    stream_arn = {"Fn::GetAtt": [export.TABLE, "StreamArn"]}

    assert body["Transform"] == "AWS::Serverless-2016-10-31"
    assert resources[export.TABLE] == export.template("cloudformation")["Resources"][export.TABLE]
    for function in (app, consumer):
        assert (function["Runtime"], function["CodeUri"]) == ("python3.11", ".")
        assert function["Environment"] == {"Variables": {"TABLE_NAME": {"Ref": export.TABLE}}}
        assert all(isinstance(p, dict) for p in function["Policies"])  # inline: no DynamoDBCrudPolicy
    assert (app["Handler"], consumer["Handler"]) == (export.HANDLER, export.STREAM_HANDLER)
    [app_policy] = app["Policies"]
    assert [s["Action"] for s in app_policy["Statement"]] == [
        s["Action"] for s in policy.document("app", "arn:aws:dynamodb:*:*:table/App")["Statement"]
    ]
    assert app_policy["Statement"][0]["Resource"] == [table_arn]
    assert consumer["Events"] == {"TableStream": {
        "Type": "DynamoDB", "Properties": {"Stream": stream_arn, "StartingPosition": "LATEST"},
    }}
    [stream_policy] = consumer["Policies"]
    actions = {a for s in stream_policy["Statement"] for a in s["Action"]}
    assert actions == {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                       "dynamodb:ListStreams"}
    read, listing = stream_policy["Statement"]
    assert read["Resource"] == [stream_arn]
    assert listing["Resource"] == [{"Fn::Sub": "${Table.Arn}/stream/*"}]


def test_an_include_projection_is_exported_with_its_attributes() -> None:
    spec = TableSpec(
        keys=(Key("PK", "S", "HASH"), Key("SK", "S", "RANGE")),
        indexes=(
            IndexSpec("ByDate", (Key("Day", "S", "HASH"), Key("At", "N", "RANGE")), "INCLUDE", ("Total",)),
        ),
    )
    body = export.template("cloudformation", spec=spec)
    properties = body["Resources"][export.TABLE]["Properties"]

    assert properties["GlobalSecondaryIndexes"][0]["Projection"] == {
        "ProjectionType": "INCLUDE", "NonKeyAttributes": ["Total"],
    }
    assert {"AttributeName": "At", "AttributeType": "N"} in properties["AttributeDefinitions"]
    assert "StreamSpecification" not in properties and "TimeToLiveSpecification" not in properties
    assert export.STREAM_FUNCTION not in export.template("sam", spec=spec)["Resources"]
    assert lint_errors(body) == []


@pytest.mark.parametrize("change", [{"billing_mode": "PROVISIONED"}, {"local_indexes": ("ByOther",)}])
def test_a_table_the_template_cannot_express_is_refused(change: dict[str, Any]) -> None:
    spec = TableSpec(keys=(Key("PK", "S", "HASH"),), **change)

    with pytest.raises(MigrationError):
        export.template("cloudformation", spec=spec)


def test_export_writes_the_template_to_a_file_without_reaching_dynamodb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "template.json"

    assert cli.main(["export", "--format", "sam", "-o", str(target)]) == 0

    assert json.loads(target.read_text()) == export.template("sam")
    assert capsys.readouterr().out == ""  # no "endpoint:" line: nothing was reached or started


def test_export_prints_the_template_and_names_the_handlers_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", "--format", "sam", "--handler", "app.main.handle"]) == 0

    body = json.loads(capsys.readouterr().out)
    expected = copy.deepcopy(export.template("sam"))
    expected["Resources"][export.APP_FUNCTION]["Properties"]["Handler"] = "app.main.handle"
    assert body == expected
