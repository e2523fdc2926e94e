"""``python -m migrations export``: the table as ``models/`` declares it (``declared_spec``, the table
``make migrate`` builds and ``check`` compares with), as a CloudFormation or SAM template (JSON,
which both accept).

The table: its keys and every GSI with its keys and projection, the declared billing mode, stream
and TTL attribute, point-in-time recovery and deletion protection on, and ``DeletionPolicy`` and
``UpdateReplacePolicy`` ``Retain``, so that neither deleting the stack nor a change that replaces
the table deletes data. Its name is the ``TableName`` parameter (default ``ApplicationData``,
as ``TABLE_NAME``'s); a fixed name also makes CloudFormation refuse a replacement outright.

``sam`` adds the app's function, allowed only what ``migrations.policy`` grants the ``app`` role
(inline statements, not ``DynamoDBCrudPolicy``), and a consumer of the table's stream allowed only
to read it. Both get ``TABLE_NAME``. The handlers are references the app provides (``--handler``,
``--stream-handler``); the code is the project folder (``CodeUri: .``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.config import DEFAULT_TABLE_NAME
from migrations import policy
from migrations.calls import MigrationError, attribute_definitions, key_schema
from migrations.schema import IndexSpec, TableSpec

FORMATS = ("cloudformation", "sam")
TABLE = "Table"  # the table's logical id
APP_FUNCTION = "AppFunction"
STREAM_FUNCTION = "StreamFunction"
RUNTIME = "python3.11"
HANDLER = "examples.lambda_handler.handle"
STREAM_HANDLER = "examples.lambda_handler.on_stream"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def template(
    fmt: str = "cloudformation",
    *,
    spec: TableSpec | None = None,
    handler: str = HANDLER,
    stream_handler: str = STREAM_HANDLER,
) -> dict[str, Any]:
    """The template of ``fmt`` (``cloudformation`` or ``sam``) for ``spec`` (default: ``models/``)."""
    if fmt not in FORMATS:
        raise MigrationError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if spec is None:
        from migrations.declared import declared_spec

        spec = declared_spec()
    body: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "The application table as models/ declares it (python -m migrations export).",
        "Parameters": {
            "TableName": {
                "Type": "String",
                "Default": DEFAULT_TABLE_NAME,
                "Description": "The table's name (the app's TABLE_NAME).",
                "AllowedPattern": "[a-zA-Z0-9_.-]{3,255}",
            }
        },
        "Resources": {TABLE: table_resource(spec)},
        "Outputs": {
            "TableName": {"Value": {"Ref": TABLE}},
            "TableArn": {"Value": {"Fn::GetAtt": [TABLE, "Arn"]}},
        },
    }
    if spec.stream_view_type:
        body["Outputs"]["StreamArn"] = {"Value": {"Fn::GetAtt": [TABLE, "StreamArn"]}}
    if fmt == "sam":
        body = {"Transform": SAM_TRANSFORM, **body}
        body["Resources"].update(_functions(spec, handler, stream_handler))
    return body


def table_resource(spec: TableSpec) -> dict[str, Any]:
    """The ``AWS::DynamoDB::Table`` resource of ``spec``."""
    if spec.local_indexes:
        raise MigrationError(f"local secondary indexes cannot be exported: {', '.join(spec.local_indexes)}")
    if spec.billing_mode != "PAY_PER_REQUEST":
        raise MigrationError(f"only on-demand billing can be exported; models/ declare {spec.billing_mode}")
    keys = [*spec.keys, *(key for index in spec.indexes for key in index.keys)]
    properties: dict[str, Any] = {
        "TableName": {"Ref": "TableName"},
        "AttributeDefinitions": attribute_definitions(keys),
        "KeySchema": key_schema(spec.keys),
        "BillingMode": spec.billing_mode,
    }
    if spec.indexes:
        properties["GlobalSecondaryIndexes"] = [_index(index) for index in spec.indexes]
    if spec.stream_view_type:
        properties["StreamSpecification"] = {"StreamViewType": spec.stream_view_type}
    if spec.ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": spec.ttl_attribute, "Enabled": True}
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["DeletionProtectionEnabled"] = True
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def render(body: dict[str, Any]) -> str:
    """The template as JSON text."""
    return json.dumps(body, indent=2) + "\n"


def register(commands: Any) -> None:
    """Add ``export`` to the command line's subcommands (``commands``: argparse's subparsers)."""
    parser = commands.add_parser("export",
                                 help="print the declared table as a CloudFormation or SAM template")
    parser.add_argument("--format", choices=FORMATS, default="cloudformation")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE, not stdout")
    parser.add_argument("--handler", default=HANDLER, help=f"sam: the app function's handler ({HANDLER})")
    parser.add_argument("--stream-handler", default=STREAM_HANDLER,
                        help=f"sam: the stream consumer's handler ({STREAM_HANDLER})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``export`` command: print the template, or write it to ``--output``."""
    text = render(template(args.format, handler=args.handler, stream_handler=args.stream_handler))
    if args.output is None:
        print(text, end="")
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    return 0


def _index(index: IndexSpec) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": index.projection}
    if index.non_key_attributes:
        projection["NonKeyAttributes"] = list(index.non_key_attributes)
    return {"IndexName": index.name, "KeySchema": key_schema(index.keys), "Projection": projection}


def _functions(spec: TableSpec, handler: str, stream_handler: str) -> dict[str, Any]:
    table_arn = {"Fn::GetAtt": [TABLE, "Arn"]}
    arns = policy.Arns(
        table=table_arn,
        index=lambda name: {"Fn::Sub": f"${{{TABLE}.Arn}}/index/{name}"},
        stream={"Fn::GetAtt": [TABLE, "StreamArn"]},
        streams={"Fn::Sub": f"${{{TABLE}.Arn}}/stream/*"},
    )
    environment = {"Variables": {"TABLE_NAME": {"Ref": TABLE}}}
    functions = {
        APP_FUNCTION: _function(handler, environment, policy.statements("app", arns)),
    }
    if spec.stream_view_type:
        consumer = _function(stream_handler, environment, policy.stream_statements(arns))
        consumer["Properties"]["Events"] = {
            "TableStream": {
                "Type": "DynamoDB",
                "Properties": {"Stream": arns.stream, "StartingPosition": "LATEST"},
            }
        }
        functions[STREAM_FUNCTION] = consumer
    return functions


def _function(handler: str, environment: dict[str, Any], statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": ".",
            "Handler": handler,
            "Runtime": RUNTIME,
            "Environment": environment,
            "Policies": [{"Version": policy.POLICY_VERSION, "Statement": statements}],
        },
    }
