"""The Fly Machines API as previewctl calls it: the client tests' respx answers and the
emulator give the same status codes and body shapes (fly-go's flaps types), and
previewctl's client reads both the same way."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from previewctl.backends.fly.client import FlyClient, is_name_taken
from previewctl.backends.fly.settings import DEFAULT_BASE_URL
from previewctl.errors import ApiError, ConflictError
from tests.contract.sides import SIDES, Side, json_object, quick_retry, side
from tests.fakes.fly_api import FlyEmulator
from tests.support import answers

APP = answers.FLY_APP
CONFIG: dict[str, Any] = {
    "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
    "containers": [{"name": "db", "image": "postgres:18"}],
}
STATES = {
    "created", "starting", "started", "stopping", "stopped", "suspending", "suspended",
    "replacing", "updating", "destroying", "destroyed", "failed",
}  # fmt: skip


@pytest.fixture(params=SIDES)
def fly(request: pytest.FixtureRequest) -> Iterator[Side]:
    token = "fm2_" + secrets.token_urlsafe(16)
    headers = {"Authorization": f"FlyV1 {token}"}
    with side(request.param, DEFAULT_BASE_URL, headers, lambda: FlyEmulator(token=token)) as s:
        yield s


def client(fly: Side) -> FlyClient:
    return FlyClient(fly.client_http(), retry=quick_retry())


def a_machine(fly: Side, state: str = "started") -> str:
    """The machine id the call is about: the canned one, or one the emulator holds."""
    if fly.fake is None:
        return answers.FLY_MACHINE
    fly.fake.add_app(APP)
    return str(fly.fake.add_machine(APP, CONFIG, state=state).id)


def assert_fly_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    """fly-go's errorResponse: a non-empty ``error`` string, maybe a ``status`` code."""
    assert answer.status_code == status, answer.text
    body = json_object(answer)
    assert isinstance(body.get("error"), str), body
    assert body["error"], body
    assert isinstance(body.get("status", ""), str), body
    return body


def assert_machine(body: Any) -> None:
    """fly-go's Machine: id, name, state (one of Fly's), region; config an object."""
    assert isinstance(body, dict), body
    for key in ("id", "name", "state", "region"):
        assert isinstance(body.get(key), str), (key, body)
    assert body["state"] in STATES, body
    assert isinstance(body.get("config", {}), dict), body


# ---- apps -----------------------------------------------------------------------------------
def test_an_app_that_is_not_there_is_404_app_not_found(fly: Side) -> None:
    fly.serve("GET", f"/v1/apps/{APP}", 404, answers.fly_error("app not found"))
    fly.serve("GET", f"/v1/apps/{APP}", 404, answers.fly_error("app not found"))
    # fly-go's AppNameAvailable tells a free name by this very text
    assert assert_fly_error(fly.http.get(f"/v1/apps/{APP}"), 404)["error"] == "app not found"
    assert client(fly).get_app(APP) is None


def test_an_app_of_another_org_is_refused_as_unauthorized(fly: Side) -> None:
    fly.given(lambda emu: emu.add_foreign_app(APP))
    fly.serve("GET", f"/v1/apps/{APP}", 403, answers.fly_error("unauthorized"))
    # fly-go's AppNameAvailable: "unauthorized" = the name exists in an org we cannot see
    assert assert_fly_error(fly.http.get(f"/v1/apps/{APP}"), 403)["error"] == "unauthorized"


def test_creating_an_app_is_201_with_its_name(fly: Side) -> None:
    fly.serve("POST", "/v1/apps", 201, answers.fly_app(APP))
    answer = fly.http.post("/v1/apps", json={"name": APP, "org_slug": "acme"})
    assert answer.status_code == 201
    body = json_object(answer)
    assert body["name"] == APP
    assert isinstance(body["id"], str)


def test_a_taken_name_is_422_with_status_name_taken(fly: Side) -> None:
    fly.given(lambda emu: emu.add_app(APP, org="other"))
    fly.serve("POST", "/v1/apps", 422, answers.fly_name_taken())
    answer = fly.http.post("/v1/apps", json={"name": APP, "org_slug": "acme"})
    assert assert_fly_error(answer, 422)["status"] == "name_taken"
    with pytest.raises(ApiError) as info:
        client(fly).create_app(APP, "acme")
    assert is_name_taken(info.value)


def test_the_orgs_apps_are_listed_with_their_total(fly: Side) -> None:
    fly.given(lambda emu: emu.add_app(APP))
    fly.serve("GET", "/v1/apps", 200, answers.fly_apps(APP))
    body = json_object(fly.http.get("/v1/apps", params={"org_slug": "acme"}))
    assert body["total_apps"] == len(body["apps"]) == 1
    assert body["apps"][0]["name"] == APP
    assert [a.name for a in client(fly).list_apps("acme")] == [APP]


def test_deleting_an_app_is_202_then_it_is_gone(fly: Side) -> None:
    fly.given(lambda emu: emu.add_app(APP))
    fly.serve("DELETE", f"/v1/apps/{APP}", 202)
    fly.serve("GET", f"/v1/apps/{APP}", 404, answers.fly_error("app not found"))
    assert fly.http.delete(f"/v1/apps/{APP}").status_code == 202
    assert_fly_error(fly.http.get(f"/v1/apps/{APP}"), 404)


