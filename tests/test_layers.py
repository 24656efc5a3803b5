"""The architecture as a test: Fly behind one seam, and no upward imports.

* Everything Fly lives in ``previewctl/backends/fly/``. Outside it, only
  ``backends/__init__.py`` (which names the backend in use) imports it; no code names
  Fly's client or models; no text names ``flyctl``, ``.fly.dev`` or ``.internal``, except
  what a person reads about the contract: the CLI's help (``cli/``) and the config's
  hints for its ``[app]`` section (``config.py``).
* Backends import nothing from ops or the CLI; the shared layer below them (the
  bookkeeping, the one "managed" rule, the retry and process primitives) imports no
  backend, ops or CLI code either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import previewctl

SRC = Path(previewctl.__file__).parent
FLY = SRC / "backends" / "fly"
FLY_NAMES = {"FlyClient", "Machine", "MachineEvent", "build_fly_client"}
FLY_TEXT = ("flyctl", ".fly.dev", ".internal")
# What a person reads about the contract may name Fly's tools.
TEXT_ALLOWED = {"cli", "config_sections.py"}  # the [app] hints name flyctl commands
SHARED = ["bookkeeping.py", "managed.py", "retry.py", "process.py", "backends/base.py"]


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), ast.parse(path.read_text(), str(path))


def imported(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def outside_fly() -> Iterator[tuple[str, ast.Module]]:
    return ((name, tree) for name, tree in modules() if not name.startswith("backends/fly/"))


def test_only_the_backend_registry_imports_fly() -> None:
    offenders = {
        name: sorted(m for m in imported(tree) if within(m, ("previewctl.backends.fly",)))
        for name, tree in outside_fly()
        if name != "backends/__init__.py"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def identifier(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.alias):
        return (node.asname or node.name).rpartition(".")[2]
    return None


def test_no_code_outside_the_package_names_flys_client_or_models() -> None:
    found = [
        f"{name}:{getattr(node, 'lineno', 0)} {identifier(node)}"
        for name, tree in outside_fly()
        for node in ast.walk(tree)
        if identifier(node) in FLY_NAMES
    ]
    assert found == []


def test_no_text_outside_the_package_names_flys_tools_or_host_names() -> None:
    found = []
    for name, tree in outside_fly():
        if name.split("/")[0] in TEXT_ALLOWED:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                hits = [t for t in FLY_TEXT if t in node.value]
                if hits:
                    found.append(f"{name}:{node.lineno} {hits}")
    assert found == []


@pytest.mark.parametrize("layer", ["backends/", *SHARED])
def test_no_upward_imports(layer: str) -> None:
    banned: tuple[str, ...] = ("previewctl.ops", "previewctl.cli")
    if layer in SHARED:
        banned += ("previewctl.backends.fly",)
    found = {
        name: sorted(m for m in imported(tree) if within(m, banned))
        for name, tree in modules()
        if name.startswith(layer)
    }
    assert found, f"no module matched {layer}"
    assert {k: v for k, v in found.items() if v} == {}
