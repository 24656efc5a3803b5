"""GitHub as previewctl calls it: the client tests' respx answers and the GitHub fake give
the same status codes and body shapes (GitHub's REST spec, ``@octokit/openapi``), and
previewctl's client reads both the same way."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from previewctl.clients.github import GitHubClient
from tests.contract.sides import SIDES, Side, json_object, quick_retry, side
from tests.fakes.github_api import GitHubFake
from tests.support import answers

BASE = "https://api.github.test"
REPO = "acme/agents"
PULLS = f"/repos/{REPO}/pulls"
COMMENTS = f"/repos/{REPO}/issues/7/comments"


@pytest.fixture(params=SIDES)
def github(request: pytest.FixtureRequest) -> Iterator[Side]:
    token = "ghs_" + secrets.token_urlsafe(16)
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    with side(request.param, BASE, headers, lambda: GitHubFake(token=token, repo=REPO)) as s:
        s.given(lambda fake: fake.add_pr(7, "feat-7"))
        yield s


def client(github: Side) -> GitHubClient:
    return GitHubClient(github.client_http(), retry=quick_retry())


def assert_github_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    """``{"message", "documentation_url"}``."""
    assert answer.status_code == status, answer.text
    body = json_object(answer)
    assert isinstance(body.get("message"), str), body
    assert body["message"], body
    assert isinstance(body.get("documentation_url", ""), str), body
    return body


def test_a_pull_request_has_its_state_and_head(github: Side) -> None:
    github.serve("GET", f"{PULLS}/7", 200, answers.github_pull(7, REPO))
    github.serve("GET", f"{PULLS}/7", 200, answers.github_pull(7, REPO))
    body = json_object(github.http.get(f"{PULLS}/7"))
    assert body["number"] == 7
    assert body["state"] == "open"
    assert body["merged"] is False
    assert body["head"]["ref"] == "feat-7"
    assert body["head"]["repo"]["full_name"] == REPO
    pull = client(github).get_pull(REPO, 7)
    assert pull is not None
    assert (pull.state, pull.head_ref) == ("open", "feat-7")


def test_a_missing_pull_request_is_404_not_found(github: Side) -> None:
    github.serve("GET", f"{PULLS}/99", 404, answers.github_error("Not Found"))
    github.serve("GET", f"{PULLS}/99", 404, answers.github_error("Not Found"))
    assert assert_github_error(github.http.get(f"{PULLS}/99"), 404)["message"] == "Not Found"
    assert client(github).get_pull(REPO, 99) is None


def test_open_pull_requests_are_listed_with_merged_at(github: Side) -> None:
    github.serve("GET", PULLS, 200, [answers.github_pull(7, REPO)])
    listed = github.http.get(PULLS, params={"state": "open", "per_page": "100"}).json()
    assert isinstance(listed, list)
    assert [p["number"] for p in listed] == [7]
    assert "merged_at" in listed[0]


def test_a_comment_is_created_with_201_then_patched(github: Side) -> None:
    made = answers.github_comment(101, "<!-- previewctl --> hello")
    github.serve("POST", COMMENTS, 201, made)
    github.serve("GET", COMMENTS, 200, [made])
    created = github.http.post(COMMENTS, json={"body": "<!-- previewctl --> hello"})
    assert created.status_code == 201
    comment = json_object(created)
    assert isinstance(comment["id"], int)
    assert comment["body"] == "<!-- previewctl --> hello"
    listed = github.http.get(COMMENTS, params={"per_page": "100"}).json()
    assert [c["id"] for c in listed] == [comment["id"]]
    path = f"/repos/{REPO}/issues/comments/{comment['id']}"
    github.serve("PATCH", path, 200, {**made, "body": "<!-- previewctl --> again"})
    again = github.http.patch(path, json={"body": "<!-- previewctl --> again"})
    assert again.status_code == 200
    assert json_object(again)["body"] == "<!-- previewctl --> again"


def test_a_deployment_and_its_status_are_created_with_201(github: Side) -> None:
    made = answers.github_deployment(1, "feat-7", "pr-7")
    github.serve("POST", f"/repos/{REPO}/deployments", 201, made)
    body = {
        "ref": "feat-7",
        "environment": "pr-7",
        "auto_merge": False,
        "required_contexts": [],
        "transient_environment": False,
        "production_environment": False,
    }
    created = github.http.post(f"/repos/{REPO}/deployments", json=body)
    assert created.status_code == 201, created.text
    deployment = json_object(created)
    assert isinstance(deployment["id"], int)
    assert (deployment["ref"], deployment["environment"]) == ("feat-7", "pr-7")
    path = f"/repos/{REPO}/deployments/{deployment['id']}/statuses"
    url = "https://pr-7.example.com"
    github.serve("POST", path, 201, answers.github_deployment_status(2, "success", url))
    status = github.http.post(path, json={"state": "success", "environment_url": url})
    assert status.status_code == 201, status.text
    assert (json_object(status)["state"], json_object(status)["environment_url"]) == (
        "success",
        url,
    )
