"""``check`` finds drift between models/ and the live table; ``new --autogenerate`` removes it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from core.config import Settings
from migrations import __main__ as cli
from migrations import autogenerate, declared, runner
from migrations.calls import Key, MigrationError
from migrations.revisions import load_revisions, write_revision
from migrations.schema import IndexSpec, TableSpec, diff
from models.table import TableModel
from tests.migrations.helpers import quiet
from tests.scratch import scratch_entities

# The temporary model's index: a name no user's model would declare.
STATUS_INDEX_NAME = f"TestOnly-Status-{uuid.uuid4().hex[:8]}"
STATUS_INDEX = IndexSpec(STATUS_INDEX_NAME, (Key("Status", "S", "HASH"), Key("CreatedAt", "S", "RANGE")))
# DESIGN.md's two indexes; an entity added later may declare more, so tests look these up by name.
GSI1 = IndexSpec("GSI1", (Key("GSI1PK", "S", "HASH"), Key("SK", "S", "RANGE")))
EMAIL_INDEX = IndexSpec("Email-Index", (Key("Email", "S", "HASH"),))


def _with(spec: TableSpec, **changes: Any) -> TableSpec:
    return dataclasses.replace(spec, **changes)


def _head_and_next(versions: Path) -> tuple[str, str]:
    """The newest revision in ``versions`` and the id ``new`` gives the one after it."""
    head = load_revisions(versions)[-1].revision
    return head, f"{int(head) + 1:04d}"


def test_the_models_declare_the_physical_table_of_the_design() -> None:
    spec = declared.declared_spec()

    assert spec.keys == (Key("PK", "S", "HASH"), Key("SK", "S", "RANGE"))
    assert spec.index("GSI1") == GSI1
    assert spec.index("Email-Index") == EMAIL_INDEX
    assert (spec.ttl_attribute, spec.stream_view_type, spec.billing_mode) == (
        "ExpiresAt",
        "NEW_AND_OLD_IMAGES",
        "PAY_PER_REQUEST",
    )


@pytest.fixture
def model_with_status_index() -> Iterator[type[TableModel]]:
    """A temporary entity under ``TableModel`` declaring ``STATUS_INDEX`` (a real model change);
    unregistered afterwards, so the models are as they were for the next test."""
    import models  # noqa: F401  (every real entity registered first, as check does)

    class StatusIndex(GlobalSecondaryIndex[Any]):  # type: ignore[no-untyped-call]
        class Meta:
            index_name = STATUS_INDEX_NAME
            projection = AllProjection()

        status = UnicodeAttribute(hash_key=True, attr_name="Status")
        created_at = UnicodeAttribute(range_key=True, attr_name="CreatedAt")

    discriminator = f"TEST_SHIPMENT_{uuid.uuid4().hex[:8]}"

    class Shipment(TableModel, discriminator=discriminator):
        status = UnicodeAttribute(attr_name="Status", null=True)
        by_status = StatusIndex()

    with scratch_entities([Shipment]):
        yield Shipment


def test_check_exits_1_naming_an_index_a_model_declares_and_autogenerate_brings_it_back_to_0(
    local: Settings,
    client: Any,
    make_versions: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    versions = make_versions()
    head, following = _head_and_next(versions)
    runner.upgrade(out=quiet, client=client, versions_dir=versions)
    assert cli.main(["check"]) == 0
    request.getfixturevalue("model_with_status_index")  # a model now declares STATUS_INDEX
    changed = declared.declared_spec()
    assert changed.index(STATUS_INDEX_NAME) == STATUS_INDEX
    capsys.readouterr()

    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert (
        f"drift: index {STATUS_INDEX_NAME}: declared (Status S HASH, CreatedAt S RANGE; projection ALL), "
        "missing" in out
    )

    assert cli.main(["--versions-dir", str(versions), "new", "Add the status index", "--autogenerate"]) == 0
    written = sorted(versions.glob(f"{following}_*.py"))
    assert [p.name for p in written] == [f"{following}_add_the_status_index.py"]
    keys = '[Key("Status", "S", "HASH"), Key("CreatedAt", "S", "RANGE")]'
    assert f'ctx.create_global_index("{STATUS_INDEX_NAME}", {keys})' in written[0].read_text()
    assert runner.upgrade(out=quiet, client=client, versions_dir=versions) == [following]
    capsys.readouterr()
    assert cli.main(["check"]) == 0
    assert "in sync" in capsys.readouterr().out

    runner.downgrade(head, out=quiet, client=client, versions_dir=versions)
    assert [d.subject for d in runner.check(declared=changed, client=client)] == [STATUS_INDEX_NAME]


def test_autogenerate_refuses_when_the_table_is_not_at_head(
    local: Settings, client: Any, make_versions: Callable[..., Path]
) -> None:
    versions = make_versions()
    files = sorted(p.name for p in versions.glob("*.py"))
    runner.upgrade("0002", out=quiet, client=client, versions_dir=versions)  # behind head (0003 exists)

    with pytest.raises(MigrationError, match="not at head"):
        runner.new("x", autogenerate_ops=True, versions_dir=versions, client=client, out=quiet)
    assert sorted(p.name for p in versions.glob("*.py")) == files  # nothing written


def test_new_without_autogenerate_writes_an_empty_revision_after_head(
    make_versions: Callable[..., Path],
) -> None:
    versions = make_versions()
    head, following = _head_and_next(versions)

    assert cli.main(["--versions-dir", str(versions), "new", "Tidy up: nothing yet!"]) == 0

    chain = load_revisions(versions)
    assert [r.revision for r in chain][-2:] == [head, following]
    assert chain[-1].down_revision == head
    assert chain[-1].message == "Tidy up: nothing yet!"
    assert chain[-1].path.name == f"{following}_tidy_up_nothing_yet.py"


def test_a_temporary_model_is_gone_from_the_declared_spec_after_its_test() -> None:
    assert declared.declared_spec().index(STATUS_INDEX_NAME) is None


def test_each_kind_of_drift_is_named() -> None:
    want = declared.declared_spec()
    live = _with(
        want,
        indexes=(
            *(i for i in want.indexes if i.name != "GSI1"),
            IndexSpec("Old", (Key("X", "N", "HASH"),), "KEYS_ONLY"),
        ),
        ttl_attribute=None,
        stream_view_type="KEYS_ONLY",
        billing_mode="PROVISIONED",
        keys=(Key("PK", "S", "HASH"),),
    )

    messages = [str(d) for d in diff(want, live, "T")]

    assert messages == [
        "keys: declared PK (S, HASH), SK (S, RANGE); live PK (S, HASH)",
        "index GSI1: declared (GSI1PK S HASH, SK S RANGE; projection ALL), missing from the live table",
        "index Old: on the live table (X N HASH; projection KEYS_ONLY), not declared",
        "TTL: declared on ExpiresAt, live disabled",
        "stream: declared NEW_AND_OLD_IMAGES, live KEYS_ONLY",
        "billing: declared PAY_PER_REQUEST, live PROVISIONED",
    ]
    assert diff(want, want) == []
    assert [d.kind for d in diff(want, None)] == ["table"]


def test_autogenerate_puts_one_index_change_in_each_revision_and_downgrades_in_reverse(
    tmp_path: Path,
) -> None:
    want = declared.declared_spec()
    # live: Email-Index missing, GSI1 with another projection, every other declared index as declared
    others = tuple(i for i in want.indexes if i.name not in ("GSI1", "Email-Index"))
    live = _with(
        want,
        indexes=(dataclasses.replace(GSI1, projection="KEYS_ONLY"), *others),
        stream_view_type=None,
        billing_mode="PROVISIONED",
        provisioned={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4},
    )

    groups = autogenerate.group(autogenerate.steps(diff(want, live), want, live))

    assert [[s.kind for s in g] for g in groups] == [["index", "table", "table"], ["index"], ["index"]]
    up, down = autogenerate.bodies(groups[0])
    assert up == [
        'ctx.create_global_index("Email-Index", [Key("Email", "S", "HASH")])',
        'ctx.set_stream("NEW_AND_OLD_IMAGES")',
        'ctx.set_billing("PAY_PER_REQUEST")',
    ]
    assert down == [
        'ctx.set_billing("PROVISIONED", read_capacity=3, write_capacity=4)',
        "ctx.set_stream(None)",
        'ctx.delete_global_index("Email-Index")',
    ]
    assert [autogenerate.bodies(g)[0] for g in groups[1:]] == [
        ['ctx.delete_global_index("GSI1")'],
        ['ctx.create_global_index("GSI1", [Key("GSI1PK", "S", "HASH"), Key("SK", "S", "RANGE")])'],
    ]
    path = write_revision(tmp_path, [], "generated", up, down)
    compile(path.read_text(), str(path), "exec")


def test_keys_cannot_be_autogenerated() -> None:
    want = declared.declared_spec()
    live = _with(want, keys=(Key("PK", "S", "HASH"),))

    with pytest.raises(MigrationError, match="cannot change this on a live table"):
        autogenerate.steps(diff(want, live), want, live)
