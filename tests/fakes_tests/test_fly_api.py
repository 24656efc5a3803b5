"""The Fly Machines API fake behaves as ``shared/reference/fly.md`` describes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.fly_api import COMPAT_CHECK, NAME_TAKEN_MESSAGE, FlyEmulator

TOKEN = "fo1_test-token"
ORG = "acme"
CONTAINER_CONFIG: dict[str, Any] = {
    "metadata": {"pr": "42", "previewctl": "1"},
    "containers": [
        {
            "name": "db",
            "image": "postgres:16",
            "healthchecks": [{"name": "pg", "kind": "readiness", "tcp": {"port": 5432}}],
        },
        {
            "name": "api",
            "image": "api:latest",
            "healthchecks": [{"name": "http", "http": {"port": 8080, "path": "/health"}}],
        },
    ],
}


@pytest.fixture
def emu() -> Iterator[FlyEmulator]:
    with FlyEmulator(token=TOKEN, org=ORG, health_seconds={"db": 0.05, "api": 0.3}) as fake:
        yield fake


@pytest.fixture
def client(emu: FlyEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emu.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as c:
        yield c


def create_app(client: httpx.Client, app: str = "pr-42") -> None:
    """Create an app as flyctl does: POST, then wait until Fly shows it (bounded)."""
    resp = client.post("/v1/apps", params={"wait": "true"}, json={"name": app, "org_slug": ORG})
    assert resp.status_code == 201, resp.text
    deadline = time.monotonic() + 5
    while client.get(f"/v1/apps/{app}").status_code != 200:
        assert time.monotonic() < deadline, f"{app} never became visible"
        time.sleep(0.01)


def own_checks(machine: dict[str, Any]) -> list[dict[str, Any]]:
    """The machine's checks without the compat one Fly adds for old flyctl."""
    return [c for c in machine["checks"] if c["name"] != COMPAT_CHECK]


