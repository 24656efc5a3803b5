"""The branch belongs to the PR: a branch that is not the PR's never touches another PR's
Vercel vars, and `down` removes vars only for the branch recorded on the preview."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake
from tests.support.cli import Cli
from tests.support.project import BASIC_TOML, Project

VERCEL = """
[vercel]
redeploy = false

[vercel.projects.web]
env = { API_URL = "https://${app.hostname}" }
"""
READS = frozenset({"GET", "HEAD"})


@dataclass
class Two:
    """PR 8 and PR 9, each with its own preview and branch vars."""

    cli: Cli
    fly: FlyEmulator
    vercel: VercelFake
    github: GitHubFake
    github_env: dict[str, str]

    def vars_of(self, branch: str) -> dict[str, str]:
        return {e["key"]: e["value"] for e in self.vercel.envs_for("web", branch)}

    def mutations(self) -> list[tuple[str, str]]:
        return [
            (r.method, r.path)
            for fake in (self.fly, self.vercel, self.github)
            for r in fake.requests
            if r.method not in READS
        ]

    def clear_logs(self) -> None:
        for fake in (self.fly, self.vercel, self.github):
            fake.clear_log()


@pytest.fixture
def two(cli: Cli, fly: FlyEmulator, project: Project) -> Iterator[Two]:
    vercel_token, gh_token = secrets.token_hex(16), secrets.token_hex(16)
    vercel = VercelFake(token=vercel_token).start()
    github = GitHubFake(token=gh_token, repo="acme/agents").start()
    vercel.add_project("web", production_branch="main", branches=("feat/8", "feat/9"))
    github.add_pr(8, "feat/8")
    github.add_pr(9, "feat/9")
    project.write(BASIC_TOML + VERCEL)
    cli.env.update({"VERCEL_TOKEN": vercel_token, "VERCEL_API_URL": vercel.url})
    github_env = {
        "GITHUB_TOKEN": gh_token,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": "acme/agents",
    }
    state = Two(cli, fly, vercel, github, github_env)
    for pr in (8, 9):
        result = cli.run("up", "--pr", str(pr), "--branch", f"feat/{pr}", env=github_env)
        assert result.code == 0, result.output
    assert state.vars_of("feat/8") == {"API_URL": "https://pr-8-svc.fly.dev"}
    state.clear_logs()
    yield state
    vercel.stop()
    github.stop()


def test_up_with_another_prs_branch_is_refused_by_the_preview_metadata(two: Two) -> None:
    """No event, no GitHub token: the branch recorded on PR 9's preview decides."""
    result = two.cli.run("up", "--pr", "9", "--branch", "feat/8")
    assert result.code == 2, result.output
    assert "'feat/8' is not the head branch of PR #9" in result.stderr
    assert "its preview's metadata says 'feat/9'" in result.stderr
    assert two.mutations() == []
    assert two.vars_of("feat/8") == {"API_URL": "https://pr-8-svc.fly.dev"}
    again = two.cli.run("up", "--pr", "9", "--branch", "feat/9")  # the right branch converges
    assert again.code == 0, again.output
    assert two.vars_of("feat/8") == {"API_URL": "https://pr-8-svc.fly.dev"}


def test_up_with_another_prs_branch_is_refused_by_the_github_api(two: Two) -> None:
    result = two.cli.run("up", "--pr", "9", "--branch", "feat/8", env=two.github_env)
    assert result.code == 2, result.output
    assert "the GitHub API says 'feat/9'" in result.stderr
    assert two.mutations() == []
    assert two.vars_of("feat/8") == {"API_URL": "https://pr-8-svc.fly.dev"}


@pytest.mark.parametrize("with_github", [False, True], ids=["metadata", "github"])
def test_down_with_another_prs_branch_deletes_nothing(two: Two, with_github: bool) -> None:
    env = two.github_env if with_github else {}
    result = two.cli.run("down", "--pr", "9", "--branch", "feat/8", env=env)
    assert result.code == 2, result.output
    assert "'feat/8' is not the branch recorded on PR #9's preview ('feat/9')" in result.stderr
    assert two.mutations() == []
    assert two.vars_of("feat/8") == {"API_URL": "https://pr-8-svc.fly.dev"}
    assert "pr-9-svc" in two.fly.apps


def test_down_removes_only_the_recorded_branchs_vars(two: Two) -> None:
    result = two.cli.run("down", "--pr", "9")  # no branch given: the recorded one
    assert result.code == 0, result.output
    assert two.vars_of("feat/9") == {}
    assert two.vars_of("feat/8") == {"API_URL": "https://pr-8-svc.fly.dev"}
    assert "pr-9-svc" not in two.fly.apps
    assert two.cli.run("down", "--pr", "9").code == 0  # already gone converges


def test_down_of_a_gone_preview_leaves_an_unconfirmed_branch_alone(two: Two) -> None:
    """Without a preview, an event or a token nothing says feat/8 is PR 10's: no deletes."""
    result = two.cli.run("down", "--pr", "10", "--branch", "feat/8")
    assert result.code == 0, result.output
    assert "left for gc" in result.stderr
    assert two.vars_of("feat/8") == {"API_URL": "https://pr-8-svc.fly.dev"}
    assert two.mutations() == []


def test_a_renamed_head_branch_is_recorded_for_down(two: Two, tmp_path: Path) -> None:
    """The event is the PR's own word: up follows a renamed branch, and records it."""
    two.vercel.add_branch("web", "feat/9-renamed")
    event = tmp_path / "event.json"
    head = {"ref": "feat/9-renamed", "repo": {"full_name": "acme/agents"}}
    event.write_text(json.dumps({"number": 9, "pull_request": {"number": 9, "head": head}}))
    env = {"GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/agents"}
    assert two.cli.run("up", env=env).code == 0
    metadata = [
        (r.method, r.path) for r in two.fly.requests if r.method == "POST" and "metadata" in r.path
    ]
    assert metadata, "the new branch was not recorded"
    assert two.vars_of("feat/9-renamed") == {"API_URL": "https://pr-9-svc.fly.dev"}
    assert two.cli.run("down", "--pr", "9").code == 0
    assert two.vars_of("feat/9-renamed") == {}
    assert two.vars_of("feat/8") == {"API_URL": "https://pr-8-svc.fly.dev"}
