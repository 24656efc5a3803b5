"""`up`/`seed`/`down` with Vercel and GitHub, run as a workflow step would run them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.loopback import RecordedRequest
from tests.fakes.vercel_api import VercelFake
from tests.support.checks import assert_no_leak, machine_secrets
from tests.support.cli import InProcessCli
from tests.support.project import Project
from tests.support.workflow import APP, BRANCH, MARKER, PR, Wired, wire, write_event


@pytest.fixture
def wired(project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path) -> Iterator[Wired]:
    with wire(project, fly, fly_token, tmp_path, InProcessCli) as wired:
        yield wired


def env_posts(vercel: VercelFake, project: str) -> list[RecordedRequest]:
    return vercel.calls("POST", rf"^/v10/projects/{project}/env$")


def test_up_writes_branch_vars_once_and_redeploys_only_on_change(wired: Wired) -> None:
    result = wired.cli.run("up")  # PR and branch come from the event
    assert result.code == 0, result.output
    for project, keys in (
        ("api", {"DATABASE_URL", "API_KEY", "SELF_URL", "LOG_LEVEL"}),
        ("web", {"API_URL"}),
    ):
        posts = env_posts(wired.vercel, project)
        assert len(posts) == 1, project
        body = posts[0].body
        assert isinstance(body, list)
        assert {item["key"] for item in body} == keys
        assert all(item["gitBranch"] == BRANCH for item in body)
        assert all(item["target"] == ["preview"] for item in body)
        assert all(item["type"] == "encrypted" for item in body)
    stored = {e["key"]: e["value"] for e in wired.vercel.envs_for("api", BRANCH)}
    secrets = machine_secrets(wired.fly, APP)
    assert stored["DATABASE_URL"] == (
        f"postgresql://app:{secrets['pg_password']}@{APP}.fly.dev:5432/db?sslmode=require"
    )
    assert stored["SELF_URL"] == "https://pr-8-api.preview.example.com"
    assert [d["name"] for d in wired.vercel.domains_for("api")] == ["pr-8-api.preview.example.com"]
    assert len(wired.vercel.redeploys()) == 2  # one per project whose vars were written

    wired.vercel.clear_log()
    again = wired.cli.run("up")
    assert again.code == 0, again.output
    assert env_posts(wired.vercel, "api") == []
    assert env_posts(wired.vercel, "web") == []
    assert wired.vercel.redeploys() == []

    wired.cli.env["PREVIEW_LOG_LEVEL"] = "info"
    changed = wired.cli.run("up")
    assert changed.code == 0, changed.output
    posts = env_posts(wired.vercel, "api")
    assert len(posts) == 1
    assert [item["key"] for item in posts[0].body] == ["LOG_LEVEL"]
    assert env_posts(wired.vercel, "web") == []
    assert len(wired.vercel.redeploys()) == 1


def test_down_removes_exactly_the_managed_keys_of_the_branch(wired: Wired) -> None:
    assert wired.cli.run("up").code == 0
    wired.vercel.add_env("api", "DATABASE_URL", "postgres://other", git_branch="other")
    wired.vercel.add_env("api", "DATABASE_URL", "postgres://generic")  # branch-less preview var
    wired.vercel.add_env("api", "HAND_MADE", "x", git_branch=BRANCH)  # unmanaged, same branch
    result = wired.cli.run("down")
    assert result.code == 0, result.output
    left = {(e["key"], e.get("gitBranch")) for e in wired.vercel.envs_for("api")}
    assert left == {("DATABASE_URL", "other"), ("DATABASE_URL", None), ("HAND_MADE", BRANCH)}
    assert wired.vercel.envs_for("web", BRANCH) == []
    assert wired.vercel.domains_for("api") == []
    assert APP not in wired.fly.apps
    second = wired.cli.run("down")
    assert second.code == 0, second.output


def test_vercel_201_with_failed_entries_fails_with_the_code(wired: Wired) -> None:
    wired.vercel.fail_keys = {"API_KEY": "ENV_CONFLICT"}
    result = wired.cli.run("up")
    assert result.code == 1
    assert "ENV_CONFLICT" in result.stderr
    assert "API_KEY" in result.stderr
    assert "::error" in result.stderr
    wired.vercel.fail_keys = {}
    again = wired.cli.run("up")
    assert again.code == 0, again.output
    keys = {e["key"] for e in wired.vercel.envs_for("api", BRANCH)}
    assert keys == {"DATABASE_URL", "API_KEY", "SELF_URL", "LOG_LEVEL"}


def test_one_sticky_comment_through_up_up_seed_down(wired: Wired) -> None:
    assert wired.cli.run("up").code == 0
    assert wired.cli.run("up").code == 0
    seeded = wired.cli.run("seed")
    assert seeded.code == 0, seeded.output
    assert "seeding https://" in seeded.stderr
    assert wired.cli.run("down").code == 0
    ours = [c for c in wired.github.comments_on(PR) if MARKER in c["body"]]
    assert len(ours) == 1
    assert "removed" in ours[0]["body"]
    assert f"`{APP}`" in ours[0]["body"]


def test_down_of_a_pr_that_never_had_a_preview_posts_no_comment(wired: Wired) -> None:
    """Nothing was removed: the PR gets no "removed" comment it never had a preview for."""
    result = wired.cli.run("down")
    assert result.code == 0, result.output
    assert "already gone" in result.stderr
    assert [c for c in wired.github.comments_on(PR) if MARKER in c["body"]] == []


def test_down_after_the_preview_went_updates_the_comment_honestly(wired: Wired) -> None:
    """gc took the preview while the PR was open; `down` on close says it was already gone."""
    assert wired.cli.run("up").code == 0
    del wired.fly.apps[APP]
    assert wired.cli.run("down").code == 0
    ours = [c for c in wired.github.comments_on(PR) if MARKER in c["body"]]
    assert len(ours) == 1
    assert "removed" in ours[0]["body"]
    assert "was already gone" in ours[0]["body"]
    assert "destroyed" not in ours[0]["body"]


def test_fork_pr_is_skipped_without_any_request(wired: Wired) -> None:
    write_event(wired.event, "someone/fork")
    for command in ("up", "seed", "down"):
        result = wired.cli.run(command)
        assert result.code == 0, result.output
        assert "::notice" in result.stderr
        assert "fork" in result.stderr
    assert wired.fly.requests == []
    assert wired.vercel.requests == []


def test_secrets_appear_only_in_mask_lines_and_masks_come_first(wired: Wired) -> None:
    assert wired.cli.run("up").code == 0
    assert wired.cli.run("seed").code == 0
    secrets = wired.secrets()
    printed = wired.everything_printed()
    assert_no_leak(printed, secrets)
    first_up = wired.cli.history[0].stderr.splitlines()
    mask_lines = [i for i, line in enumerate(first_up) if line.startswith("::add-mask::")]
    other_lines = [i for i, line in enumerate(first_up) if not line.startswith("::add-mask::")]
    assert len(mask_lines) >= len(secrets)
    for value in secrets:
        assert any(line == f"::add-mask::{value}" for line in first_up)
    # the masks of the generated secrets precede everything after machine creation
    created = next(i for i, line in enumerate(first_up) if "creating machine" in line)
    assert max(mask_lines[: len(secrets)]) < created + 2
    assert other_lines  # it did print progress
    summary = wired.summary.read_text()
    assert APP in summary
    assert "| phase | seconds |" in summary


def test_github_rate_limit_is_waited_out(wired: Wired) -> None:
    # The deployment and its status take 4 requests: the comment listing hits the limit.
    wired.github.rate_limit_after = 4
    result = wired.cli.run("up")
    assert result.code == 0, result.output
    limited = [(r.method, r.path) for r in wired.github.requests if r.status == 403]
    assert limited == [("GET", f"/repos/acme/agents/issues/{PR}/comments")]
    ours = [c for c in wired.github.comments_on(PR) if MARKER in c["body"]]
    assert len(ours) == 1
    assert "ready" in ours[0]["body"]


def test_pr_without_secrets_is_skipped_with_a_notice(wired: Wired) -> None:
    """Dependabot's PRs run without the repository's secrets: a notice, not a failure."""
    del wired.cli.env["FLY_API_TOKEN"]
    wired.cli.env["GITHUB_ACTOR"] = "dependabot[bot]"
    for command in ("up", "seed", "down"):
        result = wired.cli.run(command)
        assert result.code == 0, result.output
        assert "::notice title=previewctl skipped a PR without secrets::" in result.stderr
        assert "dependabot[bot]" in result.stderr
    assert wired.fly.requests == []
    assert wired.vercel.requests == []
    # outside a PR's event, a missing token stays bad input
    assert wired.cli.run("up", "--pr", "9", env={"GITHUB_EVENT_PATH": ""}).code == 2


@pytest.mark.parametrize("state", ["ERROR", "CANCELED", "BLOCKED", "DELETED"])
def test_seed_fails_at_once_on_a_final_deployment_state(wired: Wired, state: str) -> None:
    """@vercel/sdk: these states never become READY, so seed does not wait 15 minutes."""
    assert wired.cli.run("up").code == 0
    newest = wired.vercel.deployments_for("api", BRANCH)[0]  # the redeploy `up` made
    wired.vercel.set_state(newest["uid"], state)
    wired.vercel.clear_log()
    result = wired.cli.run("seed")
    assert result.code == 1
    assert f"{newest['uid']}" in result.stderr
    assert f"is {state}" in result.stderr
    assert "never be READY" in result.stderr
    assert len(wired.vercel.calls("GET", r"/deployments$")) == 1  # one look, no polling
    assert "seeding" not in result.stderr  # the seed step did not run
    assert_no_leak(result.output, wired.secrets())
    wired.vercel.add_deployment("api", BRANCH, state="READY")  # a new push, built
    again = wired.cli.run("seed")
    assert again.code == 0, again.output
    assert "seeding https://" in again.stderr


# ---- error bodies that echo secrets (issue 9 §3) -----------------------------------------


def every_secret(wired: Wired) -> list[str]:
    """The preview's secrets, every Vercel value built from them, and the three tokens."""
    stored = [e["value"] for p in ("api", "web") for e in wired.vercel.envs_for(p, BRANCH)]
    tokens = [wired.cli.env[k] for k in ("FLY_API_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN")]
    return wired.secrets() + [v for v in stored if v.startswith("postgresql://")] + tokens


