"""``python -m migrations export``: the tables as ``models/`` declares them (``declared_spec``, the
table ``make migrate`` builds and ``check`` compares with), as a CloudFormation template or as a
deployable SAM application (JSON, which both accept).

**The tables.** The application table: its keys and every GSI with its keys and projection, the
declared billing mode, stream and TTL attribute, point-in-time recovery and deletion protection
on. The migrations ledger (``<TableName>-migrations``, the table ``migrations.ledger`` creates when
it is missing). Both ``DeletionPolicy`` and ``UpdateReplacePolicy`` ``Retain``, so that neither
deleting the stack nor a change that replaces a table deletes data. Names come from the
``TableName`` parameter (default ``ApplicationData``, as ``TABLE_NAME``'s); a fixed name also makes
CloudFormation refuse a replacement outright. Who owns what: the stack creates both tables and keeps
their shape equal to ``models/``; the runner (``python -m migrations --aws upgrade``, after each
deploy) finds each schema step already done and runs the data migrations, recording them in the
ledger.

**The application** (``sam``), for ``sam build`` and ``sam deploy``:

- ``AppFunction`` (``--handler``, default ``examples.lambda_handler.handle``) behind an HTTP API
  (one ``ANY /{proxy+}`` route: the handler routes), its URL the ``ApiUrl`` output; allowed only
  what ``migrations.policy`` grants the ``app`` role (inline statements, not
  ``DynamoDBCrudPolicy``). ``DATALAYER_CURSOR_SECRET`` is the ``CursorSecret`` parameter
  (``NoEcho``, at least ``paging.MIN_SECRET_LENGTH`` characters, no default).
- ``StreamFunction`` (``--stream-handler``), on the table's stream (``TableStream``, an event
  source mapping) from ``TRIM_HORIZON`` with partial batch responses (``ReportBatchItemFailures``),
  bisection of a failing batch, bounded retries and record age, and an SQS queue (``StreamFailures``,
  14 days) as the on-failure destination: a record is retried, or its batch is named in the queue,
  never dropped silently.
  It may read the stream and send to that queue, nothing else.
- ``Globals``: runtime, code, memory, ``LOG_LEVEL``, ``TABLE_NAME`` and the layer's timeouts and
  retries (``LAYER_SETTINGS``), chosen so that one DynamoDB call's worst case
  (``worst_case_call_seconds``) fits in the function's timeout.
- The code: ``CodeUri`` is ``function/`` next to the template. Written with ``-o FILE``, the
  export also fills that folder: the runtime packages (``RUNTIME_PACKAGES``) and the package of
  each handler, copied, and ``requirements.txt`` with the ``dependencies`` of ``pyproject.toml``
  and what they need, pinned to the versions installed here (the ones the tests ran with). So
  ``sam build`` packages exactly the layer and its dependencies (Linux wheels, by SAM's own Python
  builder), without ``.venv``, ``.local`` or the tests. The tables are still read from the
  declarations, never from source code.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import re
import shutil
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.config import DEFAULT_TABLE_NAME
from migrations import policy
from migrations.calls import MigrationError, attribute_definitions, key_schema
from migrations.schema import IndexSpec, TableSpec

FORMATS = ("cloudformation", "sam")
TABLE = "Table"  # the logical ids
LEDGER = "LedgerTable"
APP_FUNCTION = "AppFunction"
STREAM_FUNCTION = "StreamFunction"
HTTP_API = "HttpApi"
STREAM_MAPPING = "TableStream"
STREAM_FAILURES = "StreamFailures"
RUNTIME = "python3.11"
HANDLER = "examples.lambda_handler.handle"
STREAM_HANDLER = "examples.lambda_handler.on_stream"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
LEDGER_SUFFIX = "-migrations"  # core.config.Settings.ledger_table_name
MAX_TABLE_NAME = 255

# The functions' code: a folder next to the template, filled by ``write_function_code``.
CODE_DIR = "function"
RUNTIME_PACKAGES = ("core", "models", "repositories")  # what an app's handler imports of the layer
PROJECT = "dynamo-datalayer"
GENERATED = "# Written by python -m migrations export --format sam; regenerate rather than edit."

# The layer's botocore settings in Lambda (core.config reads them). An API answers in seconds or
# not at all, and the HTTP API gives up after 30 s: fail fast and let the client retry.
LAYER_SETTINGS = {
    "DYNAMODB_CONNECT_TIMEOUT_SECONDS": 1,
    "DYNAMODB_READ_TIMEOUT_SECONDS": 3,
    "DYNAMODB_MAX_RETRY_ATTEMPTS": 2,
}
FUNCTION_TIMEOUT_SECONDS = 20  # below the HTTP API's 30 s integration timeout
HTTP_API_TIMEOUT_SECONDS = 30
MEMORY_MB = 512  # Lambda's CPU grows with memory: the imports of a cold start take less
LOG_LEVEL = "INFO"
BOTOCORE_MAX_BACKOFF_SECONDS = 20  # botocore.retries.standard.ExponentialBackoff
STREAM_BATCH_SIZE = 100
STREAM_MAX_RETRY_ATTEMPTS = 5  # then bisected batches down to the failing record go to the queue
STREAM_MAX_RECORD_AGE_SECONDS = 3600  # leaves 23 of the stream's 24 hours to replay what the queue names
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum


def worst_case_call_seconds(connect: float, read: float, retries: int) -> float:
    """The longest one DynamoDB call can take: every attempt (``1 + retries``) waits out both
    timeouts, and botocore's standard mode sleeps at most ``min(2**i, 20)`` s before retry ``i``
    (its throttling scale; other errors sleep less)."""
    backoff = sum(min(2**i, BOTOCORE_MAX_BACKOFF_SECONDS) for i in range(retries))
    return float((1 + retries) * (connect + read) + backoff)


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
                "Description": f"The table's name (the app's TABLE_NAME); the ledger's: it + {LEDGER_SUFFIX}",
                "AllowedPattern": f"[a-zA-Z0-9_.-]{{3,{MAX_TABLE_NAME - len(LEDGER_SUFFIX)}}}",
            }
        },
        "Resources": {TABLE: table_resource(spec), LEDGER: ledger_resource()},
        "Outputs": {
            "TableName": {"Value": {"Ref": TABLE}},
            "TableArn": {"Value": {"Fn::GetAtt": [TABLE, "Arn"]}},
            "LedgerTableName": {"Value": {"Ref": LEDGER}},
        },
    }
    if spec.stream_view_type:
        body["Outputs"]["StreamArn"] = {"Value": {"Fn::GetAtt": [TABLE, "StreamArn"]}}
    if fmt == "sam":
        body = _application(body, spec, handler, stream_handler)
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
    return _retained("AWS::DynamoDB::Table", properties)


def ledger_resource() -> dict[str, Any]:
    """The migrations ledger table, as ``migrations.ledger.Ledger.ensure`` creates it."""
    return _retained("AWS::DynamoDB::Table", {
        "TableName": {"Fn::Sub": f"${{TableName}}{LEDGER_SUFFIX}"},
        "AttributeDefinitions": [{"AttributeName": "PK", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "DeletionProtectionEnabled": True,
    })


def render(body: dict[str, Any]) -> str:
    """The template as JSON text."""
    return json.dumps(body, indent=2) + "\n"


def handlers_of(body: dict[str, Any]) -> list[str]:
    """The handlers (``module.function``) of the template's functions."""
    return [resource["Properties"]["Handler"] for resource in body["Resources"].values()
            if resource["Type"] == "AWS::Serverless::Function"]


