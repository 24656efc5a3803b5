"""Fly as its own clients (fly-go, flyctl) see it, run through the installed previewctl.

A new app is invisible for a while, a taken name is known by the body's status, the
platform's ``bg_deployments_compat*`` checks mean nothing, a fresh machine has no check
results yet, leases carry their TTL in the query, ``FLY_FLAPS_BASE_URL`` is an alias,
and flyctl never gets the Machines URL as its GraphQL base. Each case injects the
behaviour into the emulator, checks the outcome, then runs again and converges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes.fly_api import COMPAT_CHECK, FlyEmulator, MachineState
from tests.support.cli import Cli
from tests.support.project import Project
from tests.support.stack import Stack

APP = "pr-4-svc"


def live(fly: FlyEmulator, app: str = APP) -> list[MachineState]:
    return [m for m in fly.apps[app].machines.values() if m.state != "destroyed"]


def converged(fly: FlyEmulator) -> None:
    machines = live(fly)
    assert len(machines) == 1
    assert machines[0].state == "started"
    assert machines[0].config["metadata"]["previewctl"] == "1"


def short_machine_timeout(project: Project, seconds: str = "2s") -> None:
    project.config.write_text(
        project.config.read_text().replace('machine = "30s"', f'machine = "{seconds}"')
    )


def app_creates(fly: FlyEmulator) -> list[Any]:
    return fly.calls("POST", r"^/v1/apps$")


def reveal_once(fly: FlyEmulator, seen: Callable[[], bool]) -> threading.Thread:
    """Let Fly show the app once ``seen()`` (an answer in the request log) holds.

    Tied to events, not to a window of time: a slow start of previewctl cannot make
    the app visible before the behaviour under test happened.
    """

    def run() -> None:
        deadline = time.monotonic() + 60
        while not seen() and time.monotonic() < deadline:
            time.sleep(0.02)
        if APP in fly.apps:
            fly.reveal_app(APP)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# ---- apps: created as fly-go does, invisible for a while -----------------------------------


@pytest.mark.parametrize("status", [404, 401])
def test_a_new_app_fly_does_not_show_yet_is_waited_for(
    cli: Cli, fly: FlyEmulator, status: int
) -> None:
    fly.new_app_hidden_seconds = 3600
    fly.new_app_hidden_status = status

    def answered_not_yet() -> bool:
        creates = [r for r in app_creates(fly) if r.status == 201]
        gets = fly.calls("GET", rf"^/v1/apps/{APP}$")
        return bool(creates) and any(r.at > creates[0].at and r.status == status for r in gets)

    reveal_once(fly, answered_not_yet)
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    [create] = app_creates(fly)
    assert create.query == {"wait": ["true"]}
    assert create.body == {"name": APP, "org_slug": "acme"}
    after = [r for r in fly.calls("GET", rf"^/v1/apps/{APP}$") if r.at > create.at]
    assert after[0].status == status  # "not yet" ...
    shown = next(r for r in after if r.status == 200)  # ... asked again until Fly showed it
    machine_posts = fly.calls("POST", rf"^/v1/apps/{APP}/machines$")
    assert [r.status for r in machine_posts] == [200]
    assert machine_posts[0].at > shown.at  # nothing was made in an app Fly did not show
    converged(fly)
    fly.clear_log()
    again = cli.run("up", "--pr", "4")
    assert again.code == 0, again.output
    assert fly.mutating_calls() == []
    converged(fly)


def test_an_app_fly_never_shows_in_time_fails_then_converges(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    short_machine_timeout(project)
    fly.new_app_hidden_seconds = 3600
    result = cli.run("up", "--pr", "4")
    assert result.code == 1
    assert f"Fly did not show the app '{APP}' in time (it answered 404)" in result.stderr
    assert fly.calls("POST", r"/machines$") == []
    fly.reveal_app(APP)
    again = cli.run("up", "--pr", "4")
    assert again.code == 0, again.output
    assert len(app_creates(fly)) == 1  # the app was made once
    converged(fly)


# ---- apps: a taken name, known by the body's status ------------------------------------------


def test_a_name_taken_by_a_concurrent_run_is_used_once_fly_shows_it(
    cli: Cli, fly: FlyEmulator
) -> None:
    fly.add_app(APP, hidden_for=3600)  # another run created it a moment ago
    reveal_once(fly, lambda: any(r.status == 422 for r in app_creates(fly)))
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    [create] = app_creates(fly)
    assert (create.status, fly.apps[APP].org) == (422, "acme")
    converged(fly)
    assert cli.run("up", "--pr", "4").code == 0
    converged(fly)


def test_a_name_held_by_an_app_this_token_cannot_see_is_a_clear_error(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    short_machine_timeout(project)
    fly.add_app(APP, hidden_for=3600)
    for _ in range(2):  # the same refusal every time, nothing made
        result = cli.run("up", "--pr", "4")
        assert result.code == 1
        assert f"the app name '{APP}' is taken on Fly" in result.stderr
        assert "unique across all of Fly" in result.stderr
        assert "change [app] name" in result.stderr
        assert fly.mutating_calls(succeeded_only=True) == []
    assert fly.apps[APP].machines == {}
    del fly.apps[APP]  # the name is free again
    again = cli.run("up", "--pr", "4")
    assert again.code == 0, again.output
    converged(fly)


def test_a_name_taken_by_another_org_after_a_404_is_refused(cli: Cli, fly: FlyEmulator) -> None:
    fly.add_foreign_app(APP)
    fly.inject("GET", rf"^/v1/apps/{APP}$", 404, times=1)  # an eventually consistent read
    result = cli.run("up", "--pr", "4")
    assert result.code == 1
    assert "belongs to another Fly organization" in result.stderr
    assert fly.apps[APP].org == "other"
    assert fly.mutating_calls(succeeded_only=True) == []


@pytest.mark.parametrize("status", [400, 409, 422])
def test_name_taken_is_known_by_the_body_not_the_http_code(
    cli: Cli, fly: FlyEmulator, status: int
) -> None:
    fly.add_app(APP, hidden_for=3600)
    body = {"error": "Validation failed: Name has already been taken", "status": "name_taken"}
    fly.inject("POST", r"^/v1/apps$", status, body=body)
    reveal_once(fly, lambda: any(r.status == status for r in app_creates(fly)))
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    assert [r.status for r in app_creates(fly)] == [status]
    converged(fly)


def test_a_422_that_is_not_name_taken_fails_with_the_apis_message(
    cli: Cli, fly: FlyEmulator
) -> None:
    body = {"error": "organization acme is suspended", "status": "unprocessable_entity"}
    fly.inject("POST", r"^/v1/apps$", 422, body=body)
    result = cli.run("up", "--pr", "4")
    assert result.code == 1
    assert "organization acme is suspended" in result.stderr
    assert "taken" not in result.stderr
    assert len(fly.calls("GET", rf"^/v1/apps/{APP}$")) == 1  # no waiting on a failure
    assert fly.apps == {}
    again = cli.run("up", "--pr", "4")
    assert again.code == 0, again.output
    converged(fly)


# ---- machines: health as flyctl judges it ---------------------------------------------------


def test_platform_compat_checks_never_block_health(cli: Cli, fly: FlyEmulator) -> None:
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    raw = live(fly)[0].to_json()["checks"]
    assert {"name": COMPAT_CHECK, "status": "critical"}.items() <= raw[0].items()
    status = cli.run("--json", "status", "--pr", "4")
    assert status.code == 0, status.output
    [machine] = status.json()["machines"]
    assert machine["healthy"] is True
    assert [c["name"] for c in machine["checks"]] == ["db-tcp"]
    assert "bg_deployments_compat" not in status.output
    assert cli.run("up", "--pr", "4").code == 0
    converged(fly)


def test_a_fresh_machine_without_check_results_is_not_healthy_yet(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    short_machine_timeout(project, "3s")
    project.machine["checks"] = {"ready": {"type": "tcp", "port": 5432, "interval": "5s"}}
    project.write(project.config.read_text())
    fly.checks_reported_after = 3600  # Fly has no results yet
    result = cli.run("up", "--pr", "4")
    assert result.code == 1
    assert "did not become healthy" in result.stderr
    assert "no results yet for its 1 configured check(s)" in result.stderr
    fly.checks_reported_after = 0.0
    fly.clear_log()
    again = cli.run("up", "--pr", "4")
    assert again.code == 0, again.output
    assert fly.calls("POST", r"/machines$") == []  # the same machine
    converged(fly)


def test_the_lease_ttl_goes_in_the_query_as_flyctl_sends_it(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    assert cli.run("up", "--pr", "4").code == 0
    held: list[float] = []

    def on_boot(app: str, config: dict[str, Any]) -> None:  # runs while our lease is held
        lease = live(fly, app)[0].held_lease()
        held.append(-1.0 if lease is None else lease.expires_at - time.monotonic())

    fly.on_boot = on_boot
    fly.clear_log()
    project.machine["guest"]["memory_mb"] = 2048  # an update: done under a lease
    project.write(project.config.read_text())
    result = cli.run("up", "--pr", "4")
    assert result.code == 0, result.output
    leases = fly.calls("POST", r"/lease$")
    assert [(r.query, r.body, r.status) for r in leases] == [({"ttl": ["120"]}, None, 201)]
    assert len(held) == 1
    assert 100 < held[0] <= 120  # the emulator took flyctl's two minutes from the query
    assert live(fly)[0].held_lease() is None  # released at the end
    assert cli.run("up", "--pr", "4").code == 0
    converged(fly)


# ---- base URLs: FLY_FLAPS_BASE_URL in, never FLY_API_BASE_URL out to flyctl -----------------


def test_flaps_base_url_is_an_alias_of_fly_api_base_url(cli: Cli, fly: FlyEmulator) -> None:
    env = {k: v for k, v in cli.env.items() if k != "FLY_API_BASE_URL"}
    aliased = Cli(cli.project, {**env, "FLY_FLAPS_BASE_URL": fly.url})
    result = aliased.run("up", "--pr", "4")
    assert result.code == 0, result.output
    converged(fly)
    assert aliased.run("up", "--pr", "4").code == 0
    converged(fly)


@pytest.mark.parametrize("given", ["FLY_API_BASE_URL", "FLY_FLAPS_BASE_URL"])
def test_flyctl_gets_the_machines_url_only_as_its_flaps_base(stack: Stack, given: str) -> None:
    """flyctl reads FLY_API_BASE_URL as its GraphQL base: the stand-in fails like it would."""
    url = stack.cli.env["FLY_API_BASE_URL"]
    env = {k: v for k, v in stack.cli.env.items() if k != "FLY_API_BASE_URL"}
    stack.cli.env = {**env, given: url}
    for runs in (1, 2):  # and again: converges
        result = stack.cli.run("up", "--pr", "21")
        assert result.code == 0, result.output
        assert stack.widgets() == runs  # the step ran through the tunnel each time
    starts = [e for e in stack.flyctl_events() if e["event"] == "start"]
    assert len(starts) == 2
    assert all(e["base_urls"] == {"FLY_FLAPS_BASE_URL": url} for e in starts)
