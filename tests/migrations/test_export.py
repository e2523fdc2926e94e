"""``export``: the declared tables as CloudFormation and SAM templates that cfn-lint accepts; the
CloudFormation one, deployed (on moto), makes the tables ``runner.upgrade`` builds (on DynamoDB
Local). The SAM one is a deployable application: each property it must have is checked on its own,
and the code folder it points at holds the layer and its pinned dependencies. (Its handlers run on
DynamoDB Local with its environment in ``tests/integration/test_sam_app_local.py``.)"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.api import ManualArgs, lint
from moto import mock_aws

from core.client import new_client
from core.config import DEFAULT_TABLE_NAME, Settings, get_settings, reload_settings
from migrations import __main__ as cli
from migrations import export, policy, runner
from migrations.calls import Key, MigrationError
from migrations.declared import declared_spec
from migrations.revisions import load_revisions
from migrations.schema import IndexSpec, TableSpec
from repositories.paging import MIN_SECRET_LENGTH, SECRET_ENV
from tests.migrations.helpers import quiet

REGION = "us-east-1"


def canonical(name: str) -> str:
    """A distribution's name as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


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


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_both_tables_keep_their_data_through_stack_deletion_and_replacement(fmt: str) -> None:
    body = export.template(fmt)
    table = body["Resources"][export.TABLE]
    properties = table["Properties"]

    for logical_id in (export.TABLE, export.LEDGER):
        resource = body["Resources"][logical_id]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
        assert resource["Properties"]["DeletionProtectionEnabled"] is True
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
        deployed_ledger = tables.describe_table(TableName=local.ledger_table_name)["Table"]
    runner.upgrade(out=quiet)
    client = new_client(local)
    migrated = client.describe_table(TableName=local.table_name)["Table"]
    ledger = client.describe_table(TableName=local.ledger_table_name)["Table"]
    ttl = client.describe_time_to_live(TableName=local.table_name)["TimeToLiveDescription"]

    assert shape(deployed) == shape(migrated)
    assert shape(deployed_ledger) == shape(ledger)  # the runner would use the deployed ledger as it is
    assert deployed["DeletionProtectionEnabled"] is True
    # moto leaves TTL out of a deployed table: compare the template's with the migrated table's.
    declared_ttl = json.loads(body)["Resources"][export.TABLE]["Properties"]["TimeToLiveSpecification"]
    assert (declared_ttl["AttributeName"], ttl["TimeToLiveStatus"]) == (ttl["AttributeName"], "ENABLED")


def test_after_a_deploy_the_runner_adopts_both_tables_and_finds_no_drift() -> None:
    """What owns what: the stack creates the tables; ``upgrade`` after it records every revision
    and runs the data migrations, creating nothing, and ``check`` finds the table as declared."""
    settings = get_settings()
    with mock_aws():
        stacks = boto3.client("cloudformation", region_name=REGION)
        stacks.create_stack(StackName="app", TemplateBody=export.render(export.template("cloudformation")),
                            Parameters=[{"ParameterKey": "TableName", "ParameterValue": settings.table_name}])
        tables = boto3.client("dynamodb", region_name=REGION)
        created = {name: tables.describe_table(TableName=name)["Table"]["CreationDateTime"]
                   for name in (settings.table_name, settings.ledger_table_name)}

        applied = runner.upgrade(out=quiet)

        assert applied == [r.revision for r in load_revisions()]
        assert runner.status()["pending"] == [] and runner.check() == []
        assert {name: tables.describe_table(TableName=name)["Table"]["CreationDateTime"]
                for name in created} == created  # the stack's tables, not new ones


