"""One rule for "managed" (previewctl/managed.py), as up, down, stop and status apply it.

Each case injects an app that fails the rule, runs the installed console script,
checks that nothing changed (Fly and Vercel), then removes the cause and shows that
the same command converges.
"""

from __future__ import annotations

import json
import secrets as pysecrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from previewctl.vercel_sync import managed_comment
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.vercel_api import VercelFake
from tests.support.checks import assert_no_leak
from tests.support.cli import Cli
from tests.support.previews import GC_TOML, seed_preview, seed_unmarked
from tests.support.project import Project

PR = 40
APP = f"pr-{PR}-agents"
BRANCH = f"feature/pr-{PR}"
DOMAIN = f"pr-{PR}-web.example.com"


@dataclass
class World:
    cli: Cli
    fly: FlyEmulator
    vercel: VercelFake
    secret: str

    def vercel_writes(self) -> list[Any]:
        return [r for r in self.vercel.calls() if r.method in ("POST", "PATCH", "DELETE")]

    def keys(self) -> set[str]:
        return {e["key"] for e in self.vercel.envs_for("web", BRANCH)}

    def remove_machine(self, app: str, machine_id: str) -> None:
        with self.fly.lock:
            del self.fly.apps[app].machines[machine_id]

    def remove_app(self, app: str) -> None:
        with self.fly.lock:
            del self.fly.apps[app]


@pytest.fixture
def world(cli: Cli, fly: FlyEmulator, project: Project) -> Iterator[World]:
    project.write(GC_TOML)
    token = pysecrets.token_urlsafe(16)
    with VercelFake(token=token) as vercel:
        vercel.add_project("web", branches=[BRANCH])
        secret = pysecrets.token_hex(16)
        value = f"postgresql://app:{secret}@{APP}.fly.dev:5432/db"
        vercel.add_env(
            "web",
            "DATABASE_URL",
            value,
            git_branch=BRANCH,
            comment=managed_comment("DATABASE_URL", value),
        )
        cli.env.update({"VERCEL_TOKEN": token, "VERCEL_API_URL": vercel.url})
        yield World(cli, fly, vercel, secret)


def ours(world: World, pr: int = PR, app: str = APP) -> str:
    return seed_preview(
        world.fly,
        app,
        pr,
        branch=BRANCH,
        last_up=datetime.now(UTC) - timedelta(minutes=5),
        secrets={"pg_password": world.secret},
    )


# (name, inject the fault and return how to remove its cause, what the refusal says)
Fault = Callable[[World], Callable[[], None]]


def foreign_machine(world: World) -> Callable[[], None]:
    ours(world)
    theirs = seed_unmarked(world.fly, APP)  # someone put their own machine in the app
    return lambda: world.remove_machine(APP, theirs)


def marker_of_another_pr(world: World) -> Callable[[], None]:
    ours(world, pr=PR + 1)  # the app is named for PR 40, its machine says PR 41
    return lambda: world.remove_app(APP)  # its owner deletes it by hand


def host_unreachable(world: World) -> Callable[[], None]:
    mid = ours(world)
    world.fly.set_host_status(APP, mid, "unreachable", config_as="null")
    return lambda: world.fly.set_host_status(APP, mid, "ok")


def host_unknown_marker_hidden(world: World) -> Callable[[], None]:
    mid = ours(world)
    world.fly.set_host_status(APP, mid, "unknown", incomplete_metadata=False)
    return lambda: world.fly.set_host_status(APP, mid, "ok")