def create_machine(
    client: httpx.Client, app: str = "pr-42", config: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    if client.get(f"/v1/apps/{app}").status_code == 404:
        create_app(client, app)
    body = {"region": "iad", "config": config or CONTAINER_CONFIG, **extra}
    resp = client.post(f"/v1/apps/{app}/machines", json=body)
    assert resp.status_code == 200, resp.text
    machine: dict[str, Any] = resp.json()
    return machine


def wait(
    client: httpx.Client, machine: dict[str, Any], state: str, timeout: float = 5
) -> httpx.Response:
    return client.get(
        f"/v1/apps/pr-42/machines/{machine['id']}/wait",
        params={"state": state, "timeout": timeout, "instance_id": machine["instance_id"]},
    )


# ---- apps --------------------------------------------------------------------------
def test_create_and_get_app(emu: FlyEmulator, client: httpx.Client) -> None:
    resp = client.post("/v1/apps", params={"wait": "true"}, json={"name": "pr-42", "org_slug": ORG})
    assert resp.status_code == 201
    assert resp.json()["organization"] == {"slug": ORG}
    assert resp.headers["fly-request-id"]
    emu.reveal_app("pr-42")

    got = client.get("/v1/apps/pr-42")
    assert got.status_code == 200
    assert got.json()["name"] == "pr-42"
    assert got.json()["status"] == "deployed"
    assert emu.apps["pr-42"].org == ORG

    listing = client.get("/v1/apps", params={"org_slug": ORG}).json()
    assert listing["total_apps"] == 1
    assert listing["apps"][0]["name"] == "pr-42"
    assert client.get("/v1/apps/nope").status_code == 404


def test_name_taken_and_invalid_names(emu: FlyEmulator, client: httpx.Client) -> None:
    emu.add_foreign_app("taken-elsewhere")
    client.post("/v1/apps", json={"name": "pr-1", "org_slug": ORG}).raise_for_status()
    for name in ("pr-1", "taken-elsewhere"):
        resp = client.post("/v1/apps", json={"name": name, "org_slug": ORG})
        assert resp.status_code == 422
        assert resp.json() == {"error": NAME_TAKEN_MESSAGE, "status": "name_taken"}
    for bad in ("Upper", "under_score", "a" * 64):
        resp = client.post("/v1/apps", json={"name": bad, "org_slug": ORG})
        assert resp.status_code == 422, bad
        assert resp.json()["status"] == "invalid_name"


def test_create_app_takes_name_not_the_old_app_name(emu: FlyEmulator, client: httpx.Client) -> None:
    """fly-go's CreateAppRequest sends ``name``; the 2024 spec's ``app_name`` alone is refused."""
    resp = client.post("/v1/apps", json={"app_name": "pr-9", "org_slug": ORG})
    assert resp.status_code == 400
    assert resp.json() == {"error": "name is required", "status": "invalid_argument"}
    assert emu.apps == {}


@pytest.mark.parametrize("status", [404, 401])
def test_a_new_app_is_invisible_for_a_while(status: int) -> None:
    with (
        FlyEmulator(token=TOKEN, new_app_hidden_seconds=60, new_app_hidden_status=status) as emu,
        httpx.Client(
            base_url=emu.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ) as c,
    ):
        created = c.post(
            "/v1/apps", params={"wait": "true"}, json={"name": "pr-5", "org_slug": ORG}
        )
        assert created.status_code == 201
        assert created.json()["name"] == "pr-5"
        assert emu.calls("POST", "^/v1/apps$")[0].query == {"wait": ["true"]}
        # every call on it answers "not yet"; listings leave it out
        assert c.get("/v1/apps/pr-5").status_code == status
        machine = c.post("/v1/apps/pr-5/machines", json={"region": "iad", "config": {"image": "x"}})
        assert machine.status_code == status
        assert c.get("/v1/apps", params={"org_slug": ORG}).json()["apps"] == []
        # ... while its name is already taken
        again = c.post("/v1/apps", json={"name": "pr-5", "org_slug": ORG})
        assert (again.status_code, again.json()["status"]) == (422, "name_taken")
        assert emu.apps["pr-5"].machines == {}
        emu.reveal_app("pr-5")
        assert c.get("/v1/apps/pr-5").json()["name"] == "pr-5"
        names = [a["name"] for a in c.get("/v1/apps", params={"org_slug": ORG}).json()["apps"]]
        assert names == ["pr-5"]


def test_a_seeded_app_can_be_hidden_too(emu: FlyEmulator, client: httpx.Client) -> None:
    emu.add_app("pr-6", hidden_for=60, hidden_status=401)
    resp = client.get("/v1/apps/pr-6")
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized", "status": "unauthorized"}


def test_foreign_app_is_forbidden_and_hidden(emu: FlyEmulator, client: httpx.Client) -> None:
    emu.add_foreign_app("theirs")
    emu.add_app("ours")
    assert client.get("/v1/apps/theirs").status_code == 403
    assert client.get("/v1/apps/theirs/machines").status_code == 403
    assert client.delete("/v1/apps/theirs").status_code == 403
    names = [a["name"] for a in client.get("/v1/apps", params={"org_slug": ORG}).json()["apps"]]
    assert names == ["ours"]


def test_delete_app_removes_everything(emu: FlyEmulator, client: httpx.Client) -> None:
    create_machine(client)
    client.post("/v1/apps/pr-42/ip_assignments", json={"type": "v6"}).raise_for_status()
    assert client.delete("/v1/apps/pr-42").status_code == 202
    assert "pr-42" not in emu.apps
    assert client.get("/v1/apps/pr-42").status_code == 404
    assert client.delete("/v1/apps/pr-42").status_code == 404


# ---- machines ----------------------------------------------------------------------
def test_machine_boots_then_checks_pass(emu: FlyEmulator, client: httpx.Client) -> None:
    machine = create_machine(client)
    assert re.fullmatch(r"[0-9a-f]{14}", machine["id"])
    assert machine["state"] == "created"
    assert machine["config"]["metadata"] == {"pr": "42", "previewctl": "1"}

    assert wait(client, machine, "started").json() == {"ok": True}
    got = client.get(f"/v1/apps/pr-42/machines/{machine['id']}").json()
    assert got["state"] == "started"
    assert {c["name"]: c["state"] for c in got["containers"]} == {"db": "running", "api": "running"}

    time.sleep(0.1)  # past db's 0.05 s, not api's 0.3 s
    got = client.get(f"/v1/apps/pr-42/machines/{machine['id']}").json()
    checks = {c["name"]: c["status"] for c in own_checks(got)}
    assert checks == {"db-pg": "passing", "api-http": "critical"}  # api needs 0.3 s

    time.sleep(0.3)
    got = client.get(f"/v1/apps/pr-42/machines/{machine['id']}").json()
    assert all(c["status"] == "passing" for c in own_checks(got)), got["checks"]


def test_every_machine_carries_a_critical_compat_check(
    emu: FlyEmulator, client: httpx.Client
) -> None:
    """Fly adds bg_deployments_compat* checks for old flyctl; they never mean anything."""
    emu.add_app("pr-42")
    seeded = emu.add_machine("pr-42", {"image": "x"})  # no checks of its own, long started
    got = client.get(f"/v1/apps/pr-42/machines/{seeded.id}").json()
    assert [(c["name"], c["status"]) for c in got["checks"]] == [(COMPAT_CHECK, "critical")]
    assert COMPAT_CHECK.startswith("bg_deployments_compat")
    with FlyEmulator(token=TOKEN, compat_checks=False) as plain:
        plain.add_app("a")
        assert plain.add_machine("a", {"image": "x"}).to_json()["checks"] == []


def test_a_fresh_machine_reports_no_check_results_yet(emu: FlyEmulator) -> None:
    emu.checks_reported_after = 3600
    emu.add_app("pr-42")
    config = {"image": "x", "checks": {"http": {"type": "http", "port": 80, "path": "/"}}}
    machine = emu.add_machine("pr-42", config)
    machine.schedule((0.0, "started"))  # it has just started
    assert own_checks(machine.to_json()) == []
    emu.checks_reported_after = 0.0  # read live: the same machine now reports
    assert [c["name"] for c in own_checks(machine.to_json())] == ["http"]


def test_region_is_required(client: httpx.Client) -> None:
    create_app(client)
    resp = client.post("/v1/apps/pr-42/machines", json={"config": {"image": "x"}})
    assert resp.status_code == 400


def test_containers_can_be_disabled_for_the_org() -> None:
    with FlyEmulator(token=TOKEN, containers_enabled=False) as emu:
        emu.add_app("pr-42")
        resp = httpx.post(
            f"{emu.url}/v1/apps/pr-42/machines",
            json={"region": "iad", "config": CONTAINER_CONFIG},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert resp.status_code == 422
    assert "multi-container" in resp.json()["error"]


def test_update_replaces_config_and_restarts(emu: FlyEmulator, client: httpx.Client) -> None:
    machine = create_machine(client)
    assert wait(client, machine, "started").status_code == 200
    new_config = {"image": "postgres:17", "metadata": {"pr": "42"}}
    resp = client.post(f"/v1/apps/pr-42/machines/{machine['id']}", json={"config": new_config})
    assert resp.status_code == 200
    updated = resp.json()
    assert updated["config"] == new_config  # whole config replaced, no merge
    assert updated["instance_id"] != machine["instance_id"]
    assert updated["state"] in ("replacing", "starting")
    assert wait(client, updated, "started").status_code == 200
    assert emu.machine("pr-42", machine["id"]).config == new_config

    moved = client.post(
        f"/v1/apps/pr-42/machines/{machine['id']}", json={"config": new_config, "region": "ams"}
    )
    assert moved.status_code == 400


def test_update_of_stopped_machine_keeps_it_stopped(client: httpx.Client) -> None:
    machine = create_machine(client, config={"image": "x"}, skip_launch=True)
    assert wait(client, machine, "stopped").status_code == 200
    resp = client.post(f"/v1/apps/pr-42/machines/{machine['id']}", json={"config": {"image": "y"}})
    assert resp.json()["state"] == "stopped"


def test_stop_start_suspend(client: httpx.Client) -> None:
    machine = create_machine(client, config={"image": "x"})
    base = f"/v1/apps/pr-42/machines/{machine['id']}"
    assert wait(client, machine, "started").status_code == 200
    assert client.post(f"{base}/stop", json={"signal": "SIGTERM"}).status_code == 200
    assert wait(client, machine, "stopped").status_code == 200

    started = client.post(f"{base}/start")
    assert started.json()["previous_state"] == "stopped"
    assert wait(client, machine, "started").status_code == 200
    again = client.post(f"{base}/start")
    assert again.status_code == 200
    assert again.json()["previous_state"] == "started"

    assert client.post(f"{base}/suspend").status_code == 200
    assert wait(client, machine, "suspended").status_code == 200


def test_wait_times_out_on_stuck_machine(emu: FlyEmulator, client: httpx.Client) -> None:
    machine = create_machine(client, config={"image": "x"})
    emu.set_stuck("pr-42", machine["id"], "starting")
    began = time.monotonic()
    resp = wait(client, machine, "started", timeout=1)
    assert resp.status_code == 408
    assert "deadline_exceeded" in resp.json()["error"]
    assert 0.9 <= time.monotonic() - began < 3
    assert wait(client, machine, "bogus").status_code == 400


def test_set_unhealthy_keeps_checks_critical(emu: FlyEmulator, client: httpx.Client) -> None:
    emu.add_app("pr-42")
    machine = emu.add_machine("pr-42", CONTAINER_CONFIG)
    emu.set_unhealthy("pr-42", machine.id, "db")
    checks = {c["name"]: c for c in own_checks(machine.to_json())}
    assert checks["db-pg"]["status"] == "critical"
    assert checks["db-pg"]["output"] == "connection refused"
    assert checks["api-http"]["status"] == "passing"  # seeded machines are long started
    assert emu.requests == []  # seeding logs nothing


def test_leases(emu: FlyEmulator, client: httpx.Client) -> None:
    machine = create_machine(client, config={"image": "x"})
    base = f"/v1/apps/pr-42/machines/{machine['id']}"
    resp = client.post(f"{base}/lease", params={"ttl": 30})
    assert resp.status_code == 201
    nonce = resp.json()["data"]["nonce"]
    assert resp.json()["status"] == "success"

    assert client.post(f"{base}/lease", params={"ttl": 30}).status_code == 409
    blocked = client.post(f"{base}/stop")
    assert blocked.status_code == 409
    assert "lease currently held" in blocked.json()["error"]
    meta = client.post(f"{base}/metadata/k", json={"value": "v"})
    assert meta.status_code == 409

    headers = {"fly-machine-lease-nonce": nonce}
    assert client.post(f"{base}/stop", headers=headers).status_code == 200
    assert client.get(f"{base}/lease").json()["data"]["nonce"] == nonce
    assert client.delete(f"{base}/lease", headers=headers).status_code == 200
    assert client.post(f"{base}/start").status_code == 200

    other = emu.hold_lease("pr-42", machine["id"])
    assert client.post(f"{base}/lease", params={"ttl": 5}).status_code == 409
    assert (
        client.post(f"{base}/stop", headers={"fly-machine-lease-nonce": other}).status_code == 200
    )


def test_lease_ttl_is_read_from_the_query(emu: FlyEmulator, client: httpx.Client) -> None:
    """fly-go sends ``POST .../lease?ttl=SECONDS`` with no body; a body's ttl is not read."""
    emu.add_app("pr-42")
    machine = emu.add_machine("pr-42", {"image": "x"})
    base = f"/v1/apps/pr-42/machines/{machine.id}"
    nonce = client.post(f"{base}/lease", params={"ttl": 120}).json()["data"]["nonce"]
    lease = emu.machine("pr-42", machine.id).lease
    assert lease is not None
    assert 110 < lease.expires_at - time.monotonic() <= 120
    client.delete(f"{base}/lease", headers={"fly-machine-lease-nonce": nonce}).raise_for_status()

    client.post(f"{base}/lease", json={"ttl": 120}).raise_for_status()
    lease = emu.machine("pr-42", machine.id).lease
    assert lease is not None
    assert lease.expires_at - time.monotonic() <= 30  # the default, not the body's 120


def test_metadata_and_list_filters(emu: FlyEmulator, client: httpx.Client) -> None:
    first = create_machine(client, config={"image": "x", "metadata": {"pr": "42", "role": "db"}})
    create_machine(client, config={"image": "x", "metadata": {"pr": "7"}})
    listed = client.get("/v1/apps/pr-42/machines", params={"metadata.pr": "42"}).json()
    assert [m["id"] for m in listed] == [first["id"]]
    both = client.get("/v1/apps/pr-42/machines", params={"metadata.pr": "42", "metadata.role": "x"})
    assert both.json() == []

    base = f"/v1/apps/pr-42/machines/{first['id']}/metadata"
    assert client.post(f"{base}/owner", json={"value": "ci"}).status_code == 204
    assert client.delete(f"{base}/role").status_code == 204
    assert client.get(base).json() == {"pr": "42", "owner": "ci"}
    by_owner = client.get("/v1/apps/pr-42/machines", params={"metadata.owner": "ci"}).json()
    assert [m["id"] for m in by_owner] == [first["id"]]
    assert emu.machine("pr-42", first["id"]).config["metadata"]["owner"] == "ci"


@pytest.mark.parametrize(("config_as", "config"), [("null", None), ("empty", {})])
def test_a_troubled_host_hides_the_config(
    emu: FlyEmulator, client: httpx.Client, config_as: str, config: Any
) -> None:
    machine = create_machine(client)
    path = f"/v1/apps/pr-42/machines/{machine['id']}"
    emu.set_host_status("pr-42", machine["id"], "unreachable", config_as=config_as)
    got = client.get(path).json()
    assert got["host_status"] == "unreachable"
    assert got["config"] == config
    assert got["incomplete_config"]["metadata"] == CONTAINER_CONFIG["metadata"]
    assert "containers" not in got["incomplete_config"]  # partial: not enough to recreate
    # the unfiltered listing shows it; a metadata filter cannot see its metadata
    assert [m["id"] for m in client.get("/v1/apps/pr-42/machines").json()] == [machine["id"]]
    filtered = client.get("/v1/apps/pr-42/machines", params={"metadata.previewctl": "1"})
    assert filtered.json() == []

    emu.set_host_status("pr-42", machine["id"], "unknown", incomplete_metadata=False)
    hidden = client.get(path).json()
    assert "config" not in hidden  # fly-go: config is omitempty
    assert hidden["host_status"] == "unknown"
    assert "metadata" not in hidden["incomplete_config"]

    emu.set_host_status("pr-42", machine["id"], "ok")
    back = client.get(path).json()
    assert back["host_status"] == "ok"
    assert back["config"]["metadata"] == CONTAINER_CONFIG["metadata"]
    assert "incomplete_config" not in back


def test_checks_can_come_without_a_status(emu: FlyEmulator, client: httpx.Client) -> None:
    machine = create_machine(client)
    emu.set_checks_without_status("pr-42", machine["id"])
    checks = client.get(f"/v1/apps/pr-42/machines/{machine['id']}").json()["checks"]
    assert checks
    assert all("status" not in c and c["name"] for c in checks)


def test_delete_needs_force_when_started(client: httpx.Client) -> None:
    machine = create_machine(client, config={"image": "x"})
    base = f"/v1/apps/pr-42/machines/{machine['id']}"
    assert wait(client, machine, "started").status_code == 200
    refused = client.delete(base)
    assert refused.status_code == 412
    assert refused.json()["status"] == "failed_precondition"
    assert client.delete(base, params={"force": "true"}).status_code == 200
    assert client.get(base).json()["state"] == "destroyed"
    assert wait(client, machine, "destroyed").status_code == 200
    assert client.get("/v1/apps/pr-42/machines").json() == []
    deleted = client.get("/v1/apps/pr-42/machines", params={"include_deleted": "true"}).json()
    assert len(deleted) == 1

    other = create_machine(client, config={"image": "x"})
    assert wait(client, other, "started").status_code == 200
    assert client.delete(f"/v1/apps/pr-42/machines/{other['id']}?kill=true").status_code == 200


def test_ip_assignments(emu: FlyEmulator, client: httpx.Client) -> None:
    emu.add_app("pr-42")
    base = "/v1/apps/pr-42/ip_assignments"
    v6 = client.post(base, json={"type": "v6"})
    assert v6.status_code in (200, 201)
    assert v6.json()["ip"].startswith("2a09:")
    shared = client.post(base, json={"type": "shared_v4"}).json()
    assert shared["shared"] is True
    assert client.post(base, json={"type": "v5"}).status_code == 400
    ips = client.get(base).json()["ips"]
    assert {ip["ip"] for ip in ips} == {v6.json()["ip"], shared["ip"]}
    assert client.delete(f"{base}/{v6.json()['ip']}").status_code == 204
    assert [ip["ip"] for ip in client.get(base).json()["ips"]] == [shared["ip"]]
    assert client.delete(f"{base}/{v6.json()['ip']}").status_code == 404


def test_mutating_calls(emu: FlyEmulator, client: httpx.Client) -> None:
    machine = create_machine(client, config={"image": "x"})
    base = f"/v1/apps/pr-42/machines/{machine['id']}"
    nonce = client.post(f"{base}/lease", params={"ttl": 5}).json()["data"]["nonce"]
    client.get(base)
    wait(client, machine, "started")
    client.post(f"{base}/stop", headers={"fly-machine-lease-nonce": nonce})
    paths = [(r.method, r.path) for r in emu.mutating_calls()]
    assert paths == [
        ("POST", "/v1/apps"),
        ("POST", "/v1/apps/pr-42/machines"),
        ("POST", f"{base}/stop"),
    ]


# ---- faults, rate limits, auth -----------------------------------------------------
@pytest.mark.parametrize("retry_after", [None, "1"])
def test_rate_limits(retry_after: str | None) -> None:
    with FlyEmulator(token=TOKEN, rate_limits=True, rate_limit_retry_after=retry_after) as emu:
        emu.add_app("pr-42")
        machine = emu.add_machine("pr-42", {"image": "x"})
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=emu.url, headers=headers) as client:
            codes = [
                client.post(f"/v1/apps/pr-42/machines/{machine.id}/start").status_code
                for _ in range(4)
            ]
            assert codes == [200, 200, 200, 429]  # burst of 3 for "other" actions
            limited = client.post(f"/v1/apps/pr-42/machines/{machine.id}/start")
            gets = [
                client.get(f"/v1/apps/pr-42/machines/{machine.id}").status_code for _ in range(10)
            ]
    assert limited.status_code == 429
    assert limited.headers.get("Retry-After") == retry_after
    assert gets == [200] * 10  # a different action, with a burst of 10
    assert emu.rate_limited == 2


def test_injected_faults(emu: FlyEmulator, client: httpx.Client) -> None:
    emu.add_app("pr-42")
    emu.inject("POST", r"/machines$", 503, times=2)
    body = {"region": "iad", "config": {"image": "x"}}
    codes = [client.post("/v1/apps/pr-42/machines", json=body).status_code for _ in range(3)]
    assert codes == [503, 503, 200]

    emu.inject("*", r"/apps", 429, retry_after="0")
    resp = client.get("/v1/apps/pr-42")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "0"
    assert resp.headers["fly-request-id"]

    emu.inject("GET", r"/apps/pr-42$", drop=True)
    with pytest.raises(httpx.TransportError):
        client.get("/v1/apps/pr-42")
    assert client.get("/v1/apps/pr-42").status_code == 200


@pytest.mark.parametrize(
    ("token", "header", "ok"),
    [
        ("fo1_abc", "Bearer fo1_abc", True),
        ("fo1_abc", "FlyV1 fo1_abc", False),
        ("fm2_abc", "FlyV1 fm2_abc", True),
        ("fm2_abc", "Bearer fm2_abc", False),
        ("fm1r_abc", "FlyV1 fm1r_abc", True),
        ("fo1_abc", "Bearer fo1_wrong", False),
        ("fo1_abc", None, False),
    ],
)
def test_auth(token: str, header: str | None, ok: bool) -> None:
    with FlyEmulator(token=token) as emu:
        headers = {"Authorization": header} if header else {}
        resp = httpx.get(f"{emu.url}/v1/apps", params={"org_slug": "acme"}, headers=headers)
    if ok:
        assert resp.status_code == 200
    else:
        assert resp.status_code == 401
        assert resp.json() == {"error": "unauthorized"}
        assert resp.headers["fly-request-id"]
