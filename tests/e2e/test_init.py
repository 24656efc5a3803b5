"""`previewctl init`, run as the installed console script in an empty directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from previewctl.ops.init import template_files, template_text
from tests.support.cli import base_env, previewctl_executable

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = [
    "previewctl.toml",
    ".fly/machine-config.json",
    ".github/workflows/preview.yml",
    ".github/workflows/preview-gc.yml",
]
# the agents template's profiles (tracing, nango) bring their machine files
PROFILE_FILES = [".fly/profiles/tracing.json", ".fly/profiles/otel-collector.yaml"]
PROFILE_FILES += [".fly/profiles/nango.json"]
WRITTEN_BY = {"postgres": WRITTEN, "agents": WRITTEN + PROFILE_FILES}


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [previewctl_executable(), *args],
        cwd=cwd,
        env=base_env(cwd),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


def test_agents_template_is_the_shipped_default_byte_for_byte() -> None:
    """One source of truth: whoever changes the root files must sync the template."""
    assert (ROOT / "previewctl.toml").read_bytes() == template_text(
        "agents/previewctl.toml"
    ).encode("utf-8")
    assert (ROOT / ".fly" / "machine-config.json").read_bytes() == template_text(
        "agents/machine-config.json"
    ).encode("utf-8")
    for path in PROFILE_FILES:
        shipped = template_text("agents/profiles/" + path.rsplit("/", 1)[1])
        assert (ROOT / path).read_bytes() == shipped.encode("utf-8"), path


def _jobs(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    return {"on": data.get("on", data.get(True)), "jobs": data["jobs"]}


@pytest.mark.parametrize("name", ["preview.yml", "preview-gc.yml"])
def test_written_workflows_are_the_shipped_ones_with_the_action_reference(name: str) -> None:
    """The workflows init writes run exactly what this repository's own workflows run."""
    written = template_files("postgres", action="./")[f".github/workflows/{name}"]
    assert _jobs(written) == _jobs((ROOT / ".github" / "workflows" / name).read_text())


@pytest.mark.parametrize("template", ["postgres", "agents"])
def test_init_then_plan_works_in_an_empty_directory(empty: Path, template: str) -> None:
    init = run(empty, "init", "--template", template)
    assert init.returncode == 0, init.stderr
    written = WRITTEN_BY[template]
    assert sorted(str(p.relative_to(empty)) for p in empty.rglob("*") if p.is_file()) == sorted(
        written
    )
    for path in written:
        assert path in init.stdout
    assert "FLY_API_TOKEN" in init.stdout  # the secrets to add
    assert "[app] org" in init.stdout  # the values to change
    assert "previewctl doctor" in init.stdout
    plan = run(empty, "--json", "plan")
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert data["app"]["name"] == ("pr-1-preview" if template == "postgres" else "pr-1-agents")


def test_postgres_template_is_the_smallest_useful_set_up(empty: Path) -> None:
    assert run(empty, "init", "--template", "postgres", str(empty)).returncode == 0
    plan = json.loads(run(empty, "--json", "plan").stdout)
    machine = plan["machine"]
    assert [c["image"] for c in machine["containers"]] == ["postgres:18"]
    assert list(plan["tunnels"]) == ["db"]
    assert [s["name"] for s in plan["steps"]] == ["migrate"]
    assert list(plan["vercel"]["projects"]) == ["web"]


def test_init_never_overwrites_without_force(empty: Path) -> None:
    (empty / "previewctl.toml").write_text("# mine\n")
    (empty / ".github" / "workflows").mkdir(parents=True)
    (empty / ".github" / "workflows" / "preview.yml").write_text("mine: true\n")
    refused = run(empty, "init", "--template", "postgres")
    assert refused.returncode == 2
    assert "previewctl.toml" in refused.stderr
    assert ".github/workflows/preview.yml" in refused.stderr
    assert "--force" in refused.stderr
    # nothing written: not even the files that did not exist
    assert (empty / "previewctl.toml").read_text() == "# mine\n"
    assert not (empty / ".fly").exists()
    assert not (empty / ".github" / "workflows" / "preview-gc.yml").exists()

    forced = run(empty, "init", "--template", "postgres", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (empty / "previewctl.toml").read_text() == template_text("postgres/previewctl.toml")


def test_init_json_and_a_custom_action_reference(empty: Path) -> None:
    pinned = "acme/previewctl@" + "0123456789abcdef" * 2 + "01234567"
    result = run(empty, "--json", "init", "-t", "postgres", "--action", pinned)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["template"] == "postgres"
    assert data["written"] == WRITTEN
    assert not any("OWNER/previewctl" in step for step in data["next_steps"])
    workflow = (empty / ".github" / "workflows" / "preview.yml").read_text()
    assert f"uses: {pinned}" in workflow
    assert "OWNER" not in workflow


@pytest.mark.parametrize(
    "args",
    [
        ["--template", "mysql"],
        ["--action", "not-a-ref"],
        ["--action", "acme/previewctl"],
    ],
)
def test_init_bad_input_exits_2_and_writes_nothing(empty: Path, args: list[str]) -> None:
    result = run(empty, "init", *args)
    assert result.returncode == 2, result.stderr
    assert list(empty.iterdir()) == []


def test_written_workflows_pass_the_schema_and_zizmor_once_pinned(empty: Path) -> None:
    pinned = "acme/previewctl@" + "ab" * 20
    assert run(empty, "init", "-t", "postgres", "--action", pinned).returncode == 0
    bindir = Path(sys.executable).parent
    workflows = sorted(str(p) for p in (empty / ".github" / "workflows").glob("*.yml"))
    schema = subprocess.run(
        [
            str(bindir / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *workflows,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    zizmor = subprocess.run(
        [str(bindir / "zizmor"), "--offline", *workflows],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
