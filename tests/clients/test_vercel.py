from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from previewctl.actions import GitHubActions
from previewctl.clients.http import RetryPolicy, build_http_client
from previewctl.clients.vercel import VercelClient
from previewctl.clients.vercel_models import REDEPLOY_KEY, Deployment, EnvInput
from previewctl.errors import (
    ApiError,
    ConflictError,
    PreviewctlError,
    TimeoutExceededError,
    TransientApiError,
)
from previewctl.reporter import Reporter
from tests.support import answers

BASE = "https://vercel.test"
TEAM = "team_abc"
DOMAIN_NOT_FOUND = answers.vercel_error("not_found", "The domain was not found")


def fast_retry() -> RetryPolicy:
    return RetryPolicy(max_wait=0.01, multiplier=0.001, deadline=5)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def client() -> Iterator[VercelClient]:
    with build_http_client(BASE, {"Authorization": "Bearer tok"}) as http:
        yield VercelClient(http, team_id=TEAM, retry=fast_retry())


def reporter() -> Reporter:
    return Reporter(actions=GitHubActions({}), stream=io.StringIO(), verbose=True)


def body_of(call: Any) -> Any:
    return json.loads(call.request.content)


# ---- team scope ------------------------------------------------------------------------
def test_every_request_carries_team_id(api: respx.MockRouter, client: VercelClient) -> None:
    api.get("/v9/projects/web").respond(
        json={"id": "prj_1", "name": "web", "link": {"productionBranch": "main"}}
    )
    api.get("/v10/projects/web/env").respond(json={"envs": []})
    api.post("/v10/projects/web/env").respond(201, json={"created": [], "failed": []})
    api.delete("/v10/projects/web/env/e1").respond(json={})
    api.get("/v6/deployments").respond(json={"deployments": []})
    api.get("/v9/projects/web/domains/a.example.com").respond(404, json=DOMAIN_NOT_FOUND)
    api.post("/v10/projects/web/domains").respond(json={"name": "a.example.com"})
    api.delete("/v9/projects/web/domains/a.example.com").respond(json={})

    client.get_project("web")
    client.list_env("web", git_branch="feat")
    client.upsert_env("web", [EnvInput(key="A", value="1", git_branch="feat")])
    client.delete_env("web", "e1")
    client.list_deployments("prj_1", "feat")
    client.add_domain("web", "a.example.com", "feat")
    client.remove_domain("web", "a.example.com")

    assert len(api.calls) == 8
    for call in api.calls:
        assert call.request.url.params.get("teamId") == TEAM, call.request.url
    # the caller's own query survives the merge
    post = next(c for c in api.calls if c.request.method == "POST" and "env" in c.request.url.path)
    assert post.request.url.params["upsert"] == "true"


def test_no_team_id_sends_no_team_param(api: respx.MockRouter) -> None:
    api.get("/v9/projects/web").respond(json={"id": "prj_1", "name": "web"})
    with build_http_client(BASE, {}) as http:
        project = VercelClient(http, retry=fast_retry()).get_project("web")
    assert "teamId" not in api.calls.last.request.url.params
    assert project.production_branch is None


def test_get_project_reads_production_branch(api: respx.MockRouter, client: VercelClient) -> None:
    api.get("/v9/projects/web").respond(
        json={"id": "prj_1", "name": "web", "extra": 1, "link": {"productionBranch": "trunk"}}
    )
    project = client.get_project("web")
    assert (project.id, project.name, project.production_branch) == ("prj_1", "web", "trunk")


# ---- env vars ----------------------------------------------------------------------------
def test_env_input_requires_a_branch_and_hides_its_value() -> None:
    with pytest.raises(ValueError, match="branch"):
        EnvInput(key="A", value="v", git_branch="")
    with pytest.raises(ValueError, match="branch"):
        EnvInput(key="A", value="v", git_branch="  ")
    with pytest.raises(ValueError, match="type"):
        EnvInput(key="A", value="v", git_branch="feat", type="system")
    item = EnvInput(key="A", value="hunter2-secret", git_branch="feat")
    assert "hunter2" not in repr(item)


