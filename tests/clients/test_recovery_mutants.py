"""Recovery branches that no other test pinned down (issue 11: removing any recovery branch
in a client makes a test fail).

Each test here was written against a mutant of the client that the rest of the suite let
live: the branch deleted, its condition inverted or its counter moved by one. Every
assertion is on an outcome (what was sent, what the error says, what was slept), never on
which line ran.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx

from previewctl import redact
from previewctl.backends.fly import converge, health
from previewctl.backends.fly.client import FlyClient
from previewctl.backends.fly.converge import MachineGoneError
from previewctl.backends.fly.models import Machine
from previewctl.backends.fly.settings import DEFAULT_BASE_URL
from previewctl.backends.fly.tunnels import TunnelSet, TunnelSpec
from previewctl.clients import github, vercel
from previewctl.clients.github import GitHubClient
from previewctl.clients.github_deployments import (
    MAX_STATUS_DESCRIPTION,
    Deployment,
    DeploymentsApi,
    DeploymentStatus,
)
from previewctl.clients.http import (
    MAX_MESSAGE,
    ApiClient,
    RetryPolicy,
    build_http_client,
    shown_url,
)
from previewctl.clients.vercel import VercelClient
from previewctl.clients.vercel_models import EnvInput
from previewctl.config import load_config
from previewctl.errors import (
    ApiError,
    ConnectionFailedError,
    InputError,
    NotManagedError,
    PreviewctlError,
    TimeoutExceededError,
    TransientApiError,
    TunnelError,
)
from previewctl.retry import parse_retry_after
from tests.support.inprocess import Sleeps
from tests.support.project import BASIC_TOML, Project
from tests.support.reporting import quiet_reporter

BASE = "https://api.test"


def fast() -> RetryPolicy:
    return RetryPolicy(max_wait=0.01, multiplier=0.001, sleep=lambda _s: None)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def secret() -> str:
    value = "s3cr3t-" + secrets.token_urlsafe(12)
    redact.register(value)
    return value


def failed(client: ApiClient, method: str = "GET", path: str = "/thing") -> ApiError:
    with pytest.raises(ApiError) as caught:
        client.request(method, path)
    return caught.value


# ---- Retry-After as an HTTP date ---------------------------------------------------------
@pytest.fixture
def far_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone 14 hours off UTC: a date read as local time is 14 hours off."""
    monkeypatch.setenv("TZ", "Etc/GMT-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_timezone")
def test_an_http_date_without_a_zone_is_utc_whatever_the_local_zone() -> None:
    """RFC 9110's ``-0000`` form parses without a zone: it is still UTC, not local time."""
    wall = 1_700_000_000.0
    in_ten = time.strftime("%a, %d %b %Y %H:%M:%S -0000", time.gmtime(wall + 10))
    assert parse_retry_after(in_ten, cap=60.0, wall=lambda: wall) == 10.0


# ---- what an error may show ------------------------------------------------------------
def test_an_error_code_echoing_a_secret_is_redacted(api: respx.MockRouter) -> None:
    value = secret()
    api.get("/thing").respond(400, json={"error": {"message": "bad", "code": f"k-{value}"}})
    with build_http_client(BASE, {}) as http:
        error = failed(ApiClient(http, retry=fast()))
    assert error.code is not None
    assert value not in str(error)
    assert value not in error.code


def test_a_request_id_echoing_a_secret_is_redacted(api: respx.MockRouter) -> None:
    value = secret()
    api.get("/thing").respond(
        400, json={"error": {"message": "bad"}}, headers={"x-vercel-id": f"iad1::{value}"}
    )
    with build_http_client(BASE, {}) as http:
        error = failed(VercelClient(http, retry=fast()))
    assert error.request_id is not None
    assert value not in str(error)
    assert value not in error.request_id


def test_a_huge_api_message_is_cut(api: respx.MockRouter) -> None:
    api.get("/thing").respond(400, json={"error": {"message": "x" * (MAX_MESSAGE * 5)}})
    with build_http_client(BASE, {}) as http:
        error = failed(ApiClient(http, retry=fast()))
    assert error.api_message == "x" * MAX_MESSAGE


