"""The GitHub fake's deployments follow the official description (@octokit/openapi 23,
``api.github.com``): the required fields and types of ``deployment`` and
``deployment-status``, and the behaviours a client must cope with.

The field lists below are the schemas' ``required`` arrays; the fake's answers were also
validated in full against the published JSON schemas when the fake was written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.github_api import GitHubFake

TOKEN = "gh-token"
REPO = "/repos/acme/agents"
DEPLOYMENT_REQUIRED = {
    "id": int,
    "node_id": str,
    "sha": str,
    "ref": str,
    "task": str,
    "environment": str,
    "creator": dict,
    "payload": (dict, str),
    "description": (str, type(None)),
    "statuses_url": str,
    "repository_url": str,
    "url": str,
    "created_at": str,
    "updated_at": str,
}
STATUS_REQUIRED = {
    "id": int,
    "node_id": str,
    "state": str,
    "creator": dict,
    "description": str,
    "deployment_url": str,
    "target_url": str,
    "repository_url": str,
    "url": str,
    "created_at": str,
    "updated_at": str,
}
SIMPLE_USER_REQUIRED = [
    "avatar_url",
    "events_url",
    "followers_url",
    "following_url",
    "gists_url",
    "gravatar_id",
    "html_url",
    "id",
    "node_id",
    "login",
    "organizations_url",
    "received_events_url",
    "repos_url",
    "site_admin",
    "starred_url",
    "subscriptions_url",
    "type",
    "url",
]
SAFE = {"auto_merge": False, "required_contexts": []}


@pytest.fixture
def github() -> Iterator[GitHubFake]:
    with GitHubFake(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def client(github: GitHubFake) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json"}
    with httpx.Client(base_url=github.url, headers=headers, timeout=5, verify=False) as c:
        yield c


def assert_shape(item: dict[str, Any], required: dict[str, Any]) -> None:
    for name, kind in required.items():
        assert name in item, name
        assert isinstance(item[name], kind), (name, item[name])
    assert set(SIMPLE_USER_REQUIRED) <= set(item["creator"])


def create(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post(f"{REPO}/deployments", json=body)


def test_a_deployment_and_its_status_have_the_documented_shape(
    client: httpx.Client, github: GitHubFake
) -> None:
    pr = github.add_pr(8, "feat/x")
    made = create(client, ref="feat/x", environment="pr-8", payload={"previewctl": True}, **SAFE)
    assert made.status_code == 201
    deployment = made.json()
    assert_shape(deployment, DEPLOYMENT_REQUIRED)
    assert deployment["sha"] == pr["head"]["sha"]  # the branch resolved to its head
    assert deployment["production_environment"] is False  # not "production"
    assert deployment["transient_environment"] is False
    assert deployment["payload"] == {"previewctl": True}
    status = client.post(
        f"{REPO}/deployments/{deployment['id']}/statuses",
        json={"state": "success", "environment_url": "https://a.example", "log_url": "https://l"},
    )
    assert status.status_code == 201
    assert status.headers["Location"] == status.json()["url"]
    assert_shape(status.json(), STATUS_REQUIRED)
    assert status.json()["target_url"] == "https://l"  # log_url sets target_url too
    assert status.json()["environment"] == "pr-8"
    listed = client.get(f"{REPO}/deployments", params={"environment": "pr-8", "ref": "feat/x"})
    assert [d["id"] for d in listed.json()] == [deployment["id"]]
    assert client.get(f"{REPO}/deployments", params={"environment": "other"}).json() == []


def test_defaults_are_githubs(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(8, "feat/x")
    made = create(client, ref="feat/x", required_contexts=[], auto_merge=False).json()
    assert made["environment"] == "production"
    assert made["production_environment"] is True
    assert made["task"] == "deploy"
    assert made["payload"] == {}


def test_refs_it_does_not_know_and_missing_refs_are_422(client: httpx.Client) -> None:
    unknown = create(client, ref="nope", **SAFE)
    assert unknown.status_code == 422
    assert unknown.json()["message"] == "No ref found for: nope"
    assert create(client, environment="x").status_code == 422


def test_auto_merge_and_required_contexts_default_to_getting_in_the_way(
    client: httpx.Client, github: GitHubFake
) -> None:
    pr = github.add_pr(8, "feat/x")
    github.behind_base.add("feat/x")
    merged = create(client, ref="feat/x", required_contexts=[])
    assert merged.status_code == 202
    assert "Auto-merged" in merged.json()["message"]
    github.commit_statuses[pr["head"]["sha"]] = {"ci/test": "pending"}
    blocked = create(client, ref="feat/x", auto_merge=False)
    assert blocked.status_code == 409
    assert blocked.json()["errors"][0]["contexts"] == ["ci/test"]
    assert create(client, ref="feat/x", **SAFE).status_code == 201
    assert len(github.deployments) == 1


def test_status_validation(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(8, "feat/x")
    deployment = create(client, ref="feat/x", environment="pr-8", **SAFE).json()
    url = f"{REPO}/deployments/{deployment['id']}/statuses"
    assert client.post(url, json={"state": "done"}).status_code == 422
    assert client.post(url, json={"state": "failure", "description": "x" * 141}).status_code == 422
    assert client.post(url, json={"state": "failure", "description": "x" * 140}).status_code == 201
    assert (
        client.post(f"{REPO}/deployments/999/statuses", json={"state": "success"}).status_code
        == 404
    )


def test_a_success_makes_the_earlier_deployment_of_the_environment_inactive(
    client: httpx.Client, github: GitHubFake
) -> None:
    github.add_pr(8, "feat/x")
    first = create(client, ref="feat/x", environment="pr-8", **SAFE).json()["id"]
    client.post(f"{REPO}/deployments/{first}/statuses", json={"state": "success"})
    other_env = create(client, ref="feat/x", environment="pr-9", **SAFE).json()["id"]
    client.post(f"{REPO}/deployments/{other_env}/statuses", json={"state": "success"})
    second = create(client, ref="feat/x", environment="pr-8", **SAFE).json()["id"]
    client.post(f"{REPO}/deployments/{second}/statuses", json={"state": "success"})
    assert github.state_of(first) == "inactive"
    assert github.state_of(second) == "success"
    assert github.state_of(other_env) == "success"
    newest_first = client.get(f"{REPO}/deployments/{first}/statuses").json()
    assert [s["state"] for s in newest_first] == ["inactive", "success"]


def test_writes_without_the_permission_are_403(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(8, "feat/x")
    github.deployments_writable = False
    refused = create(client, ref="feat/x", **SAFE)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Resource not accessible by integration"
    assert client.get(f"{REPO}/deployments").status_code == 200


def test_only_an_inactive_deployment_can_be_deleted(
    client: httpx.Client, github: GitHubFake
) -> None:
    github.add_pr(8, "feat/x")
    a = create(client, ref="feat/x", environment="pr-8", **SAFE).json()["id"]
    b = create(client, ref="feat/x", environment="pr-8", **SAFE).json()["id"]
    client.post(f"{REPO}/deployments/{a}/statuses", json={"state": "success"})
    assert client.delete(f"{REPO}/deployments/{a}").status_code == 422
    client.post(f"{REPO}/deployments/{a}/statuses", json={"state": "inactive"})
    assert client.delete(f"{REPO}/deployments/{a}").status_code == 204
    assert [d["id"] for d in github.deployments] == [b]
