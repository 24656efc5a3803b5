"""`gc` run as the installed console script against the Fly, GitHub and Vercel fakes.

The org of the issue: 12 previews (4 closed PRs, 2 merged, 1 missing, 1 stale, 4 open
and fresh) and 3 apps previewctl did not make (`production-api`, `pr-9-agents` made by
hand, `pr-3-other`).
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from previewctl.vercel_sync import managed_comment
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.loopback import RecordedRequest
from tests.fakes.vercel_api import VercelFake
from tests.support.checks import assert_no_leak
from tests.support.cli import Cli
from tests.support.previews import GC_TOML, seed_preview, seed_unmarked
from tests.support.previews import feature_branch as branch
from tests.support.previews import preview_app as app
from tests.support.project import Project

REPO = "acme/agents"
CLOSED = (1, 2, 3, 4)
MERGED = (5, 6)
MISSING = (7,)
STALE = (8,)
OPEN = (10, 11, 12, 13)
DOOMED = (*CLOSED, *MERGED, *MISSING, *STALE)
PREVIEWS = (*DOOMED, *OPEN)
UNMANAGED = ("production-api", "pr-9-agents", "pr-3-other")


@dataclass
class World:
    cli: Cli
    fly: FlyEmulator
    github: GitHubFake
    vercel: VercelFake
    secrets: dict[int, str]

    def apps(self) -> set[str]:
        return set(self.fly.apps)

    def branch_keys(self, pr_branch: str) -> set[str]:
        return {e["key"] for e in self.vercel.envs_for("web", pr_branch)}

    def domains(self) -> set[str]:
        return {d["name"] for d in self.vercel.domains_for("web")}

    def vercel_writes(self) -> list[RecordedRequest]:
        return [r for r in self.vercel.calls() if r.method in ("POST", "PATCH", "DELETE")]

    def clear_logs(self) -> None:
        self.fly.clear_log()
        self.github.clear_log()
        self.vercel.clear_log()


def _add_domain(vercel: VercelFake, name: str, git_branch: str) -> None:
    project = vercel.projects["web"]
    with vercel.lock:
        project.domains.append(
            {
                "name": name,
                "apexName": "example.com",
                "projectId": project.id,
                "gitBranch": git_branch,
                "verified": True,
                "createdAt": 0,
                "updatedAt": 0,
            }
        )


def seed_world(fly: FlyEmulator, github: GitHubFake, vercel: VercelFake) -> dict[int, str]:
    now = datetime.now(UTC)
    fresh = now - timedelta(hours=2)
    stale = now - timedelta(days=10)
    passwords: dict[int, str] = {}
    for pr in PREVIEWS:
        passwords[pr] = pysecrets.token_hex(16)
        seed_preview(
            fly,
            app(pr),
            pr,
            branch=branch(pr),
            last_up=stale if pr in STALE else fresh,
            created_at=stale if pr in STALE else now - timedelta(days=1),
            state="stopped" if pr in (2, 11) else "started",
            secrets={"pg_password": passwords[pr], "api_key": pysecrets.token_hex(16)},
        )
    for pr in CLOSED:
        github.add_pr(pr, branch(pr), state="closed")
    for pr in MERGED:
        github.add_pr(pr, branch(pr), merged=True)
    for pr in (*STALE, *OPEN):
        github.add_pr(pr, branch(pr))
    # Made by hand: not matching the template, or without the marker. PR 9 and 3 are
    # closed, so only the marker and the name keep them alive.
    github.add_pr(9, "feature/pr-9", state="closed")
    seed_unmarked(fly, "production-api")
    seed_unmarked(fly, "pr-9-agents")
    seed_preview(fly, "pr-3-other", 3, branch="feature/other", last_up=stale)

    branches = [branch(pr) for pr in (*PREVIEWS, 9)] + ["feature/orphan"]
    vercel.add_project("web", branches=branches)
    for pr in PREVIEWS:
        value = f"postgresql://app:{passwords[pr]}@{app(pr)}.fly.dev:5432/db"
        vercel.add_env(
            "web",
            "DATABASE_URL",
            value,
            git_branch=branch(pr),
            comment=managed_comment("DATABASE_URL", value),
        )
        _add_domain(vercel, f"pr-{pr}-web.example.com", branch(pr))
    # previewctl's var of a branch whose PR and preview are long gone
    vercel.add_env(
        "web",
        "DATABASE_URL",
        "postgresql://old",
        git_branch="feature/orphan",
        comment=managed_comment("DATABASE_URL", "postgresql://old"),
    )
    # not previewctl's: no comment, or no branch
    vercel.add_env("web", "MANUAL_FLAG", "1", git_branch=branch(1))
    vercel.add_env(
        "web", "SHARED", "x", comment=managed_comment("SHARED", "x")
    )  # copied by hand, no branch
    vercel.add_env("web", "HAND_MADE", "y", git_branch="feature/pr-9")
    _add_domain(vercel, "staging.example.com", branch(1))  # not the template's shape
    return passwords


@pytest.fixture
def world(cli: Cli, fly: FlyEmulator, project: Project) -> Iterator[World]:
    project.write(GC_TOML)
    gh_token = "ghs_" + pysecrets.token_urlsafe(16)
    vercel_token = pysecrets.token_urlsafe(16)
    with (
        GitHubFake(token=gh_token, repo=REPO) as github,
        VercelFake(token=vercel_token) as vercel,
    ):
        passwords = seed_world(fly, github, vercel)
        cli.env.update(
            {
                "GITHUB_REPOSITORY": REPO,
                "GITHUB_TOKEN": gh_token,
                "GITHUB_API_URL": github.url,
                "VERCEL_TOKEN": vercel_token,
                "VERCEL_API_URL": vercel.url,
            }
        )
        yield World(cli, fly, github, vercel, passwords)


def test_dry_run_changes_nothing_and_shows_the_plan(world: World) -> None:
    before_apps = world.apps()
    before_domains = world.domains()
    result = world.cli.run("--json", "gc", "--dry-run")
    assert result.code == 0, result.output
    assert world.fly.mutating_calls() == []
    assert world.vercel_writes() == []
    assert world.apps() == before_apps
    assert world.domains() == before_domains
    data = result.json()
    assert data["dry_run"] is True
    would = {r["app"] for r in data["rows"] if r["action"] == "would destroy"}
    assert would == {app(pr) for pr in DOOMED}
    skipped = {r["app"] for r in data["rows"] if r["action"] == "skip"}
    assert skipped == {"pr-9-agents"}  # the others do not even look like previews
    assert {r["branch"] for r in data["vercel"]} == {
        *(branch(pr) for pr in DOOMED),
        "feature/orphan",
    }
    assert all(r["action"].startswith("would remove") for r in data["vercel"])
    assert data["saved_per_day"] > 0

    plain = world.cli.run("gc", "--dry-run")
    assert plain.code == 0
    table_rows = [line for line in plain.stdout.splitlines() if "-agents" in line]
    assert sum("would destroy" in line for line in table_rows) == len(DOOMED)
    assert "not managed" in plain.stdout


def test_gc_destroys_exactly_the_eight_and_sweeps_their_vercel_vars(
    world: World, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    result = world.cli.run(
        "gc", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.code == 0, result.output

    assert world.apps() == {app(pr) for pr in OPEN} | set(UNMANAGED)
    deletes = world.fly.mutating_calls()
    assert sorted(r.path for r in deletes) == sorted(f"/v1/apps/{app(pr)}" for pr in DOOMED)
    assert all(r.method == "DELETE" for r in deletes)
    # open PRs listed once; one look per PR to destroy, none for the open ones
    assert len(world.github.calls("GET", r"/pulls$")) == 1
    looked_up = {int(r.path.rsplit("/", 1)[1]) for r in world.github.calls("GET", r"/pulls/\d+$")}
    assert looked_up == {*CLOSED, *MERGED, *MISSING}

    for pr in DOOMED:
        assert "DATABASE_URL" not in world.branch_keys(branch(pr)), pr
    for pr in OPEN:
        assert world.branch_keys(branch(pr)) == {"DATABASE_URL"}, pr
    assert world.branch_keys("feature/orphan") == set()
    assert world.branch_keys(branch(1)) == {"MANUAL_FLAG"}  # not previewctl's
    assert world.branch_keys("feature/pr-9") == {"HAND_MADE"}
    assert {e["key"] for e in world.vercel.envs_for("web") if not e.get("gitBranch")} == {"SHARED"}
    assert world.domains() == {f"pr-{pr}-web.example.com" for pr in OPEN} | {"staging.example.com"}

    out = result.stdout
    assert "PR #1 closed" in out
    assert "PR #5 merged" in out
    assert "PR #7 does not exist" in out
    assert "older than max age" in out
    assert "not managed" in out
    text = summary.read_text()
    assert "| PR | app |" in text
    assert text.count("| destroy |") == len(DOOMED)
    assert_no_leak(result.output, list(world.secrets.values()))
    for password in world.secrets.values():
        assert password not in text

    world.clear_logs()
    again = world.cli.run("gc")
    assert again.code == 0, again.output
    assert world.fly.mutating_calls() == []
    assert world.vercel_writes() == []
    assert "destroyed 0" in again.stdout


def mark_repo(fly: FlyEmulator, name: str, repo: str) -> None:
    with fly.lock:
        for machine in fly.apps[name].machines.values():
            machine.config["metadata"]["previewctl_repo"] = repo


def test_gc_leaves_a_preview_another_repository_made_with_the_same_app_name(
    world: World,
) -> None:
    """Fly app names are global: PR #1 of acme/other is not acme/agents' closed PR #1."""
    mark_repo(world.fly, app(1), "acme/other")  # another repository's preview, same template
    mark_repo(world.fly, app(2), "ACME/Agents")  # ours: GitHub's names ignore case
    result = world.cli.run("--json", "gc")
    assert app(1) in world.apps()
    assert app(2) not in world.apps()
    row = next(r for r in result.json()["rows"] if r["app"] == app(1))
    assert row["action"] != "destroy"
    assert "made for repository 'acme/other'" in row["reason"]