def test_upsert_sends_one_array_of_branch_scoped_preview_vars(
    api: respx.MockRouter, client: VercelClient
) -> None:
    route = api.post("/v10/projects/web/env").respond(201, json={"created": [], "failed": []})
    client.upsert_env(
        "web",
        [
            EnvInput(key="A", value="1", git_branch="feat", comment="previewctl:v1 fp=x"),
            EnvInput(key="B", value="2", git_branch="feat", type="sensitive"),
        ],
    )
    assert route.call_count == 1
    assert route.calls.last.request.url.params["upsert"] == "true"
    assert body_of(route.calls.last) == [
        {
            "key": "A",
            "value": "1",
            "type": "encrypted",
            "target": ["preview"],
            "gitBranch": "feat",
            "comment": "previewctl:v1 fp=x",
        },
        {
            "key": "B",
            "value": "2",
            "type": "sensitive",
            "target": ["preview"],
            "gitBranch": "feat",
        },
    ]


def test_upsert_of_nothing_sends_nothing(api: respx.MockRouter, client: VercelClient) -> None:
    client.upsert_env("web", [])
    assert not api.calls


def test_201_with_failed_items_raises_naming_keys_and_codes(
    api: respx.MockRouter, client: VercelClient
) -> None:
    api.post("/v10/projects/web/env").respond(
        201,
        json={
            "created": [{"key": "A"}],
            "failed": [
                {
                    "error": {
                        "code": "ENV_CONFLICT",
                        "message": "conflicts with an existing one",
                        "key": "B",
                    }
                },
                {"error": {"code": "BAD_REQUEST", "message": "branch missing", "key": "C"}},
            ],
        },
    )
    items = [EnvInput(key=k, value="v", git_branch="feat") for k in "ABC"]
    with pytest.raises(ApiError) as caught:
        client.upsert_env("web", items)
    text = str(caught.value)
    assert "B: ENV_CONFLICT" in text
    assert "C: BAD_REQUEST" in text
    assert "2 of 3" in text
    assert " A:" not in text


def test_201_with_one_failure_keeps_its_code(api: respx.MockRouter, client: VercelClient) -> None:
    api.post("/v10/projects/web/env").respond(
        201,
        json={"created": [], "failed": [{"error": {"code": "MAX_ENVS_EXCEEDED", "key": "A"}}]},
    )
    with pytest.raises(ApiError) as caught:
        client.upsert_env("web", [EnvInput(key="A", value="v", git_branch="feat")])
    assert caught.value.code == "MAX_ENVS_EXCEEDED"


def test_429_with_retry_after_is_ridden_out(api: respx.MockRouter, client: VercelClient) -> None:
    route = api.post("/v10/projects/web/env")
    route.side_effect = [
        httpx.Response(
            429,
            headers={"Retry-After": "0"},
            json={"error": {"code": "rate_limited", "message": "slow down"}},
        ),
        httpx.Response(201, json={"created": [], "failed": []}),
    ]
    client.upsert_env("web", [EnvInput(key="A", value="1", git_branch="feat")])
    assert route.call_count == 2


def test_retry_after_is_honoured(api: respx.MockRouter) -> None:
    slept: list[float] = []
    route = api.get("/v9/projects/web")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "3"}, json={"error": {"message": "busy"}}),
        httpx.Response(200, json={"id": "prj_1", "name": "web"}),
    ]
    with build_http_client(BASE, {}) as http:
        policy = RetryPolicy(max_wait=0.01, multiplier=0.001, sleep=slept.append)
        VercelClient(http, retry=policy).get_project("web")
    assert slept == [3.0]


def test_persistent_5xx_gives_up_with_a_transient_error(
    api: respx.MockRouter, client: VercelClient
) -> None:
    client.retry = RetryPolicy(max_wait=0.01, multiplier=0.001, attempts=3)
    route = api.get("/v9/projects/web").respond(
        502, json={"error": {"code": "bad_gateway", "message": "upstream down"}}
    )
    with pytest.raises(TransientApiError, match="upstream down"):
        client.get_project("web")
    assert route.call_count == 3


