"""Converge's branches for what happens between two requests, made deterministic.

A second run racing this one (a duplicate machine before converging or while `up` waits,
a create that loses, an app a racer uses), a host that goes away between the listing and
the read, a machine found at rest. docs/reliability.md's "a second `up` racing the first"
is otherwise proven only by two real processes, which hit these branches by chance. Every
racer keeps the same machine: the oldest (by Fly's created_at, then id).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.fly_api import FlyEmulator, MachineState
from tests.fakes.loopback import ApiError as EmulatedApiError
from tests.support.cli import Cli

APP = "pr-6-svc"  # conftest's BASIC_TOML for PR 6: no Vercel, no tunnels


def live(fly: FlyEmulator) -> list[MachineState]:
    return [m for m in fly.apps[APP].machines.values() if m.state != "destroyed"]


@pytest.mark.parametrize("wait", [(), ("--no-wait",)], ids=["wait", "no-wait"])
@pytest.mark.parametrize("duplicate_is", ["newer", "older"])
def test_up_removes_a_duplicate_machine_and_keeps_the_oldest(
    cli: Cli, fly: FlyEmulator, duplicate_is: str, wait: tuple[str, ...]
) -> None:
    """Before converging (both modes) and again once it is started (waiting mode only)."""
    assert cli.run("up", "--pr", "6").code == 0
    (first,) = live(fly)
    twin = fly.add_machine(APP, copy.deepcopy(first.config))
    twin.created_at = "2000-01-01T00:00:00Z" if duplicate_is == "older" else "2999-01-01T00:00:00Z"
    keep, drop = (twin, first) if duplicate_is == "older" else (first, twin)

    result = cli.run("up", "--pr", "6", *wait)
    assert result.code == 0, result.output
    assert f"removing duplicate machine {drop.id} of {APP}" in result.output
    assert [m.id for m in live(fly)] == [keep.id]
    assert cli.run("up", "--pr", "6").code == 0
    assert [m.id for m in live(fly)] == [keep.id]


def racer_during_waits(
    fly: FlyEmulator, *created_at: str, takes_ours: bool = False
) -> list[MachineState]:
    """A concurrent run that adds a machine while `up` waits for 'started', once per date
    (``takes_ours``: and has already removed the one `up` waits for, which Fly then 404s)."""
    pending = list(created_at)
    added: list[MachineState] = []
    wait = fly.on_wait_machine

    def racing_wait(request: Any, body: Any, app: str, machine_id: str) -> Any:
        if pending:
            template = fly.apps[app].machines[machine_id].config
            twin = fly.add_machine(app, copy.deepcopy(template))
            twin.created_at = pending.pop(0)
            added.append(twin)
            if takes_ours:
                del fly.apps[app].machines[machine_id]
        return wait(request, body, app, machine_id)

    fly.on_wait_machine = racing_wait  # type: ignore[method-assign]
    return added


def test_a_machine_made_while_up_waits_is_removed_when_ours_is_older(
    cli: Cli, fly: FlyEmulator
) -> None:
    assert cli.run("up", "--pr", "6").code == 0
    (ours,) = live(fly)
    added = racer_during_waits(fly, "2999-01-01T00:00:00Z")
    result = cli.run("up", "--pr", "6")
    assert result.code == 0, result.output
    (newer,) = added
    assert f"removing duplicate machine {newer.id} of {APP}" in result.output
    assert [m.id for m in live(fly)] == [ours.id]


@pytest.mark.parametrize(
    ("races", "takes_ours"), [(1, False), (2, False), (1, True)], ids=["once", "twice", "gone"]
)
def test_a_run_whose_machine_lost_the_race_converges_again_on_the_survivor(
    cli: Cli, fly: FlyEmulator, races: int, takes_ours: bool
) -> None:
    """Each racer keeps the oldest machine; ours lost (maybe twice, maybe removed already
    by the winner): up starts over on the survivor."""
    assert cli.run("up", "--pr", "6").code == 0
    dates = ["2001-01-01T00:00:00Z", "2000-01-01T00:00:00Z"][:races]
    added = racer_during_waits(fly, *dates, takes_ours=takes_ours)
    result = cli.run("up", "--pr", "6")
    assert result.code == 0, result.output
    assert result.output.count("the machine was replaced by a concurrent run") == races
    assert [m.id for m in live(fly)] == [added[-1].id]
    assert cli.run("up", "--pr", "6").code == 0
    assert [m.id for m in live(fly)] == [added[-1].id]


def test_a_machine_a_concurrent_run_created_first_is_adopted(cli: Cli, fly: FlyEmulator) -> None:
    """Our create loses to theirs (Fly: the name is in use): theirs is the preview's machine."""
    assert cli.run("up", "--pr", "6").code == 0
    (first,) = live(fly)
    template, name = copy.deepcopy(first.config), first.name
    del fly.apps[APP].machines[first.id]  # the preview's machine is gone: up makes one
    theirs: list[MachineState] = []
    create = fly.on_create_machine

    def racing_create(request: Any, body: Any, app: str) -> Any:
        if not theirs:  # the other run's create lands first
            theirs.append(fly.add_machine(app, copy.deepcopy(template), name=name))
        return create(request, body, app)

    fly.on_create_machine = racing_create  # type: ignore[method-assign]
    result = cli.run("up", "--pr", "6")
    assert result.code == 0, result.output
    assert "a concurrent run created the machine; using it" in result.output
    assert [m.id for m in live(fly)] == [theirs[0].id]


