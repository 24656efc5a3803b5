"""Vercel as previewctl calls it: the client tests' respx answers and the Vercel fake give
the same status codes and body shapes (``@vercel/sdk``), and previewctl's client reads
both the same way."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from previewctl.clients.vercel import VercelClient
from previewctl.clients.vercel_models import EnvInput
from previewctl.errors import ApiError, NotFoundError
from tests.contract.sides import SIDES, Side, json_object, quick_retry, side
from tests.fakes.vercel_api import VercelFake
from tests.support import answers

BASE = "https://vercel.test"
BRANCH = "feat-7"
STATES = {"BUILDING", "ERROR", "INITIALIZING", "QUEUED", "READY", "CANCELED", "BLOCKED", "DELETED"}


@pytest.fixture(params=SIDES)
def vercel(request: pytest.FixtureRequest) -> Iterator[Side]:
    token = "vc_" + secrets.token_urlsafe(16)
    headers = {"Authorization": f"Bearer {token}"}
    with side(request.param, BASE, headers, lambda: VercelFake(token=token)) as s:
        s.given(lambda fake: fake.add_project("web", branches=("main", BRANCH)))
        yield s


def client(vercel: Side) -> VercelClient:
    return VercelClient(vercel.client_http(), retry=quick_retry())


def assert_vercel_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    """``{"error": {"code", "message"}}``, both non-empty strings."""
    assert answer.status_code == status, answer.text
    error = json_object(answer).get("error")
    assert isinstance(error, dict), answer.text
    for key in ("code", "message"):
        assert isinstance(error.get(key), str), (key, error)
        assert error[key], (key, error)
    return error


def test_a_project_names_its_production_branch(vercel: Side) -> None:
    vercel.serve("GET", "/v9/projects/web", 200, answers.vercel_project("web"))
    body = json_object(vercel.http.get("/v9/projects/web"))
    assert body["name"] == "web"
    assert isinstance(body["id"], str)
    assert body["link"]["productionBranch"] == "main"
    assert client(vercel).get_project("web").production_branch == "main"


def test_a_missing_project_is_404_not_found(vercel: Side) -> None:
    missing = answers.vercel_error("not_found", "Project not found")
    vercel.serve("GET", "/v9/projects/nope", 404, missing)
    vercel.serve("GET", "/v9/projects/nope", 404, missing)
    assert assert_vercel_error(vercel.http.get("/v9/projects/nope"), 404)["code"] == "not_found"
    with pytest.raises(NotFoundError):
        client(vercel).get_project("nope")


def test_a_branch_var_is_upserted_with_201_and_listed(vercel: Side) -> None:
    item = {"key": "DB", "value": "x", "type": "encrypted", "target": ["preview"]}
    item["gitBranch"] = BRANCH
    created = {**item, "id": "env_1", "value": ""}
    vercel.serve("POST", "/v10/projects/web/env", 201, {"created": created, "failed": []})
    vercel.serve("GET", "/v10/projects/web/env", 200, {"envs": [created]})
    answer = vercel.http.post("/v10/projects/web/env", params={"upsert": "true"}, json=[item])
    assert answer.status_code == 201
    body = json_object(answer)
    assert body["failed"] == []
    envs = json_object(vercel.http.get("/v10/projects/web/env", params={"gitBranch": BRANCH}))
    [env] = envs["envs"]
    assert (env["key"], env["gitBranch"], env["target"]) == ("DB", BRANCH, ["preview"])
    assert isinstance(env["id"], str)


def test_a_var_for_a_branch_the_repository_lacks_fails_inside_a_201(vercel: Side) -> None:
    """A 201 can carry failures: ``failed[].error`` names the key and the code."""
    message = 'The Git branch "nope" does not exist in the connected Git repository'
    failure = answers.vercel_env_failure("DB", "BAD_REQUEST", message, "nope")
    answer_201 = {"created": [], "failed": [failure]}
    vercel.serve("POST", "/v10/projects/web/env", 201, answer_201)
    vercel.serve("POST", "/v10/projects/web/env", 201, answer_201)
    item = {"key": "DB", "value": "x", "type": "encrypted", "target": ["preview"]}
    item["gitBranch"] = "nope"
    answer = vercel.http.post("/v10/projects/web/env", params={"upsert": "true"}, json=[item])
    assert answer.status_code == 201
    [failed] = json_object(answer)["failed"]
    assert (failed["error"]["key"], failed["error"]["code"]) == ("DB", "BAD_REQUEST")
    assert isinstance(failed["error"]["message"], str)
    with pytest.raises(ApiError, match="1 of 1 env vars were not written: DB: BAD_REQUEST"):
        client(vercel).upsert_env("web", [EnvInput(key="DB", value="x", git_branch="nope")])


def test_a_missing_domain_is_404_not_found(vercel: Side) -> None:
    missing = answers.vercel_error("not_found", "The domain pr-7.example.com was not found")
    vercel.serve("GET", "/v9/projects/web/domains/pr-7.example.com", 404, missing)
    vercel.serve("GET", "/v9/projects/web/domains/pr-7.example.com", 404, missing)
    answer = vercel.http.get("/v9/projects/web/domains/pr-7.example.com")
    assert assert_vercel_error(answer, 404)["code"] == "not_found"
    assert client(vercel).get_domain("web", "pr-7.example.com") is None


def test_deployments_are_listed_newest_first_with_their_state(vercel: Side) -> None:
    def seed(fake: VercelFake) -> None:
        fake.add_deployment("web", BRANCH, "BUILDING")
        fake.add_deployment("web", BRANCH, "READY")

    vercel.given(seed)
    listed = [
        answers.vercel_deployment("dpl_2", BRANCH, 20, "READY"),
        answers.vercel_deployment("dpl_1", BRANCH, 10, "BUILDING"),
    ]
    vercel.serve("GET", "/v6/deployments", 200, {"deployments": listed})
    params = {"projectId": "web", "target": "preview", "meta-githubCommitRef": BRANCH}
    deployments = json_object(vercel.http.get("/v6/deployments", params=params))["deployments"]
    assert [d["readyState"] for d in deployments] == ["READY", "BUILDING"]
    for d in deployments:
        assert isinstance(d["uid"], str)
        assert isinstance(d["url"], str)
        assert isinstance(d["createdAt"], int)
        assert d["readyState"] in STATES
        assert d["meta"]["githubCommitRef"] == BRANCH
    assert deployments[0]["createdAt"] >= deployments[1]["createdAt"]