def test_400_fails_at_once_with_vercels_message(
    api: respx.MockRouter, client: VercelClient
) -> None:
    route = api.post("/v10/projects/web/env").respond(
        400,
        json={"error": {"code": "BAD_REQUEST", "message": "Invalid request: `value` missing"}},
    )
    with pytest.raises(ApiError) as caught:
        client.upsert_env("web", [EnvInput(key="A", value="1", git_branch="feat")])
    assert route.call_count == 1
    assert caught.value.status == 400
    assert caught.value.code == "BAD_REQUEST"
    assert "Invalid request: `value` missing" in str(caught.value)
    assert "BAD_REQUEST" in str(caught.value)


def test_list_env_follows_pagination(api: respx.MockRouter, client: VercelClient) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        assert request.url.params["gitBranch"] == "feat"
        until = request.url.params.get("until")
        if until is None:
            envs = [{"id": "e1", "key": "A", "target": ["preview"], "gitBranch": "feat"}]
            return httpx.Response(200, json={"envs": envs, "pagination": {"next": 200}})
        if until == "200":
            envs = [{"id": "e2", "key": "B", "target": "preview", "gitBranch": "feat"}]
            return httpx.Response(200, json={"envs": envs, "pagination": {"next": 100}})
        assert until == "100"
        envs = [
            {
                "id": "e3",
                "key": "C",
                "type": "encrypted",
                "target": ["preview", "development"],
                "comment": "",
            }
        ]
        return httpx.Response(200, json={"envs": envs, "pagination": {"next": None}})

    route = api.get("/v10/projects/web/env").mock(side_effect=page)
    envs = client.list_env("web", git_branch="feat")
    assert route.call_count == 3
    assert [e.key for e in envs] == ["A", "B", "C"]
    assert envs[1].target == ["preview"]
    assert envs[2].git_branch is None
    assert envs[2].comment is None


def test_list_env_stops_on_a_repeated_cursor(api: respx.MockRouter, client: VercelClient) -> None:
    route = api.get("/v10/projects/web/env").respond(
        json={"envs": [{"id": "e1", "key": "A"}], "pagination": {"next": 5}}
    )
    client.list_env("web")
    assert route.call_count == 2


def test_delete_env_reports_already_gone(api: respx.MockRouter, client: VercelClient) -> None:
    api.delete("/v10/projects/web/env/e1").respond(json={"id": "e1"})
    api.delete("/v10/projects/web/env/e2").respond(
        404, json={"error": {"code": "not_found", "message": "gone"}}
    )
    assert client.delete_env("web", "e1") is True
    assert client.delete_env("web", "e2") is False


# ---- domains ------------------------------------------------------------------------------
def test_add_domain_sends_name_and_branch(api: respx.MockRouter, client: VercelClient) -> None:
    api.get("/v9/projects/web/domains/pr-1.example.com").respond(404, json=DOMAIN_NOT_FOUND)
    route = api.post("/v10/projects/web/domains").respond(json={"name": "pr-1.example.com"})
    client.add_domain("web", "pr-1.example.com", "feat")
    assert body_of(route.calls.last) == {"name": "pr-1.example.com", "gitBranch": "feat"}


def test_add_domain_already_there_is_one_read_and_no_write(
    api: respx.MockRouter, client: VercelClient
) -> None:
    api.get("/v9/projects/web/domains/pr-1.example.com").respond(
        json={"name": "pr-1.example.com", "gitBranch": "feat"}
    )
    route = api.post("/v10/projects/web/domains")
    client.add_domain("web", "pr-1.example.com", "feat")
    assert route.calls.call_count == 0