def write_function_code(target: Path, handlers: Iterable[str]) -> None:
    """Fill ``target`` (a template's ``CodeUri``) with what ``sam build`` packages: the runtime
    packages, the package (or module) of each handler, and the pinned ``requirements.txt``.

    ``target`` is replaced as a whole, but only if an earlier export wrote it (its
    ``requirements.txt`` says so): the export never deletes a folder of someone else's.
    """
    requirements = target / "requirements.txt"
    if target.exists() and not (
        requirements.is_file() and requirements.read_text(encoding="utf-8").startswith(GENERATED)
    ):
        raise MigrationError(f"{target} exists and was not written by the export: move it, or export "
                             "the template to another folder")
    names = dict.fromkeys([*RUNTIME_PACKAGES, *(handler.split(".")[0] for handler in handlers)])
    sources = {name: _source(name) for name in names}  # everything found before anything is replaced
    pins = pinned_requirements()
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    requirements.write_text("\n".join([GENERATED, *pins]) + "\n", encoding="utf-8")
    for name, source in sources.items():
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target / source.name)


def pinned_requirements() -> list[str]:
    """``name==version`` for the project's runtime dependencies and everything they need, as
    installed here; sorted by name."""
    pinned: dict[str, str] = {}
    wanted = [(name, True) for name in _runtime_dependencies()]
    while wanted:
        name, direct = wanted.pop()
        key = _normalized(name)
        if key in pinned:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            if direct:
                raise MigrationError(f"{name} is not installed: make install, then export again") from None
            continue  # a dependency's dependency that its marker leaves out here (another Python)
        pinned[key] = f"{distribution.metadata['Name']}=={distribution.version}"
        wanted += [(_requirement_name(line), False) for line in distribution.requires or ()
                   if _is_needed(line)]
    return [pinned[key] for key in sorted(pinned)]


