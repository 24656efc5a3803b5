"""The attack tests' stage: the e2e stack (Fly emulator, flyctl stand-in, a real
PostgreSQL) as a GitHub Actions step sees it (masks, annotations, outputs, summary) with
the GitHub fake holding the PR, and one place that gathers EVERY output previewctl
produced, so that a test can search all of it for a value."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import CliResult
from tests.e2e.stack import Stack
from tests.fakes.github_api import GitHubFake

PR = 7
BRANCH = "feature/attack"


@dataclass
class ActionsStage:
    stack: Stack
    github: GitHubFake
    output_file: Path
    summary_file: Path

    def run(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        return self.stack.cli.run(*args, env=env)

    def everything(self) -> str:
        """stdout, stderr (annotations included) of every run, $GITHUB_OUTPUT,
        $GITHUB_STEP_SUMMARY and every body sent to the GitHub API (the PR comment)."""
        parts = [self.stack.cli.all_output()]
        for path in (self.output_file, self.summary_file):
            if path.exists():
                parts.append(path.read_text())
        for request in self.github.calls():
            if request.body is not None:
                parts.append(json.dumps(request.body))
        return "\n".join(parts)

    def comments(self) -> str:
        return "\n".join(c["body"] for c in self.github.comments_on(PR))


def actions_stage(stack: Stack, tmp_path: Path) -> ActionsStage:
    token = "ghs_" + secrets.token_urlsafe(24)
    github = GitHubFake(token=token, repo="acme/agents").start()
    github.add_pr(PR, BRANCH)
    out, summary = tmp_path / "github_output", tmp_path / "step_summary"
    stack.cli.env.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(out),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_TOKEN": token,
            "GITHUB_REPOSITORY": "acme/agents",
            "GITHUB_API_URL": github.url,
            "PREVIEWCTL_PR": str(PR),
            "PREVIEWCTL_BRANCH": BRANCH,
        }
    )
    return ActionsStage(stack, github, out, summary)


def leaks(text: str, values: list[str]) -> list[str]:
    """Lines (outside ``::add-mask::``, which carries values on purpose) holding a value."""
    return [
        line[:300]
        for line in text.splitlines()
        if not line.startswith("::add-mask::") and any(v in line for v in values)
    ]


def unknown_secret() -> str:
    """A value previewctl has never seen: not generated, read or rendered by it."""
    return "Unk" + secrets.token_hex(12)