def test_add_domain_attached_meanwhile_for_this_branch_is_success(
    api: respx.MockRouter, client: VercelClient
) -> None:
    # Free when first read; a concurrent run attaches it before our POST lands: the 409
    # is read back, and the domain is ours for this branch.
    post = api.post("/v10/projects/web/domains").respond(
        409, json={"error": {"code": "domain_already_in_use", "message": "in use"}}
    )
    read = api.get("/v9/projects/web/domains/pr-1.example.com").mock(
        side_effect=[
            httpx.Response(404, json={"error": {"code": "not_found", "message": "nope"}}),
            httpx.Response(
                200, json={"name": "pr-1.example.com", "gitBranch": "feat", "projectId": "prj_1"}
            ),
        ]
    )
    client.add_domain("web", "pr-1.example.com", "feat")
    assert post.call_count == 1
    assert read.call_count == 2


def test_add_domain_attached_meanwhile_for_another_branch_is_a_conflict(
    api: respx.MockRouter, client: VercelClient
) -> None:
    post = api.post("/v10/projects/web/domains").respond(
        409, json={"error": {"code": "domain_already_in_use", "message": "in use"}}
    )
    read = api.get("/v9/projects/web/domains/pr-1.example.com").mock(
        side_effect=[
            httpx.Response(404, json={"error": {"code": "not_found", "message": "nope"}}),
            httpx.Response(200, json={"name": "pr-1.example.com", "gitBranch": "other"}),
        ]
    )
    with pytest.raises(ConflictError, match="for branch other, not feat") as caught:
        client.add_domain("web", "pr-1.example.com", "feat")
    assert caught.value.code == "domain_already_in_use"  # the POST's answer, read back
    assert post.call_count == 1
    assert read.call_count == 2


def test_add_domain_already_on_another_branch_is_a_conflict_without_a_write(
    api: respx.MockRouter, client: VercelClient
) -> None:
    post = api.post("/v10/projects/web/domains")
    api.get("/v9/projects/web/domains/pr-1.example.com").respond(
        json={"name": "pr-1.example.com", "gitBranch": "other"}
    )
    with pytest.raises(ConflictError, match="for branch other, not feat"):
        client.add_domain("web", "pr-1.example.com", "feat")
    assert post.call_count == 0


def test_add_domain_of_another_project_is_a_conflict(
    api: respx.MockRouter, client: VercelClient
) -> None:
    api.post("/v10/projects/web/domains").respond(
        409,
        json={"error": {"code": "domain_already_in_use", "message": "used by a different project"}},
    )
    api.get("/v9/projects/web/domains/pr-1.example.com").respond(
        404, json={"error": {"code": "not_found", "message": "nope"}}
    )
    with pytest.raises(ConflictError, match="different project") as caught:
        client.add_domain("web", "pr-1.example.com", "feat")
    assert caught.value.code == "domain_already_in_use"


def test_list_and_remove_domains(api: respx.MockRouter, client: VercelClient) -> None:
    api.get("/v9/projects/web/domains").respond(
        json={
            "domains": [
                {"name": "web.example.com", "gitBranch": None},
                {"name": "pr-1.example.com", "gitBranch": "feat"},
            ],
            "pagination": {"next": None},
        }
    )
    api.delete("/v9/projects/web/domains/pr-1.example.com").respond(json={})
    api.delete("/v9/projects/web/domains/gone.example.com").respond(
        404, json={"error": {"code": "not_found", "message": "no"}}
    )
    domains = client.list_domains("web")
    assert [(d.name, d.git_branch) for d in domains] == [
        ("web.example.com", None),
        ("pr-1.example.com", "feat"),
    ]
    assert client.remove_domain("web", "pr-1.example.com") is True
    assert client.remove_domain("web", "gone.example.com") is False


# ---- deployments ------------------------------------------------------------------------
def test_list_deployments_newest_first_and_only_the_branch(
    api: respx.MockRouter, client: VercelClient
) -> None:
    route = api.get("/v6/deployments").respond(
        json={
            "deployments": [
                answers.vercel_deployment("dpl_old", "feat", 1000),
                answers.vercel_deployment("dpl_other", "main", 5000),
                answers.vercel_deployment("dpl_new", "feat", 3000, state="BUILDING"),
                answers.vercel_deployment("dpl_mid", "feat", 2000),
            ]
        }
    )
    deployments = client.list_deployments("prj_1", "feat", limit=5)
    assert [d.uid for d in deployments] == ["dpl_new", "dpl_mid", "dpl_old"]
    assert deployments[0].ready_state == "BUILDING"
    assert deployments[0].branch == "feat"
    assert deployments[0].https_url == "https://web-dpl_new.vercel.app"
    params = route.calls.last.request.url.params
    assert params["projectId"] == "prj_1"
    assert params["target"] == "preview"
    assert params["limit"] == "5"
    assert params["meta-githubCommitRef"] == "feat"