def assert_echo_really_carries(wired: Wired, method: str, path: str) -> None:
    """The fake's echo holds the secrets: without redaction they would be shown."""
    wired.fly.inject(method, f"^{path}$", 400, echo=True)
    token = wired.cli.env["FLY_API_TOKEN"]
    raw = httpx.request(method, wired.fly.url + path, headers={"Authorization": f"FlyV1 {token}"})
    assert all(v in raw.text for v in wired.secrets()), raw.text


def comment_of(wired: Wired) -> str:
    ours = [c for c in wired.github.comments_on(PR) if MARKER in c["body"]]
    assert len(ours) == 1
    return str(ours[0]["body"])


def test_rerun_of_up_whose_first_read_echoes_the_config_shows_no_secret(wired: Wired) -> None:
    """The machine listing fails before the secrets are read back; its body quotes the
    machine config (env, metadata with the secrets). Shown: Fly's message, scrubbed."""
    assert wired.cli.run("up").code == 0
    values = every_secret(wired)
    path = f"/v1/apps/{APP}/machines"
    assert_echo_really_carries(wired, "GET", path)
    wired.fly.inject("GET", f"^{path}$", 400, echo=True)
    failed = wired.cli.run("--json", "up")
    assert failed.code == 1
    assert "failed_precondition: machine is in an invalid state: config=" in failed.stderr
    assert '"POSTGRES_PASSWORD": "***"' in failed.stderr
    assert "::error title=API error::Fly GET /v1/apps/pr-8-svc/machines -> 400" in failed.stderr
    body = comment_of(wired)
    assert "`up` failed for PR #8" in body
    assert "failed_precondition" in body
    assert_no_leak(wired.everything_printed(), values)
    again = wired.cli.run("--json", "up")
    assert again.code == 0, again.output
    assert len(wired.fly.apps[APP].live_machines()) == 1
    assert "ready" in comment_of(wired)
    assert_no_leak(wired.everything_printed(), values)