def test_one_failed_delete_does_not_stop_the_sweep(world: World) -> None:
    # Retry-After 0 keeps the client's retries instant; it gives up after its attempts.
    world.fly.inject("DELETE", r"/v1/apps/pr-5-", 500, times=20, retry_after="0")
    result = world.cli.run("--json", "gc")
    assert result.code == 1, result.output
    assert app(5) in world.apps()
    assert world.apps() == {app(pr) for pr in OPEN} | set(UNMANAGED) | {app(5)}
    data = result.json()
    failed = [r for r in data["rows"] if not r["ok"]]
    assert [r["app"] for r in failed] == [app(5)]
    assert "500" in failed[0]["error"]
    assert data["failed"] is True
    assert app(5) in result.stderr  # reported while it happened too


def test_bad_max_age_is_exit_2_before_any_request(world: World) -> None:
    world.clear_logs()
    result = world.cli.run("gc", "--max-age", "abc")
    assert result.code == 2, result.output
    assert "max-age" in result.stderr
    assert world.fly.calls() == []
    assert world.github.calls() == []
    assert world.vercel.calls() == []


@pytest.mark.parametrize("max_age", ["0", "0s", "59m", "3599"])
def test_a_max_age_under_an_hour_is_exit_2_and_destroys_nothing(world: World, max_age: str) -> None:
    """`--max-age 0s` would take every preview, the open PRs' too: refused, nothing touched."""
    before = world.apps()
    world.clear_logs()
    result = world.cli.run("gc", "--max-age", max_age)
    assert result.code == 2, result.output
    assert "shortest max age is 1h" in result.stderr
    assert world.apps() == before
    assert world.fly.calls() == []
    assert world.github.calls() == []
    assert world.vercel.calls() == []


