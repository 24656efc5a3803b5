"""A pull_request workflow step's environment, wired to the Fly, Vercel and GitHub fakes.

``wire()`` starts a Vercel and a GitHub fake next to a running Fly emulator, seeds one
open PR and its Vercel projects, and returns the installed CLI with the environment a
GitHub Actions step would have (event file, outputs, summary, run id).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake
from tests.support.cli import Cli, base_env
from tests.support.project import BASIC_TOML, Project

REPO = "acme/agents"
RUN_ID = "4242"

VERCEL_TOML = """
[vercel]
redeploy = true

[vercel.projects.api]
domain = "pr-${pr}-api.preview.example.com"
env = { DATABASE_URL = "postgresql://app:${secrets.pg_password}@${app.hostname}:5432/db" }
"""


@dataclass
class Wired:
    fly: FlyEmulator
    vercel: VercelFake
    github: GitHubFake
    cli: Cli
    project: Project
    pr: int
    branch: str
    output: Path
    summary: Path
    event: Path

    def close(self) -> None:
        self.vercel.stop()
        self.github.stop()

    def without_event(self) -> None:
        """A laptop run: no event, no Actions, just the tokens and the repository."""
        for name in (
            "GITHUB_EVENT_PATH",
            "GITHUB_ACTIONS",
            "GITHUB_OUTPUT",
            "GITHUB_STEP_SUMMARY",
            "GITHUB_RUN_ID",
        ):
            self.cli.env.pop(name, None)

    @property
    def run_url(self) -> str:
        return f"https://github.com/{REPO}/actions/runs/{RUN_ID}"


def write_event(path: Path, pr: int, branch: str, sha: str) -> None:
    head = {"ref": branch, "sha": sha, "repo": {"full_name": REPO}}
    path.write_text(
        json.dumps(
            {"action": "synchronize", "number": pr, "pull_request": {"number": pr, "head": head}}
        )
    )


def wire(
    tmp_path: Path,
    project: Project,
    fly: FlyEmulator,
    fly_token: str,
    *,
    pr: int = 8,
    branch: str = "feat/login",
    toml: str = BASIC_TOML + VERCEL_TOML,
) -> Wired:
    vercel_token, gh_token = secrets.token_hex(16), secrets.token_hex(16)
    vercel = VercelFake(token=vercel_token, build_seconds=0.2).start()
    github = GitHubFake(token=gh_token, repo=REPO).start()
    vercel.add_project("api", branches=("main", branch))
    vercel.add_deployment("api", branch, state="READY")
    pull = github.add_pr(pr, branch)
    project.write(toml)
    output, summary, event = tmp_path / "out", tmp_path / "summary.md", tmp_path / "event.json"
    output.touch()
    write_event(event, pr, branch, pull["head"]["sha"])
    env = {
        **base_env(tmp_path),
        "FLY_API_TOKEN": fly_token,
        "FLY_API_BASE_URL": fly.url,
        "VERCEL_TOKEN": vercel_token,
        "VERCEL_API_URL": vercel.url,
        "GITHUB_TOKEN": gh_token,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": RUN_ID,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    return Wired(
        fly, vercel, github, Cli(project, env), project, pr, branch, output, summary, event
    )
