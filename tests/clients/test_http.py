"""The shared HTTP layer: Retry-After, the overall deadline, error messages."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from previewctl import redact
from previewctl.clients.http import (
    MAX_RETRY_AFTER,
    USER_AGENT,
    ApiClient,
    RetryPolicy,
    build_http_client,
    parse_retry_after,
)
from previewctl.errors import (
    ApiError,
    ConflictError,
    ConnectionFailedError,
    NotFoundError,
    TransientApiError,
)
from tests.support.inprocess import Sleeps

BASE = "https://api.test"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def make_client(policy: RetryPolicy, log: list[str] | None = None) -> ApiClient:
    http = build_http_client(BASE, {"Authorization": "Bearer t"})
    return ApiClient(http, retry=policy, on_request=log.append if log is not None else None)


def fast(*, deadline: float = 120.0, attempts: int = 8) -> RetryPolicy:
    return RetryPolicy(max_wait=0.01, multiplier=0.001, deadline=deadline, attempts=attempts)


# ---- parse_retry_after ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("3600", MAX_RETRY_AFTER),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP date in the past: now
        ("Wed, 21 Oct 2099 07:28:00 GMT", MAX_RETRY_AFTER),  # far ahead: capped
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_is_capped_at_60() -> None:
    assert MAX_RETRY_AFTER == 60.0
    assert parse_retry_after("61") == 60.0


# ---- retries ----------------------------------------------------------------------------
def test_retry_after_header_is_the_wait(api: respx.MockRouter) -> None:
    route = api.get("/x")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "1.5"}, json={"error": "slow down"}),
        httpx.Response(200, json={"ok": True}),
    ]
    sleeps = Sleeps()
    client = make_client(RetryPolicy(sleep=sleeps))
    assert client.request("GET", "/x").json() == {"ok": True}
    assert sleeps.calls == [1.5]
    assert client.calls == 2


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_every_transient_status_is_tried_again(api: respx.MockRouter, status: int) -> None:
    route = api.get("/x")
    route.side_effect = [
        httpx.Response(status, json={"error": "not now"}),
        httpx.Response(200, json={"ok": True}),
    ]
    client = make_client(fast())
    assert client.request("GET", "/x").json() == {"ok": True}
    assert route.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_client_errors_are_not_tried_again(api: respx.MockRouter, status: int) -> None:
    route = api.get("/x").respond(status, json={"error": "no"})
    with pytest.raises(ApiError, match="no"):
        make_client(fast()).request("GET", "/x")
    assert route.call_count == 1


def test_a_failing_lookup_after_a_maybe_done_create_means_try_again(
    api: respx.MockRouter,
) -> None:
    """The lookup cannot tell (it fails too): a second create is the lesser harm."""
    post = api.post("/things")
    post.side_effect = [
        httpx.Response(502, json={"error": "bad gateway"}),
        httpx.Response(201, json={"id": "t1"}),
    ]
    lookups: list[str] = []

    def find() -> str | None:
        lookups.append("looked")
        raise ApiError("API", "forbidden", status=403)

    client = make_client(fast())
    made = client.create_once("POST", "/things", build=lambda r: r.json()["id"], find=find)
    assert made == "t1"
    assert post.call_count == 2
    assert lookups == ["looked"]


def test_overall_deadline_stops_retries(api: respx.MockRouter) -> None:
    route = api.get("/down").respond(503, json={"error": "unavailable"})
    now = [0.0]  # the policy's clock, moved by its sleeps only: no real time is measured

    def sleep(seconds: float) -> None:
        now[0] += seconds

    policy = RetryPolicy(
        deadline=0.2, attempts=10_000, max_wait=0.01, sleep=sleep, clock=lambda: now[0]
    )
    with pytest.raises(TransientApiError, match="unavailable") as info:
        make_client(policy).request("GET", "/down")
    assert info.value.status == 503
    assert now[0] < 0.2  # no wait was started that would end past the deadline
    assert 20 <= route.call_count < 10_000  # waits of at most 0.01 s: 20 fit at least


def test_deadline_is_not_overslept_for_a_long_retry_after(api: respx.MockRouter) -> None:
    # The server asks for 30 s but only 1 s of the deadline is left: give up now
    # instead of sleeping past the deadline.
    route = api.get("/busy").respond(429, headers={"Retry-After": "30"}, json={"error": "busy"})
    sleeps = Sleeps()
    client = make_client(RetryPolicy(deadline=1.0, attempts=5, sleep=sleeps))
    with pytest.raises(TransientApiError, match="busy"):
        client.request("GET", "/busy")
    assert sum(sleeps.calls) <= 1.0
    assert route.call_count == 1


def test_attempts_limit_retries(api: respx.MockRouter) -> None:
    route = api.get("/down").respond(502, text="bad gateway")
    client = make_client(fast(attempts=3))
    with pytest.raises(TransientApiError):
        client.request("GET", "/down")
    assert route.call_count == 3


def test_retry_false_sends_once(api: respx.MockRouter) -> None:
    route = api.get("/down").respond(503)
    with pytest.raises(TransientApiError):
        make_client(fast()).request("GET", "/down", retry=False)
    assert route.call_count == 1


def test_connection_error_without_retry_is_transient(api: respx.MockRouter) -> None:
    api.get("/x").side_effect = httpx.ConnectError("[Errno 111] Connection refused")
    with pytest.raises(TransientApiError) as info:
        make_client(fast()).request("GET", "/x", retry=False)
    assert info.value.status is None
    assert str(info.value) == (
        "cannot reach the API at https://api.test (GET /x): connection refused"
    )


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ConnectError("[Errno -2] Name or service not known"), "does not resolve (DNS)"),
        (httpx.ConnectTimeout("timed out"), "the connection timed out"),
        (httpx.ReadTimeout("timed out"), "no answer in time"),
        (httpx.RemoteProtocolError("Server disconnected"), "closed without an answer"),
    ],
)
def test_an_unreachable_api_is_named_with_its_url_and_what_to_check(
    api: respx.MockRouter, exc: Exception, reason: str
) -> None:
    class Named(ApiClient):
        api_title = "Fly Machines API"
        url_env = "FLY_API_BASE_URL"
        status_page = "https://status.flyio.net"

    api.get("/v1/apps").side_effect = exc
    retries: list[str] = []
    client = Named(build_http_client(BASE, {}), retry=fast())
    client.on_retry = retries.append
    with pytest.raises(ConnectionFailedError) as info:
        client.request("GET", "/v1/apps")
    error = info.value
    assert str(error).startswith(
        "cannot reach the Fly Machines API at https://api.test (GET /v1/apps)"
    )
    assert reason in str(error)
    assert "gave up after retrying for" in str(error)
    assert error.hint is not None
    assert "FLY_API_BASE_URL (now https://api.test)" in error.hint
    assert "https://status.flyio.net" in error.hint
    # every retry was said, with what is wrong and where
    assert len(retries) == fast().attempts - 1
    assert retries[0].startswith("Fly Machines API at https://api.test is unreachable (")
    assert retries[-1].endswith(f"retry {len(retries)} of {len(retries)} in 0.0s")


def test_retries_of_answers_are_said_too(api: respx.MockRouter) -> None:
    api.get("/x").side_effect = [httpx.Response(503), httpx.Response(429), httpx.Response(200)]
    retries: list[str] = []
    client = make_client(fast())
    client.on_retry = retries.append
    client.request("GET", "/x")
    assert retries[0].startswith("API answered 503 (GET /x): retry 1 of")
    assert retries[1].startswith("API is rate limiting (GET /x): retry 2 of")


# ---- errors -----------------------------------------------------------------------------
def test_non_json_error_body_is_never_shown(api: respx.MockRouter) -> None:
    """A body without a message field may echo the request (env, secrets): only its
    size and type are said, never its text."""
    text = "  plain failure text POSTGRES_PASSWORD hunter2 \n"
    route = api.get("/x").respond(400, text=text)
    with pytest.raises(ApiError) as info:
        make_client(fast()).request("GET", "/x")
    message = info.value.api_message
    assert message == (
        f"Bad Request (a {len(text)}-byte text/plain body without a message field; not shown)"
    )
    assert "hunter2" not in str(info.value)
    assert route.call_count == 1


def test_empty_error_body_gives_the_reason_phrase(api: respx.MockRouter) -> None:
    api.get("/x").respond(403)
    with pytest.raises(ApiError) as info:
        make_client(fast()).request("GET", "/x")
    assert info.value.api_message == "Forbidden"


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        ({"error": "name taken", "status": "name_taken"}, "name taken", "name_taken"),
        ({"error": {"message": "bad value", "code": "invalid"}}, "bad value", "invalid"),
        ({"message": "nope", "code": "E1"}, "nope", "E1"),
        (
            ["unexpected", "s3cret"],
            "Bad Request (a 23-byte application/json body without a message field; not shown)",
            None,
        ),
        (
            {"error": {"code": "bad", "value": "s3cret"}},
            "Bad Request (a 41-byte application/json body without a message field; not shown)",
            "bad",
        ),
    ],
)
def test_json_error_shapes(
    api: respx.MockRouter, body: object, message: str, code: str | None
) -> None:
    api.get("/x").respond(400, json=body)
    with pytest.raises(ApiError) as info:
        make_client(fast()).request("GET", "/x")
    assert (info.value.api_message, info.value.code) == (message, code)


@pytest.mark.parametrize(
    ("status", "kind"), [(404, NotFoundError), (409, ConflictError), (422, ConflictError)]
)
def test_status_maps_to_error_type(
    api: respx.MockRouter, status: int, kind: type[ApiError]
) -> None:
    route = api.get("/x").respond(status, json={"error": "e"})
    with pytest.raises(kind):
        make_client(fast()).request("GET", "/x")
    assert route.call_count == 1


def test_error_message_is_scrubbed(api: respx.MockRouter) -> None:
    redact.register("leaky-secret-value")
    api.get("/x").respond(400, json={"error": "bad password leaky-secret-value"})
    with pytest.raises(ApiError) as info:
        make_client(fast()).request("GET", "/x")
    assert "leaky-secret-value" not in str(info.value)
    assert "***" in str(info.value)


def test_on_request_logs_each_attempt(api: respx.MockRouter) -> None:
    api.get("/x").side_effect = [httpx.ConnectError("down"), httpx.Response(200, json={})]
    log: list[str] = []
    make_client(fast(), log).request("GET", "/x")
    assert log[0] == "API GET /x !! ConnectError"
    assert log[1].startswith("API GET /x -> 200 (")


def test_build_http_client_sets_headers_and_base_url(api: respx.MockRouter) -> None:
    route = api.get("/v1/ping").respond(200, json={})
    with build_http_client(BASE + "/", {"Authorization": "Bearer t"}) as http:
        http.get("/v1/ping")
    request = route.calls.last.request
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Authorization"] == "Bearer t"
    assert request.headers["Accept"] == "application/json"
