"""Importing the data layer loads what a call needs, not what a rare path needs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import models

PUBLIC = ("repositories.orders", "repositories.users", "repositories.accounts", "repositories.metrics",
          "repositories.query", "repositories.products", "repositories.batch", "repositories.streams",
          "models")
DEFERRED = ("structlog", "asyncio", "tenacity", "cryptography", "ulid", "cachetools")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return {name.split(".")[0] for name in json.loads(out)}


def test_importing_the_public_api_defers_logging_retry_and_cursor_libraries() -> None:
    loaded = _loaded_after("import " + ", ".join(PUBLIC))
    assert "pynamodb" in loaded and "botocore" in loaded
    assert loaded.isdisjoint(DEFERRED), loaded & set(DEFERRED)


def test_the_deferred_libraries_load_when_their_path_runs() -> None:
    statement = (
        "import logging, os\n"
        "os.environ['AWS_DEFAULT_REGION'] = 'us-east-1'\n"
        "from core import logs\n"
        "from core.retry import RetryPolicy\n"
        "from repositories.paging import decode_cursor, encode_cursor\n"
        "logs.get_logger().warning('an event')\n"
        "assert RetryPolicy(max_attempts=2, sleep=lambda _: None).retrying()(lambda: 1) == 1\n"
        "key = {'PK': {'S': 'p'}}\n"
        "assert decode_cursor(encode_cursor(key, {}, b'k' * 32), {}, b'k' * 32) == key\n"
        "from models.order import new_order_id, order_identity\n"
        "assert order_identity(new_order_id(), None)[0]\n"
        "from repositories import cache\n"
        "cache.configure(ttl_seconds=5)\n"
    )
    loaded = _loaded_after(statement)
    assert {"structlog", "tenacity", "cryptography", "ulid", "cachetools"} <= loaded


def _model_imports(path: Path) -> set[str]:
    """The ``models`` modules ``path`` imports when it runs (lazy imports included, typing-only not)."""
    found: set[str] = set()

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            only = typing_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.ImportFrom) and child.module and not only:
                if child.module == "models":
                    found.update(f"models.{alias.name}" for alias in child.names)
                elif child.module.startswith("models."):
                    found.add(child.module)
            visit(child, only)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def test_no_module_of_models_imports_itself_back() -> None:
    folder = Path(models.__file__).parent
    graph = {f"models.{path.stem}": _model_imports(path) for path in folder.glob("*.py")
             if path.stem != "__init__"}
    assert len(graph) > 20

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for module in graph.get(start, set()) - seen:
            seen.add(module)
            if module == target or reaches(module, target, seen):
                return True
        return False

    assert [module for module in sorted(graph) if reaches(module, module, set())] == []
    assert "models.table" in _model_imports(folder / "order.py")  # the walk sees imports at all
