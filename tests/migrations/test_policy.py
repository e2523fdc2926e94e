"""``policy``: least-privilege IAM policies. The app's is derived from ``models/`` and
``repositories/``; the runner's allows exactly what a whole migration lifecycle calls, on moto
(which has point-in-time recovery) and on DynamoDB Local.

``Recorder`` and ``allows`` (a tiny IAM evaluator: Allow statements, ``*`` wildcards) are shared
with ``tests/integration/test_policy_local.py``.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto import mock_aws

from core.client import new_client
from core.config import Settings, get_settings
from migrations import __main__ as cli
from migrations import policy, runner
from migrations.declared import declared_spec
from models import ENTITIES, User
from models.queries import Query
from tests.migrations.helpers import quiet

REGION, ACCOUNT = "us-east-1", "123456789012"
CONTROL_PLANE = {"CreateTable", "UpdateTable", "DeleteTable", "DescribeTable", "ListTables",
                 "UpdateTimeToLive", "DescribeTimeToLive", "UpdateContinuousBackups",
                 "DescribeContinuousBackups", "TagResource", "CreateBackup", "RestoreTableFromBackup"}
# IAM authorizes each item of a transaction as the single-item action it holds (written out here,
# not taken from migrations.policy, so that the test does not share the rule it checks).
TRANSACTION_ITEMS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def table_arn(name: str) -> str:
    """The ARN of table ``name`` in the test's region and account."""
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def allows(document: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an Allow statement of ``document`` matches ``action`` and ``resource`` (IAM's ``*``
    and ``?`` wildcards; actions case-insensitive). Every statement here is an Allow."""
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        actions, resources = statement["Action"], statement["Resource"]
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in resources
        ):
            return True
    return False


def policy_actions(document: dict[str, Any]) -> set[str]:
    """Every action a policy names."""
    return {action for statement in document["Statement"] for action in statement["Action"]}


@dataclass(eq=False)  # a botocore handler: compared by identity
class Recorder:
    """Every (IAM action, resource ARN) the DynamoDB calls of a botocore client need, from a
    ``before-call`` hook: a transaction as its items' actions, a batch per table, a call on an
    index as the index's ARN."""

    calls: set[tuple[str, str]] = field(default_factory=set)
    operations: set[str] = field(default_factory=set)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        body = json.loads(params["body"] or b"{}")
        operation = model.name
        self.operations.add(operation)
        if operation in ("TransactWriteItems", "TransactGetItems"):
            for item in body["TransactItems"]:
                for kind, request in item.items():
                    self._add(TRANSACTION_ITEMS[kind], request["TableName"])
        elif operation in ("BatchGetItem", "BatchWriteItem"):
            for table in body["RequestItems"]:
                self._add(operation, table)
        else:
            self._add(operation, body["TableName"], body.get("IndexName"))

    def _add(self, action: str, table: str, index: str | None = None) -> None:
        arn = table_arn(table) + (f"/index/{index}" if index else "")
        self.calls.add((f"dynamodb:{action}", arn))

    @property
    def actions(self) -> set[str]:
        """The IAM actions recorded."""
        return {action for action, _ in self.calls}

    def refused_by(self, document: dict[str, Any]) -> list[tuple[str, str]]:
        """The recorded calls ``document`` does not allow."""
        return sorted(call for call in self.calls if not allows(document, *call))


@pytest.fixture
def recording() -> Iterator[tuple[Recorder, Any]]:
    """A recorder and a factory of botocore clients it records (hooks removed afterwards)."""
    recorder, hooked = Recorder(), []

    def client(settings: Settings) -> Any:
        made = new_client(settings)
        made.meta.events.register("before-call.dynamodb", recorder)
        hooked.append(made)
        return made

    yield recorder, client
    for made in hooked:
        made.meta.events.unregister("before-call.dynamodb", recorder)


# --- the evaluator ---------------------------------------------------------------------------------


def test_the_evaluator_matches_wildcards_and_refuses_what_no_statement_names() -> None:
    document = {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:Get*"],
                               "Resource": [table_arn("App"), table_arn("App") + "/index/*"]}]}

    assert allows(document, "dynamodb:GetItem", table_arn("App"))
    assert allows(document, "dynamodb:GetItem", table_arn("App") + "/index/GSI1")
    assert not allows(document, "dynamodb:PutItem", table_arn("App"))
    assert not allows(document, "dynamodb:GetItem", table_arn("App2"))
    assert not allows(document, "dynamodb:GetItem", table_arn("App") + "-migrations")


# --- the app -----------------------------------------------------------------------------------------


def test_a_transaction_needs_the_actions_of_its_items() -> None:
    assert policy.iam_actions(["TransactWriteItems"]) == [
        "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
    ]
    assert policy.iam_actions(["TransactGetItems", "GetItem"]) == ["dynamodb:GetItem"]


def test_the_app_may_query_every_index_a_declared_query_names_and_no_other() -> None:
    declared = {getattr(entity, name).index_name() for entity in ENTITIES
                for name, value in vars(entity).items() if isinstance(value, Query)}
    table_queried, indexes = policy.query_targets()

    assert User.with_email.index_name() in declared
    assert table_queried is (None in declared)
    assert set(indexes) == declared - {None}
    assert set(indexes) <= {index.name for index in declared_spec().indexes}


