"""`up --no-wait`: the machine starts booting first; the later `up` does the rest with no
second mutation, and reports a failure of the early start."""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.support.checks import assert_no_leak, machine_secrets
from tests.support.cli import Cli, base_env
from tests.support.project import BASIC_TOML, Project
from tests.support.stack import Stack

APP = "pr-7-svc"
VERCEL_TOML = """
[vercel.projects.api]
domain = "pr-${pr}-api.preview.example.com"
env = { DATABASE_URL = "postgresql://app:${secrets.pg_password}@${app.hostname}:5432/db" }

[tunnels.db]
remote_port = 5432
check = "postgres"
"""


@pytest.fixture
def slow_fly(fly_token: str) -> Iterator[FlyEmulator]:
    """A machine that takes a minute to boot: far longer than any no-wait run may take."""
    emu = FlyEmulator(token=fly_token, org="acme", boot_seconds=60.0)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def slow_cli(project: Project, slow_fly: FlyEmulator, fly_token: str, tmp_path: Path) -> Cli:
    env = base_env(tmp_path)
    env.update({"FLY_API_TOKEN": fly_token, "FLY_API_BASE_URL": slow_fly.url})
    return Cli(project, env)


def only_machine(fly: FlyEmulator, app: str = APP) -> str:
    (machine_id,) = [m.id for m in fly.apps[app].live_machines()]
    return machine_id


def finish_boot(fly: FlyEmulator, app: str = APP) -> None:
    """Fast-forward the emulator's boot (a test control, not a request)."""
    fly.machine(app, only_machine(fly, app)).schedule((0.0, "started"))


def test_no_wait_returns_while_the_machine_boots_and_the_next_up_mutates_nothing(
    slow_cli: Cli, slow_fly: FlyEmulator, tmp_path: Path
) -> None:
    output = tmp_path / "gh_output"
    output.touch()
    early = slow_cli.run(
        "--json",
        "up",
        "--pr",
        "7",
        "--no-wait",
        env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)},
    )
    assert early.code == 0, early.output
    machine_id = only_machine(slow_fly)
    # Returned while Fly is still booting it: nothing waited for `started`.
    assert slow_fly.machine(APP, machine_id).state == "starting"
    assert slow_fly.calls("GET", r"/wait") == []
    data = early.json()
    assert data["waited"] is False
    assert data["machine"]["id"] == machine_id
    assert set(data["actions"]) >= {"created app", "created machine"}
    assert "app=pr-7-svc\n" in output.read_text()
    assert len(slow_fly.apps[APP].ips) == 1  # IPs are part of the early start
    secrets = list(machine_secrets(slow_fly, APP).values())
    assert_no_leak(early.output, secrets)

    finish_boot(slow_fly)
    slow_fly.clear_log()
    later = slow_cli.run("up", "--pr", "7")
    assert later.code == 0, later.output
    assert slow_fly.mutating_calls() == []
    assert "no change" in later.stderr
    assert "is healthy" in later.stderr
    assert only_machine(slow_fly) == machine_id
    assert list(machine_secrets(slow_fly, APP).values()) == secrets  # stable


def test_no_wait_needs_only_the_fly_token(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    """Vercel projects and tunnels in the config, but no VERCEL_TOKEN and no flyctl."""
    project.write(BASIC_TOML + VERCEL_TOML)
    result = cli.run("up", "--pr", "7", "--branch", "feat/x", "--no-wait")
    assert result.code == 0, result.output
    assert len(fly.apps[APP].live_machines()) == 1
    # The full `up` does need them: the same config without them is bad input.
    full = cli.run("up", "--pr", "7", "--branch", "feat/x")
    assert full.code == 2, full.output
    assert "flyctl" in full.stderr or "VERCEL_TOKEN" in full.stderr


@pytest.mark.parametrize(
    ("extra", "args", "needle"),
    [
        ('\n[[steps]]\nname = "x"\nrun = "echo ${env.NOT_SET_ANYWHERE}"\n', [], "NOT_SET_ANYWHERE"),
        (VERCEL_TOML, [], "branch"),  # Vercel vars need the PR's branch
        ("", ["--pr", "abc"], "PR number"),
    ],
)
def test_no_wait_bad_input_exits_2_before_any_request(
    cli: Cli, fly: FlyEmulator, project: Project, extra: str, args: list[str], needle: str
) -> None:
    project.write(BASIC_TOML + extra)
    result = cli.run("up", *(args or ["--pr", "7"]), "--no-wait")
    assert result.code == 2, result.output
    assert needle in result.stderr
    assert fly.calls() == []


def test_a_failed_early_start_is_reported_by_the_later_up_and_its_comment(
    cli: Cli, fly: FlyEmulator, tmp_path: Path
) -> None:
    gh_token = pysecrets.token_hex(16)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    with GitHubFake(token=gh_token, repo="acme/agents") as github:
        github.add_pr(7, "feat/x")
        env = {
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_TOKEN": gh_token,
            "GITHUB_API_URL": github.url,
            "GITHUB_REPOSITORY": "acme/agents",
        }
        fly.inject("POST", r"/machines$", 422, body={"error": "invalid guest", "status": "x"})
        early = cli.run("up", "--pr", "7", "--branch", "feat/x", "--no-wait", env=env)
        assert early.code == 1, early.output
        assert "invalid guest" in early.stderr
        # no comment from the early start (only a read: is feat/x PR 7's branch?)
        assert [r.method for r in github.requests] == ["GET"]
        assert list((runner_temp / "previewctl").iterdir())

        later = cli.run("up", "--pr", "7", "--branch", "feat/x", env=env)
        assert later.code == 0, later.output
        assert "early `up --no-wait` of this job failed" in later.stderr
        assert "invalid guest" in later.stderr
        (comment,) = github.comments_on(7)
        assert "Early start" in comment["body"]
        assert "invalid guest" in comment["body"]
        assert list((runner_temp / "previewctl").iterdir()) == []  # reported once

        again = cli.run("up", "--pr", "7", "--branch", "feat/x", env=env)
        assert again.code == 0, again.output
        assert "Early start" not in github.comments_on(7)[0]["body"]


def test_no_wait_opens_no_tunnel_and_runs_no_step_the_later_up_does(stack: Stack) -> None:
    early = stack.cli.run("up", "--pr", "21", "--no-wait", env={"PREVIEWCTL_FLYCTL": "no-such"})
    assert early.code == 0, early.output
    assert stack.flyctl_events() == []
    assert stack.tables() == []
    app = "pr-21-stack"
    stack.fly.clear_log()
    later = stack.cli.run("up", "--pr", "21")
    assert later.code == 0, later.output
    assert stack.fly.mutating_calls() == []
    assert stack.widgets() == 1
    assert stack.boots == [app]  # booted once, by the early start