def register(commands: Any) -> None:
    """Add ``export`` to the command line's subcommands (``commands``: argparse's subparsers)."""
    parser = commands.add_parser("export",
                                 help="print the declared tables as a CloudFormation template or a SAM app")
    parser.add_argument("--format", choices=FORMATS, default="cloudformation")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help=f"write to FILE, not stdout (sam: and the functions' code to {CODE_DIR}/ by it)")
    parser.add_argument("--handler", default=HANDLER, help=f"sam: the app function's handler ({HANDLER})")
    parser.add_argument("--stream-handler", default=STREAM_HANDLER,
                        help=f"sam: the stream consumer's handler ({STREAM_HANDLER})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``export`` command: print the template, or write it (and a SAM app's code) to ``--output``."""
    body = template(args.format, handler=args.handler, stream_handler=args.stream_handler)
    text = render(body)
    if args.output is None:
        print(text, end="")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "sam":
        write_function_code(args.output.parent / CODE_DIR, handlers_of(body))
    args.output.write_text(text, encoding="utf-8")
    return 0


def _retained(kind: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"Type": kind, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": properties}


def _index(index: IndexSpec) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": index.projection}
    if index.non_key_attributes:
        projection["NonKeyAttributes"] = list(index.non_key_attributes)
    return {"IndexName": index.name, "KeySchema": key_schema(index.keys), "Projection": projection}


def _application(body: dict[str, Any], spec: TableSpec, handler: str, stream_handler: str) -> dict[str, Any]:
    """``body`` (the tables) with the SAM application around them."""
    from repositories.paging import MIN_SECRET_LENGTH, SECRET_ENV

    worst = worst_case_call_seconds(LAYER_SETTINGS["DYNAMODB_CONNECT_TIMEOUT_SECONDS"],
                                    LAYER_SETTINGS["DYNAMODB_READ_TIMEOUT_SECONDS"],
                                    LAYER_SETTINGS["DYNAMODB_MAX_RETRY_ATTEMPTS"])
    if not worst <= FUNCTION_TIMEOUT_SECONDS < HTTP_API_TIMEOUT_SECONDS:
        raise MigrationError(f"one DynamoDB call may take {worst} s: the function timeout must fit it "
                             f"and stay below the HTTP API's {HTTP_API_TIMEOUT_SECONDS} s")
    app = {"Transform": SAM_TRANSFORM, **body}
    app["Description"] = "The app and its tables, as models/ declare them (python -m migrations export)."
    app["Parameters"]["CursorSecret"] = {
        "Type": "String",
        "NoEcho": True,
        "MinLength": MIN_SECRET_LENGTH,
        "Description": f"{SECRET_ENV}: the key of the paging cursors (at least {MIN_SECRET_LENGTH} "
                       "characters; changing it invalidates the cursors handed out).",
    }
    variables: dict[str, Any] = {"TABLE_NAME": {"Ref": TABLE}, "LOG_LEVEL": LOG_LEVEL}
    variables.update({name: str(value) for name, value in LAYER_SETTINGS.items()})
    app["Globals"] = {"Function": {
        "Runtime": RUNTIME,
        "CodeUri": f"{CODE_DIR}/",
        "Timeout": FUNCTION_TIMEOUT_SECONDS,
        "MemorySize": MEMORY_MB,
        "Environment": {"Variables": variables},
    }}
    arns = policy.Arns(
        table={"Fn::GetAtt": [TABLE, "Arn"]},
        index=lambda name: {"Fn::Sub": f"${{{TABLE}.Arn}}/index/{name}"},
        stream={"Fn::GetAtt": [TABLE, "StreamArn"]},
        streams={"Fn::Sub": f"${{{TABLE}.Arn}}/stream/*"},
    )
    resources = app["Resources"]
    resources[HTTP_API] = {"Type": "AWS::Serverless::HttpApi"}
    resources[APP_FUNCTION] = _function(handler, policy.statements("app", arns))
    resources[APP_FUNCTION]["Properties"]["Environment"] = {
        "Variables": {SECRET_ENV: {"Ref": "CursorSecret"}},  # merged with the Globals' by SAM
    }
    resources[APP_FUNCTION]["Properties"]["Events"] = {"Api": {
        "Type": "HttpApi",
        "Properties": {"ApiId": {"Ref": HTTP_API}, "Path": "/{proxy+}", "Method": "ANY"},
    }}
    app["Outputs"]["ApiUrl"] = {
        "Description": "The HTTP API's URL.",
        "Value": {"Fn::Sub": f"https://${{{HTTP_API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/"},
    }
    if spec.stream_view_type:
        resources.update(_stream_consumer(stream_handler, arns))
        app["Outputs"]["StreamFailuresQueueUrl"] = {
            "Description": "Where the batches the stream function could not handle are named.",
            "Value": {"Ref": STREAM_FAILURES},
        }
    return app


def _stream_consumer(handler: str, arns: policy.Arns) -> dict[str, Any]:
    """The stream function, its event source mapping and its on-failure queue.

    The mapping is a resource of its own, not a SAM ``DynamoDB`` event: for such an event SAM adds
    the managed ``AWSLambdaDynamoDBExecutionRole``, which may read every stream of the account.
    """
    queue_arn = {"Fn::GetAtt": [STREAM_FAILURES, "Arn"]}
    consumer = _function(handler, [*policy.stream_statements(arns), *policy.queue_statements(queue_arn)])
    mapping = {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
        "FunctionName": {"Ref": STREAM_FUNCTION},
        "EventSourceArn": arns.stream,
        "StartingPosition": "TRIM_HORIZON",  # from the oldest record kept: none missed at the start
        "BatchSize": STREAM_BATCH_SIZE,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": STREAM_MAX_RETRY_ATTEMPTS,
        "MaximumRecordAgeInSeconds": STREAM_MAX_RECORD_AGE_SECONDS,
        "DestinationConfig": {"OnFailure": {"Destination": queue_arn}},
    }}
    queue = {"Type": "AWS::SQS::Queue", "Properties": {
        "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
        "SqsManagedSseEnabled": True,
    }}
    return {STREAM_FUNCTION: consumer, STREAM_MAPPING: mapping, STREAM_FAILURES: queue}


def _function(handler: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Handler": handler,
            "Policies": [{"Version": policy.POLICY_VERSION, "Statement": statements}],
        },
    }


def _source(name: str) -> Path:
    """The folder of the top-level package ``name``, or the file of the module, as found here."""
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.submodule_search_locations:  # a package (a namespace one too)
        return Path(next(iter(spec.submodule_search_locations)))
    if spec is not None and spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin)
    raise MigrationError(f"cannot find the module {name!r} to package: export from the app's folder")


def _runtime_dependencies() -> list[str]:
    """The names in ``[project] dependencies``: of ``pyproject.toml`` in a clone, else of the
    installed project's metadata."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        lines: list[str] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    else:
        lines = importlib.metadata.requires(PROJECT) or []
    return [_requirement_name(line) for line in lines if _is_needed(line)]


_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _requirement_name(line: str) -> str:
    match = _NAME.match(line)
    if match is None:
        raise MigrationError(f"cannot read the requirement {line!r}")
    return match.group(1)


def _is_needed(line: str) -> bool:
    """A requirement of a plain install: not one of an extra (``; extra == "..."``)."""
    return "extra" not in line.partition(";")[2]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
