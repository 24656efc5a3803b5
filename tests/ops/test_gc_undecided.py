"""gc keeps what it cannot decide, run as the installed console script against the fakes.

A PR opened just after gc listed the open PRs is missing from that listing; when the
follow-up ``GET /pulls/N`` then fails, gc must keep the preview, say so, exit 1, and
still do everything it could decide. Once GitHub answers, the same gc converges.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from previewctl.vercel_sync import managed_comment
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import DOCS, GitHubFake
from tests.fakes.vercel_api import VercelFake
from tests.support.checks import assert_no_leak
from tests.support.cli import Cli
from tests.support.previews import GC_TOML, seed_preview
from tests.support.previews import feature_branch as branch
from tests.support.previews import preview_app as app
from tests.support.project import Project

REPO = "acme/agents"
LATE, CLOSED, OPEN = 20, 21, 22  # opened after the listing; closed; open and listed


@dataclass
class Org:
    cli: Cli
    fly: FlyEmulator
    github: GitHubFake
    vercel: VercelFake
    secrets: list[str]

    def branch_keys(self, pr: int) -> set[str]:
        return {e["key"] for e in self.vercel.envs_for("web", branch(pr))}

    def touched(self, name: str) -> list[Any]:
        return [r for r in self.fly.mutating_calls() if r.path.startswith(f"/v1/apps/{name}")]


@pytest.fixture
def org(cli: Cli, fly: FlyEmulator, project: Project) -> Iterator[Org]:
    project.write(GC_TOML)
    gh_token = "ghs_" + pysecrets.token_urlsafe(16)
    vercel_token = pysecrets.token_urlsafe(16)
    with (
        GitHubFake(token=gh_token, repo=REPO) as github,
        VercelFake(token=vercel_token) as vercel,
    ):
        now = datetime.now(UTC)
        secrets: list[str] = []
        vercel.add_project("web", branches=[branch(pr) for pr in (LATE, CLOSED, OPEN)])
        for pr in (LATE, CLOSED, OPEN):
            password = pysecrets.token_hex(16)
            secrets.append(password)
            seed_preview(
                fly,
                app(pr),
                pr,
                branch=branch(pr),
                last_up=now - timedelta(seconds=30),  # seconds old: alive
                secrets={"pg_password": password},
            )
            value = f"postgresql://app:{password}@{app(pr)}.fly.dev:5432/db"
            vercel.add_env(
                "web",
                "DATABASE_URL",
                value,
                git_branch=branch(pr),
                comment=managed_comment("DATABASE_URL", value),
            )
        github.add_pr(LATE, branch(LATE))
        github.hide_from_listing(LATE)  # opened after gc's listing
        github.add_pr(CLOSED, branch(CLOSED), state="closed")
        github.add_pr(OPEN, branch(OPEN))
        cli.env.update(
            {
                "GITHUB_REPOSITORY": REPO,
                "GITHUB_TOKEN": gh_token,
                "GITHUB_API_URL": github.url,
                "VERCEL_TOKEN": vercel_token,
                "VERCEL_API_URL": vercel.url,
            }
        )
        yield Org(cli, fly, github, vercel, secrets)


FORBIDDEN = {"message": "Resource not accessible by integration", "documentation_url": DOCS}
# (status, Retry-After, body): a plain 403 fails at once; the others are retried (their
# Retry-After of 0 keeps the retries instant) until the client gives up.
LOOKUP_FAULTS = {
    "403": (403, None, FORBIDDEN),
    "403-rate-limited": (403, "0", None),
    "429": (429, "0", None),
    "500": (500, "0", None),
}


@pytest.mark.parametrize("fault", LOOKUP_FAULTS)
def test_pr_opened_after_the_listing_is_kept_when_its_lookup_fails(
    org: Org, fault: str, tmp_path: Path
) -> None:
    status, retry_after, body = LOOKUP_FAULTS[fault]
    org.github.inject(
        "GET", rf"/pulls/{LATE}$", status, times=1000, retry_after=retry_after, body=body
    )
    summary = tmp_path / "summary.md"
    result = org.cli.run("gc", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})

    assert result.code == 1, result.output
    assert app(LATE) in org.fly.apps  # alive, seconds old: kept
    assert org.touched(app(LATE)) == []
    assert org.branch_keys(LATE) == {"DATABASE_URL"}  # its branch is not swept either
    # everything decidable is still done
    assert set(org.fly.apps) == {app(LATE), app(OPEN)}
    assert org.branch_keys(CLOSED) == set()
    row = next(line for line in result.stdout.splitlines() if app(LATE) in line)
    assert "undecided" in row
    assert f"PR #{LATE} state could not be learned" in result.stdout
    assert f"-> {status}" in result.stdout  # the reason names the failure
    assert "undecided 1 (kept)" in result.stdout
    assert f"PR #{LATE}" in result.stderr  # reported while it happened too
    text = summary.read_text()
    assert "| undecided |" in text
    assert "undecided 1" in text
    assert_no_leak(result.output + text, org.secrets)

    # GitHub answers again: the same command converges, and the preview stays
    org.github.faults.clear()
    org.fly.clear_log()
    again = org.cli.run("--json", "gc")
    assert again.code == 0, again.output
    data = again.json()
    assert data["complete"] is True
    assert data["totals"]["undecided"] == 0
    late = next(r for r in data["rows"] if r["app"] == app(LATE))
    assert (late["action"], late["ok"]) == ("keep", True)
    assert f"PR #{LATE} open" in late["reason"]
    assert org.fly.mutating_calls() == []
    assert set(org.fly.apps) == {app(LATE), app(OPEN)}
    assert org.branch_keys(LATE) == {"DATABASE_URL"}


def test_a_listing_that_fails_keeps_every_young_preview_and_exits_1(org: Org) -> None:
    org.github.inject("GET", r"/pulls$", 502, times=1000, retry_after="0")
    result = org.cli.run("--json", "gc")
    assert result.code == 1, result.output
    data = result.json()
    assert "502" in data["lookup_error"]
    assert {r["app"]: r["action"] for r in data["rows"]} == {
        app(pr): "undecided" for pr in (LATE, CLOSED, OPEN)
    }
    assert org.fly.mutating_calls() == []
    assert [r for r in org.vercel.calls() if r.method == "DELETE"] == []
    assert "open PRs could not be listed" in result.stderr

    org.github.faults.clear()
    again = org.cli.run("gc")
    assert again.code == 0, again.output
    assert set(org.fly.apps) == {app(LATE), app(OPEN)}  # now the closed one goes
