"""A pull_request workflow step's environment, pointing at the fakes, and its config."""

from __future__ import annotations

import contextlib
import json
import secrets as pysecrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake
from tests.support.checks import machine_secrets
from tests.support.cli import Cli, base_env
from tests.support.project import BASIC_TOML, Project

PR, BRANCH, APP = 8, "feat/login", "pr-8-svc"
MARKER = "<!-- previewctl -->"

VERCEL_TOML = f"""
[vercel]
redeploy = true

[vercel.projects.api]
domain = "pr-${{pr}}-api.preview.example.com"
env = {{ DATABASE_URL = "postgresql://app:${{secrets.pg_password}}@${{app.hostname}}:5432/db?sslmode=require", API_KEY = "${{secrets.api_key}}", SELF_URL = "${{vercel.api.url}}", LOG_LEVEL = "${{env.PREVIEW_LOG_LEVEL}}" }}

[vercel.projects.web]
env = {{ API_URL = "${{vercel.api.url}}" }}

[[seed]]
name = "announce"
run = ["{sys.executable}", "-c", "import os; print('seeding', os.environ['API'])"]
env = {{ API = "${{vercel.api.url}}" }}
"""


def write_event(path: Path, head_repo: str | None) -> None:
    path.write_text(
        json.dumps(
            {
                "action": "synchronize",
                "number": PR,
                "pull_request": {
                    "number": PR,
                    "head": {
                        "ref": BRANCH,
                        "repo": {"full_name": head_repo} if head_repo else None,
                    },
                },
            }
        )
    )


def workflow_env(
    env: dict[str, str],
    tmp_path: Path,
    fly: FlyEmulator,
    fly_token: str,
    vercel: VercelFake,
    vercel_token: str,
    github: GitHubFake,
    gh_token: str,
) -> tuple[dict[str, str], Path, Path, Path]:
    """The environment of a pull_request workflow step, pointing at the fakes."""
    output, summary, event = tmp_path / "out", tmp_path / "summary.md", tmp_path / "event.json"
    output.touch()
    write_event(event, "acme/agents")
    env = {
        **env,
        "FLY_API_TOKEN": fly_token,
        "FLY_API_BASE_URL": fly.url,
        "VERCEL_TOKEN": vercel_token,
        "VERCEL_API_URL": vercel.url,
        "GITHUB_TOKEN": gh_token,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": "acme/agents",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "PREVIEW_LOG_LEVEL": "debug",
    }
    return env, output, summary, event


@dataclass
class Wired:
    fly: FlyEmulator
    vercel: VercelFake
    github: GitHubFake
    cli: Cli
    project: Project
    output: Path
    summary: Path
    event: Path

    def secrets(self) -> list[str]:
        return list(machine_secrets(self.fly, APP).values())

    def everything_printed(self) -> str:
        comments = "".join(c["body"] for c in self.github.comments_on(PR))
        return (
            self.cli.all_output()
            + self.output.read_text()
            + (self.summary.read_text() if self.summary.exists() else "")
            + comments
        )


@contextlib.contextmanager
def wire(
    project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path, kind: type[Cli] = Cli
) -> Iterator[Wired]:
    """Vercel (two projects with a READY preview of the branch) and GitHub (the PR) fakes,
    the config using them, and the workflow step's environment; ``kind`` runs the CLI."""
    vercel_token, gh_token = pysecrets.token_hex(16), pysecrets.token_hex(16)
    vercel = VercelFake(token=vercel_token, build_seconds=0.4).start()
    github = GitHubFake(token=gh_token, repo="acme/agents").start()
    for name in ("api", "web"):
        vercel.add_project(name, branches=("main", BRANCH, "other"))
        vercel.add_deployment(name, BRANCH, state="READY")
    github.add_pr(PR, BRANCH)
    project.write(BASIC_TOML + VERCEL_TOML)
    env, output, summary, event = workflow_env(
        base_env(tmp_path), tmp_path, fly, fly_token, vercel, vercel_token, github, gh_token
    )
    try:
        yield Wired(fly, vercel, github, kind(project, env), project, output, summary, event)
    finally:
        vercel.stop()
        github.stop()