def test_down_whose_answers_echo_the_config_shows_no_secret(wired: Wired) -> None:
    """down never needed the secrets; it reads them first now, and the first call's
    error (before that) is scrubbed by its structure alone."""
    assert wired.cli.run("up").code == 0
    values = every_secret(wired)
    assert_echo_really_carries(wired, "GET", f"/v1/apps/{APP}")
    wired.fly.inject("GET", f"^/v1/apps/{APP}$", 400, echo=True)  # the very first call
    first = wired.cli.run("--json", "down")
    assert first.code == 1
    assert "failed_precondition" in first.stderr
    wired.fly.inject("DELETE", f"^/v1/apps/{APP}$", 400, echo=True)  # after the read
    second = wired.cli.run("--json", "down")
    assert second.code == 1
    assert "DELETE /v1/apps/pr-8-svc -> 400" in second.stderr
    assert_no_leak(wired.everything_printed(), values)
    third = wired.cli.run("--json", "down")
    assert third.code == 0, third.output
    assert APP not in wired.fly.apps
    assert wired.vercel.envs_for("api", BRANCH) == []
    assert_no_leak(wired.everything_printed(), values)


def test_vercel_error_echoing_env_values_shows_only_its_scrubbed_message(wired: Wired) -> None:
    wired.vercel.inject("POST", r"^/v10/projects/api/env$", 400, echo=True)
    failed = wired.cli.run("--json", "up")
    assert failed.code == 1
    assert "Vercel POST /v10/projects/api/env -> 400: Invalid request: [" in failed.stderr
    assert '"value": "***"' in failed.stderr
    assert "`up` failed" in comment_of(wired)
    again = wired.cli.run("--json", "up")
    assert again.code == 0, again.output
    values = every_secret(wired)
    assert any(v.startswith("postgresql://") for v in values)
    assert_no_leak(wired.everything_printed(), values)


