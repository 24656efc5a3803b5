"""Profiles through the installed console script, as a labeled/unlabeled workflow runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.checks import assert_no_leak, machine_secrets
from tests.support.cli import Cli
from tests.support.profiles import (
    TRACING_MACHINE,
    profiles_toml,
    write_labeled_event,
    write_profile_machine,
)
from tests.support.project import BASIC_TOML, Project
from tests.support.workflow import APP, BRANCH, VERCEL_TOML, Wired, wire


@pytest.fixture
def wired(
    project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path, flyctl_path: Path
) -> Iterator[Wired]:
    with wire(project, fly, fly_token, tmp_path, Cli) as wired:
        project.write(BASIC_TOML + VERCEL_TOML + profiles_toml(tmp_path / "steps.log"))
        write_profile_machine(project, "tracing", TRACING_MACHINE)
        wired.cli.env["PREVIEWCTL_FLYCTL"] = str(flyctl_path)
        yield wired


def containers(fly: FlyEmulator) -> list[str]:
    [machine] = [m for m in fly.apps[APP].machines.values() if m.state != "destroyed"]
    return [c["name"] for c in machine.config["containers"]]


def test_the_label_brings_tracing_up_and_its_removal_takes_it_away(wired: Wired) -> None:
    write_labeled_event(wired.event, ["preview:tracing"])
    up = wired.cli.run("up")
    assert up.code == 0, up.output
    assert containers(wired.fly) == ["db", "authz", "collector", "jaeger"]
    assert "previewctl tunnel --pr 8` opens jaeger" in up.stderr
    token = machine_secrets(wired.fly, APP)["otel_token"]
    api = {e["key"]: e["value"] for e in wired.vercel.envs_for("api", BRANCH)}
    assert api["OTEL_HEADERS"] == f"Authorization=Bearer {token}"
    status = wired.cli.run("status", "--json")
    [row] = status.json()["rows"]
    assert row["profiles"] == ["tracing"]
    assert row["size"] == "shared-cpu-4x 5120MB"

    write_labeled_event(wired.event, [], action="unlabeled")
    down = wired.cli.run("up")
    assert down.code == 0, down.output
    assert containers(wired.fly) == ["db", "authz"]
    keys = {e["key"] for e in wired.vercel.envs_for("api", BRANCH)}
    assert "OTEL_HEADERS" not in keys
    assert wired.cli.run("status", "--json").json()["rows"][0]["profiles"] == []
    assert_no_leak(wired.everything_printed(), [token])


def test_an_unknown_profile_is_exit_2_before_any_request(wired: Wired) -> None:
    result = wired.cli.run("up", "--profile", "tracing", "--profile", "nope", "--json")
    assert result.code == 2, result.output
    assert result.json()["error"]["exit_code"] == 2
    assert "unknown profile(s): nope" in result.json()["error"]["message"]
    assert wired.fly.requests == []
    assert wired.vercel.requests == []
    plan = wired.cli.run("plan", "--pr", "8", "--profile", "tracing")
    assert plan.code == 0, plan.output
    assert "container collector" in plan.stdout
    assert "--profile" in wired.cli.run("up", "--help").stdout
