"""A pull_request workflow step's environment, pointing at the fakes, and its config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake

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
