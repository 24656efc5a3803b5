"""Size limits of the source (issue 11): no module over 400 lines, no function over 60.

A long module or function is where concepts pile up unseen; the limits keep the split the
redesign made. Lines are counted as a reader scrolls them: a module's every line, a
function's from its ``def`` (decorators included) to its last line, nested ones inside.
"""

from __future__ import annotations

import ast
from pathlib import Path

import previewctl

SRC = Path(previewctl.__file__).parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def function_sizes(path: Path) -> list[tuple[str, int, int]]:
    """``(qualified name, first line, lines)`` of every function and method in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                last = child.end_lineno or child.lineno
                found.append((f"{prefix}{child.name}", first, last - first + 1))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def too_long(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root)
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{name}: {lines} lines (at most {MAX_MODULE_LINES})")
        for function, first, size in function_sizes(path):
            if size > MAX_FUNCTION_LINES:
                problems.append(
                    f"{name}:{first} {function}: {size} lines (at most {MAX_FUNCTION_LINES})"
                )
    return problems


def test_no_source_module_or_function_is_over_the_limits() -> None:
    assert too_long(SRC) == []


def test_the_limits_see_modules_functions_methods_and_decorators(tmp_path: Path) -> None:
    body = [f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1)]
    (tmp_path / "fits.py").write_text("\n".join(["def fits():", *body]) + "\n")
    lines = ["import functools", "", "", "class Holder:", "    @functools.cache"]
    lines += ["    def method(self):", *(f"    {line}" for line in body[1:]), "        return 0"]
    lines += [""] * (MAX_MODULE_LINES + 1 - len(lines))
    (tmp_path / "long.py").write_text("\n".join(lines) + "\n")
    assert too_long(tmp_path) == [
        f"long.py: {MAX_MODULE_LINES + 1} lines (at most {MAX_MODULE_LINES})",
        f"long.py:5 Holder.method: {MAX_FUNCTION_LINES + 1} lines (at most {MAX_FUNCTION_LINES})",
    ]