def test_a_configured_max_age_under_an_hour_stops_gc_but_not_down(world: World) -> None:
    """`[gc] max_age = "10m"`: gc says where (file:line, exit 2, nothing touched); the
    config still loads, so the `down` of a closing PR is not blocked by a gc setting."""
    config = world.cli.project.config
    config.write_text(config.read_text().replace('max_age = "7d"', 'max_age = "10m"'))
    before = world.apps()
    world.clear_logs()
    result = world.cli.run("gc")
    assert result.code == 2, result.output
    assert "shortest max age is 1h" in result.stderr
    assert "gc.max_age" in result.stderr
    assert world.apps() == before
    assert world.fly.calls() == []
    assert world.github.calls() == []
    down = world.cli.run("down", "--pr", "1", "--branch", branch(1))
    assert down.code == 0, down.output
    assert app(1) not in world.apps()


def test_an_hour_is_the_shortest_max_age_accepted(world: World) -> None:
    result = world.cli.run("gc", "--max-age", "1h", "--dry-run")
    assert result.code == 0, result.output


def test_repository_without_token_is_exit_2_before_any_request(world: World) -> None:
    world.clear_logs()
    env = dict(world.cli.env)
    del env["GITHUB_TOKEN"]
    world.cli.env = env
    result = world.cli.run("gc")
    assert result.code == 2, result.output
    assert "GITHUB_TOKEN" in result.stderr
    assert world.fly.calls() == []


def test_without_github_only_age_decides(world: World) -> None:
    env = dict(world.cli.env)
    for name in ("GITHUB_REPOSITORY", "GITHUB_TOKEN", "GITHUB_API_URL"):
        del env[name]
    world.cli.env = env
    result = world.cli.run("gc")
    assert result.code == 0, result.output
    # closed/merged/missing but fresh: unknown is never taken for closed
    assert world.apps() == {app(pr) for pr in PREVIEWS if pr not in STALE} | set(UNMANAGED)
    assert "PR state unknown" in result.output
    # only the destroyed preview's branch is swept
    assert world.branch_keys(branch(8)) == set()
    assert world.branch_keys("feature/orphan") == {"DATABASE_URL"}
