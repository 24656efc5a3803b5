"""The Fly Machines API client, against respx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from previewctl.backends.fly import diagnose
from previewctl.backends.fly.client import (
    IDEMPOTENCY_KEY,
    LEASE_TTL,
    FlyClient,
    build_fly_client,
    is_name_taken,
)
from previewctl.backends.fly.models import Machine
from previewctl.backends.fly.settings import (
    DEFAULT_BASE_URL,
    auth_header,
    machines_base_url,
    token_from_env,
)
from previewctl.clients.http import RetryPolicy, build_http_client
from previewctl.errors import (
    ApiError,
    ConflictError,
    MissingCredentialsError,
    NotFoundError,
    TimeoutExceededError,
    TransientApiError,
)
from tests.support import answers
from tests.support.inprocess import Sleeps

APP = answers.FLY_APP
MID = answers.FLY_MACHINE


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=DEFAULT_BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def fly(sleeps: Sleeps) -> Iterator[FlyClient]:
    policy = RetryPolicy(max_wait=0.01, multiplier=0.001, sleep=sleeps)
    with build_http_client(DEFAULT_BASE_URL, {"Authorization": "FlyV1 fm2_x"}) as http:
        yield FlyClient(http, retry=policy)


def body_of(call: Any) -> Any:
    return json.loads(call.request.content)


# ---- credentials ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "header"),
    [
        ("fm2_abc", "FlyV1 fm2_abc"),
        ("fm1r_abc", "FlyV1 fm1r_abc"),
        ("fm1a_abc", "FlyV1 fm1a_abc"),
        ("fm2_a,fm2_b", "FlyV1 fm2_a,fm2_b"),
        ("fo1_abc", "Bearer fo1_abc"),
        ("FlyV1 fm2_abc", "FlyV1 fm2_abc"),
        ("Bearer fo1_abc", "Bearer fo1_abc"),
        ("  fm2_abc\n", "FlyV1 fm2_abc"),
        ("\tfo1_abc ", "Bearer fo1_abc"),
    ],
)
def test_auth_header(token: str, header: str) -> None:
    assert auth_header(token) == header


def test_token_from_env() -> None:
    assert token_from_env({"FLY_API_TOKEN": "fm2_a"}) == "fm2_a"
    assert token_from_env({"FLY_ACCESS_TOKEN": "fm2_b"}) == "fm2_b"
    assert token_from_env({"FLY_API_TOKEN": "", "FLY_ACCESS_TOKEN": "fm2_b"}) == "fm2_b"


def test_missing_token_is_a_credentials_error() -> None:
    with pytest.raises(MissingCredentialsError, match="FLY_API_TOKEN is not set") as info:
        token_from_env({"GITHUB_TOKEN": "x"})
    assert info.value.exit_code == 2
    assert info.value.hint is not None


def test_build_fly_client_uses_base_url_and_auth() -> None:
    with respx.mock(base_url="http://127.0.0.1:9999") as router:
        route = router.get(f"/v1/apps/{APP}").respond(json={"name": APP})
        client = build_fly_client(
            {"FLY_API_TOKEN": " fm2_tok ", "FLY_API_BASE_URL": "http://127.0.0.1:9999/"}
        )
        app = client.get_app(APP)
    assert app is not None
    assert app.name == APP
    assert route.calls.last.request.headers["Authorization"] == "FlyV1 fm2_tok"


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, DEFAULT_BASE_URL),
        ({"FLY_API_BASE_URL": "http://a"}, "http://a"),
        ({"FLY_FLAPS_BASE_URL": "http://f"}, "http://f"),  # fly-go's and flyctl's name
        ({"FLY_API_BASE_URL": "http://a", "FLY_FLAPS_BASE_URL": "http://f"}, "http://a"),
        ({"FLY_API_BASE_URL": " ", "FLY_FLAPS_BASE_URL": "http://f"}, "http://f"),
    ],
)
def test_machines_base_url_contract_name_first_then_flaps(env: dict[str, str], url: str) -> None:
    assert machines_base_url(env) == url


def test_build_fly_client_accepts_flaps_base_url() -> None:
    with respx.mock(base_url="http://127.0.0.1:9998") as router:
        route = router.get(f"/v1/apps/{APP}").respond(json={"name": APP})
        client = build_fly_client(
            {"FLY_API_TOKEN": "fm2_tok", "FLY_FLAPS_BASE_URL": "http://127.0.0.1:9998"}
        )
        assert client.get_app(APP) is not None
    assert route.call_count == 1


# ---- apps and the retry policy ----------------------------------------------------------
def test_get_app(api: respx.MockRouter, fly: FlyClient) -> None:
    api.get(f"/v1/apps/{APP}").respond(
        json={"id": "a1", "name": APP, "organization": {"slug": "acme"}, "extra": 1}
    )
    app = fly.get_app(APP)
    assert app is not None
    assert (app.name, app.organization and app.organization.slug) == (APP, "acme")


def test_get_app_404_is_none(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.get(f"/v1/apps/{APP}").respond(404, json=answers.fly_error("app not found"))
    assert fly.get_app(APP) is None
    assert route.call_count == 1


def test_429_with_retry_after_is_ridden_out(
    api: respx.MockRouter, fly: FlyClient, sleeps: Sleeps
) -> None:
    route = api.get(f"/v1/apps/{APP}")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "rate limited"}),
        httpx.Response(200, json={"name": APP}),
    ]
    app = fly.get_app(APP)
    assert app is not None
    assert app.name == APP
    assert route.call_count == 2
    assert sleeps.calls == [0.0]


def test_503_twice_then_200(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.get(f"/v1/apps/{APP}")
    route.side_effect = [
        httpx.Response(503, text="upstream unavailable"),
        httpx.Response(503, json={"error": "unavailable"}),
        httpx.Response(200, json={"name": APP}),
    ]
    assert fly.get_app(APP) is not None
    assert route.call_count == 3


def test_connection_error_then_200(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.get(f"/v1/apps/{APP}")
    route.side_effect = [
        httpx.ConnectError("connection refused"),
        httpx.Response(200, json={"name": APP}),
    ]
    assert fly.get_app(APP) is not None
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (422, {"error": "app name taken", "status": "name_taken"}, ConflictError, "app name taken"),
        (401, {"error": "token invalid"}, ApiError, "token invalid"),
        (403, {"error": "not in org"}, ApiError, "not in org"),
        # a body without Fly's message field is never shown: it may echo the config
        (400, "not json at all", ApiError, "a 15-byte text/plain body without a message field"),
    ],
)
def test_client_errors_fail_at_once_with_the_api_message(
    api: respx.MockRouter,
    fly: FlyClient,
    status: int,
    body: Any,
    kind: type[ApiError],
    message: str,
) -> None:
    headers = {"fly-request-id": "01REQ-abc"}
    response = (
        httpx.Response(status, headers=headers, text=body)
        if isinstance(body, str)
        else httpx.Response(status, headers=headers, json=body)
    )
    route = api.post("/v1/apps").mock(return_value=response)
    with pytest.raises(kind) as info:
        fly.create_app(APP, "acme")
    error = info.value
    assert route.call_count == 1
    assert error.status == status
    assert error.request_id == "01REQ-abc"
    assert message in str(error)
    assert "[request id 01REQ-abc]" in str(error)
    assert f"POST /v1/apps -> {status}" in str(error)


def test_422_code_is_kept(api: respx.MockRouter, fly: FlyClient) -> None:
    api.post("/v1/apps").respond(422, json=answers.fly_name_taken())
    with pytest.raises(ConflictError) as info:
        fly.create_app(APP, "acme")
    assert info.value.code == "name_taken"
    assert "(name_taken)" in str(info.value)


def test_create_app_as_fly_go_sends_it(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.post("/v1/apps").respond(201, json=answers.fly_app(APP))
    app = fly.create_app(APP, "acme")
    assert app.name == APP
    assert route.calls.last.request.url.params["wait"] == "true"
    assert body_of(route.calls.last) == {"name": APP, "org_slug": "acme"}


@pytest.mark.parametrize(
    ("status", "body", "taken"),
    [
        (422, {"error": "Name has already been taken", "status": "name_taken"}, True),
        (409, {"error": "conflict", "status": "name_taken"}, True),  # the body decides
        (400, {"error": "taken", "status": "name_taken"}, True),
        (422, {"error": "Name has already been taken", "status": "invalid"}, False),
        (422, {"error": "org suspended", "status": "unprocessable_entity"}, False),
        (422, {"error": "Validation failed: Name has already been taken"}, True),  # legacy
        (422, {"error": "invalid name"}, False),
        (422, "Name has already been taken", True),  # not JSON: only the prose is left
    ],
)
def test_name_taken_is_read_from_the_body_status(
    api: respx.MockRouter, fly: FlyClient, status: int, body: Any, taken: bool
) -> None:
    response = (
        httpx.Response(status, text=body)
        if isinstance(body, str)
        else httpx.Response(status, json=body)
    )
    api.post("/v1/apps").mock(return_value=response)
    with pytest.raises(ApiError) as info:
        fly.create_app(APP, "acme")
    assert is_name_taken(info.value) is taken


@pytest.mark.parametrize("not_yet", [404, 401])
def test_wait_for_app_treats_404_and_401_as_not_yet(
    api: respx.MockRouter, fly: FlyClient, sleeps: Sleeps, not_yet: int
) -> None:
    route = api.get(f"/v1/apps/{APP}")
    route.side_effect = [
        httpx.Response(not_yet, json=answers.fly_error("app not found")),
        httpx.Response(not_yet, json={"error": "unauthorized"}),
        httpx.Response(200, json={"name": APP, "organization": {"slug": "acme"}}),
    ]
    app = fly.wait_for_app(APP, deadline=time.monotonic() + 60)
    assert app.organization is not None
    assert app.organization.slug == "acme"
    assert route.call_count == 3
    assert len(sleeps.calls) == 2
    assert 0.05 <= sleeps.calls[0] <= 0.1  # flyctl's backoff: from 100 ms ...
    assert sleeps.calls[1] <= 0.2


def test_wait_for_app_gives_up_at_the_deadline(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.get(f"/v1/apps/{APP}").respond(404, json=answers.fly_error("app not found"))
    with pytest.raises(TimeoutExceededError, match="did not show the app"):
        fly.wait_for_app(APP, deadline=time.monotonic() + 0.05)
    assert route.call_count >= 1


@pytest.mark.parametrize("status", [403, 400])
def test_wait_for_app_fails_at_once_on_anything_else(
    api: respx.MockRouter, fly: FlyClient, status: int
) -> None:
    route = api.get(f"/v1/apps/{APP}").respond(status, json={"error": "no"})
    with pytest.raises(ApiError) as info:
        fly.wait_for_app(APP, deadline=time.monotonic() + 60)
    assert info.value.status == status
    assert route.call_count == 1


def test_create_app_with_empty_body(api: respx.MockRouter, fly: FlyClient) -> None:
    api.post("/v1/apps").respond(201)
    assert fly.create_app(APP, "acme").name == APP


def test_list_apps_and_delete_app(api: respx.MockRouter, fly: FlyClient) -> None:
    api.get("/v1/apps", params={"org_slug": "acme"}).respond(
        json=answers.fly_apps("pr-1-agents", "pr-2-agents")
    )
    api.delete("/v1/apps/pr-1-agents").respond(202)
    api.delete("/v1/apps/gone").respond(404, json=answers.fly_error("app not found"))
    assert [a.name for a in fly.list_apps("acme")] == ["pr-1-agents", "pr-2-agents"]
    assert fly.delete_app("pr-1-agents") is True
    assert fly.delete_app("gone") is False


def test_persistent_5xx_gives_transient_error(api: respx.MockRouter, sleeps: Sleeps) -> None:
    api.get(f"/v1/apps/{APP}").respond(500, json={"error": "boom"})
    policy = RetryPolicy(max_wait=0.01, multiplier=0.001, attempts=3, sleep=sleeps)
    with build_http_client(DEFAULT_BASE_URL, {}) as http:
        client = FlyClient(http, retry=policy)
        with pytest.raises(TransientApiError, match="boom"):
            client.get_app(APP)
        assert client.calls == 3


# ---- machines ---------------------------------------------------------------------------
def test_list_machines_filters_by_metadata(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.get(f"/v1/apps/{APP}/machines").respond(json=[answers.fly_machine()])
    found = fly.list_machines(APP, metadata={"previewctl_pr": "7"})
    assert [m.id for m in found] == [MID]
    assert route.calls.last.request.url.params["metadata.previewctl_pr"] == "7"


def test_create_machine_sends_region_config_and_key(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.post(f"/v1/apps/{APP}/machines").respond(json=answers.fly_machine("created"))
    config = {"guest": {"cpus": 1}, "metadata": {"previewctl_pr": "7"}}
    machine = fly.create_machine(APP, config=config, region="iad", name="preview")
    assert machine.state == "created"
    body = body_of(route.calls.last)
    assert body["region"] == "iad"
    assert body["name"] == "preview"
    assert body["config"]["guest"] == {"cpus": 1}
    assert body["config"]["metadata"]["previewctl_pr"] == "7"
    assert len(body["config"]["metadata"][IDEMPOTENCY_KEY]) == 32
    assert config["metadata"] == {"previewctl_pr": "7"}  # the caller's dict is untouched


def test_create_machine_after_a_dropped_connection_finds_the_machine(
    api: respx.MockRouter, fly: FlyClient
) -> None:
    sent: list[str] = []

    def dropped(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["config"]["metadata"][IDEMPOTENCY_KEY])
        raise httpx.ConnectError("connection reset", request=request)

    create = api.post(f"/v1/apps/{APP}/machines").mock(side_effect=dropped)

    def listing(request: httpx.Request) -> httpx.Response:
        key = request.url.params.get(f"metadata.{IDEMPOTENCY_KEY}")
        assert key == sent[0]
        return httpx.Response(
            200, json=[answers.fly_machine("created", config={"metadata": {IDEMPOTENCY_KEY: key}})]
        )

    lookup = api.get(f"/v1/apps/{APP}/machines").mock(side_effect=listing)
    machine = fly.create_machine(APP, config={"guest": {"cpus": 1}}, region="iad")
    assert machine.id == MID
    assert machine.metadata[IDEMPOTENCY_KEY] == sent[0]
    assert create.call_count == 1  # created once, not twice
    assert lookup.call_count == 1


def test_create_machine_retries_with_the_same_key_when_nothing_was_created(
    api: respx.MockRouter, fly: FlyClient, sleeps: Sleeps
) -> None:
    create = api.post(f"/v1/apps/{APP}/machines")
    create.side_effect = [
        httpx.Response(503, json={"error": "try again"}),
        httpx.Response(200, json=answers.fly_machine("created")),
    ]
    api.get(f"/v1/apps/{APP}/machines").respond(json=[])
    machine = fly.create_machine(APP, config={}, region="iad")
    assert machine.id == MID
    assert create.call_count == 2
    keys = [body_of(c)["config"]["metadata"][IDEMPOTENCY_KEY] for c in create.calls]
    assert keys[0] == keys[1]
    assert sleeps.calls == [0.2]


def test_create_machine_client_error_is_not_retried(api: respx.MockRouter, fly: FlyClient) -> None:
    create = api.post(f"/v1/apps/{APP}/machines").respond(
        422, json={"error": "invalid config: guest.memory_mb"}
    )
    lookup = api.get(f"/v1/apps/{APP}/machines").respond(json=[])
    with pytest.raises(ConflictError, match="invalid config"):
        fly.create_machine(APP, config={}, region="iad")
    assert create.call_count == 1
    assert lookup.call_count == 0


def test_machine_actions_send_the_lease_nonce(api: respx.MockRouter, fly: FlyClient) -> None:
    update = api.post(f"/v1/apps/{APP}/machines/{MID}").respond(json=answers.fly_machine())
    start = api.post(f"/v1/apps/{APP}/machines/{MID}/start").respond(json=answers.fly_started())
    stop = api.post(f"/v1/apps/{APP}/machines/{MID}/stop").respond(json={"ok": True})
    meta = api.post(f"/v1/apps/{APP}/machines/{MID}/metadata/k").respond(204)
    fly.update_machine(APP, MID, config={"image": "x"}, nonce="n1")
    fly.start_machine(APP, MID, nonce="n1")
    fly.stop_machine(APP, MID)
    fly.set_metadata(APP, MID, "k", "v", nonce="n1")
    assert body_of(update.calls.last) == {"config": {"image": "x"}}
    assert update.calls.last.request.headers["fly-machine-lease-nonce"] == "n1"
    assert start.calls.last.request.headers["fly-machine-lease-nonce"] == "n1"
    assert "fly-machine-lease-nonce" not in stop.calls.last.request.headers
    assert body_of(meta.calls.last) == {"value": "v"}


def test_delete_machine(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.delete(f"/v1/apps/{APP}/machines/{MID}").respond(200, json={"ok": True})
    assert fly.delete_machine(APP, MID) is True
    assert route.calls.last.request.url.params["force"] == "true"
    route.respond(404, json={"error": "not found"})
    assert fly.delete_machine(APP, MID) is False


# ---- wait -------------------------------------------------------------------------------
def test_wait_loops_on_408_until_200(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.get(f"/v1/apps/{APP}/machines/{MID}/wait")
    route.side_effect = [
        httpx.Response(408, json={"error": "deadline_exceeded"}),
        httpx.Response(408, json={"error": "deadline_exceeded"}),
        httpx.Response(200, json={"ok": True}),
    ]
    fly.wait(APP, MID, "started", deadline=time.monotonic() + 300, instance_id="inst1")
    assert route.call_count == 3
    params = route.calls.last.request.url.params
    assert params["state"] == "started"
    assert params["instance_id"] == "inst1"
    assert params["timeout"] == "60"  # capped at the server's maximum


def test_wait_times_out_at_the_deadline(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.get(f"/v1/apps/{APP}/machines/{MID}/wait").respond(
        408, json={"error": "deadline_exceeded"}
    )
    with pytest.raises(TimeoutExceededError, match="did not reach 'stopped' in time"):
        fly.wait(APP, MID, "stopped", deadline=time.monotonic() + 0.2)
    assert route.call_count >= 1
    # the chunk asked of the server never exceeds what is left of our deadline (min 1 s)
    assert route.calls.last.request.url.params["timeout"] == "1"
    assert "instance_id" not in route.calls.last.request.url.params


def test_wait_backs_off_on_a_5xx(api: respx.MockRouter, fly: FlyClient, sleeps: Sleeps) -> None:
    route = api.get(f"/v1/apps/{APP}/machines/{MID}/wait")
    route.side_effect = [httpx.Response(502), httpx.Response(200, json={"ok": True})]
    fly.wait(APP, MID, "started", deadline=time.monotonic() + 300)
    assert route.call_count == 2
    assert sleeps.calls == [1.0]


def test_wait_client_error_fails_at_once(api: respx.MockRouter, fly: FlyClient) -> None:
    route = api.get(f"/v1/apps/{APP}/machines/{MID}/wait").respond(
        404, json={"error": "machine not found"}
    )
    with pytest.raises(NotFoundError, match="machine not found"):
        fly.wait(APP, MID, "started", deadline=time.monotonic() + 300)
    assert route.call_count == 1


# ---- leases -----------------------------------------------------------------------------
def test_lease_waits_for_a_held_lease_and_releases_at_exit(
    api: respx.MockRouter, fly: FlyClient, sleeps: Sleeps
) -> None:
    acquire = api.post(f"/v1/apps/{APP}/machines/{MID}/lease")
    acquire.side_effect = [
        httpx.Response(409, json={"error": "lease currently held"}),
        httpx.Response(201, json={"data": {"nonce": "nonce-1", "expires_at": 1700000000}}),
    ]
    release = api.delete(f"/v1/apps/{APP}/machines/{MID}/lease").respond(200, json={})
    with fly.lease(APP, MID, deadline=time.monotonic() + 30, ttl=60) as nonce:
        assert nonce == "nonce-1"
        assert release.call_count == 0
    assert acquire.call_count == 2
    # as fly-go sends it: ?ttl=SECONDS and no body
    assert acquire.calls.last.request.url.params["ttl"] == "60"
    assert acquire.calls.last.request.content == b""
    assert sleeps.calls == [0.25]
    assert release.call_count == 1
    assert release.calls.last.request.headers["fly-machine-lease-nonce"] == "nonce-1"


def test_lease_ttl_defaults_to_flyctls_two_minutes(api: respx.MockRouter, fly: FlyClient) -> None:
    acquire = api.post(f"/v1/apps/{APP}/machines/{MID}/lease").respond(
        201, json=answers.fly_lease("n")
    )
    api.delete(f"/v1/apps/{APP}/machines/{MID}/lease").respond(200)
    with fly.lease(APP, MID, deadline=time.monotonic() + 30):
        pass
    assert LEASE_TTL == 120
    assert acquire.calls.last.request.url.params["ttl"] == "120"


def test_lease_is_released_when_the_block_fails(api: respx.MockRouter, fly: FlyClient) -> None:
    api.post(f"/v1/apps/{APP}/machines/{MID}/lease").respond(201, json={"nonce": "flat"})
    release = api.delete(f"/v1/apps/{APP}/machines/{MID}/lease").respond(500)
    with (
        pytest.raises(RuntimeError, match="inside"),
        fly.lease(APP, MID, deadline=time.monotonic() + 30),
    ):
        raise RuntimeError("inside")
    # a failing release does not hide the original error
    assert release.call_count >= 1
    assert release.calls.last.request.headers["fly-machine-lease-nonce"] == "flat"


def test_lease_held_past_the_deadline(api: respx.MockRouter, fly: FlyClient) -> None:
    acquire = api.post(f"/v1/apps/{APP}/machines/{MID}/lease").respond(
        409, json={"error": "lease currently held"}
    )
    release = api.delete(f"/v1/apps/{APP}/machines/{MID}/lease").respond(200)
    with (
        pytest.raises(TimeoutExceededError, match="leased by another process"),
        fly.lease(APP, MID, deadline=time.monotonic() + 0.1),
    ):
        pytest.fail("the lease must not be acquired")
    assert acquire.call_count >= 1
    assert release.call_count == 0


# ---- IPs --------------------------------------------------------------------------------
def test_ips(api: respx.MockRouter, fly: FlyClient) -> None:
    api.get(f"/v1/apps/{APP}/ip_assignments").respond(
        json={"ips": [{"ip": "2a09::1", "region": "global", "shared": False}]}
    )
    alloc = api.post(f"/v1/apps/{APP}/ip_assignments").respond(json={"ip": "2a09::2"})
    assert [i.ip for i in fly.list_ips(APP)] == ["2a09::1"]
    assert fly.allocate_ip(APP, "v6").ip == "2a09::2"
    assert body_of(alloc.calls.last) == {"type": "v6"}


# ---- health -----------------------------------------------------------------------------
def test_machine_healthy_rules() -> None:
    def machine(state: str, *statuses: str) -> Machine:
        checks = [{"name": f"c{i}", "status": s} for i, s in enumerate(statuses)]
        return Machine.model_validate(answers.fly_machine(state, checks=checks))

    assert machine("started").healthy is True
    assert machine("started", "passing", "passing").healthy is True
    assert machine("started", "passing", "warning").healthy is False
    assert machine("started", "critical").healthy is False
    assert machine("stopped").healthy is False
    assert machine("starting", "passing").healthy is False


def test_compat_checks_are_dropped_before_judging_health() -> None:
    """fly-go's RemoveCompatChecks: Fly's bg_deployments_compat* checks mean nothing."""
    m = Machine.model_validate(
        answers.fly_machine(
            "started",
            checks=[
                {"name": "bg_deployments_compat_tcp", "status": "critical"},
                {"name": "bg_deployments_compat", "status": "warning"},
                {"name": "db-tcp", "status": "passing"},
            ],
        )
    )
    assert [c.name for c in m.checks] == ["db-tcp"]
    assert m.healthy is True
    assert "compat" not in diagnose.describe(m)
    only_compat = answers.fly_machine(
        checks=[{"name": "bg_deployments_compat_x", "status": "critical"}]
    )
    assert Machine.model_validate(only_compat).healthy is True
    assert Machine.model_validate(answers.fly_machine(checks=None)).checks == []


def test_configured_checks_without_results_are_not_health() -> None:
    """flyctl: Machine.Checks is empty for a fresh machine; with checks configured, wait."""
    top = {"checks": {"http": {"type": "http", "port": 80}}}
    service = {"services": [{"internal_port": 80, "checks": [{"type": "tcp"}]}]}
    for config in (top, service):
        fresh = Machine.model_validate(answers.fly_machine(config=config))
        assert fresh.configured_checks == 1
        assert fresh.healthy is False
        assert "no results yet for its 1 configured check(s)" in diagnose.describe(fresh)
        reported = answers.fly_machine(
            config=config, checks=[{"name": "http", "status": "passing"}]
        )
        assert Machine.model_validate(reported).healthy is True
    # container healthchecks alone keep "no checks = healthy once started" (flyctl too)
    containers = {"containers": [{"name": "db", "healthchecks": [{"tcp": {"port": 1}}]}]}
    assert Machine.model_validate(answers.fly_machine(config=containers)).healthy is True


def test_the_diagnosis_shows_containers_and_failing_checks() -> None:
    m = Machine.model_validate(
        answers.fly_machine(
            "started",
            containers=[{"name": "db", "state": "running"}, {"name": "authz"}],
            checks=[
                {"name": "ok", "status": "passing", "output": "fine"},
                {"name": "db-tcp", "status": "critical", "output": "dial tcp:\nrefused  "},
                {"name": "quiet", "status": "warning"},
            ],
        )
    )
    assert diagnose.describe(m) == (
        "  state: started\n  containers: db running, authz unknown\n  failing checks:\n"
        "    db-tcp: critical\n      dial tcp:\n      refused\n    quiet: warning"
    )


def test_machine_metadata_property() -> None:
    m = Machine.model_validate(answers.fly_machine(config={"metadata": {"a": "1"}}))
    assert m.metadata == {"a": "1"}
    assert Machine.model_validate(answers.fly_machine()).metadata == {}


# ---- machines Fly cannot fully show --------------------------------------------------------
MARKED = {"previewctl": "1", "previewctl_pr": "7"}


@pytest.mark.parametrize("host", ["unknown", "unreachable"])
@pytest.mark.parametrize("config", ["omitted", None, {}])
def test_a_machine_on_a_troubled_host_parses_as_config_unknown(
    api: respx.MockRouter, fly: FlyClient, host: str, config: Any
) -> None:
    raw = answers.fly_machine(
        host_status=host,
        incomplete_config={"guest": {"cpus": 1}, "metadata": MARKED},
        checks=[{"name": "db-tcp"}],
    )
    if config != "omitted":
        raw["config"] = config
    api.get(f"/v1/apps/{APP}/machines").respond(json=[raw])
    [machine] = fly.list_machines(APP)
    assert machine.config_unknown is True
    assert machine.config == {}
    # the marker in incomplete_config is never read as the machine's metadata
    assert machine.metadata == {}
    assert machine.healthy is False


def test_host_ok_and_an_absent_host_status_are_known() -> None:
    ok = Machine.model_validate(answers.fly_machine(host_status="ok", config={"metadata": MARKED}))
    assert ok.config_unknown is False
    assert ok.metadata == MARKED
    older = Machine.model_validate(answers.fly_machine(config={"metadata": MARKED}))
    assert older.config_unknown is False
    # an empty config with what Fly rebuilt beside it is not a config
    rebuilt = Machine.model_validate(answers.fly_machine(config=None, incomplete_config={}))
    assert rebuilt.config_unknown is True


def test_a_check_without_a_status_parses_and_is_not_passing() -> None:
    m = Machine.model_validate(
        answers.fly_machine(
            "started",
            checks=[{"name": "db-tcp", "output": "starting"}, {"name": "ok", "status": "passing"}],
            containers=None,
        )
    )
    assert [c.status for c in m.checks] == [None, "passing"]
    assert m.healthy is False
    assert diagnose.describe(m) == (
        "  state: started\n  failing checks:\n    db-tcp: no status\n      starting"
    )
