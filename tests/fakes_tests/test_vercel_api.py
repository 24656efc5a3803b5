"""The Vercel fake behaves as shared/reference/vercel-github.md describes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.vercel_api import FINAL_STATES, VercelFake

TOKEN = "vercel-token"
BRANCHES = ("main", "feat/x", "feat/y")


@pytest.fixture
def vercel() -> Iterator[VercelFake]:
    fake = VercelFake(token=TOKEN)
    fake.add_project("agents-api", branches=BRANCHES)
    with fake:
        yield fake


@pytest.fixture
def client(vercel: VercelFake) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=vercel.url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
        verify=False,  # plain HTTP on loopback; skips building a CA bundle per test
    ) as c:
        yield c


def var(key: str, value: Any = "v", branch: str | None = "feat/x", **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"key": key, "value": value, "type": "encrypted", "target": ["preview"]}
    if branch is not None:
        item["gitBranch"] = branch
    return item | extra


# ---- auth and team scope ---------------------------------------------------------------
def test_missing_or_wrong_token_is_refused_with_vercels_error_body(vercel: VercelFake) -> None:
    bare = httpx.get(f"{vercel.url}/v9/projects/agents-api")
    wrong = httpx.get(
        f"{vercel.url}/v9/projects/agents-api", headers={"Authorization": "Bearer nope"}
    )
    for resp in (bare, wrong):
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "forbidden"
        assert resp.json()["error"]["message"]


def test_team_id_must_match_when_the_fake_is_team_scoped() -> None:
    with VercelFake(token=TOKEN, team_id="team_1") as fake:
        fake.add_project("web")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{fake.url}/v9/projects/web"
        assert httpx.get(url, headers=auth).status_code == 403
        assert httpx.get(url, headers=auth, params={"teamId": "team_2"}).status_code == 403
        ok = httpx.get(url, headers=auth, params={"teamId": "team_1"})
        assert ok.status_code == 200
        assert ok.json()["name"] == "web"


def test_team_id_is_refused_when_the_token_has_no_team(client: httpx.Client) -> None:
    resp = client.get("/v9/projects/agents-api", params={"teamId": "team_x"})
    assert resp.status_code == 403


# ---- projects --------------------------------------------------------------------------
def test_project_by_name_and_by_id(client: httpx.Client, vercel: VercelFake) -> None:
    by_name = client.get("/v9/projects/agents-api").json()
    assert by_name["id"].startswith("prj_")
    assert by_name["link"] == {
        "type": "github",
        "org": "acme",
        "repo": "agents",
        "repoId": 1,
        "productionBranch": "main",
    }
    assert client.get(f"/v9/projects/{by_name['id']}").json()["name"] == "agents-api"
    missing = client.get("/v9/projects/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


# ---- env: create, upsert, failures -----------------------------------------------------
def test_create_one_var_hides_encrypted_value(client: httpx.Client, vercel: VercelFake) -> None:
    resp = client.post("/v10/projects/agents-api/env", json=var("DB_URL", "postgres://secret"))
    assert resp.status_code == 201
    body = resp.json()
    assert body["failed"] == []
    created = body["created"]
    assert created["key"] == "DB_URL"
    assert created["gitBranch"] == "feat/x"
    assert created["target"] == ["preview"]
    assert "secret" not in created["value"]
    assert created["value"].startswith("enc:")
    stored = vercel.envs_for("agents-api", "feat/x")
    assert [(e["key"], e["value"]) for e in stored] == [("DB_URL", "postgres://secret")]


def test_upsert_is_idempotent_and_updates_in_place(
    client: httpx.Client, vercel: VercelFake
) -> None:
    first = client.post("/v10/projects/agents-api/env?upsert=true", json=var("K", "one")).json()
    again = client.post("/v10/projects/agents-api/env?upsert=true", json=var("K", "one")).json()
    changed = client.post("/v10/projects/agents-api/env?upsert=true", json=var("K", "two")).json()
    assert first["created"]["id"] == again["created"]["id"] == changed["created"]["id"]
    assert changed["created"]["updatedAt"] > first["created"]["updatedAt"]
    envs = vercel.envs_for("agents-api")
    assert [(e["key"], e["value"]) for e in envs] == [("K", "two")]


def test_without_upsert_an_existing_var_lands_in_failed(
    client: httpx.Client, vercel: VercelFake
) -> None:
    client.post("/v10/projects/agents-api/env", json=var("K", "one"))
    resp = client.post("/v10/projects/agents-api/env", json=var("K", "two"))
    assert resp.status_code == 201
    assert resp.json()["created"] == []
    (failure,) = resp.json()["failed"]
    assert failure["error"]["code"] == "ENV_ALREADY_EXISTS"
    assert failure["error"]["key"] == "K"
    assert failure["error"]["gitBranch"] == "feat/x"
    assert vercel.envs_for("agents-api")[0]["value"] == "one"


def test_same_key_on_another_branch_is_a_separate_var(
    client: httpx.Client, vercel: VercelFake
) -> None:
    client.post("/v10/projects/agents-api/env", json=var("K", "x", "feat/x"))
    resp = client.post("/v10/projects/agents-api/env", json=var("K", "y", "feat/y"))
    assert resp.json()["failed"] == []
    assert len(vercel.envs_for("agents-api")) == 2


def test_array_body_with_fail_keys_returns_201_with_failed(
    client: httpx.Client, vercel: VercelFake
) -> None:
    vercel.fail_keys["BAD"] = "MAX_ENVS_EXCEEDED"
    resp = client.post(
        "/v10/projects/agents-api/env?upsert=true", json=[var("A"), var("BAD"), var("C")]
    )
    assert resp.status_code == 201
    body = resp.json()
    assert [e["key"] for e in body["created"]] == ["A", "C"]
    assert [f["error"]["code"] for f in body["failed"]] == ["MAX_ENVS_EXCEEDED"]
    assert [e["key"] for e in vercel.envs_for("agents-api", "feat/x")] == ["A", "C"]


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        (var("K", target=["preview", "development"]), "only"),
        (var("K", branch="feat/gone"), "does not exist"),
        (var("K", branch="main"), "Production Branch"),
    ],
)
def test_branch_scoped_var_validation(
    client: httpx.Client, vercel: VercelFake, item: dict[str, Any], fragment: str
) -> None:
    resp = client.post("/v10/projects/agents-api/env?upsert=true", json=item)
    assert resp.status_code == 201
    (failure,) = resp.json()["failed"]
    assert failure["error"]["code"] == "BAD_REQUEST"
    assert fragment in failure["error"]["message"]
    assert vercel.envs_for("agents-api") == []


def test_new_branch_becomes_valid_after_add_branch(
    client: httpx.Client, vercel: VercelFake
) -> None:
    vercel.add_branch("agents-api", "feat/new")
    resp = client.post("/v10/projects/agents-api/env", json=var("K", branch="feat/new"))
    assert resp.json()["failed"] == []


@pytest.mark.parametrize(
    "item",
    [
        var("K", target="preview"),
        var("K", value=5),
        var("K", type="weird"),
        {"value": "v", "type": "plain", "target": ["preview"]},
    ],
)
def test_schema_errors_fail_the_whole_request(
    client: httpx.Client, vercel: VercelFake, item: dict[str, Any]
) -> None:
    resp = client.post("/v10/projects/agents-api/env", json=[var("OK"), item])
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "bad_request"
    assert vercel.envs_for("agents-api") == []


def test_size_limit_per_deployment_scope(client: httpx.Client, vercel: VercelFake) -> None:
    vercel.env_size_limit = 20
    ok = client.post("/v10/projects/agents-api/env", json=var("A", "x" * 10)).json()
    assert ok["failed"] == []
    over = client.post("/v10/projects/agents-api/env", json=var("B", "x" * 10)).json()
    assert over["failed"][0]["error"]["code"] == "ENV_SIZE_LIMIT"
    # Another branch's deployments do not see feat/x's vars.
    other = client.post("/v10/projects/agents-api/env", json=var("B", "x" * 10, "feat/y")).json()
    assert other["failed"] == []


def test_reject_single_failures_switch(client: httpx.Client, vercel: VercelFake) -> None:
    vercel.reject_single_failures = True
    client.post("/v10/projects/agents-api/env", json=var("K"))
    resp = client.post("/v10/projects/agents-api/env", json=var("K"))
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "ENV_ALREADY_EXISTS"


# ---- env: list, pagination, delete ------------------------------------------------------
def test_list_follows_pagination_next(client: httpx.Client, vercel: VercelFake) -> None:
    for i in range(45):
        vercel.add_env("agents-api", f"K{i}", f"v{i}", git_branch="feat/x")
    vercel.add_env("agents-api", "OTHER", "o", git_branch="feat/y")
    keys: list[str] = []
    params: dict[str, Any] = {"gitBranch": "feat/x", "decrypt": "true"}
    pages = 0
    while True:
        body = client.get("/v10/projects/agents-api/env", params=params).json()
        pages += 1
        assert body["pagination"]["count"] == len(body["envs"])
        keys += [e["key"] for e in body["envs"]]
        if body["pagination"]["next"] is None:
            break
        params["until"] = body["pagination"]["next"]
    assert pages == 3
    assert sorted(keys) == sorted(f"K{i}" for i in range(45))
    assert len(set(keys)) == 45


def test_list_page_size_is_capped_by_env_page_size(
    client: httpx.Client, vercel: VercelFake
) -> None:
    vercel.env_page_size = 2
    for i in range(3):
        vercel.add_env("agents-api", f"K{i}", "v", git_branch="feat/x")
    body = client.get("/v10/projects/agents-api/env", params={"limit": 100}).json()
    assert len(body["envs"]) == 2
    assert body["pagination"]["next"] is not None


def test_list_hides_sensitive_and_encrypted_values(
    client: httpx.Client, vercel: VercelFake
) -> None:
    vercel.add_env("agents-api", "P", "plain-value", env_type="plain", git_branch="feat/x")
    vercel.add_env("agents-api", "E", "enc-value", env_type="encrypted", git_branch="feat/x")
    vercel.add_env("agents-api", "S", "sens-value", env_type="sensitive", git_branch="feat/x")
    envs = {e["key"]: e for e in client.get("/v10/projects/agents-api/env").json()["envs"]}
    assert envs["P"]["value"] == "plain-value"
    assert envs["E"]["value"].startswith("enc:")
    assert "enc-value" not in envs["E"]["value"]
    assert "value" not in envs["S"]


def test_delete_one_and_batch(client: httpx.Client, vercel: VercelFake) -> None:
    ids = [vercel.add_env("agents-api", f"K{i}", "v", git_branch="feat/x")["id"] for i in range(3)]
    deleted = client.delete(f"/v10/projects/agents-api/env/{ids[0]}")
    assert deleted.status_code == 200
    assert deleted.json()["id"] == ids[0]
    again = client.delete(f"/v10/projects/agents-api/env/{ids[0]}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"
    batch = client.request(
        "DELETE", "/v1/projects/agents-api/env", json={"ids": [*ids[1:], "unknown"]}
    )
    assert batch.status_code == 200
    assert batch.json()["deleted"] == ids[1:]
    assert vercel.envs_for("agents-api") == []
    bad = client.request("DELETE", "/v1/projects/agents-api/env", json={"ids": []})
    assert bad.status_code == 400


def test_unknown_project_is_404_on_env_routes(client: httpx.Client) -> None:
    assert client.get("/v10/projects/nope/env").status_code == 404
    assert client.post("/v10/projects/nope/env", json=var("K")).status_code == 404


# ---- domains ---------------------------------------------------------------------------
def test_domains_add_conflict_list_get_delete(client: httpx.Client, vercel: VercelFake) -> None:
    base = "/v10/projects/agents-api/domains"
    added = client.post(base, json={"name": "pr-1.preview.example.com", "gitBranch": "feat/x"})
    assert added.status_code == 200
    assert added.json()["verified"] is True
    assert added.json()["gitBranch"] == "feat/x"
    assert added.json()["projectId"] == vercel.projects["agents-api"].id
    dup = client.post(base, json={"name": "pr-1.preview.example.com", "gitBranch": "feat/x"})
    assert dup.status_code == 409
    assert dup.json()["error"]["code"] == "domain_already_in_use"
    listed = client.get("/v9/projects/agents-api/domains").json()
    assert [d["name"] for d in listed["domains"]] == ["pr-1.preview.example.com"]
    assert listed["pagination"]["count"] == 1
    one = client.get("/v9/projects/agents-api/domains/pr-1.preview.example.com")
    assert one.json()["gitBranch"] == "feat/x"
    gone = client.delete("/v9/projects/agents-api/domains/pr-1.preview.example.com")
    assert gone.status_code == 200
    assert gone.json() == {}
    assert vercel.domains_for("agents-api") == []
    for resp in (
        client.get("/v9/projects/agents-api/domains/pr-1.preview.example.com"),
        client.delete("/v9/projects/agents-api/domains/pr-1.preview.example.com"),
    ):
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "not_found"


def test_domain_name_is_required(client: httpx.Client) -> None:
    resp = client.post("/v10/projects/agents-api/domains", json={"gitBranch": "feat/x"})
    assert resp.status_code == 400


# ---- deployments -----------------------------------------------------------------------
def test_list_deployments_filters_and_pages(client: httpx.Client, vercel: VercelFake) -> None:
    pid = vercel.projects["agents-api"].id
    old = vercel.add_deployment("agents-api", "feat/x", sha="a" * 40)
    vercel.add_deployment("agents-api", "feat/y")
    mid = vercel.add_deployment("agents-api", "feat/x", state="ERROR")
    new = vercel.add_deployment("agents-api", "feat/x", state="BUILDING")
    vercel.add_deployment("agents-api", "main", target="production")

    params: dict[str, Any] = {
        "projectId": pid,
        "target": "preview",
        "meta-githubCommitRef": "feat/x",
        "limit": 2,
    }
    first = client.get("/v6/deployments", params=params).json()
    assert [d["uid"] for d in first["deployments"]] == [new["uid"], mid["uid"]]
    params["until"] = first["pagination"]["next"]
    second = client.get("/v6/deployments", params=params).json()
    assert [d["uid"] for d in second["deployments"]] == [old["uid"]]
    assert second["pagination"]["next"] is None
    assert second["deployments"][0]["meta"]["githubCommitSha"] == "a" * 40
    assert second["deployments"][0]["target"] is None

    v7 = client.get("/v7/deployments", params={"projectId": pid, "branch": "feat/x"}).json()
    assert len(v7["deployments"]) == 3
    ready = client.get(
        "/v6/deployments", params={"projectId": "agents-api", "state": "READY,ERROR"}
    ).json()
    assert {d["readyState"] for d in ready["deployments"]} == {"READY", "ERROR"}
    prod = client.get("/v6/deployments", params={"target": "production"}).json()
    assert [d["meta"]["githubCommitRef"] for d in prod["deployments"]] == ["main"]


def test_get_deployment_by_id_or_url(client: httpx.Client, vercel: VercelFake) -> None:
    dep = vercel.add_deployment("agents-api", "feat/x")
    assert dep["url"].startswith("agents-api-")
    assert dep["url"].endswith(".vercel.app")
    by_id = client.get(f"/v13/deployments/{dep['uid']}").json()
    assert by_id["id"] == dep["uid"]
    assert by_id["readyState"] == "READY"
    assert client.get(f"/v13/deployments/{dep['url']}").json()["id"] == dep["uid"]
    vercel.set_state(dep["uid"], "CANCELED")
    assert client.get(f"/v13/deployments/{dep['uid']}").json()["readyState"] == "CANCELED"
    assert client.get("/v13/deployments/dpl_missing").status_code == 404


def test_redeploy_creates_a_queued_deployment_of_the_same_branch(
    client: httpx.Client, vercel: VercelFake
) -> None:
    src = vercel.add_deployment("agents-api", "feat/x", sha="b" * 40)
    vercel.add_env("agents-api", "DB", "new-url", git_branch="feat/x")
    vercel.add_env("agents-api", "GENERIC", "g", git_branch=None)
    body = {"deploymentId": src["uid"], "name": "agents-api", "meta": {"action": "redeploy"}}
    resp = client.post("/v13/deployments", params={"forceNew": 1}, json=body)
    assert resp.status_code == 200
    new = resp.json()
    assert new["id"] != src["uid"]
    assert new["readyState"] == "QUEUED"
    assert new["target"] is None
    assert new["meta"]["githubCommitRef"] == "feat/x"
    assert new["meta"]["githubCommitSha"] == "b" * 40
    assert len(vercel.redeploys()) == 1
    assert vercel.deployment_env(new["id"]) == {"DB": "new-url", "GENERIC": "g"}
    assert vercel.deployment_env(src["uid"]) == {}
    # Stays QUEUED without build_seconds until a test moves it.
    assert client.get(f"/v13/deployments/{new['id']}").json()["readyState"] == "QUEUED"
    newest = client.get("/v6/deployments", params={"meta-githubCommitRef": "feat/x"}).json()
    assert newest["deployments"][0]["uid"] == new["id"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"deploymentId": "dpl_unknown", "name": "agents-api"}, 404),
        ({"deploymentId": "SRC", "meta": {"action": "redeploy"}}, 400),
        ({"deploymentId": "SRC", "name": "agents-api", "target": "production"}, 400),
        ({"deploymentId": "SRC", "name": "other-project"}, 400),
    ],
)
def test_bad_redeploys_are_refused(
    client: httpx.Client, vercel: VercelFake, body: dict[str, Any], status: int
) -> None:
    src = vercel.add_deployment("agents-api", "feat/x")
    if body["deploymentId"] == "SRC":
        body = body | {"deploymentId": src["uid"]}
    resp = client.post("/v13/deployments?forceNew=1", json=body)
    assert resp.status_code == status
    assert "error" in resp.json()
    assert vercel.redeploys() == []


def test_redeploy_with_null_target_is_a_preview(client: httpx.Client, vercel: VercelFake) -> None:
    src = vercel.add_deployment("agents-api", "feat/x")
    body = {"deploymentId": src["uid"], "name": "agents-api", "target": None}
    assert client.post("/v13/deployments?forceNew=1", json=body).status_code == 200


def test_build_timeline_is_computed_from_the_clock(
    client: httpx.Client, vercel: VercelFake
) -> None:
    now = [100.0]
    vercel.clock = lambda: now[0]
    vercel.build_seconds = 10
    src = vercel.add_deployment("agents-api", "feat/x")
    new = client.post(
        "/v13/deployments?forceNew=1", json={"deploymentId": src["uid"], "name": "agents-api"}
    ).json()

    def state() -> str:
        return str(client.get(f"/v13/deployments/{new['id']}").json()["readyState"])

    assert state() == "QUEUED"
    now[0] = 105.0
    assert state() == "BUILDING"
    now[0] = 110.0
    assert state() == "READY"


def test_build_result_can_be_error(client: httpx.Client, vercel: VercelFake) -> None:
    vercel.build_seconds = 0
    vercel.build_result = "ERROR"
    src = vercel.add_deployment("agents-api", "feat/x")
    new = client.post(
        "/v13/deployments?forceNew=1", json={"deploymentId": src["uid"], "name": "agents-api"}
    ).json()
    assert client.get(f"/v13/deployments/{new['id']}").json()["readyState"] == "ERROR"


@pytest.mark.parametrize("state", ["ERROR", "CANCELED", "BLOCKED", "DELETED"])
def test_final_states_are_listed_and_never_change(
    client: httpx.Client, vercel: VercelFake, state: str
) -> None:
    """@vercel/sdk's final readyStates: still listed, filterable, and they stay."""
    assert state in FINAL_STATES
    now = [100.0]
    vercel.clock = lambda: now[0]
    vercel.build_seconds = 10
    src = vercel.add_deployment("agents-api", "feat/x")
    new = client.post(
        "/v13/deployments?forceNew=1", json={"deploymentId": src["uid"], "name": "agents-api"}
    ).json()
    vercel.set_state(new["id"], state)
    now[0] = 1000.0  # long past the build: a pinned final state does not turn READY
    listed = client.get("/v6/deployments", params={"meta-githubCommitRef": "feat/x"}).json()
    first = listed["deployments"][0]
    assert (first["uid"], first["readyState"], first["state"]) == (new["id"], state, state)
    assert client.get(f"/v13/deployments/{new['id']}").json()["readyState"] == state
    only = client.get("/v6/deployments", params={"state": state}).json()["deployments"]
    assert [d["uid"] for d in only] == [new["id"]]


