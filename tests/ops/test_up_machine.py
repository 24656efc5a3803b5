"""`up` against the Fly emulator, run as the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.fly_api import FlyEmulator, MachineState
from tests.support.checks import assert_no_leak, machine_secrets
from tests.support.cli import Cli
from tests.support.project import Project

APP = "pr-7-svc"


def live_machines(fly: FlyEmulator, app: str) -> list[MachineState]:
    return [m for m in fly.apps[app].machines.values() if m.state != "destroyed"]


def test_up_creates_app_and_one_machine_matching_the_rendered_config(
    cli: Cli, fly: FlyEmulator, project: Project, tmp_path: Path
) -> None:
    output = tmp_path / "gh_output"
    result = cli.run(
        "--json",
        "up",
        "--pr",
        "7",
        "--branch",
        "feature/x",
        env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)},
    )
    assert result.code == 0, result.output
    assert APP in fly.apps
    machines = live_machines(fly, APP)
    assert len(machines) == 1
    machine = machines[0]
    secrets = machine_secrets(fly, APP)
    assert set(secrets) == {"pg_password", "api_key"}
    config = machine.config
    expected = json.loads(
        json.dumps(project.machine)
        .replace("${secrets.pg_password}", secrets["pg_password"])
        .replace("${secrets.api_key}", secrets["api_key"])
        .replace("${pr}", "7")
    )
    for key in ("guest", "containers", "services"):
        assert config[key] == expected[key]
    meta = config["metadata"]
    assert meta["previewctl"] == "1"
    assert meta["previewctl_pr"] == "7"
    assert meta["previewctl_branch"] == "feature/x"
    assert machine.state == "started"
    # the public IPv6 the config asks for, because the machine has services
    assert len(fly.apps[APP].ips) == 1

    data = result.json()
    assert data["app"] == APP
    assert data["hostname"] == f"{APP}.fly.dev"
    outputs = output.read_text()
    assert f"app={APP}\n" in outputs
    assert f"hostname={APP}.fly.dev\n" in outputs
    assert "pr=7\n" in outputs
    assert "branch=feature/x\n" in outputs
    # every secret masked before anything else could print it, never printed otherwise
    for value in secrets.values():
        assert f"::add-mask::{value}" in result.stderr
        assert value not in result.stdout
        assert value not in outputs
    assert_no_leak(result.output, list(secrets.values()))


def test_second_up_sends_no_mutating_request(cli: Cli, fly: FlyEmulator) -> None:
    assert cli.run("up", "--pr", "7").code == 0
    first_secrets = machine_secrets(fly, APP)
    fly.clear_log()
    again = cli.run("up", "--pr", "7")
    assert again.code == 0, again.output
    assert fly.mutating_calls() == []
    assert "no change" in again.stderr
    assert machine_secrets(fly, APP) == first_secrets  # stable across runs


def test_changed_machine_config_updates_once(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    assert cli.run("up", "--pr", "7").code == 0
    before = live_machines(fly, APP)[0]
    secrets_before = machine_secrets(fly, APP)
    project.machine["guest"]["memory_mb"] = 2048
    project.write(project.config.read_text())
    fly.clear_log()
    result = cli.run("up", "--pr", "7")
    assert result.code == 0, result.output
    updates = [r for r in fly.mutating_calls() if r.method == "POST" and r.path.endswith(before.id)]
    assert len(updates) == 1
    after = live_machines(fly, APP)
    assert [m.id for m in after] == [before.id]
    assert after[0].config["guest"]["memory_mb"] == 2048
    assert machine_secrets(fly, APP) == secrets_before


def test_stopped_machine_is_started_once(cli: Cli, fly: FlyEmulator) -> None:
    assert cli.run("up", "--pr", "7").code == 0
    assert cli.run("stop", "--pr", "7").code == 0
    machine = live_machines(fly, APP)[0]
    assert machine.state == "stopped"
    fly.clear_log()
    result = cli.run("up", "--pr", "7")
    assert result.code == 0, result.output
    starts = fly.calls("POST", r"/start$")
    assert len(starts) == 1
    assert live_machines(fly, APP)[0].state == "started"
    assert fly.calls("POST", r"/machines$") == []  # no new machine