def test_a_wrong_token_is_401_with_an_error_body(fly: Side) -> None:
    fly.serve("GET", "/v1/apps", 401, answers.fly_error("unauthorized"))
    wrong = {"Authorization": "FlyV1 fm2_" + secrets.token_urlsafe(16)}
    assert_fly_error(fly.http.get("/v1/apps", params={"org_slug": "acme"}, headers=wrong), 401)


# ---- machines -------------------------------------------------------------------------------
def test_creating_a_machine_answers_the_machine(fly: Side) -> None:
    fly.given(lambda emu: emu.add_app(APP))
    fly.serve("POST", f"/v1/apps/{APP}/machines", 200, answers.fly_machine("created"))
    answer = fly.http.post(f"/v1/apps/{APP}/machines", json={"region": "iad", "config": CONFIG})
    assert answer.status_code == 200
    assert_machine(answer.json())


def test_a_machine_and_the_listing_have_the_machines_shape(fly: Side) -> None:
    mid = a_machine(fly)
    fly.serve("GET", f"/v1/apps/{APP}/machines/{mid}", 200, answers.fly_machine())
    fly.serve("GET", f"/v1/apps/{APP}/machines", 200, [answers.fly_machine()])
    assert_machine(json_object(fly.http.get(f"/v1/apps/{APP}/machines/{mid}")))
    listing = fly.http.get(f"/v1/apps/{APP}/machines").json()
    assert isinstance(listing, list)
    assert len(listing) == 1
    assert_machine(listing[0])
    assert [m.id for m in client(fly).list_machines(APP)] == [mid]


def test_starting_a_stopped_machine_says_what_it_was(fly: Side) -> None:
    mid = a_machine(fly, "stopped")
    fly.serve("POST", f"/v1/apps/{APP}/machines/{mid}/start", 200, answers.fly_started())
    answer = fly.http.post(f"/v1/apps/{APP}/machines/{mid}/start")
    assert answer.status_code == 200
    assert json_object(answer)["previous_state"] == "stopped"


def test_a_machine_that_is_not_there_is_404(fly: Side) -> None:
    fly.given(lambda emu: emu.add_app(APP))
    fly.serve("GET", f"/v1/apps/{APP}/machines/nope", 404, answers.fly_error("machine not found"))
    assert_fly_error(fly.http.get(f"/v1/apps/{APP}/machines/nope"), 404)


def test_waiting_for_a_state_it_is_in_is_200_ok(fly: Side) -> None:
    mid = a_machine(fly)
    fly.serve("GET", f"/v1/apps/{APP}/machines/{mid}/wait", 200, {"ok": True})
    params = {"state": "started", "timeout": "5"}
    answer = fly.http.get(f"/v1/apps/{APP}/machines/{mid}/wait", params=params)
    assert answer.status_code == 200
    assert json_object(answer)["ok"] is True


def test_a_wait_that_times_out_is_408(fly: Side) -> None:
    mid = a_machine(fly)
    fly.given(lambda emu: emu.set_stuck(APP, mid, "starting"))
    timed_out = answers.fly_error("deadline_exceeded: machine did not reach state")
    fly.serve("GET", f"/v1/apps/{APP}/machines/{mid}/wait", 408, timed_out)
    params = {"state": "started", "timeout": "1"}
    assert_fly_error(fly.http.get(f"/v1/apps/{APP}/machines/{mid}/wait", params=params), 408)


# ---- leases and IPs -------------------------------------------------------------------------
def test_a_lease_is_201_with_a_nonce_and_a_held_one_is_409(fly: Side) -> None:
    mid = a_machine(fly)
    path = f"/v1/apps/{APP}/machines/{mid}/lease"
    if fly.router is not None:
        fly.router.post(path).mock(
            side_effect=[
                httpx.Response(201, json=answers.fly_lease()),
                httpx.Response(409, json=answers.fly_error("lease currently held by ci")),
                httpx.Response(409, json=answers.fly_error("lease currently held by ci")),
            ]
        )
    first = fly.http.post(path, params={"ttl": "30"})
    assert first.status_code == 201
    data = json_object(first)["data"]
    assert isinstance(data["nonce"], str)
    assert data["nonce"]
    assert_fly_error(fly.http.post(path, params={"ttl": "30"}), 409)
    with pytest.raises(ConflictError):
        client(fly).acquire_lease(APP, mid)


def test_an_ip_is_assigned_and_listed(fly: Side) -> None:
    fly.given(lambda emu: emu.add_app(APP))
    fly.serve("POST", f"/v1/apps/{APP}/ip_assignments", 200, answers.fly_ip())
    fly.serve("GET", f"/v1/apps/{APP}/ip_assignments", 200, {"ips": [answers.fly_ip()]})
    made = json_object(fly.http.post(f"/v1/apps/{APP}/ip_assignments", json={"type": "v6"}))
    assert ":" in made["ip"]
    listed = json_object(fly.http.get(f"/v1/apps/{APP}/ip_assignments"))["ips"]
    assert [ip["ip"] for ip in listed] == [made["ip"]]
    assert [ip.ip for ip in client(fly).list_ips(APP)] == [made["ip"]]
