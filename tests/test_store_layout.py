"""The store's backends are chosen in one place: nothing imports a backend module but open_store."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
BACKENDS = {"app.store.sqlite", "app.store.postgres"}


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_open_store_imports_a_backend() -> None:
    offenders = {
        f"{path.relative_to(APP.parent)} imports {', '.join(sorted(hits))}"
        for path in APP.rglob("*.py")
        if path != APP / "store" / "__init__.py" and (hits := imported(path) & BACKENDS)
    }
    assert not offenders, sorted(offenders)
