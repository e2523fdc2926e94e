"""The README's "Declaring a new entity", followed word for word on DynamoDB Local.

The code blocks of that section are written into a temporary package and imported; the revision is
written by ``new --autogenerate`` into a temporary copy of the versions directory; the repository
function runs over the declared query. Afterwards the entity is unregistered, so the real models
are as they were for the next test.

Only the stored names are changed (``RENAMED``): a user who followed the recipe has an ``Invoice``
with ``INVOICE`` and ``GSI2`` of their own, and this test still declares a new entity and a new
index next to it.
"""

from __future__ import annotations

import importlib
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from core.config import Settings
from core.errors import InvalidCursor, InvalidInput, NotFound
from migrations import __main__ as cli
from migrations import runner
from migrations.revisions import load_revisions
from models.table import TableModel
from repositories.users import create_user
from tests.helpers import raw_get
from tests.migrations.helpers import quiet

README = Path(__file__).resolve().parents[2] / "README.md"
# The recipe's stored names, and this test's, which no user would choose.
DISCRIMINATOR = f"RECIPE_TEST_{uuid.uuid4().hex[:8].upper()}"
INDEX, INDEX_KEY = "RecipeTestIndex", "RecipeTestPK"
RENAMED = {'discriminator="INVOICE"': f'discriminator="{DISCRIMINATOR}"',
           'index_name = "GSI2"': f'index_name = "{INDEX}"', 'attr_name="GSI2PK"': f'attr_name="{INDEX_KEY}"'}


def _recipe_blocks() -> dict[str, str]:
    """The python code blocks of the README's new-entity section, by the path in their first line."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Declaring a new entity"):]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(# (\S+)\n.*?)```", section, flags=re.S)
    return {path: code for code, path in blocks}


@pytest.fixture
def recipe(tmp_path: Path) -> Iterator[tuple[ModuleType, ModuleType]]:
    """The README's entity and repository modules, imported from a temporary package."""
    blocks = _recipe_blocks()
    assert set(blocks) == {"models/invoice.py", "repositories/invoices.py"}
    package = f"recipe_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    entity = blocks["models/invoice.py"]
    for recipe_name, test_name in RENAMED.items():
        assert entity.count(recipe_name) >= 1, f"the recipe no longer has {recipe_name}"
        entity = entity.replace(recipe_name, test_name)
    (tmp_path / package / "invoice.py").write_text(entity)
    repository = blocks["repositories/invoices.py"]
    repository = repository.replace("from models.invoice ", f"from {package}.invoice ")
    (tmp_path / package / "invoices.py").write_text(repository)
    sys.path.insert(0, str(tmp_path))
    registry: Any = TableModel._get_discriminator_attribute()
    try:
        models = importlib.import_module(f"{package}.invoice")
        yield models, importlib.import_module(f"{package}.invoices")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith(package)]:
            del sys.modules[name]
        invoice = locals().get("models")
        if invoice is not None:
            registry._class_map.pop(invoice.Invoice, None)
        registry._discriminator_map.pop(DISCRIMINATOR, None)


def test_the_readme_recipe_declares_migrates_and_queries_a_new_entity(
    local: Settings, make_versions: Callable[..., Path], recipe: tuple[ModuleType, ModuleType],
    capsys: pytest.CaptureFixture[str],
) -> None:
    models, repository = recipe
    invoice_cls = models.Invoice
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
    first = repository.invoices_due_on("2025-07-01", limit=2)
    assert first.has_more and [i.invoice_id for i in first.items] == ["i1", "i2"]
    second = repository.invoices_due_on("2025-07-01", limit=2, cursor=first.next_cursor)
    assert [i.invoice_id for i in second.items] == ["i3"] and not second.has_more
    with pytest.raises(InvalidCursor):
        repository.invoices_due_on("2025-08-01", limit=2, cursor=first.next_cursor)

    # Paying an invoice removes its due day, and update() takes it out of the sparse index.
    due[0].update([invoice_cls.due_day.set(None)])
    stored = raw_get(local, invoice_cls, user_id=user.user_id, invoice_id="i1")
    assert stored is not None and INDEX_KEY not in stored and "DueDay" not in stored
    assert [i.invoice_id for i in repository.invoices_due_on("2025-07-01").items] == ["i2", "i3"]
