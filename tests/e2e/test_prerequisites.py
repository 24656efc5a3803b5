"""All prerequisites in one message before any change, and the branch from the GitHub API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import Cli, base_env
from tests.support.project import BASIC_TOML, Project
from tests.support.wiring import REPO, VERCEL_TOML, Wired, wire

pytestmark = pytest.mark.e2e

TUNNEL_AND_ENV = """
[tunnels.db]
remote_port = 5432

[[steps]]
name = "migrate"
run = "true"
env = { LEVEL = "${env.PREVIEW_LOG_LEVEL}", REGION = "${env.PREVIEW_REGION}" }
"""


@pytest.fixture
def wired(tmp_path: Path, project: Project, fly: FlyEmulator, fly_token: str) -> Iterator[Wired]:
    w = wire(tmp_path, project, fly, fly_token, toml=BASIC_TOML + VERCEL_TOML)
    yield w
    w.close()


def test_every_missing_prerequisite_is_reported_at_once(
    project: Project, fly: FlyEmulator, tmp_path: Path
) -> None:
    project.write(BASIC_TOML + TUNNEL_AND_ENV + VERCEL_TOML)
    env = {**base_env(tmp_path), "FLY_API_BASE_URL": fly.url, "PATH": str(tmp_path / "empty")}
    cli = Cli(project, env)
    result = cli.run("up", "--pr", "3")
    assert result.code == 2, result.output
    err = result.stderr
    assert "5 problems, found before anything was changed:" in err
    for needle in (
        "PREVIEW_LOG_LEVEL (",  # the env refs, each with where it is used
        "PREVIEW_REGION (",
        "FLY_API_TOKEN is not set",
        "flyctl was not found on PATH",
        "VERCEL_TOKEN is not set",
        "the PR's branch is needed",
    ):
        assert err.count(needle) == 1, (needle, err)
    assert err.count("(hint: ") >= 3  # each credential problem says how to fix it
    assert fly.requests == []

    as_json = cli.run("up", "--pr", "3", "--json")
    assert as_json.code == 2
    error = json.loads(as_json.stdout)["error"]
    assert error["exit_code"] == 2
    assert "FLY_API_TOKEN" in error["message"]
    assert "flyctl" in error["message"]
    assert fly.requests == []


def test_a_config_error_comes_with_the_missing_token(
    project: Project, fly: FlyEmulator, tmp_path: Path
) -> None:
    project.write(BASIC_TOML.replace('region = "iad"', 'region = "iad"\nregoin = "x"'))
    cli = Cli(project, {**base_env(tmp_path), "FLY_API_BASE_URL": fly.url})
    result = cli.run("up", "--pr", "3")
    assert result.code == 2
    assert "2 problems, found before anything was changed" in result.stderr
    assert "unknown key 'regoin'" in result.stderr
    assert "FLY_API_TOKEN is not set" in result.stderr
    assert fly.requests == []


def test_the_branch_is_looked_up_from_the_github_api(wired: Wired) -> None:
    wired.without_event()
    result = wired.cli.run("up", "--pr", str(wired.pr))
    assert result.code == 0, result.output
    lookups = wired.github.calls("GET", rf"^/repos/{REPO}/pulls/{wired.pr}$")
    assert len(lookups) == 1
    assert f"PR #{wired.pr} is branch {wired.branch} (from the GitHub API)" in result.stderr
    stored = wired.vercel.envs_for("api", wired.branch)
    assert {e["key"] for e in stored} == {"DATABASE_URL"}


def test_a_pr_github_does_not_know_is_bad_input_before_any_change(wired: Wired) -> None:
    wired.without_event()
    result = wired.cli.run("up", "--pr", "99")
    assert result.code == 2, result.output
    assert "PR #99 is not a pull request of acme/agents (GitHub: 404)" in result.stderr
    assert wired.fly.mutating_calls() == []
    assert wired.vercel.calls("POST") == []


def test_with_the_event_no_lookup_is_made(wired: Wired) -> None:
    result = wired.cli.run("up")
    assert result.code == 0, result.output
    assert wired.github.calls("GET", rf"^/repos/{REPO}/pulls/\d+$") == []


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("gc", "--max-age", "soon"), ("--max-age", "FLY_API_TOKEN is not set")),
        (("status", "--pr", "0"), ("PR number must be a positive integer", "FLY_API_TOKEN")),
        (("stop", "--pr", "3"), ("unknown key 'regoin'", "FLY_API_TOKEN is not set")),
        (("env", "--pr", "3"), ("unknown key 'regoin'", "FLY_API_TOKEN is not set")),
    ],
)
def test_other_commands_report_their_problems_together(
    project: Project,
    fly: FlyEmulator,
    tmp_path: Path,
    args: tuple[str, ...],
    needles: tuple[str, ...],
) -> None:
    if args[0] in ("stop", "env"):
        project.write(BASIC_TOML.replace('region = "iad"', 'region = "iad"\nregoin = "x"'))
    cli = Cli(project, {**base_env(tmp_path), "FLY_API_BASE_URL": fly.url})
    result = cli.run(*args)
    assert result.code == 2, result.output
    assert "2 problems, found before anything was changed" in result.stderr
    for needle in needles:
        assert needle in result.stderr
    assert fly.requests == []