# ---- a lost answer does not make a duplicate ------------------------------------------------
def stickies(wired: Wired) -> list[dict[str, Any]]:
    return [c for c in wired.github.comments_on(PR) if c["body"].startswith(MARKER)]


def test_lost_answer_to_the_comment_post_makes_one_comment_and_a_rerun_folds(
    wired: Wired,
) -> None:
    wired.github.inject("POST", rf"/issues/{PR}/comments$", drop_after=True)
    result = wired.cli.run("up")
    assert result.code == 0, result.output
    assert len(stickies(wired)) == 1
    assert "could not update the PR comment" not in result.stderr
    first = stickies(wired)[0]["id"]
    # duplicates from older runs (or racing ones) are folded into the oldest on a re-run
    wired.github.add_comment(PR, stickies(wired)[0]["body"])
    wired.github.add_comment(PR, stickies(wired)[0]["body"])
    again = wired.cli.run("up")
    assert again.code == 0, again.output
    assert [c["id"] for c in stickies(wired)] == [first]
    assert "ready" in stickies(wired)[0]["body"]


def test_lost_answer_to_a_redeploy_makes_one_deployment(wired: Wired) -> None:
    wired.vercel.inject("POST", r"^/v13/deployments$", drop_after=True, times=2)
    result = wired.cli.run("up")
    assert result.code == 0, result.output
    for project in ("api", "web"):  # the seeded deployment and exactly one redeploy each
        made = wired.vercel.deployments_for(project, BRANCH)
        assert len(made) == 2, project
        assert made[0]["meta"].get("action") == "redeploy"
    assert len(wired.vercel.calls("POST", r"^/v13/deployments$")) == 2
    again = wired.cli.run("up")  # nothing changed: no redeploy, nothing new
    assert again.code == 0, again.output
    assert [len(wired.vercel.deployments_for(p, BRANCH)) for p in ("api", "web")] == [2, 2]
