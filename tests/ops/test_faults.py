"""Transient API failures are ridden out; definitive ones fail at once with the API's message."""

from __future__ import annotations

import pytest

from tests.fakes.fly_api import FlyEmulator, MachineState
from tests.support.cli import Cli
from tests.support.project import Project

APP = "pr-4-svc"


def live(fly: FlyEmulator) -> list[MachineState]:
    return [m for m in fly.apps[APP].machines.values() if m.state != "destroyed"]


def test_429_with_retry_after_is_ridden_out(cli: Cli, fly: FlyEmulator) -> None:
    fly.inject("POST", r"^/v1/apps$", 429, times=2, retry_after="1")
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    assert len(fly.calls("POST", r"^/v1/apps$")) == 3
    assert len(live(fly)) == 1
    assert cli.run("up", "--pr", "4").code == 0
    converged(fly)


def test_503_bursts_are_ridden_out(cli: Cli, fly: FlyEmulator) -> None:
    fly.inject("GET", r"/machines$", 503, times=3)
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    assert len(live(fly)) == 1
    assert cli.run("up", "--pr", "4").code == 0
    converged(fly)


def test_dropped_connection_on_create_makes_one_machine(cli: Cli, fly: FlyEmulator) -> None:
    fly.inject("POST", r"/machines$", drop=True, times=1)
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    assert len(live(fly)) == 1
    assert cli.run("up", "--pr", "4").code == 0
    converged(fly)


def test_408_from_wait_is_asked_again(cli: Cli, fly: FlyEmulator) -> None:
    fly.inject("GET", r"/wait$", 408, times=2)
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    assert len(fly.calls("GET", r"/wait$")) >= 3
    assert cli.run("up", "--pr", "4").code == 0
    converged(fly)


def test_422_fails_at_once_with_the_api_message(cli: Cli, fly: FlyEmulator) -> None:
    fly.inject(
        "POST",
        r"/machines$",
        422,
        times=1,
        body={"error": "invalid config: guest.memory_mb too small", "status": "invalid"},
    )
    result = cli.run("up", "--pr", "4")
    assert result.code == 1
    assert "invalid config: guest.memory_mb too small" in result.stderr
    assert len(fly.calls("POST", r"/machines$")) == 1
    # nothing of ours was left half-made: the app created by this run is removed
    assert APP not in fly.apps
    assert cli.run("up", "--pr", "4").code == 0  # the fault is gone: converges
    converged(fly)


def test_401_fails_at_once(cli: Cli, fly: FlyEmulator) -> None:
    result = cli.run("up", "--pr", "4", env={"FLY_API_TOKEN": "fm2_wrongtoken"})
    assert result.code == 1
    assert "401" in result.stderr
    assert len(fly.requests) == 1
    assert fly.apps == {}
    assert cli.run("up", "--pr", "4").code == 0  # with the right token
    converged(fly)


def test_machine_that_never_turns_healthy_times_out_naming_the_check(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    project.config.write_text(
        project.config.read_text().replace('machine = "30s"', 'machine = "3s"')
    )
    assert cli.run("up", "--pr", "4").code == 0
    machine = live(fly)[0]
    fly.set_unhealthy(APP, machine.id, "db")
    project.machine["guest"]["memory_mb"] = 2048  # force an update + a fresh health wait
    project.write(project.config.read_text())
    result = cli.run("up", "--pr", "4")
    assert result.code == 1
    assert "did not become healthy" in result.stderr
    assert "db-tcp" in result.stderr
    assert "connection refused" in result.stderr


def test_app_name_owned_by_another_org_is_a_clear_error(cli: Cli, fly: FlyEmulator) -> None:
    fly.add_foreign_app(APP)
    result = cli.run("up", "--pr", "4")
    assert result.code == 1
    assert "another Fly organization" in result.stderr


# ---- the fault matrix of docs/reliability.md: each fault, then a re-run converges ----------


def converged(fly: FlyEmulator) -> None:
    machines = live(fly)
    assert len(machines) == 1
    assert machines[0].state == "started"
    assert machines[0].config["metadata"]["previewctl"] == "1"


def test_429_without_retry_after_backs_off_and_converges(cli: Cli, fly: FlyEmulator) -> None:
    fly.inject("GET", r"^/v1/apps/pr-4-svc$", 429, times=2)
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    converged(fly)
    assert cli.run("up", "--pr", "4").code == 0
    converged(fly)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_burst_on_machine_calls_converges(cli: Cli, fly: FlyEmulator, status: int) -> None:
    fly.inject("*", r"/machines", status, times=3)
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    converged(fly)


def test_machine_stuck_in_starting_times_out_then_converges(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    project.config.write_text(
        project.config.read_text().replace('machine = "30s"', 'machine = "3s"')
    )
    assert cli.run("up", "--pr", "4").code == 0
    assert cli.run("stop", "--pr", "4").code == 0
    machine = live(fly)[0]
    fly.set_stuck(APP, machine.id, "starting")
    result = cli.run("up", "--pr", "4")
    assert result.code == 1
    assert "did not reach 'started'" in result.stderr
    fly.set_stuck(APP, machine.id, None)
    again = cli.run("up", "--pr", "4")
    assert again.code == 0, again.output
    converged(fly)


def test_unhealthy_container_then_healthy_converges(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    project.config.write_text(
        project.config.read_text().replace('machine = "30s"', 'machine = "3s"')
    )
    assert cli.run("up", "--pr", "4").code == 0
    machine = live(fly)[0]
    fly.set_unhealthy(APP, machine.id, "db")
    project.machine["guest"]["memory_mb"] = 2048
    project.write(project.config.read_text())
    assert cli.run("up", "--pr", "4").code == 1
    fly.set_healthy(APP, machine.id, "db")
    fly.clear_log()
    again = cli.run("up", "--pr", "4")
    assert again.code == 0, again.output
    converged(fly)
    assert fly.calls("POST", r"/machines$") == []  # the same machine, no new one