def test_a_build_can_end_blocked_and_a_deleted_deployment_cannot_be_redeployed(
    client: httpx.Client, vercel: VercelFake
) -> None:
    vercel.build_seconds = 0
    vercel.build_result = "BLOCKED"
    src = vercel.add_deployment("agents-api", "feat/x")
    new = client.post(
        "/v13/deployments?forceNew=1", json={"deploymentId": src["uid"], "name": "agents-api"}
    ).json()
    assert client.get(f"/v13/deployments/{new['id']}").json()["readyState"] == "BLOCKED"
    vercel.set_state(src["uid"], "DELETED")
    again = client.post(
        "/v13/deployments?forceNew=1", json={"deploymentId": src["uid"], "name": "agents-api"}
    )
    assert again.status_code == 404
    with pytest.raises(AssertionError):
        VercelFake(token=TOKEN, build_result="BUILDING")  # a build ends in a final state


# ---- faults ----------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 503])
def test_injected_faults_carry_retry_after_and_vercel_body(
    client: httpx.Client, vercel: VercelFake, status: int
) -> None:
    vercel.inject("GET", r"/env$", status, retry_after="2")
    resp = client.get("/v10/projects/agents-api/env")
    assert resp.status_code == status
    assert resp.headers["Retry-After"] == "2"
    assert resp.json()["error"]["code"]
    assert client.get("/v10/projects/agents-api/env").status_code == 200


def test_drop_after_makes_the_deployment_and_loses_the_answer(
    client: httpx.Client, vercel: VercelFake
) -> None:
    source = vercel.add_deployment("agents-api", "feat/x")
    vercel.inject("POST", r"^/v13/deployments$", drop_after=True)
    body = {"deploymentId": source["uid"], "name": "agents-api", "meta": {"action": "redeploy"}}
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v13/deployments", params={"forceNew": "1"}, json=body)
    made = vercel.deployments_for("agents-api", "feat/x")
    assert len(made) == 2
    assert made[0]["meta"]["originalDeploymentId"] == source["uid"]
    assert vercel.redeploys() == []  # no answer was sent: not counted as answered