def sam_function(body: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's properties as SAM deploys them: the ``Globals`` with the function's own on top
    (environment variables merged)."""
    own = body["Resources"][logical_id]["Properties"]
    merged = {**body["Globals"]["Function"], **own}
    merged["Environment"] = {"Variables": {
        **body["Globals"]["Function"]["Environment"]["Variables"],
        **own.get("Environment", {}).get("Variables", {}),
    }}
    return merged


def test_cfn_lint_checks_the_sam_resources_and_globals_too() -> None:
    body = export.template("sam")
    body["Globals"]["Function"]["Timeoutt"] = 3

    assert lint_errors(body) != []


def test_the_sam_app_holds_the_same_tables_and_adds_an_api_two_functions_and_a_queue() -> None:
    body = export.template("sam")
    resources = body["Resources"]

    assert body["Transform"] == "AWS::Serverless-2016-10-31"
    tables = export.template("cloudformation")["Resources"]
    assert {name: resources[name] for name in tables} == tables
    assert {name: r["Type"] for name, r in resources.items() if name not in tables} == {
        export.HTTP_API: "AWS::Serverless::HttpApi",
        export.APP_FUNCTION: "AWS::Serverless::Function",
        export.STREAM_FUNCTION: "AWS::Serverless::Function",
        export.STREAM_MAPPING: "AWS::Lambda::EventSourceMapping",
        export.STREAM_FAILURES: "AWS::SQS::Queue",
    }


def test_the_sam_functions_get_runtime_code_memory_and_the_layer_settings_from_globals() -> None:
    body = export.template("sam")
    globals_ = body["Globals"]["Function"]

    assert (globals_["Runtime"], globals_["CodeUri"]) == ("python3.11", "function/")
    assert globals_["MemorySize"] >= 256
    variables = globals_["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": export.TABLE}
    assert variables["LOG_LEVEL"] in ("DEBUG", "INFO", "WARNING", "ERROR")
    assert set(export.LAYER_SETTINGS) <= set(variables)
    for logical_id in (export.APP_FUNCTION, export.STREAM_FUNCTION):
        assert "Runtime" not in body["Resources"][logical_id]["Properties"]  # one place: the Globals
    assert (body["Resources"][export.APP_FUNCTION]["Properties"]["Handler"],
            body["Resources"][export.STREAM_FUNCTION]["Properties"]["Handler"]) == (
        export.HANDLER, export.STREAM_HANDLER)


def test_one_dynamodb_call_with_every_retry_fits_in_the_function_timeout() -> None:
    """Read from the template: every attempt waits out the connect and read timeouts, and botocore's
    standard mode sleeps at most min(2**i, 20) s before retry i (its throttling backoff)."""
    body = export.template("sam")
    for logical_id in (export.APP_FUNCTION, export.STREAM_FUNCTION):
        function = sam_function(body, logical_id)
        variables = function["Environment"]["Variables"]
        connect = int(variables["DYNAMODB_CONNECT_TIMEOUT_SECONDS"])
        read = int(variables["DYNAMODB_READ_TIMEOUT_SECONDS"])
        retries = int(variables["DYNAMODB_MAX_RETRY_ATTEMPTS"])
        backoff = sum(min(2**i, 20) for i in range(retries))

        assert (1 + retries) * (connect + read) + backoff <= function["Timeout"]
    # the HTTP API answers 503 after 30 s: the app function must have given its answer by then
    assert sam_function(body, export.APP_FUNCTION)["Timeout"] < 30


def test_the_export_refuses_layer_settings_that_outlast_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(export.LAYER_SETTINGS, "DYNAMODB_READ_TIMEOUT_SECONDS", 30)  # botocore's default

    with pytest.raises(MigrationError, match="function timeout"):
        export.template("sam")


def test_the_layer_reads_the_timeouts_and_retries_the_template_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = export.template("sam")["Globals"]["Function"]["Environment"]["Variables"]
    for name in export.LAYER_SETTINGS:
        monkeypatch.setenv(name, variables[name])

    settings = reload_settings()

    assert settings.connect_timeout_seconds == float(variables["DYNAMODB_CONNECT_TIMEOUT_SECONDS"])
    assert settings.read_timeout_seconds == float(variables["DYNAMODB_READ_TIMEOUT_SECONDS"])
    assert settings.max_retry_attempts == int(variables["DYNAMODB_MAX_RETRY_ATTEMPTS"])


def test_the_app_function_answers_an_http_api_whose_url_is_an_output() -> None:
    body = export.template("sam")
    app = body["Resources"][export.APP_FUNCTION]["Properties"]

    assert app["Events"] == {"Api": {"Type": "HttpApi", "Properties": {
        "ApiId": {"Ref": export.HTTP_API}, "Path": "/{proxy+}", "Method": "ANY"}}}
    url = body["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    assert url.startswith(f"https://${{{export.HTTP_API}}}.execute-api.${{AWS::Region}}.")


def test_the_cursor_secret_is_a_no_echo_parameter_without_default_passed_to_the_app_only() -> None:
    body = export.template("sam")
    parameter = body["Parameters"]["CursorSecret"]

    assert (parameter["Type"], parameter["NoEcho"]) == ("String", True)
    assert parameter["MinLength"] == MIN_SECRET_LENGTH
    assert "Default" not in parameter
    assert sam_function(body, export.APP_FUNCTION)["Environment"]["Variables"][SECRET_ENV] == {
        "Ref": "CursorSecret"}
    assert SECRET_ENV not in sam_function(body, export.STREAM_FUNCTION)["Environment"]["Variables"]
    assert "CursorSecret" not in json.dumps(body["Outputs"])


def test_the_stream_mapping_reports_partial_failures_bisects_and_bounds_its_retries() -> None:
    body = export.template("sam")
    mapping = body["Resources"][export.STREAM_MAPPING]["Properties"]

    assert mapping["FunctionName"] == {"Ref": export.STREAM_FUNCTION}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [export.TABLE, "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"  # nothing written before the mapping is skipped
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 0 <= mapping["MaximumRetryAttempts"] <= 10  # -1 (the default for streams) retries forever
    # bounded, and short of the stream's 24 hours, so a batch named in the queue can still be read
    assert 60 <= mapping["MaximumRecordAgeInSeconds"] <= 12 * 3600


def test_a_batch_the_stream_function_gives_up_on_is_named_in_a_queue_it_may_send_to() -> None:
    body = export.template("sam")
    mapping = body["Resources"][export.STREAM_MAPPING]["Properties"]
    queue_arn = {"Fn::GetAtt": [export.STREAM_FAILURES, "Arn"]}
    queue = body["Resources"][export.STREAM_FAILURES]["Properties"]
    [stream_policy] = body["Resources"][export.STREAM_FUNCTION]["Properties"]["Policies"]

    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    sends = [s for s in stream_policy["Statement"] if any(a.startswith("sqs:") for a in s["Action"])]
    assert sends == [{"Sid": "SendFailures", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                      "Resource": [queue_arn]}]
    assert body["Outputs"]["StreamFailuresQueueUrl"]["Value"] == {"Ref": export.STREAM_FAILURES}


def test_the_sam_functions_have_least_privilege_inline_policies() -> None:
    body = export.template("sam")
    resources = body["Resources"]
    app = resources[export.APP_FUNCTION]["Properties"]
    consumer = resources[export.STREAM_FUNCTION]["Properties"]
    table_arn = {"Fn::GetAtt": [export.TABLE, "Arn"]}
    stream_arn = {"Fn::GetAtt": [export.TABLE, "StreamArn"]}

    for function in (app, consumer):
        assert all(isinstance(p, dict) for p in function["Policies"])  # inline: no DynamoDBCrudPolicy
    [app_policy] = app["Policies"]
    assert [s["Action"] for s in app_policy["Statement"]] == [
        s["Action"] for s in policy.document("app", "arn:aws:dynamodb:*:*:table/App")["Statement"]
    ]
    assert app_policy["Statement"][0]["Resource"] == [table_arn]
    # a mapping of its own, not a SAM DynamoDB event (which adds a managed policy on every stream)
    assert "Events" not in consumer
    [stream_policy] = consumer["Policies"]
    read, listing, _send = stream_policy["Statement"]
    assert read["Action"] == ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    assert read["Resource"] == [stream_arn]
    assert (listing["Action"], listing["Resource"]) == (["dynamodb:ListStreams"],
                                                        [{"Fn::Sub": "${Table.Arn}/stream/*"}])


def test_the_code_folder_holds_the_layer_the_handlers_and_pinned_requirements(tmp_path: Path) -> None:
    target = tmp_path / "function"

    export.write_function_code(target, ["examples.lambda_handler.handle"])

    assert {p.name for p in target.iterdir()} == {
        "core", "models", "repositories", "examples", "requirements.txt"}
    assert not list(target.rglob("__pycache__"))
    lines = (target / "requirements.txt").read_text().splitlines()
    assert lines[0] == export.GENERATED
    pins = dict(line.split("==") for line in lines[1:])
    declared = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:  # every runtime dependency, at the version installed (tested) here
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)  # type: ignore[union-attr]
        [pinned] = [v for k, v in pins.items() if canonical(k) == canonical(name)]
        assert pinned == importlib.metadata.version(name)
    assert canonical("jmespath") in {canonical(k) for k in pins}  # and what they need (botocore's)
    assert not {"pytest", "moto", "cfn-lint"} & {canonical(k) for k in pins}


def test_the_code_folder_imports_the_handlers_without_the_project_on_the_path(tmp_path: Path) -> None:
    """Only the folder and the installed dependencies on ``sys.path`` (no ``site``, so no editable
    install of the project): every module of the layer comes from the folder."""
    target = tmp_path / "function"
    export.write_function_code(target, ["examples.lambda_handler.handle"])
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import examples.lambda_handler\n"
        "ours = [m for m in sys.modules.values() if m.__name__.split('.')[0] in "
        "('core', 'models', 'repositories', 'examples', 'migrations')]\n"
        "assert 'migrations' not in sys.modules, 'the handler loads the runner'\n"
        "assert all(m.__file__.startswith(sys.argv[1]) for m in ours), [m.__file__ for m in ours]\n"
    )
    done = subprocess.run([sys.executable, "-S", "-c", script, str(target), site_packages],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr


def test_the_export_replaces_only_a_code_folder_it_wrote(tmp_path: Path) -> None:
    target = tmp_path / "function"
    export.write_function_code(target, [export.HANDLER])
    (target / "stale.py").write_text("")
    export.write_function_code(target, [export.HANDLER])
    assert not (target / "stale.py").exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "app.py").write_text("")
    with pytest.raises(MigrationError, match="not written by the export"):
        export.write_function_code(mine, [export.HANDLER])
    assert (mine / "app.py").exists()


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
    code = target.parent / export.template("sam")["Globals"]["Function"]["CodeUri"]
    assert (code / "requirements.txt").is_file() and (code / "examples" / "lambda_handler.py").is_file()


def test_export_prints_the_template_and_names_the_handlers_given(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", "--format", "sam", "--handler", "app.main.handle"]) == 0

    body = json.loads(capsys.readouterr().out)
    expected = copy.deepcopy(export.template("sam"))
    expected["Resources"][export.APP_FUNCTION]["Properties"]["Handler"] = "app.main.handle"
    assert body == expected