def test_redeploy_body_has_no_target(api: respx.MockRouter, client: VercelClient) -> None:
    route = api.post("/v13/deployments").respond(
        json={"id": "dpl_2", "url": "web-2.vercel.app", "readyState": "QUEUED", "createdAt": 9}
    )
    source = Deployment.model_validate(answers.vercel_deployment("dpl_1", "feat", 1))
    new = client.redeploy(source, "web")
    assert new.uid == "dpl_2"
    assert new.ready_state == "QUEUED"
    request = route.calls.last.request
    assert request.url.params["forceNew"] == "1"
    assert request.url.params["teamId"] == TEAM
    body = body_of(route.calls.last)
    key = body["meta"].pop(REDEPLOY_KEY)
    assert len(key) == 32
    assert body == {"deploymentId": "dpl_1", "name": "web", "meta": {"action": "redeploy"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_ready_follows_transitions_with_backoff(
    api: respx.MockRouter, client: VercelClient
) -> None:
    route = api.get("/v6/deployments")
    route.side_effect = [
        httpx.Response(200, json={"deployments": []}),
        httpx.Response(
            200, json={"deployments": [answers.vercel_deployment("dpl_1", "feat", 10, "QUEUED")]}
        ),
        httpx.Response(
            200, json={"deployments": [answers.vercel_deployment("dpl_1", "feat", 10, "BUILDING")]}
        ),
        httpx.Response(
            200, json={"deployments": [answers.vercel_deployment("dpl_1", "feat", 10, "BUILDING")]}
        ),
        httpx.Response(
            200, json={"deployments": [answers.vercel_deployment("dpl_1", "feat", 10, "BUILDING")]}
        ),
        httpx.Response(
            200, json={"deployments": [answers.vercel_deployment("dpl_1", "feat", 10, "BUILDING")]}
        ),
        httpx.Response(
            200, json={"deployments": [answers.vercel_deployment("dpl_1", "feat", 10, "READY")]}
        ),
    ]
    clock = FakeClock()
    out = io.StringIO()
    rep = Reporter(actions=GitHubActions({}), stream=out)
    ready = client.wait_ready(
        "prj_1", "feat", deadline=clock() + 60, reporter=rep, sleep=clock.sleep, clock=clock
    )
    assert ready.uid == "dpl_1"
    assert ready.ready_state == "READY"
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    log = out.getvalue()
    assert "no deployment yet" in log
    assert "BUILDING" in log


def test_wait_ready_ignores_deployments_before_the_timestamp(
    api: respx.MockRouter, client: VercelClient
) -> None:
    route = api.get("/v6/deployments")
    route.side_effect = [
        httpx.Response(
            200, json={"deployments": [answers.vercel_deployment("dpl_old", "feat", 10)]}
        ),
        httpx.Response(
            200,
            json={
                "deployments": [
                    answers.vercel_deployment("dpl_new", "feat", 20),
                    answers.vercel_deployment("dpl_old", "feat", 10),
                ]
            },
        ),
    ]
    clock = FakeClock()
    ready = client.wait_ready(
        "prj_1",
        "feat",
        deadline=clock() + 60,
        reporter=reporter(),
        created_after_ms=10,
        sleep=clock.sleep,
        clock=clock,
    )
    assert ready.uid == "dpl_new"


@pytest.mark.parametrize("state", ["ERROR", "CANCELED", "BLOCKED", "DELETED"])
def test_wait_ready_fails_on_a_failed_newest_deployment(
    api: respx.MockRouter, client: VercelClient, state: str
) -> None:
    route = api.get("/v6/deployments")
    route.side_effect = [
        httpx.Response(
            200, json={"deployments": [answers.vercel_deployment("dpl_1", "feat", 10, "BUILDING")]}
        ),
        httpx.Response(
            200,
            json={
                "deployments": [
                    answers.vercel_deployment("dpl_1", "feat", 10, state),
                    answers.vercel_deployment("dpl_0", "feat", 5),
                ]
            },
        ),
    ]
    clock = FakeClock()
    with pytest.raises(PreviewctlError, match=f"dpl_1.*{state}") as caught:
        client.wait_ready(
            "prj_1",
            "feat",
            deadline=clock() + 60,
            reporter=reporter(),
            sleep=clock.sleep,
            clock=clock,
        )
    assert not isinstance(caught.value, TimeoutExceededError)
    assert "never be READY" in str(caught.value)
    assert route.call_count == 2  # no polling once the state is final
    assert sum(clock.sleeps) < 5  # one poll interval, nowhere near the 60 s deadline


def test_wait_ready_times_out_at_the_deadline(api: respx.MockRouter, client: VercelClient) -> None:
    api.get("/v6/deployments").respond(
        json={"deployments": [answers.vercel_deployment("dpl_1", "feat", 10, "BUILDING")]}
    )
    clock = FakeClock()
    with pytest.raises(TimeoutExceededError, match="feat"):
        client.wait_ready(
            "prj_1",
            "feat",
            deadline=clock() + 7,
            reporter=reporter(),
            sleep=clock.sleep,
            clock=clock,
        )
    assert sum(clock.sleeps) == pytest.approx(7.0)
    assert max(clock.sleeps) <= 5.0


# ---- a lost answer does not make a duplicate ------------------------------------------------
def test_a_lost_answer_to_a_redeploy_makes_one_deployment() -> None:
    fakes = pytest.importorskip("tests.fakes.vercel_api")
    with fakes.VercelFake(token="tok") as fake:
        project = fake.add_project("web", branches=("feat",))
        fake.add_deployment("web", "feat")
        fake.inject("POST", r"^/v13/deployments$", drop_after=True)
        with build_http_client(fake.url, {"Authorization": "Bearer tok"}) as http:
            client = VercelClient(http, retry=fast_retry())
            source = client.list_deployments(project.id, "feat")[0]
            new = client.redeploy(source, "web", project_id=project.id)
        made = fake.deployments_for("web", "feat")
        assert len(made) == 2  # the source and exactly one redeploy
        assert new.uid == made[0]["uid"] != source.uid
        assert made[0]["meta"]["originalDeploymentId"] == source.uid
        assert len(fake.calls("POST", r"^/v13/deployments$")) == 1


@pytest.mark.parametrize(
    ("listed", "posts"),
    [
        # ours, found by the key in its meta even with a created time from a slow clock
        (
            [
                answers.vercel_deployment(
                    "dpl_2", "feat", 1, meta={"githubCommitRef": "feat", REDEPLOY_KEY: "KEY"}
                )
            ],
            1,
        ),
        (
            [answers.vercel_deployment("dpl_2", "feat", 10**15)],
            1,
        ),  # any deployment created since reads the env
        (
            [
                answers.vercel_deployment("dpl_1", "feat", 10**15),
                answers.vercel_deployment("dpl_0", "feat", 5),
            ],
            2,
        ),  # older ones don't count
    ],
)
def test_a_redeploy_is_looked_for_before_it_is_tried_again(
    api: respx.MockRouter,
    client: VercelClient,
    listed: list[dict[str, Any]],
    posts: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("uuid.uuid4", lambda: type("U", (), {"hex": "KEY"})())
    replies: list[Any] = [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(200, json=answers.vercel_deployment("dpl_9", "feat", 10**15)),
    ]
    post = api.post("/v13/deployments").mock(side_effect=replies)
    api.get("/v6/deployments").respond(json={"deployments": listed})
    source = Deployment.model_validate(answers.vercel_deployment("dpl_1", "feat", 1))
    new = client.redeploy(source, "web", project_id="prj_1")
    assert post.call_count == posts
    assert new.uid == ("dpl_9" if posts == 2 else "dpl_2")
