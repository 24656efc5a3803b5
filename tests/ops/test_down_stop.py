"""`down` destroys only what previewctl made; `stop` leaves the machine stopped."""

from __future__ import annotations

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import Cli


def test_down_twice_exits_zero(cli: Cli, fly: FlyEmulator) -> None:
    assert cli.run("up", "--pr", "5").code == 0
    assert "pr-5-svc" in fly.apps
    first = cli.run("down", "--pr", "5")
    assert first.code == 0, first.output
    assert "pr-5-svc" not in fly.apps
    second = cli.run("down", "--pr", "5")
    assert second.code == 0, second.output
    assert "already gone" in second.stderr


def test_down_refuses_an_app_without_the_marker(cli: Cli, fly: FlyEmulator) -> None:
    fly.add_app("pr-6-svc")
    fly.add_machine("pr-6-svc", {"image": "nginx", "metadata": {"owner": "someone"}})
    result = cli.run("down", "--pr", "6")
    assert result.code == 1
    assert "not managed by previewctl" in result.stderr
    assert "previewctl did not make it" in result.stderr
    assert "pr-6-svc" in fly.apps
    assert fly.mutating_calls() == []


def test_up_refuses_an_app_it_did_not_make(cli: Cli, fly: FlyEmulator) -> None:
    fly.add_app("pr-6-svc")
    fly.add_machine("pr-6-svc", {"image": "nginx"})
    result = cli.run("up", "--pr", "6")
    assert result.code == 1
    assert "did not make" in result.stderr
    assert fly.mutating_calls() == []


def test_stop_leaves_the_machine_stopped(cli: Cli, fly: FlyEmulator) -> None:
    assert cli.run("up", "--pr", "5").code == 0
    result = cli.run("stop", "--pr", "5")
    assert result.code == 0, result.output
    machine = next(iter(fly.apps["pr-5-svc"].machines.values()))
    assert machine.state == "stopped"
    again = cli.run("stop", "--pr", "5")
    assert again.code == 0
    assert "already stopped" in again.stderr


def test_stop_without_a_preview_is_a_clear_error(cli: Cli, fly: FlyEmulator) -> None:
    result = cli.run("stop", "--pr", "77")
    assert result.code == 1
    assert "no preview" in result.stderr