def test_a_base_url_is_shown_without_its_password_even_unregistered() -> None:
    password = secrets.token_urlsafe(12)
    shown = shown_url(f"https://proxyuser:{password}@proxy.test/")
    assert password not in shown
    assert shown.startswith("https://proxyuser:")
    assert shown.endswith("@proxy.test")


def test_an_unreachable_api_behind_a_password_url_never_shows_it(
    api: respx.MockRouter,
) -> None:
    password = secrets.token_urlsafe(12)
    base = f"https://proxyuser:{password}@api.test"
    api.get("/thing").mock(side_effect=httpx.ConnectError("connection refused"))
    with build_http_client(base, {}) as http:
        error = failed(ApiClient(http, retry=fast()))
    assert isinstance(error, ConnectionFailedError)
    assert "connection refused" in str(error)
    assert password not in f"{error} {error.hint}"


def test_a_base_urls_password_is_masked_wherever_it_shows_later() -> None:
    password = secrets.token_urlsafe(12)
    with build_http_client(f"https://proxyuser:{password}@api.test", {}):
        pass
    assert redact.scrub(f"proxy said {password}") == "proxy said ***"


@pytest.mark.parametrize("base", ["ftp://api.test", "https://", "api.test", "file:///etc"])
def test_a_base_url_that_cannot_work_is_bad_input_before_any_request(
    api: respx.MockRouter, base: str
) -> None:
    with pytest.raises(InputError, match="is not an http:// or https:// URL"):
        build_http_client(base, {})
    assert api.calls.call_count == 0


# ---- reading an error body defensively ---------------------------------------------------
@pytest.mark.parametrize(
    ("error", "message", "code"),
    [
        ({"message": "bad", "code": True}, "bad", None),  # a flag is no code
        ({"message": "bad", "code": "c" * 500}, "bad", "c" * 100),  # a code is short
        ({"message": "   ", "code": "x"}, "Bad Request", "x"),  # blank: no message
    ],
)
def test_an_error_bodys_odd_fields_are_not_shown_as_they_are(
    api: respx.MockRouter, error: dict[str, object], message: str, code: str | None
) -> None:
    api.get("/thing").respond(400, json={"error": error})
    with build_http_client(BASE, {}) as http:
        failure = failed(ApiClient(http, retry=fast()))
    assert (failure.api_message.split(" (")[0], failure.code) == (message, code)