@pytest.mark.parametrize("racer", [False, True], ids=["alone", "with-a-racer"])
def test_a_failed_up_removes_the_app_it_created_unless_a_racer_uses_it(
    cli: Cli, fly: FlyEmulator, racer: bool
) -> None:
    """An app without a marked machine is one gc cannot recognise: the run that made it and
    failed removes it, unless a concurrent run has put a machine in it meanwhile."""

    def failing_create(request: Any, body: Any, app: str) -> Any:
        if racer:
            fly.add_machine(app, {"image": "nginx"})
        raise EmulatedApiError(422, "invalid config: guest.memory_mb", "invalid_argument")

    fly.on_create_machine = failing_create  # type: ignore[method-assign]
    result = cli.run("up", "--pr", "6")
    assert result.code == 1, result.output
    # alone: Fly's answer; with a racer whose machine is not ours: that it is not managed
    assert ("not managed" if racer else "invalid config: guest.memory_mb") in result.stderr
    assert (APP in fly.apps) is racer
    if racer:
        assert len(live(fly)) == 1


def test_a_machine_whose_host_went_away_since_the_listing_is_not_guessed_at(
    cli: Cli, fly: FlyEmulator
) -> None:
    """Listed with its config, then read without (its host is unreachable now): up cannot
    tell what the machine is, so it changes nothing."""
    assert cli.run("up", "--pr", "6").code == 0
    (ours,) = live(fly)
    get = fly.on_get_machine

    def host_goes_away(request: Any, body: Any, app: str, machine_id: str) -> Any:
        fly.set_host_status(app, machine_id, "unreachable")
        return get(request, body, app, machine_id)

    fly.on_get_machine = host_goes_away  # type: ignore[method-assign]
    fly.clear_log()
    result = cli.run("up", "--pr", "6")
    assert result.code == 1, result.output
    assert "cannot tell" in result.stderr
    assert fly.mutating_calls() == []
    assert [m.id for m in live(fly)] == [ours.id]


@pytest.mark.parametrize("state", ["stopped", "suspended", "created"])
def test_a_machine_that_is_not_running_is_started_once(
    cli: Cli, fly: FlyEmulator, state: str
) -> None:
    """Stopped by `stop`, suspended by Fly's autostop, or created and never started."""
    assert cli.run("up", "--pr", "6").code == 0
    (first,) = live(fly)
    config, name = copy.deepcopy(first.config), first.name
    del fly.apps[APP].machines[first.id]
    resting = fly.add_machine(APP, config, state=state, name=name)
    fly.clear_log()
    result = cli.run("up", "--pr", "6")
    assert result.code == 0, result.output
    (start,) = fly.calls("POST", rf"/machines/{resting.id}/start$")
    assert [(m.id, m.state) for m in live(fly)] == [(resting.id, "started")]
    # under the machine's lease, as flyctl does: a concurrent run waits instead of racing
    assert len(fly.calls("POST", rf"/machines/{resting.id}/lease$")) == 1
    assert start.headers.get("Fly-Machine-Lease-Nonce")


def test_a_failed_machine_is_an_error_at_once_not_a_wait(cli: Cli, fly: FlyEmulator) -> None:
    assert cli.run("up", "--pr", "6").code == 0
    (first,) = live(fly)
    config, name = copy.deepcopy(first.config), first.name
    del fly.apps[APP].machines[first.id]
    failed = fly.add_machine(APP, config, state="failed", name=name)
    fly.clear_log()
    result = cli.run("up", "--pr", "6")
    assert result.code == 1, result.output
    assert f"machine {failed.id} of {APP} is in state 'failed'" in result.stderr
    assert fly.calls("GET", r"/wait$") == []


@pytest.mark.parametrize(("age_hours", "touched"), [(2, True), (0, False)])
def test_last_up_is_touched_at_most_hourly(
    cli: Cli, fly: FlyEmulator, age_hours: int, touched: bool
) -> None:
    """gc ages previews by last_up: a preview in use must not look abandoned."""
    assert cli.run("up", "--pr", "6").code == 0
    (ours,) = live(fly)
    then = datetime.now(UTC) - timedelta(hours=age_hours, minutes=1 if age_hours else 0)
    ours.config["metadata"]["previewctl_last_up"] = then.strftime("%Y-%m-%dT%H:%M:%SZ")
    fly.clear_log()
    assert cli.run("up", "--pr", "6").code == 0
    posts = fly.calls("POST", r"/metadata/previewctl_last_up$")
    assert len(posts) == (1 if touched else 0)
