"""The test tree's own rules: shared helpers come from tests.support, never from a test.

A test module or ``conftest`` that others import couples them (a fixture module pulled in
twice, a test collected from the wrong place, bench breaking when a test is renamed).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; top level and inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def forbidden(module: str) -> bool:
    parts = module.split(".")
    if parts[0] != "tests":
        return False
    return "conftest" in parts or any(p.startswith("test_") for p in parts)


def offenders() -> list[str]:
    files = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")])
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in sorted(imported_modules(path))
        if forbidden(module)
    ]


def test_no_test_module_and_no_conftest_is_imported() -> None:
    assert offenders() == []


def test_the_rule_sees_both_kinds_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import tests.e2e.test_gc\n"
        "def f():\n"
        "    from tests.conftest import base_env\n"
        "from tests.support.cli import Cli\n"
    )
    bad = sorted(m for m in imported_modules(sample) if forbidden(m))
    assert bad == ["tests.conftest", "tests.conftest.base_env", "tests.e2e.test_gc"]
