"""The README's "Declaring a new entity", followed word for word on DynamoDB Local, in this process.

The recipe's files (``tests.migrations.recipe``) are written into a temporary package and imported;
the revision is written by ``new --autogenerate`` into a temporary copy of the versions directory;
the repository function runs over the declared query. Afterwards the entity is unregistered, so the
real models are as they were for the next test. (``test_recipe_in_a_copy`` follows the recipe in a
copy of the project, under the recipe's own names, and runs the suites there.)

Only the stored names are changed: the string literals ``RENAMED`` wherever they appear. A user who
followed the recipe has an ``INVOICE`` entity and a ``GSI2`` index of their own, and this test
still declares a new entity and a new index next to them.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest

from core.config import Settings
from core.errors import InvalidCursor, InvalidInput, NotFound
from migrations import __main__ as cli
from migrations import runner
from migrations.declared import declared_spec
from migrations.revisions import load_revisions
from models.table import TableModel
from repositories.users import create_user
from tests.helpers import raw_get
from tests.migrations.helpers import quiet
from tests.migrations.recipe import read_recipe

# The recipe's stored names (string literals), and this test's, which no user would choose.
_RUN = uuid.uuid4().hex[:8]
DISCRIMINATOR = f"RECIPE_TEST_{_RUN.upper()}"
INDEX, INDEX_KEY = f"RecipeTest-{_RUN}", f"RecipeTestPK{_RUN}"
RENAMED = {"INVOICE": DISCRIMINATOR, "GSI2": INDEX, "GSI2PK": INDEX_KEY}


class Followed(NamedTuple):
    """The recipe's entity (the one class its model files declare) and its repository function."""

    entity: Any
    access: Callable[..., Any]


def _renamed(code: str) -> str:
    """``code`` with every string literal of ``RENAMED`` replaced by this test's name."""
    for recipe_name, test_name in RENAMED.items():
        code = re.sub(rf"""(["']){re.escape(recipe_name)}\1""", rf"\g<1>{test_name}\g<1>", code)
    return code


def _defined(module: ModuleType, kind: Callable[[Any], bool]) -> list[Any]:
    """The objects of ``kind`` that ``module`` itself defines (not those it imports)."""
    return [value for value in vars(module).values()
            if kind(value) and getattr(value, "__module__", None) == module.__name__]


def _is_entity(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, TableModel) and value.keys is not None


@pytest.fixture
def recipe(tmp_path: Path) -> Iterator[Followed]:
    """The README's files, stored names renamed, imported from a temporary package."""
    files = read_recipe().files
    assert any(name.startswith("models/") for name in files), "the recipe declares no entity"
    assert any(name.startswith("repositories/") for name in files), "the recipe has no access pattern"
    every_code = "\n".join(files.values())
    for recipe_name in RENAMED:
        assert re.search(rf"""(["']){re.escape(recipe_name)}\1""", every_code), \
            f'the recipe no longer has the string literal "{recipe_name}"'
    package = f"recipe_{uuid.uuid4().hex[:8]}"
    # models/x.py -> <package>/models/x.py, and every import of a recipe module follows it there.
    root = tmp_path / package
    modules = [name.removesuffix(".py").replace("/", ".") for name in files]
    for name, text in files.items():
        code = _renamed(text)
        for module in modules:
            code = re.sub(rf"\b(?<![.\w]){re.escape(module)}\b", f"{package}.{module}", code)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(code)
    for folder in [root, *(path for path in root.rglob("*") if path.is_dir())]:
        (folder / "__init__.py").touch()
    sys.path.insert(0, str(tmp_path))
    registry: Any = TableModel._get_discriminator_attribute()
    entities: list[type[TableModel]] = []
    try:
        imported = {module: importlib.import_module(f"{package}.{module}") for module in modules}
        entities = [cls for module, loaded in imported.items() if module.startswith("models.")
                    for cls in _defined(loaded, _is_entity)]
        [entity] = [cls for cls in entities if registry.get_discriminator(cls) == DISCRIMINATOR]
        [access] = [function for module, loaded in imported.items() if module.startswith("repositories.")
                    for function in _defined(loaded, inspect.isfunction)
                    if not function.__name__.startswith("_")]
        yield Followed(entity, access)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]
        for cls in entities:
            registry._class_map.pop(cls, None)
        registry._discriminator_map.pop(DISCRIMINATOR, None)
        indexes = getattr(sys.modules.get("models.indexes"), "_SCHEMAS", None)
        if isinstance(indexes, dict):  # what the index declarations keep by physical name
            indexes.pop(INDEX, None)
    assert declared_spec().index(INDEX) is None  # the real models are as they were


def test_the_readme_recipe_declares_migrates_and_queries_a_new_entity(
    local: Settings, make_versions: Callable[..., Path], recipe: Followed, capsys: pytest.CaptureFixture[str],
) -> None:
    invoice_cls, invoices_due_on = recipe
    versions = make_versions()
    runner.upgrade(out=quiet, versions_dir=versions)
    capsys.readouterr()

    # 2. The migration: check sees the new index, autogenerate writes it, upgrade builds it.
    assert cli.main(["check"]) == 1
    assert INDEX in capsys.readouterr().out
    before = [r.revision for r in load_revisions(versions)]
    new = ["--versions-dir", str(versions), "new", "add invoices by due day", "--autogenerate"]
    assert cli.main(new) == 0
    written = load_revisions(versions)[len(before):]
    assert len(written) == 1 and written[0].down_revision == before[-1]
    assert f'create_global_index("{INDEX}"' in written[0].path.read_text()
    assert cli.main(["--versions-dir", str(versions), "upgrade"]) == 0
    capsys.readouterr()
    assert cli.main(["check"]) == 0

    # 1. The entity keeps its rules: an owner is needed, money and text are checked.
    user = create_user(f"{uuid.uuid4().hex[:8]}@example.com", "Payer")
    with pytest.raises(NotFound):
        invoice_cls(user_id="nobody", invoice_id="i0", total=Decimal(1), due_day="2025-07-01").save()
    with pytest.raises(InvalidInput):
        invoice_cls(user_id=user.user_id, invoice_id="i0", total=Decimal("-1"), due_day="2025-07-01").save()
    due = [invoice_cls(user_id=user.user_id, invoice_id=f"i{n}", total=Decimal(n), due_day="2025-07-01")
           for n in range(1, 4)]
    for invoice in due:
        invoice.save()
    invoice_cls(user_id=user.user_id, invoice_id="paid", total=Decimal(9)).save()  # no due day: sparse
    invoice_cls(user_id=user.user_id, invoice_id="later", total=Decimal(5), due_day="2025-08-01").save()

    # 3. The access pattern, over the declared query, with exact has_more and bound cursors.
    first = invoices_due_on("2025-07-01", limit=2)
    assert first.has_more and [i.invoice_id for i in first.items] == ["i1", "i2"]
    second = invoices_due_on("2025-07-01", limit=2, cursor=first.next_cursor)
    assert [i.invoice_id for i in second.items] == ["i3"] and not second.has_more
    with pytest.raises(InvalidCursor):
        invoices_due_on("2025-08-01", limit=2, cursor=first.next_cursor)

    # Paying an invoice removes its due day, and update() takes it out of the sparse index.
    due[0].update([invoice_cls.due_day.set(None)])
    stored = raw_get(local, invoice_cls, user_id=user.user_id, invoice_id="i1")
    assert stored is not None and INDEX_KEY not in stored and "DueDay" not in stored
    assert [i.invoice_id for i in invoices_due_on("2025-07-01").items] == ["i2", "i3"]