def test_the_app_policy_has_no_scan_and_no_control_plane() -> None:
    document = policy.document("app", table_arn("App"))

    for statement in document["Statement"]:
        actions = {action.removeprefix("dynamodb:") for action in statement["Action"]}
        assert not actions & (CONTROL_PLANE | {"Scan"})
    assert not allows(document, "dynamodb:Scan", table_arn("App"))
    assert not allows(document, "dynamodb:Scan", table_arn("App") + "/index/GSI1")
    assert not allows(document, "dynamodb:Query", table_arn("App") + "/index/SomeOtherIndex")
    assert not allows(document, "dynamodb:GetItem", table_arn("App") + "-migrations")


def test_the_app_policy_queries_indexes_and_reads_and_writes_items_of_the_table_only() -> None:
    _, indexes = policy.query_targets()
    document = policy.document("app", table_arn("App"))
    items, queries = document["Statement"]

    assert items["Resource"] == [table_arn("App")]
    assert queries["Action"] == ["dynamodb:Query"]
    granted = {resource for resource in queries["Resource"] if "/index/" in resource}
    assert granted == {f"{table_arn('App')}/index/{index}" for index in indexes}


# --- the command line --------------------------------------------------------------------------------


def test_policy_prints_the_document_for_the_table_arn_given(capsys: pytest.CaptureFixture[str]) -> None:
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders"

    assert cli.main(["policy", "--role", "migrations", "--table-arn", arn]) == 0

    out = capsys.readouterr().out
    assert json.loads(out) == policy.document("migrations", arn)
    assert "endpoint:" not in out  # offline: no DynamoDB reached or started


def test_policy_without_an_arn_names_the_table_of_table_name_anywhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["policy", "--role", "app"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["Statement"][0]["Resource"] == [f"arn:aws:dynamodb:*:*:table/{get_settings().table_name}"]


def test_policy_refuses_an_arn_that_is_not_a_table_s(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["policy", "--role", "app", "--table-arn", "arn:aws:s3:::bucket"]) == 2
    assert "not a DynamoDB table ARN" in capsys.readouterr().err


# --- the runner --------------------------------------------------------------------------------------


def _seed_users_for_the_backfill(client: Any, table: str) -> None:
    """Users that make revision 0004's backfill send each kind of write: an update alone, and
    transactions with a condition check, a put and a delete."""

    def put(pk: str, sk: str, **attributes: str) -> None:
        item = {"PK": {"S": pk}, "SK": {"S": sk}, "Version": {"N": "1"},
                **{name: {"S": value} for name, value in attributes.items()}}
        client.put_item(TableName=table, Item=item)

    def user(user_id: str, email: str) -> None:
        put(f"USER#{user_id}", "PROFILE", EntityType="USER", UserId=user_id, Email=email)

    def claim(email: str, user_id: str) -> None:
        put(f"EMAIL#{email}", "EMAIL", EntityType="EMAIL", ClaimedEmail=email, UserId=user_id)

    user("u1", "Upper@Example.com")  # claimed under the lower case already: an UpdateItem alone
    claim("upper@example.com", "u1")
    user("u2", "lower@example.com")  # no claim: a ConditionCheck on the user and a Put of the claim
    user("u3", "Moved@Example.com")  # claimed as written: Update, Put the new claim, Delete the old
    claim("Moved@Example.com", "u3")


def _lifecycle(client: Any, settings: Settings, *, down_to: str = "base") -> None:
    """Every command of the runner that reaches DynamoDB: upgrade (with a backfill), status, plan,
    check, a downgrade (to base: it deletes the table), and upgrade again."""
    runner.upgrade("0003", client=client, settings=settings, out=quiet)
    _seed_users_for_the_backfill(new_client(settings), settings.table_name)  # not recorded
    runner.upgrade(client=client, settings=settings, out=quiet)
    runner.status(client=client, settings=settings)
    runner.plan("base", client=client, settings=settings)
    runner.check(client=client, settings=settings)
    runner.downgrade(down_to, client=client, settings=settings, out=quiet, destroy_data=True)
    runner.upgrade(client=client, settings=settings, out=quiet)


def test_the_migrations_policy_allows_every_call_of_a_lifecycle_and_nothing_more(
    local: Settings, recording: tuple[Recorder, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder, client = recording
    # moto first (DynamoDB Local does not have point-in-time recovery), then DynamoDB Local; in
    # sequence, since mock_aws patches botocore for the whole process. moto's endpoint is AWS's, so
    # the runner keeps TTL's one change an hour there: its downgrade stops short of 0003's TTL.
    with monkeypatch.context() as patched, mock_aws():
        patched.delenv("AWS_ENDPOINT_URL_DYNAMODB")
        on_moto = get_settings()
        _lifecycle(client(on_moto), on_moto, down_to="0003")
    _lifecycle(client(local), local)
    document = policy.document("migrations", table_arn(local.table_name))

    assert recorder.refused_by(document) == []
    assert recorder.actions == policy_actions(document)
    assert "dynamodb:UpdateContinuousBackups" in recorder.actions
    for statement in document["Statement"]:  # every action of every statement is used on its resources
        for action in statement["Action"]:
            alone = {"Statement": [{**statement, "Action": [action]}]}
            assert any(allows(alone, *call) for call in recorder.calls), (statement["Sid"], action)
