"""The architecture as a test: Fly behind one seam, and no upward imports.

* Everything Fly lives in ``previewctl/backends/fly/``. Outside it, only
  ``backends/__init__.py`` (which names the backend in use) imports it; no code names
  Fly's client or models; no text names ``flyctl``, ``.fly.dev`` or ``.internal``: what
  a person reads about Fly's tools (the CLI's help, the ``[app]`` hints) comes from
  ``backends/fly/words.py`` through the registry.
* Backends import nothing from ops or the CLI; the shared layer below them (the
  bookkeeping, the one "managed" rule, the retry and process primitives) imports no
  backend, ops or CLI code either.
* No module outside ``ops/`` and ``cli/`` imports either of them, ops never import the
  CLI, and the API clients import no backend, spec or config.
* No ops command module (one per command) imports another, directly or through a
  shared ops module: what two commands share lives in the shared ops layer.

Imports are read however they are spelt: ``from a import b``, ``import a.b``, relative
ones, inside functions, and ``importlib.import_module("a.b")`` with a literal name.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

import previewctl

SRC = Path(previewctl.__file__).parent
FLY = SRC / "backends" / "fly"
FLY_NAMES = {"FlyClient", "Machine", "MachineEvent", "build_fly_client"}
FLY_TEXT = ("flyctl", ".fly.dev", ".internal")
# Nothing outside the package names Fly's tools: help and config hints take what a person
# reads about them from backends/fly/words.py (through the registry).
TEXT_ALLOWED: set[str] = set()
SHARED = ["bookkeeping.py", "managed.py", "retry.py", "process.py", "backends/base.py"]


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), ast.parse(path.read_text(), str(path))


def _absolute(node: ast.ImportFrom, name: str) -> str:
    """The module an ``ImportFrom`` names, relative ones resolved against ``name``."""
    if not node.level:
        return node.module or ""
    package = ["previewctl", *name.split("/")[:-1]]  # a module's and an __init__'s alike
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _dynamic(node: ast.AST) -> str | None:
    """``importlib.import_module("x")`` or ``__import__("x")`` with a literal name."""
    if not (isinstance(node, ast.Call) and node.args):
        return None
    callee = identifier(node.func)
    first = node.args[0]
    if callee in ("import_module", "__import__") and isinstance(first, ast.Constant):
        return str(first.value)
    return None


def imported(tree: ast.Module, name: str = "") -> set[str]:
    """Every module ``tree`` imports; ``name`` (its path under SRC) resolves relative ones."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _absolute(node, name)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif (dynamic := _dynamic(node)) is not None:
            found.add(dynamic)
    return found


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def outside_fly() -> Iterator[tuple[str, ast.Module]]:
    return ((name, tree) for name, tree in modules() if not name.startswith("backends/fly/"))