# ---- pagination that never ends ------------------------------------------------------------
def test_a_vercel_listing_whose_cursor_never_ends_fails_instead_of_looking_complete(
    api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc sweeps what a listing leaves out: a cut-off listing must never pass for whole."""
    monkeypatch.setattr(vercel, "_MAX_PAGES", 3)

    def page(request: httpx.Request) -> httpx.Response:
        after = int(request.url.params.get("until", "0"))
        envs = [{"id": f"e{after}", "key": f"K{after}"}]
        return httpx.Response(200, json={"envs": envs, "pagination": {"next": after + 1}})

    route = api.get("/v10/projects/web/env").mock(side_effect=page)
    with build_http_client(BASE, {}) as http, pytest.raises(ApiError, match="more than 3 pages"):
        VercelClient(http, retry=fast()).list_env("web")
    assert route.call_count == 3


def test_a_github_listing_whose_next_link_never_ends_fails(
    api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(github, "_MAX_PAGES", 3)

    def page(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("page", "1"))
        link = f'<{BASE}/repos/o/r/pulls?state=open&page={n + 1}>; rel="next"'
        item = {"number": n, "state": "open", "head": {"ref": f"b{n}"}}
        return httpx.Response(200, json=[item], headers={"Link": link})

    route = api.get("/repos/o/r/pulls").mock(side_effect=page)
    with build_http_client(BASE, {}) as http, pytest.raises(ApiError, match="more than 3 pages"):
        GitHubClient(http, retry=fast()).list_open_pulls("o/r")
    assert route.call_count == 3


# ---- Vercel's 201 with failed[] --------------------------------------------------------------
@pytest.mark.parametrize("field", ["key", "code"])
def test_a_failed_env_item_echoing_a_secret_is_redacted(api: respx.MockRouter, field: str) -> None:
    """Every part of a failed[] item that reaches the error is scrubbed, its key and code too."""
    value = secret()
    error = {"code": "ENV_CONFLICT", "message": "conflicts", "key": "A"}
    error[field] = f"{error[field]}-{value}"
    api.post("/v10/projects/web/env").respond(201, json={"failed": [{"error": error}]})
    item = EnvInput(key="A", value="v", git_branch="feat")
    with build_http_client(BASE, {}) as http, pytest.raises(ApiError) as caught:
        VercelClient(http, retry=fast()).upsert_env("web", [item])
    assert "1 of 1 env vars were not written" in str(caught.value)
    assert value not in f"{caught.value} {caught.value.code}"


# ---- GitHub: answers that are no answer ---------------------------------------------------
def test_a_page_that_is_not_a_list_of_objects_fails_the_listing(api: respx.MockRouter) -> None:
    api.get("/repos/o/r/pulls").respond(200, json=[{"number": 1}, 2])
    with build_http_client(BASE, {}) as http, pytest.raises(ApiError, match="not a list of obj"):
        GitHubClient(http, retry=fast()).list_open_pulls("o/r")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"number": 8, "state": "closed"}, "the answer is about PR #8"),
        ({"number": 7, "state": "merged"}, "a state GitHub never sends"),
    ],
)
def test_a_pull_request_answer_about_something_else_is_an_error_not_closed(
    api: respx.MockRouter, answer: dict[str, object], problem: str
) -> None:
    """gc would take such an answer for "closed" and remove a live preview."""
    api.get("/repos/o/r/pulls/7").respond(200, json={**answer, "head": {"ref": "b"}})
    with build_http_client(BASE, {}) as http, pytest.raises(ApiError, match=problem):
        GitHubClient(http, retry=fast()).get_pull("o/r", 7)


@pytest.mark.parametrize("repo", ["../..", "o/..", "o/r/x", "o/r\n"])
def test_a_repository_that_could_escape_its_path_is_bad_input_before_any_request(
    api: respx.MockRouter, repo: str
) -> None:
    with build_http_client(BASE, {}) as http, pytest.raises(InputError, match="owner/name"):
        GitHubClient(http, retry=fast()).get_pull(repo, 7)
    assert api.calls.call_count == 0


# ---- GitHub deployments: made once ----------------------------------------------------------
DEPLOYMENTS = "/repos/o/r/deployments"


def deployments(http: httpx.Client) -> DeploymentsApi:
    return DeploymentsApi(GitHubClient(http, retry=fast()))


def create(api: DeploymentsApi, find: Callable[[], Deployment | None]) -> Deployment:
    return api.create(
        "o/r", ref="feat", environment="preview", description="d" * 300, payload={}, find=find
    )


def test_a_deployment_is_made_so_that_nothing_else_is_merged_or_waited_for(
    api: respx.MockRouter,
) -> None:
    route = api.post(DEPLOYMENTS).respond(201, json={"id": 1, "ref": "feat"})
    with build_http_client(BASE, {}) as http:
        made = create(deployments(http), find=lambda: None)
    assert made.id == 1
    sent = json.loads(route.calls.last.request.content)
    assert sent["auto_merge"] is False
    assert sent["required_contexts"] == []
    assert sent["description"] == "d" * MAX_STATUS_DESCRIPTION


def test_a_202_that_merged_instead_of_deploying_is_an_error(api: respx.MockRouter) -> None:
    api.post(DEPLOYMENTS).respond(202, json={"message": "Auto-merged main into feat"})
    with build_http_client(BASE, {}) as http, pytest.raises(ApiError) as caught:
        create(deployments(http), find=lambda: None)
    assert (caught.value.status, caught.value.api_message) == (202, "Auto-merged main into feat")


def test_a_lost_create_answer_finds_the_deployment_instead_of_making_a_second(
    api: respx.MockRouter,
) -> None:
    route = api.post(DEPLOYMENTS).mock(side_effect=httpx.ReadError("connection reset"))
    theirs = Deployment(id=9, ref="feat")
    with build_http_client(BASE, {}) as http:
        found = create(deployments(http), find=lambda: theirs)
    assert found is theirs
    assert route.call_count == 1


STATUSES = "/repos/o/r/deployments/1/statuses"


def status(id: int, state: str) -> dict[str, object]:
    return {"id": id, "state": state}


@pytest.mark.parametrize(
    ("before", "latest_after_loss", "posts", "result"),
    [
        ("in_progress", status(6, "success"), 1, 6),  # GitHub added it: found, not twice
        ("in_progress", status(5, "in_progress"), 2, 7),  # still the one before: again
        ("in_progress", status(6, "failure"), 2, 7),  # newer, another state: not ours
        ("success", status(5, "success"), 2, 7),  # the one before, in that state: again
    ],
)
def test_a_status_whose_answer_was_lost_is_looked_for_before_it_is_added_again(
    api: respx.MockRouter,
    before: str,
    latest_after_loss: dict[str, object],
    posts: int,
    result: int,
) -> None:
    api.get(STATUSES).respond(200, json=[latest_after_loss])
    route = api.post(STATUSES).mock(
        side_effect=[httpx.ReadError("reset"), httpx.Response(201, json=status(7, "success"))]
    )
    after = DeploymentStatus(id=5, state=before)
    with build_http_client(BASE, {}) as http:
        added = deployments(http).set_status("o/r", 1, "success", after=after)
    assert (route.call_count, added.id) == (posts, result)


# ---- Fly: an answer that is not the documented shape ---------------------------------------
@pytest.mark.parametrize("body", ["<html>busy</html>", '{"machines": 3}', "[1, 2]"])
def test_a_fly_answer_of_the_wrong_shape_is_an_api_error_not_a_crash(body: str) -> None:
    with respx.mock(base_url=DEFAULT_BASE_URL) as router:
        router.get("/v1/apps/a/machines").respond(200, text=body)
        with build_http_client(DEFAULT_BASE_URL, {}) as http:
            fly = FlyClient(http, retry=fast())
            with pytest.raises(ApiError, match="not what the Machines API documents"):
                fly.list_machines("a")


# ---- Fly's own retry loops (creates made once, the wait endpoint) ------------------------
APP, MID = "pr-7-agents", "m123"
MACHINES = f"/v1/apps/{APP}/machines"
IPS = f"/v1/apps/{APP}/ip_assignments"


@pytest.fixture
def fly_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=DEFAULT_BASE_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fly(sleeps: Sleeps) -> Iterator[FlyClient]:
    policy = RetryPolicy(max_wait=0.01, multiplier=0.001, sleep=sleeps)
    with build_http_client(DEFAULT_BASE_URL, {}) as http:
        yield FlyClient(http, retry=policy)


def machine(**extra: object) -> dict[str, object]:
    return {"id": MID, "state": "created", "region": "iad", **extra}


def limited(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(429, json={"error": "rate limit exceeded"}, headers=headers)


@pytest.mark.parametrize(("retry_after", "waited"), [("3", 3.0), (None, 1.0)])
def test_a_rate_limited_create_waits_as_fly_asks_or_a_second(
    fly_api: respx.MockRouter,
    fly: FlyClient,
    sleeps: Sleeps,
    retry_after: str | None,
    waited: float,
) -> None:
    """Fly's creates are limited per second: its Retry-After when it says one, else 1 s."""
    create = fly_api.post(MACHINES).mock(
        side_effect=[limited(retry_after), httpx.Response(200, json=machine())]
    )
    lookup = fly_api.get(MACHINES).respond(json=[])
    assert fly.create_machine(APP, config={}, region="iad").id == MID
    assert (create.call_count, sleeps.calls) == (2, [waited])
    assert lookup.call_count == 0  # a 429 says nothing was made: nothing to look for


def test_a_rate_limited_ip_allocation_waits_as_fly_asks(
    fly_api: respx.MockRouter, fly: FlyClient, sleeps: Sleeps
) -> None:
    fly_api.post(IPS).mock(side_effect=[limited("2"), httpx.Response(200, json={"ip": "2a09::2"})])
    assert fly.allocate_ip(APP, "v6").ip == "2a09::2"
    assert sleeps.calls == [2.0]


def test_the_wait_endpoint_asks_again_at_once_on_408_and_as_fly_asks_on_429(
    fly_api: respx.MockRouter, fly: FlyClient, sleeps: Sleeps
) -> None:
    timeout = httpx.Response(408, json={"error": "deadline_exceeded"})
    route = fly_api.get(f"{MACHINES}/{MID}/wait").mock(
        side_effect=[timeout, limited("4"), timeout, httpx.Response(200, json={"ok": True})]
    )
    fly.wait(APP, MID, "started", deadline=time.monotonic() + 300)
    assert (route.call_count, sleeps.calls) == (4, [0.0, 4.0, 0.0])


def test_a_wait_whose_deadline_has_passed_asks_nothing(
    fly_api: respx.MockRouter, fly: FlyClient
) -> None:
    route = fly_api.get(f"{MACHINES}/{MID}/wait").respond(200, json={"ok": True})
    with pytest.raises(TimeoutExceededError, match="did not reach 'started' in time"):
        fly.wait(APP, MID, "started", deadline=time.monotonic() - 1)
    assert route.call_count == 0


def test_releasing_a_lease_that_expired_meanwhile_is_no_error(
    fly_api: respx.MockRouter, fly: FlyClient
) -> None:
    route = fly_api.delete(f"{MACHINES}/{MID}/lease").respond(404, json={"error": "no lease"})
    fly.release_lease(APP, MID, "nonce-1")
    assert route.calls.last.request.headers["fly-machine-lease-nonce"] == "nonce-1"


@pytest.mark.parametrize(
    "listing",
    [
        httpx.Response(200, json={"ips": [{"ip": "2a09::1"}]}),  # only the one we knew
        httpx.Response(400, json={"error": "cannot list"}),  # cannot tell
    ],
)
def test_a_lost_ip_allocation_counts_only_a_new_address_as_made(
    fly_api: respx.MockRouter, fly: FlyClient, listing: httpx.Response
) -> None:
    """An address that was there before is not what the lost request made: ask again."""
    alloc = fly_api.post(IPS).mock(
        side_effect=[httpx.ReadError("reset"), httpx.Response(200, json={"ip": "2a09::2"})]
    )
    fly_api.get(IPS).mock(return_value=listing)
    assert fly.allocate_ip(APP, "v6", known=["2a09::1"]).ip == "2a09::2"
    assert alloc.call_count == 2


def test_a_lost_ip_allocation_that_fly_made_is_found_not_made_twice(
    fly_api: respx.MockRouter, fly: FlyClient
) -> None:
    alloc = fly_api.post(IPS).mock(side_effect=httpx.ReadError("reset"))
    fly_api.get(IPS).respond(json={"ips": [{"ip": "2a09::1"}, {"ip": "2a09::9"}]})
    assert fly.allocate_ip(APP, "v6", known=["2a09::1"]).ip == "2a09::9"
    assert alloc.call_count == 1


def test_a_lost_create_whose_lookup_fails_is_tried_again_with_the_same_key(
    fly_api: respx.MockRouter, fly: FlyClient
) -> None:
    create = fly_api.post(MACHINES).mock(
        side_effect=[httpx.ReadError("reset"), httpx.Response(200, json=machine())]
    )
    fly_api.get(MACHINES).respond(400, json={"error": "cannot list"})
    assert fly.create_machine(APP, config={}, region="iad").id == MID
    keys = [json.loads(c.request.content)["config"]["metadata"] for c in create.calls]
    assert len(keys) == 2
    assert keys[0] == keys[1]


# ---- flyctl proxy's own words ---------------------------------------------------------------
def flyctl_saying(tmp_path: Path, *, stdout: str = "", stderr: str = "", code: int = 0) -> str:
    """A flyctl that says exactly this, then (code 0) watches its stdin as --watch-stdin does."""
    script = tmp_path / "flyctl"
    lines = [
        f"import sys; sys.stdout.write({stdout!r}); sys.stdout.flush()",
        f"sys.stderr.write({stderr!r}); sys.stderr.flush()",
        f"sys.exit({code})" if code else "sys.stdin.read()",
    ]
    script.write_text(f"#!{sys.executable}\n" + "\n".join(lines) + "\n")
    script.chmod(0o755)
    return str(script)


def tunnel_set(flyctl: str) -> TunnelSet:
    reporter = quiet_reporter()
    db = TunnelSpec(
        name="db", app=APP, remote_host=f"{MID}.vm.{APP}.internal", remote_port=5432, local_port=0
    )
    return TunnelSet([db], flyctl=flyctl, env=dict(os.environ), reporter=reporter)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_the_ready_line_is_read_whichever_loopback_name_it_uses(tmp_path: Path, host: str) -> None:
    ready = f"Proxying {host}:4321 to remote [{MID}.vm.{APP}.internal]:5432\n"
    with tunnel_set(flyctl_saying(tmp_path, stdout=ready)) as tunnels:
        assert tunnels.tunnels["db"].port == 4321


def test_a_machine_missing_from_private_dns_is_explained(tmp_path: Path) -> None:
    flyctl = flyctl_saying(tmp_path, stderr="Error: host was not found in DNS\n", code=1)
    with pytest.raises(TunnelError) as caught:
        tunnel_set(flyctl).__enter__()
    assert "host was not found in DNS" in str(caught.value)
    assert caught.value.hint == (
        "the machine is not started (a stopped machine is not in Fly's private DNS)"
    )


# ---- Vercel pages and GitHub's rate-limit reset ----------------------------------------------
@pytest.mark.parametrize(
    "page",
    [["not", "a", "page"], {"envs": {"id": "e1"}}, {"envs": [{"id": "e1", "key": "A"}, "e2"]}],
)
def test_a_vercel_page_that_is_not_a_page_fails_instead_of_ending_the_listing(
    api: respx.MockRouter, page: object
) -> None:
    """A cut-off listing would pass for the whole one: down and gc would leave vars behind."""
    api.get("/v10/projects/web/env").respond(200, json=page)
    with build_http_client(BASE, {}) as http, pytest.raises(ApiError, match="not a page of envs"):
        VercelClient(http, retry=fast()).list_env("web")


def test_a_failed_env_items_message_is_redacted_by_its_structure_too(
    api: respx.MockRouter,
) -> None:
    password = secrets.token_urlsafe(9)  # never registered: only its place gives it away
    message = f"value postgres://app:{password}@db.test/app is invalid"
    error = {"code": "BAD_REQUEST", "message": message, "key": "DATABASE_URL"}
    api.post("/v10/projects/web/env").respond(201, json={"failed": [{"error": error}]})
    item = EnvInput(key="DATABASE_URL", value="v", git_branch="feat")
    with build_http_client(BASE, {}) as http, pytest.raises(ApiError) as caught:
        VercelClient(http, retry=fast()).upsert_env("web", [item])
    assert "postgres://app:***@db.test/app" in str(caught.value)
    assert password not in str(caught.value)


def test_a_rate_limit_reset_is_waited_for_only_when_the_limit_is_used_up(
    api: respx.MockRouter,
) -> None:
    """A 502 that happens to carry x-ratelimit-reset is a hiccup, not a used-up limit."""
    now = 1_700_000_000.0
    headers = {"x-ratelimit-remaining": "4999", "x-ratelimit-reset": str(int(now + 30))}
    api.get("/repos/o/r/pulls/7").mock(
        side_effect=[
            httpx.Response(502, json={"message": "bad gateway"}, headers=headers),
            httpx.Response(200, json={"number": 7, "state": "open", "head": {"ref": "b"}}),
        ]
    )
    waits = Sleeps()
    policy = RetryPolicy(max_wait=0.01, multiplier=0.001, sleep=waits)
    with build_http_client(BASE, {}) as http:
        assert GitHubClient(http, retry=policy, clock=lambda: now).get_pull("o/r", 7) is not None
    assert len(waits.calls) == 1
    assert waits.calls[0] <= 0.01


def test_fly_create_gives_up_at_the_policys_deadline(fly_api: respx.MockRouter) -> None:
    busy = httpx.Response(503, json={"error": "busy"})
    create = fly_api.post(MACHINES).mock(
        side_effect=[busy, busy, busy, httpx.Response(200, json=machine())]
    )
    fly_api.get(MACHINES).respond(json=[])
    policy = RetryPolicy(deadline=0.0, max_wait=0.01, multiplier=0.001, sleep=Sleeps())
    fly = FlyClient(build_http_client(DEFAULT_BASE_URL, {}), retry=policy)
    with fly.http, pytest.raises(TransientApiError, match="busy"):
        fly.create_machine(APP, config={}, region="iad")
    assert create.call_count == 1


# ---- Fly app ownership, as converge judges it --------------------------------------------------
APP_OF_PR = "pr-5-svc"  # BASIC_TOML's [app] name for PR 5, in org "acme"


@pytest.fixture
def ctx(tmp_path: Path, fly: FlyClient) -> converge.Ctx:
    config = load_config(Project(tmp_path).write(BASIC_TOML).config)
    return converge.Ctx(fly=fly, config=config, reporter=quiet_reporter())


def app_json(org: str) -> dict[str, object]:
    return {"id": "a1", "name": APP_OF_PR, "organization": {"slug": org}}


def test_an_app_a_token_of_two_orgs_sees_in_the_other_one_is_never_touched(
    fly_api: respx.MockRouter, ctx: converge.Ctx
) -> None:
    """A token that belongs to two orgs sees both: only [app] org's app is previewctl's."""
    fly_api.get(f"/v1/apps/{APP_OF_PR}").respond(200, json=app_json("personal"))
    create = fly_api.post("/v1/apps").respond(201, json=app_json("acme"))
    with pytest.raises(NotManagedError, match="belongs to organization 'personal', not 'acme'"):
        converge.ensure_app(ctx, APP_OF_PR)
    assert create.call_count == 0


@pytest.mark.parametrize(("org", "ours"), [("acme", True), ("personal", False)])
def test_a_taken_name_is_ours_only_when_fly_shows_it_in_our_org(
    fly_api: respx.MockRouter, ctx: converge.Ctx, org: str, ours: bool
) -> None:
    """Our earlier try, or a racing run, took the name: adopted once Fly shows it in our org."""
    taken = httpx.Response(422, json={"error": "app name taken", "status": "name_taken"})
    fly_api.get(f"/v1/apps/{APP_OF_PR}").mock(
        side_effect=[
            httpx.Response(404, json={"error": "not found"}),
            httpx.Response(200, json=app_json(org)),
        ]
    )
    fly_api.post("/v1/apps").mock(return_value=taken)
    if ours:
        assert converge.ensure_app(ctx, APP_OF_PR) == (False, "acme")
    else:
        with pytest.raises(NotManagedError, match="belongs to organization 'personal'"):
            converge.ensure_app(ctx, APP_OF_PR)


def test_a_taken_name_fly_never_shows_us_is_someone_elses_by_our_deadline(
    fly_api: respx.MockRouter, ctx: converge.Ctx
) -> None:
    """App names are global: one Fly never shows this token is another's, once time is up."""
    missing = httpx.Response(404, json={"error": "not found"})
    lookups = fly_api.get(f"/v1/apps/{APP_OF_PR}").mock(
        side_effect=[missing, missing, missing, httpx.Response(200, json=app_json("acme"))]
    )
    taken = httpx.Response(422, json={"error": "app name taken", "status": "name_taken"})
    fly_api.post("/v1/apps").mock(return_value=taken)
    with pytest.raises(NotManagedError, match="by an app this token cannot see") as caught:
        converge.ensure_app(ctx, APP_OF_PR, deadline=time.monotonic() - 1)
    assert caught.value.hint is not None
    assert "change [app] name" in caught.value.hint
    assert lookups.call_count == 2  # the look before the create, and one at the deadline


def test_a_new_app_is_waited_for_until_fly_shows_it(
    fly_api: respx.MockRouter, ctx: converge.Ctx
) -> None:
    """fly-go's WaitForApp: a just-created app answers 404 for a while."""
    missing = httpx.Response(404, json={"error": "not found"})
    fly_api.get(f"/v1/apps/{APP_OF_PR}").mock(
        side_effect=[missing, missing, missing, httpx.Response(200, json=app_json("acme"))]
    )
    create = fly_api.post("/v1/apps").respond(201, json=app_json("acme"))
    assert converge.ensure_app(ctx, APP_OF_PR) == (True, "acme")
    assert create.call_count == 1


def test_a_taken_name_that_turns_out_to_be_another_orgs_is_never_touched(
    fly_api: respx.MockRouter, ctx: converge.Ctx
) -> None:
    forbidden = httpx.Response(403, json={"error": "unauthorized"})
    fly_api.get(f"/v1/apps/{APP_OF_PR}").mock(
        side_effect=[httpx.Response(404, json={"error": "not found"}), forbidden]
    )
    taken = httpx.Response(422, json={"error": "app name taken", "status": "name_taken"})
    fly_api.post("/v1/apps").mock(return_value=taken)
    with pytest.raises(NotManagedError, match="belongs to another Fly organization"):
        converge.ensure_app(ctx, APP_OF_PR)


# ---- waiting for a machine to be healthy -------------------------------------------------------
WAIT = f"{MACHINES}/{MID}/wait"


def machine_in(state: str, check: str = "passing") -> httpx.Response:
    return httpx.Response(
        200, json=machine(state=state, checks=[{"name": "http", "status": check}])
    )


def healthy_after(fly: FlyClient) -> Machine:
    return health.wait_healthy(
        fly, APP, MID, deadline=time.monotonic() + 300, reporter=quiet_reporter()
    )


@pytest.mark.parametrize("on_the_way", ["starting", "replacing", "updating", "created"])
def test_a_machine_on_its_way_to_started_is_waited_for(
    fly_api: respx.MockRouter, fly: FlyClient, on_the_way: str
) -> None:
    fly_api.get(WAIT).respond(200, json={"ok": True})
    looks = fly_api.get(f"{MACHINES}/{MID}").mock(
        side_effect=[machine_in(on_the_way, "critical"), machine_in("started")]
    )
    assert healthy_after(fly).state == "started"
    assert looks.call_count == 2


@pytest.mark.parametrize(
    ("wait", "look", "error"),
    [
        (httpx.Response(404, json={"error": "not found"}), None, MachineGoneError),
        (None, httpx.Response(404, json={"error": "not found"}), MachineGoneError),
        (None, machine_in("destroyed"), MachineGoneError),
        (None, machine_in("stopped", "critical"), PreviewctlError),
    ],
    ids=["gone-at-wait", "gone-at-look", "destroyed", "stopped"],
)
def test_a_machine_that_will_never_be_healthy_fails_at_once(
    fly_api: respx.MockRouter,
    fly: FlyClient,
    wait: httpx.Response | None,
    look: httpx.Response | None,
    error: type[PreviewctlError],
) -> None:
    """Gone (a racer removed it: converge again) or stopped: not a wait until the deadline."""
    fly_api.get(WAIT).mock(return_value=wait or httpx.Response(200, json={"ok": True}))
    looks = fly_api.get(f"{MACHINES}/{MID}").mock(
        side_effect=[look or machine_in("started"), machine_in("started")]
    )
    with pytest.raises(error) as caught:
        healthy_after(fly)
    assert type(caught.value) is error
    assert looks.call_count == (0 if wait is not None else 1)


def test_what_a_failing_flyctl_printed_is_shown_scrubbed(tmp_path: Path) -> None:
    value = secret()
    flyctl = flyctl_saying(tmp_path, stderr=f"Error: token {value} rejected\n", code=1)
    with pytest.raises(TunnelError) as caught:
        tunnel_set(flyctl).__enter__()
    assert "Error: token *** rejected" in str(caught.value)
    assert value not in str(caught.value)


def test_two_tunnels_of_one_name_are_bad_input_before_any_process(tmp_path: Path) -> None:
    db = TunnelSpec(name="db", app=APP, remote_host="h", remote_port=5432, local_port=0)
    flyctl = flyctl_saying(tmp_path, stdout="never run\n")
    with pytest.raises(InputError, match="duplicate tunnel names: db"):
        TunnelSet([db, db], flyctl=flyctl, env={}, reporter=quiet_reporter())