FAULTS: dict[str, tuple[Fault, str]] = {
    "foreign-machine": (foreign_machine, "carries no previewctl marker"),
    "marker-of-another-pr": (marker_of_another_pr, f"names PR #{PR + 1}, the name PR #{PR}"),
    "host-unreachable": (host_unreachable, "host_status unreachable"),
    "host-unknown": (host_unknown_marker_hidden, "host_status unknown"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_down_refuses_an_app_the_rule_rejects_and_deletes_nothing(world: World, fault: str) -> None:
    inject, says = FAULTS[fault]
    fix = inject(world)
    for _ in range(2):  # and the same again: still nothing deleted
        result = world.cli.run("down", "--pr", str(PR), "--branch", BRANCH)
        assert result.code == 1, result.output
        assert "not managed" in result.stderr
        assert says in result.stderr
        assert APP in world.fly.apps
        assert world.fly.mutating_calls() == []
        assert world.vercel_writes() == []  # no Vercel deletes for that preview either
        assert world.keys() == {"DATABASE_URL"}
    assert_no_leak(world.cli.all_output(), [world.secret])

    fix()
    # As the workflow runs it, on the PR's closed event: that confirms the branch even
    # where the fix removed the app (down removes vars only of a confirmed branch).
    event = world.cli.project.root / "event.json"
    head = {"ref": BRANCH, "repo": {"full_name": "acme/agents"}}
    event.write_text(json.dumps({"number": PR, "pull_request": {"number": PR, "head": head}}))
    on_event = {"GITHUB_EVENT_PATH": str(event)}
    done = world.cli.run("down", "--pr", str(PR), "--branch", BRANCH, env=on_event)
    assert done.code == 0, done.output
    assert APP not in world.fly.apps
    assert world.keys() == set()
    again = world.cli.run("down", "--pr", str(PR), "--branch", BRANCH, env=on_event)
    assert again.code == 0, again.output


@pytest.mark.parametrize("fault", FAULTS)
def test_stop_refuses_an_app_the_rule_rejects(world: World, fault: str) -> None:
    inject, says = FAULTS[fault]
    fix = inject(world)
    result = world.cli.run("stop", "--pr", str(PR))
    assert result.code == 1, result.output
    assert "not managed" in result.stderr
    assert says in result.stderr
    assert world.fly.mutating_calls() == []
    fix()
    if APP in world.fly.apps:
        assert world.cli.run("stop", "--pr", str(PR)).code == 0


def test_status_shows_unknown_and_not_managed_apps_and_no_crash(world: World) -> None:
    healthy = ours(world, pr=41, app="pr-41-agents")
    world.fly.machine("pr-41-agents", healthy).config["checks"] = {"alive": {"type": "tcp"}}
    world.fly.set_checks_without_status("pr-41-agents", healthy)
    host_unreachable(world)
    foreign_machine_only = seed_unmarked(world.fly, "pr-42-agents")

    listing = world.cli.run("status")
    assert listing.code == 0, listing.output
    row = next(line for line in listing.stdout.splitlines() if f" {APP} " in line)
    assert "unknown" in row
    assert "could not be judged" in listing.stdout
    assert "host_status unreachable" in listing.stdout
    assert "pr-42-agents: not managed" in listing.stdout
    data = world.cli.run("--json", "status").json()
    assert data["totals"]["unknown"] == 1
    assert data["totals"]["not_managed"] == 1
    assert data["totals"]["previews"] == 1
    by_app = {r["app"]: r for r in data["rows"]}
    assert by_app[APP]["standing"] == "unknown"
    assert by_app["pr-42-agents"]["standing"] == "not managed"

    detail = world.cli.run("status", "--pr", str(PR))
    assert detail.code == 0, detail.output
    assert "unknown" in detail.stdout
    assert "host_status unreachable" in detail.stdout
    checks = world.cli.run("status", "--pr", "41")  # checks without a status parse
    assert checks.code == 0, checks.output
    assert "check alive" in checks.stdout
    assert "no status" in checks.stdout
    assert world.fly.mutating_calls() == []
    assert_no_leak(world.cli.all_output(), [world.secret])

    # the host is back: the same command shows it as a preview again
    world.fly.set_host_status(APP, next(iter(world.fly.apps[APP].machines)), "ok")
    world.remove_machine("pr-42-agents", foreign_machine_only)
    again = world.cli.run("--json", "status").json()
    assert again["totals"]["unknown"] == 0
    assert again["totals"]["previews"] == 2


UP_FAULTS = ("foreign-machine", "marker-of-another-pr", "host-unreachable")


@pytest.mark.parametrize("fault", UP_FAULTS)
def test_up_refuses_an_app_the_rule_rejects_then_converges(
    cli: Cli, fly: FlyEmulator, fault: str
) -> None:
    app = "pr-6-svc"  # conftest's BASIC_TOML: no Vercel, no tunnels
    if fault == "host-unreachable":
        assert cli.run("up", "--pr", "6").code == 0
        mid = next(iter(fly.apps[app].machines))
        fly.set_host_status(app, mid, "unreachable")
        says = "cannot tell"
    else:
        fly.add_app(app)
        marked = {"previewctl": "1", "previewctl_pr": "7" if "marker" in fault else "6"}
        fly.add_machine(app, {"image": "nginx", "metadata": marked})
        theirs = fly.add_machine(app, {"image": "nginx"}).id if "foreign" in fault else ""
        says = "carries no previewctl marker" if theirs else "names PR #7"

    def fix() -> None:
        if fault == "host-unreachable":
            fly.set_host_status(app, mid, "ok")
        elif theirs:
            del fly.apps[app].machines[theirs]  # its owner takes their machine away
        else:
            del fly.apps[app]  # its owner deletes the app by hand

    fly.clear_log()
    result = cli.run("up", "--pr", "6")
    assert result.code == 1, result.output
    assert "not managed" in result.stderr
    assert says in result.stderr
    assert fly.mutating_calls() == []

    fix()
    fixed = cli.run("up", "--pr", "6")
    assert fixed.code == 0, fixed.output
    live = [m for m in fly.apps[app].machines.values() if m.state != "destroyed"]
    assert len(live) == 1
    assert live[0].config["metadata"]["previewctl_pr"] == "6"
    fly.clear_log()
    assert cli.run("up", "--pr", "6").code == 0
    assert fly.mutating_calls() == []  # converged: nothing left to change


@pytest.mark.parametrize("fault", ["host-unreachable", "host-unknown"])
def test_gc_keeps_and_reports_an_app_it_cannot_judge_then_converges(
    world: World, fault: str
) -> None:
    says = FAULTS[fault][1]
    stale = datetime.now(UTC) - timedelta(days=30)  # old enough for age alone to destroy
    mid = seed_preview(world.fly, APP, PR, branch=BRANCH, last_up=stale, created_at=stale)
    status = "unreachable" if fault == "host-unreachable" else "unknown"
    world.fly.set_host_status(APP, mid, status, incomplete_metadata=fault == "host-unreachable")

    result = world.cli.run("gc")
    assert result.code == 1, result.output
    row = next(line for line in result.stdout.splitlines() if APP in line)
    assert "undecided" in row
    assert says in result.stdout
    assert "undecided 1 (kept)" in result.stdout
    assert APP in world.fly.apps
    assert world.fly.mutating_calls() == []
    assert world.vercel_writes() == []
    assert_no_leak(result.output, [world.secret])

    world.fly.set_host_status(APP, mid, "ok")
    again = world.cli.run("--json", "gc")
    assert again.code == 0, again.output
    assert {r["app"]: r["action"] for r in again.json()["rows"]} == {APP: "destroy"}
    assert APP not in world.fly.apps


def test_a_preview_another_repository_made_is_not_managed_by_this_one(
    cli: Cli, fly: FlyEmulator
) -> None:
    """Rule 5: an org serving two repositories with the same [app] name template. Each
    one's up records its repository; the other's up, stop and down refuse the app."""
    app = "pr-6-svc"
    one, two = {"GITHUB_REPOSITORY": "acme/one"}, {"GITHUB_REPOSITORY": "acme/two"}
    made = cli.run("up", "--pr", "6", env=one)
    assert made.code == 0, made.output
    (machine,) = fly.apps[app].machines.values()
    assert machine.config["metadata"]["previewctl_repo"] == "acme/one"

    fly.clear_log()
    for command in (("up", "--pr", "6"), ("stop", "--pr", "6"), ("down", "--pr", "6")):
        refused = cli.run(*command, env=two)
        assert refused.code == 1, refused.output
        assert "made for repository 'acme/one', not 'acme/two'" in refused.stderr
    assert fly.mutating_calls() == []
    assert app in fly.apps

    fly.clear_log()
    assert cli.run("up", "--pr", "6").code == 0  # a laptop run, no repository: still ours
    assert fly.mutating_calls() == []
    assert cli.run("down", "--pr", "6", env=one).code == 0
    assert app not in fly.apps
