"""The composite action (action.yml): its interface, how it installs previewctl, and the
pinned dependency versions it installs with. Its command line and security properties
are checked with the workflows' in tests/test_workflows.py."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def action() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "action.yml").read_text())
    assert isinstance(data, dict)
    return data


def steps_by_name() -> dict[str, dict[str, Any]]:
    return {str(step["name"]): step for step in action()["runs"]["steps"]}


def test_inputs_and_outputs() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    assert set(spec["inputs"]) == {
        "command",
        "args",
        "config",
        "working-directory",
        "flyctl-version",
        "python-version",
    }
    assert spec["inputs"]["command"]["required"] is True
    for name in ("app", "hostname", "pr", "branch"):
        assert spec["outputs"][name]["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


def test_every_script_names_its_shell_and_reads_inputs_only_from_env() -> None:
    for step in action()["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash", step["name"]
            assert "${{" not in step["run"], step["name"]


def test_previewctl_is_installed_from_the_actions_own_source_with_uv_and_a_cache() -> None:
    steps = steps_by_name()
    uv = steps["Set up uv"]
    assert uv["uses"].startswith("astral-sh/setup-uv@")
    assert uv["with"]["enable-cache"] is True
    assert uv["with"]["version"].count(".") == 2  # an exact uv version, not "latest"
    globs = uv["with"]["cache-dependency-glob"].splitlines()
    assert globs == [
        "${{ github.action_path }}/pyproject.toml",
        "${{ github.action_path }}/constraints.txt",
    ]
    install = steps["Install previewctl"]
    assert install["env"] == {"ACTION_PATH": "${{ github.action_path }}"}
    assert '--constraint "$ACTION_PATH/constraints.txt" "$ACTION_PATH"' in install["run"]
    assert "uv pip install" in install["run"]
    # a second use in the same job reuses the install
    for name in ("Set up Python", "Set up uv", "Install previewctl"):
        assert steps[name]["if"] == "steps.found.outputs.installed != 'true'", name
    assert steps["Set up Python"]["with"]["python-version"] == "${{ inputs.python-version }}"


def test_flyctl_is_pinned_and_only_installed_for_commands_with_tunnels() -> None:
    spec = action()
    default = spec["inputs"]["flyctl-version"]["default"]
    assert default.count(".") == 2
    assert default[0].isdigit()
    step = steps_by_name()["Set up flyctl"]
    assert step["with"]["version"] == "${{ inputs.flyctl-version }}"
    condition = " ".join(step["if"].split())
    assert "inputs.flyctl-version != 'none'" in condition
    assert "!contains(inputs.args, '--no-wait')" in condition
    assert """fromJSON('["up", "seed", "resume", "tunnel"]')""" in condition


def _constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def test_pinned_versions_fall_within_pyproject_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _constraints()
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {text}"