def test_only_the_backend_registry_imports_fly() -> None:
    offenders = {
        name: sorted(m for m in imported(tree, name) if within(m, ("previewctl.backends.fly",)))
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


def texts(source: str) -> Iterator[tuple[int, str]]:
    """Every string constant (docstrings too) and every comment of a module's source."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def fly_text(name: str, source: str) -> list[str]:
    return [
        f"{name}:{line} {hits}"
        for line, text in texts(source)
        if (hits := [t for t in FLY_TEXT if t in text.lower()])
    ]


def test_no_text_outside_the_package_names_flys_tools_or_host_names() -> None:
    found = [
        hit
        for name, _tree in outside_fly()
        if name.split("/")[0] not in TEXT_ALLOWED
        for hit in fly_text(name, (SRC / name).read_text())
    ]
    assert found == []


def test_the_text_check_sees_comments_docstrings_and_any_case() -> None:
    source = '"""Runs FLYCTL."""\nX = 1  # see app.fly.dev\nY = "h.internal"\nZ = "fly"\n'
    assert [hit.split()[0] for hit in fly_text("m.py", source)] == ["m.py:1", "m.py:3", "m.py:2"]


@pytest.mark.parametrize("layer", ["backends/", *SHARED])
def test_no_upward_imports(layer: str) -> None:
    banned: tuple[str, ...] = ("previewctl.ops", "previewctl.cli")
    if layer in SHARED:
        banned += ("previewctl.backends.fly",)
    found = {
        name: sorted(m for m in imported(tree, name) if within(m, banned))
        for name, tree in modules()
        if name.startswith(layer)
    }
    assert found, f"no module matched {layer}"
    assert {k: v for k, v in found.items() if v} == {}


# One module per command (DESIGN.md, "Architecture"); the rest of ops/ is the shared layer.
OPS_COMMANDS: tuple[str, ...] = ("up", "down", "seed", "gc", "status", "stop", "resume")
OPS_COMMANDS += ("envcmd", "plan", "init", "doctor")


def command_of(module: str) -> str | None:
    """The command module ``module`` is or lies in (``previewctl.ops.up.X`` is ``up``)."""
    parts = module.split(".")
    if parts[:2] == ["previewctl", "ops"] and len(parts) > 2 and parts[2] in OPS_COMMANDS:
        return parts[2]
    return None


def ops_modules() -> dict[str, ast.Module]:
    return {name: tree for name, tree in modules() if name.startswith("ops/")}


def test_every_ops_command_module_exists() -> None:
    """The list below is the real one: a renamed command module is not silently skipped."""
    assert {f"ops/{c}.py" for c in OPS_COMMANDS} <= set(ops_modules())


def test_no_ops_command_module_imports_another() -> None:
    found = {}
    for name, tree in ops_modules().items():
        me = name.removeprefix("ops/").removesuffix(".py")
        if me not in OPS_COMMANDS:
            continue
        others = {c for c in map(command_of, imported(tree, name)) if c and c != me}
        if others:
            found[name] = sorted(others)
    assert found == {}


def test_no_shared_ops_module_reaches_a_command_module() -> None:
    """A command may not import another through the shared layer either."""
    found = {}
    for name, tree in ops_modules().items():
        me = name.removeprefix("ops/").removesuffix(".py")
        if me in OPS_COMMANDS:
            continue
        commands = {c for c in map(command_of, imported(tree, name)) if c}
        if commands:
            found[name] = sorted(commands)
    assert found == {}


# What a group of modules may never import: each layer imports only those below it.
CLIENTS_BANNED = ("previewctl.backends", "previewctl.ops", "previewctl.cli")
BANNED_BELOW = {
    "ops/": ("previewctl.cli",),
    "clients/": (*CLIENTS_BANNED, "previewctl.spec", "previewctl.config"),
}


def test_nothing_below_ops_imports_ops_or_the_cli() -> None:
    found = {
        name: sorted(
            m for m in imported(tree, name) if within(m, ("previewctl.ops", "previewctl.cli"))
        )
        for name, tree in modules()
        if name.split("/")[0] not in ("ops", "cli", "__main__.py")
    }
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize("layer", sorted(BANNED_BELOW))
def test_a_layer_imports_only_those_below_it(layer: str) -> None:
    banned = BANNED_BELOW[layer]
    found = {
        name: sorted(m for m in imported(tree, name) if within(m, banned))
        for name, tree in modules()
        if name.startswith(layer)
    }
    assert found, f"no module matched {layer}"
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("from previewctl.ops.up import run_up\n", "ops/down.py"),
        ("from previewctl.ops import up\n", "ops/down.py"),
        ("import previewctl.ops.up\n", "ops/down.py"),
        ("from . import up\n", "ops/down.py"),
        ("from .up import run_up\n", "ops/down.py"),
        ("def f():\n    from previewctl.ops import up\n", "ops/down.py"),
        ("import importlib\nimportlib.import_module('previewctl.ops.up')\n", "ops/down.py"),
        ("from previewctl.ops.up import run_up\n", "ops/session.py"),
    ],
)
def test_the_import_reader_sees_every_spelling(source: str, where: str) -> None:
    """The checks above cannot pass by missing an import: each spelling is seen."""
    tree = ast.parse(source)
    commands = {c for c in map(command_of, imported(tree, where)) if c}
    assert commands == {"up"}


def test_relative_imports_resolve_from_a_package_and_a_module() -> None:
    init = imported(ast.parse("from .fly import backend\n"), "backends/__init__.py")
    assert "previewctl.backends.fly.backend" in init
    deep = imported(ast.parse("from ...ops import up\n"), "backends/fly/converge.py")
    assert "previewctl.ops.up" in deep
