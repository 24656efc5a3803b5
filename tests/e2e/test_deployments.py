"""The preview as a GitHub deployment, through the console script and the GitHub fake."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.checks import assert_no_leak, machine_secrets
from tests.support.project import BASIC_TOML, Project
from tests.support.wiring import REPO, VERCEL_TOML, Wired, wire, write_event

pytestmark = pytest.mark.e2e

APP = "pr-8-svc"


@pytest.fixture
def wired(tmp_path: Path, project: Project, fly: FlyEmulator, fly_token: str) -> Iterator[Wired]:
    w = wire(tmp_path, project, fly, fly_token, toml=BASIC_TOML + VERCEL_TOML)
    yield w
    w.close()


def deployment_writes(w: Wired) -> list[str]:
    return [
        f"{r.method} {r.path}" for r in w.github.calls(None, r"/deployments") if r.method != "GET"
    ]


def test_up_records_a_successful_deployment_with_the_preview_url(wired: Wired) -> None:
    result = wired.cli.run("up", "--json")
    assert result.code == 0, result.output
    [deployment] = wired.github.deployments_in("pr-8")
    assert deployment["ref"] == wired.branch
    assert deployment["payload"] == {"previewctl": True, "app": APP, "pr": 8}
    assert deployment["production_environment"] is False
    [status] = wired.github.statuses_of(deployment["id"])
    assert status["state"] == "success"
    assert status["environment_url"] == "https://pr-8-api.preview.example.com"
    assert status["log_url"] == wired.run_url
    create = wired.github.calls("POST", rf"^/repos/{REPO}/deployments$")[0].body
    assert create["auto_merge"] is False  # never a merge commit on the PR's branch
    assert create["required_contexts"] == []  # never blocked by the PR's running checks
    data = result.json()
    # time per phase: in --json and in the step summary
    assert {"fly machine", "machine health", "vercel"} <= set(data["timings"])
    assert all(isinstance(v, float) for v in data["timings"].values())
    assert data["seconds"] >= max(data["timings"].values())
    summary = wired.summary.read_text()
    assert "<details><summary>Timings</summary>" in summary
    assert "| fly machine |" in summary
    assert data["urls"] == {
        "hostname": "pr-8-svc.fly.dev",
        "api": "https://pr-8-api.preview.example.com",
    }
    assert data["next"][0] == "previewctl tunnel --pr 8"
    assert data["deployment"] == {
        "id": deployment["id"],
        "environment": "pr-8",
        "state": "success",
        "url": "https://pr-8-api.preview.example.com",
    }


def test_a_rerun_reuses_the_deployment_and_writes_nothing(wired: Wired) -> None:
    assert wired.cli.run("up").code == 0
    wired.github.clear_log()
    again = wired.cli.run("up")
    assert again.code == 0, again.output
    assert len(wired.github.deployments_in("pr-8")) == 1
    assert deployment_writes(wired) == []
    [deployment] = wired.github.deployments_in("pr-8")
    assert len(wired.github.statuses_of(deployment["id"])) == 1


def test_a_new_push_gets_a_new_deployment_and_the_old_one_goes_inactive(wired: Wired) -> None:
    assert wired.cli.run("up").code == 0
    [first] = wired.github.deployments_in("pr-8")
    new_sha = "b" * 40
    wired.github.prs[8]["head"]["sha"] = new_sha
    write_event(wired.event, 8, wired.branch, new_sha)
    assert wired.cli.run("up").code == 0
    newest, older = wired.github.deployments_in("pr-8")
    assert older["id"] == first["id"]
    assert newest["sha"] == new_sha
    assert wired.github.state_of(newest["id"]) == "success"
    assert wired.github.state_of(older["id"]) == "inactive"  # GitHub's auto_inactive


def test_a_failed_up_records_failure_with_the_run_log(wired: Wired) -> None:
    toml = (
        BASIC_TOML
        + VERCEL_TOML
        + (
            f'\n[[steps]]\nname = "migrate"\nrun = ["{sys.executable}", "-c", "raise SystemExit(3)"]\n'
        )
    )
    wired.project.write(toml)
    result = wired.cli.run("up")
    assert result.code == 1
    [deployment] = wired.github.deployments_in("pr-8")
    [status] = wired.github.statuses_of(deployment["id"])
    assert status["state"] == "failure"
    assert status["log_url"] == wired.run_url
    assert "migrate" in status["description"]
    assert len(status["description"]) <= 140
    assert_no_leak(status["description"], list(machine_secrets(wired.fly, APP).values()))


def test_down_marks_the_deployment_inactive(wired: Wired) -> None:
    assert wired.cli.run("up").code == 0
    result = wired.cli.run("down", "--json")
    assert result.code == 0, result.output
    [deployment] = wired.github.deployments_in("pr-8")
    assert wired.github.state_of(deployment["id"]) == "inactive"
    assert result.json()["deployments_inactive"] == [deployment["id"]]
    wired.github.clear_log()
    assert wired.cli.run("down").code == 0  # already inactive: nothing written
    assert deployment_writes(wired) == []


def test_deployments_previewctl_did_not_make_are_left_alone(wired: Wired) -> None:
    theirs = wired.github._new_deployment({"environment": "pr-8"}, wired.branch, "c" * 40)
    wired.github._add_status(theirs, {}, "success", "theirs")
    assert wired.cli.run("up").code == 0
    assert wired.cli.run("down").code == 0
    assert [s["state"] for s in wired.github.statuses_of(theirs["id"])] == ["inactive", "success"]
    # (inactive by GitHub's auto_inactive when ours succeeded; down wrote nothing to it)
    down_writes = [c for c in wired.github.calls("POST") if f"/{theirs['id']}/" in c.path]
    assert down_writes == []


def test_environment_override_and_switching_deployments_off(wired: Wired) -> None:
    toml = BASIC_TOML + VERCEL_TOML + '\n[github]\nenvironment = "preview-${pr}"\n'
    wired.project.write(toml)
    assert wired.cli.run("up").code == 0
    assert wired.github.deployments_in("pr-8") == []
    assert len(wired.github.deployments_in("preview-8")) == 1
    wired.project.write(BASIC_TOML + VERCEL_TOML + "\n[github]\ndeployments = false\n")
    wired.github.clear_log()
    assert wired.cli.run("up").code == 0
    assert wired.github.calls(None, r"/deployments") == []


def test_without_the_permission_up_still_succeeds_and_says_what_to_grant(wired: Wired) -> None:
    wired.github.deployments_writable = False
    result = wired.cli.run("up")
    assert result.code == 0, result.output
    assert "could not record the GitHub deployment" in result.stderr
    assert "deployments: write" in result.stderr
    assert wired.github.deployments == []


def test_a_fork_pr_gets_no_deployment(wired: Wired) -> None:
    event = json.loads(wired.event.read_text())
    event["pull_request"]["head"]["repo"] = {"full_name": "someone/fork"}
    wired.event.write_text(json.dumps(event))
    result = wired.cli.run("up")
    assert result.code == 0, result.output
    assert wired.github.calls(None, r"/deployments") == []
    assert wired.fly.mutating_calls() == []


def test_a_lost_answer_to_the_create_does_not_make_a_second_deployment(wired: Wired) -> None:
    wired.github.inject("POST", rf"^/repos/{REPO}/deployments$", drop_after=True)
    result = wired.cli.run("up")
    assert result.code == 0, result.output
    [deployment] = wired.github.deployments_in("pr-8")  # made once, found again
    assert len(wired.github.calls("POST", rf"^/repos/{REPO}/deployments$")) == 1
    assert wired.github.state_of(deployment["id"]) == "success"
