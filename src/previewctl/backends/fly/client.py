"""The Fly Machines REST API: apps, machines, wait, leases, metadata, IPs."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import httpx

from previewctl.backends.fly.models import App, IpAssignment, Lease, Machine, items, shape_problem
from previewctl.backends.fly.settings import auth_header, machines_base_url, token_from_env
from previewctl.clients.http import ApiClient, RetryPolicy, build_http_client
from previewctl.errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    TimeoutExceededError,
    TransientApiError,
)
from previewctl.retry import Backoff, Jitter, Retry

# The wait endpoint blocks at most 60 s server side.
WAIT_CHUNK = 60
IDEMPOTENCY_KEY = "previewctl_create_key"
# flyctl's WaitForApp gives a just-created app a minute to show up (404/401 until then).
APP_VISIBLE_TIMEOUT = 60.0
# flyctl's lease for a machine update (internal/machine/lease.go): two minutes.
LEASE_TTL = 120
NAME_TAKEN = "name_taken"
# What the wait endpoint may answer that is worth asking again (None: no answer at all).
_WAIT_AGAIN = frozenset({None, 408, 429, 500, 502, 503, 504})
# What Fly said before the status existed; fly-go falls back to it only without a status.
LEGACY_NAME_TAKEN = "Name has already been taken"


def is_name_taken(exc: ApiError) -> bool:
    """fly-go's rule: the body's ``status`` decides when there is one, the old prose if not."""
    if exc.code:
        return exc.code == NAME_TAKEN
    return LEGACY_NAME_TAKEN in exc.api_message


T = TypeVar("T")


class FlyClient(ApiClient):
    api_name = "Fly"
    api_title = "Fly Machines API"
    url_env = "FLY_API_BASE_URL"
    status_page = "https://status.flyio.net"

    def error_message(self, response: httpx.Response) -> tuple[str, str | None]:
        message, code = super().error_message(response)
        if code is None and LEGACY_NAME_TAKEN not in message and LEGACY_NAME_TAKEN in response.text:
            # fly-go reads that prose wherever it is; a body without a message field is
            # never shown, so only the phrase itself is taken from it
            message = f"{message}: {LEGACY_NAME_TAKEN}"
        return message, code

    def request_id(self, response: httpx.Response) -> str | None:
        value: str | None = response.headers.get("fly-request-id")
        return value

    def answer(self, response: httpx.Response, parse: Callable[[Any], T]) -> T:
        """``parse(body)``; a body that is not JSON or not the documented shape is an
        ApiError like any other failed call, never a crash (and never taken for "none")."""
        try:
            return parse(response.json())
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            raise ApiError(
                self.api_name,
                f"the answer is not what the Machines API documents ({shape_problem(exc)})",
                status=response.status_code,
                request_id=self.request_id(response),
                method=response.request.method,
                path=response.request.url.path,
            ) from None

    def _retry(self, backoff: Backoff) -> Retry:
        """The one retry primitive, sleeping as this client's policy does (tests: not)."""
        return Retry(backoff, sleep=self.retry.sleep)

    # ---- apps -----------------------------------------------------------------------
    def get_app(self, name: str) -> App | None:
        """The app, or None when the name is free. 403: another org owns it."""
        try:
            response = self.request("GET", f"/v1/apps/{name}")
        except NotFoundError:
            return None
        return self.answer(response, App.model_validate)

    def create_app(self, name: str, org: str) -> App:
        """fly-go's CreateApp: ``?wait=true`` and ``name`` (the 2024 spec's ``app_name`` is gone).

        The app may stay invisible for a while after this: see :meth:`wait_for_app`.
        """
        response = self.request(
            "POST", "/v1/apps", params={"wait": "true"}, json={"name": name, "org_slug": org}
        )
        data = response.json() if response.content else {}
        return App.model_validate({"name": name, **data})

    def wait_for_app(self, name: str, *, deadline: float) -> App:
        """Poll ``GET /v1/apps/{name}`` until it shows; 404 and 401 mean "not yet".

        flyctl does the same after every create (fly-go's WaitForApp): a new app is not
        visible at once. Anything else (403: another org's) fails at once.
        """

        def not_yet(exc: BaseException) -> bool:
            return isinstance(exc, ApiError) and exc.status in (401, 404)

        def too_late(exc: BaseException) -> TimeoutExceededError:
            status = exc.status if isinstance(exc, ApiError) else None
            return TimeoutExceededError(
                f"Fly did not show the app {name!r} in time (it answered {status})"
            )

        # flyctl's backoff: from 100 ms, doubling to 500 ms, jittered down to half
        return self._retry(Backoff(0.1, 0.5, jitter=Jitter.HALF)).call(
            lambda: App.model_validate(self.request("GET", f"/v1/apps/{name}").json()),
            retry_if=not_yet,
            deadline=deadline,
            give_up=too_late,
        )

    def list_apps(self, org: str) -> list[App]:
        response = self.request("GET", "/v1/apps", params={"org_slug": org})
        return self.answer(response, lambda d: [App.model_validate(a) for a in items(d, "apps")])

    def delete_app(self, name: str) -> bool:
        """False when the app was already gone."""
        try:
            self.request("DELETE", f"/v1/apps/{name}")
        except NotFoundError:
            return False
        return True

    # ---- machines ---------------------------------------------------------------------
    def list_machines(
        self, app: str, *, metadata: Mapping[str, str] | None = None
    ) -> list[Machine]:
        params = {f"metadata.{k}": v for k, v in (metadata or {}).items()}
        response = self.request("GET", f"/v1/apps/{app}/machines", params=params)
        return self.answer(response, lambda d: [Machine.model_validate(m) for m in items(d)])

    def get_machine(self, app: str, machine_id: str) -> Machine:
        response = self.request("GET", f"/v1/apps/{app}/machines/{machine_id}")
        return self.answer(response, Machine.model_validate)

    def create_machine(
        self, app: str, *, config: dict[str, Any], region: str, name: str | None = None
    ) -> Machine:
        """Create once even when a transient failure hides whether the first try worked.

        The config carries a unique metadata key; before trying again we look for it.
        """
        key = uuid.uuid4().hex
        config = {**config, "metadata": {**config.get("metadata", {}), IDEMPOTENCY_KEY: key}}
        body: dict[str, Any] = {"region": region, "config": config}
        if name:
            body["name"] = name
        got = self._post_once(f"/v1/apps/{app}/machines", body, lambda: self._find_by_key(app, key))
        return got if isinstance(got, Machine) else self.answer(got, Machine.model_validate)

    def _post_once(self, path: str, body: Any, find: Callable[[], T | None]) -> httpx.Response | T:
        """POST that must happen once: after a failure that may hide the work (a lost
        answer, a 5xx), ``find`` looks for the result before trying again; a 408 or 429
        is tried again after the wait Fly asks for (at least 1 s for a 429).
        Returns what ``find`` found, or the POST's answer."""

        def attempt() -> httpx.Response | T:
            try:
                return self.request("POST", path, json=body, retry=False)
            except TransientApiError as exc:
                if exc.status in (408, 429):
                    raise  # it says nothing was done: nothing to look for, as create_once
                found = find()
                if found is not None:
                    return found
                raise

        def rate_limited(exc: BaseException, delay: float) -> float:
            if (asked := _asked_wait(exc)) is not None:
                return asked
            return max(delay, 1.0) if isinstance(exc, ApiError) and exc.status == 429 else delay

        backoff = Backoff(0.2, max(0.2, self.retry.max_wait))
        return self._retry(backoff).call(
            attempt,
            retry_if=lambda exc: isinstance(exc, TransientApiError),
            deadline=time.monotonic() + self.retry.deadline,
            delay_for=rate_limited,
        )

    def _find_by_key(self, app: str, key: str) -> Machine | None:
        try:
            found = self.list_machines(app, metadata={IDEMPOTENCY_KEY: key})
        except ApiError:
            return None
        return found[0] if found else None

    def update_machine(
        self, app: str, machine_id: str, *, config: dict[str, Any], nonce: str | None = None
    ) -> Machine:
        response = self.request(
            "POST",
            f"/v1/apps/{app}/machines/{machine_id}",
            json={"config": config},
            headers=_lease_header(nonce),
        )
        return Machine.model_validate(response.json())

    def start_machine(self, app: str, machine_id: str, *, nonce: str | None = None) -> None:
        self.request(
            "POST", f"/v1/apps/{app}/machines/{machine_id}/start", headers=_lease_header(nonce)
        )

    def stop_machine(self, app: str, machine_id: str, *, nonce: str | None = None) -> None:
        self.request(
            "POST", f"/v1/apps/{app}/machines/{machine_id}/stop", headers=_lease_header(nonce)
        )

    def delete_machine(self, app: str, machine_id: str, *, nonce: str | None = None) -> bool:
        try:
            self.request(
                "DELETE",
                f"/v1/apps/{app}/machines/{machine_id}",
                params={"force": "true", "kill": "true"},  # docs say force, fly-go kill
                headers=_lease_header(nonce),
            )
        except NotFoundError:
            return False
        return True

    def set_metadata(
        self, app: str, machine_id: str, key: str, value: str, *, nonce: str | None = None
    ) -> None:
        """Set one metadata key. An empty value removes the key instead: neither Fly's docs
        nor fly-go say an empty value is kept, and a missing key reads back as empty."""
        if not value:
            self.delete_metadata(app, machine_id, key, nonce=nonce)
            return
        self.request(
            "POST",
            f"/v1/apps/{app}/machines/{machine_id}/metadata/{key}",
            json={"value": value},
            headers=_lease_header(nonce),
        )

    def delete_metadata(
        self, app: str, machine_id: str, key: str, *, nonce: str | None = None
    ) -> None:
        """Remove one metadata key (fly-go's DeleteMetadata); gone already is fine."""
        try:
            self.request(
                "DELETE",
                f"/v1/apps/{app}/machines/{machine_id}/metadata/{key}",
                headers=_lease_header(nonce),
            )
        except NotFoundError:
            return

    def wait(
        self,
        app: str,
        machine_id: str,
        state: str,
        *,
        deadline: float,
        instance_id: str | None = None,
    ) -> None:
        """Block on Fly's wait endpoint until ``state`` or the monotonic ``deadline``.

        The endpoint answers 408 after at most 60 s; we ask again until our deadline.
        """

        def too_late(_exc: BaseException | None = None) -> TimeoutExceededError:
            return TimeoutExceededError(
                f"machine {machine_id} of {app} did not reach '{state}' in time"
            )

        def ask() -> None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise too_late()
            chunk = max(1, min(WAIT_CHUNK, int(remaining)))
            params: dict[str, str | int] = {"state": state, "timeout": chunk}
            if instance_id:
                params["instance_id"] = instance_id
            self.request(
                "GET",
                f"/v1/apps/{app}/machines/{machine_id}/wait",
                params=params,
                timeout=httpx.Timeout(chunk + 15.0, connect=10.0),
                retry=False,
            )

        def again(exc: BaseException) -> bool:
            return isinstance(exc, TransientApiError) and exc.status in _WAIT_AGAIN

        def pause(exc: BaseException, delay: float) -> float:
            # 408 is "not yet": ask again at once; a real hiccup backs off a little
            if isinstance(exc, ApiError) and exc.status == 408:
                return 0.0
            asked = _asked_wait(exc)
            return delay if asked is None else asked

        self._retry(Backoff(1.0, 1.0)).poll(
            ask, deadline=deadline, retry_if=again, delay_for=pause, timeout=too_late
        )

    # ---- leases ---------------------------------------------------------------------------
    def acquire_lease(self, app: str, machine_id: str, *, ttl: int = LEASE_TTL) -> Lease:
        """As fly-go sends it: ``?ttl=SECONDS``, no body."""
        response = self.request(
            "POST", f"/v1/apps/{app}/machines/{machine_id}/lease", params={"ttl": ttl}
        )
        data = response.json()
        return Lease.model_validate(data.get("data", data))

    def release_lease(self, app: str, machine_id: str, nonce: str) -> None:
        with suppress(NotFoundError):
            self.request(
                "DELETE",
                f"/v1/apps/{app}/machines/{machine_id}/lease",
                headers=_lease_header(nonce),
            )

    @contextmanager
    def lease(
        self, app: str, machine_id: str, *, deadline: float, ttl: int = LEASE_TTL
    ) -> Iterator[str]:
        """Hold the machine's lease (waiting while someone else holds it); yields the nonce."""

        def held(_exc: BaseException) -> TimeoutExceededError:
            return TimeoutExceededError(
                f"machine {machine_id} of {app} is leased by another process "
                "(another previewctl run?) and was not released in time"
            )

        lease = self._retry(Backoff(0.25, 5.0)).call(
            lambda: self.acquire_lease(app, machine_id, ttl=ttl),
            retry_if=lambda exc: isinstance(exc, ConflictError),
            deadline=deadline,
            give_up=held,
        )
        try:
            yield lease.nonce
        finally:
            # a lease we fail to release expires on its own after ttl
            with contextlib.suppress(ApiError):
                self.release_lease(app, machine_id, lease.nonce)

    # ---- IPs --------------------------------------------------------------------------------
    def list_ips(self, app: str) -> list[IpAssignment]:
        data = self.request("GET", f"/v1/apps/{app}/ip_assignments").json()
        return [IpAssignment.model_validate(i) for i in data.get("ips") or []]

    def allocate_ip(self, app: str, kind: str, *, known: Iterable[str] = ()) -> IpAssignment:
        """Allocate once: an address of ``kind`` not in ``known`` that shows up after a lost
        answer is the one this call made (a second one would cost money)."""
        seen = set(known)

        def find() -> IpAssignment | None:
            try:
                ips = self.list_ips(app)
            except ApiError:
                return None
            return next((ip for ip in ips if ip.kind == kind and ip.ip not in seen), None)

        got = self._post_once(f"/v1/apps/{app}/ip_assignments", {"type": kind}, find)
        return (
            got if isinstance(got, IpAssignment) else self.answer(got, IpAssignment.model_validate)
        )


def _asked_wait(exc: BaseException) -> float | None:
    """The server's Retry-After on a transient answer (these loops retry by themselves)."""
    return exc.retry_after if isinstance(exc, TransientApiError) else None


def _lease_header(nonce: str | None) -> dict[str, str] | None:
    return {"fly-machine-lease-nonce": nonce} if nonce else None


def build_fly_client(
    env: Mapping[str, str],
    *,
    retry: RetryPolicy | None = None,
    on_request: Any = None,
) -> FlyClient:
    token = token_from_env(env)
    http = build_http_client(machines_base_url(env), {"Authorization": auth_header(token)})
    return FlyClient(http, retry=retry, on_request=on_request)
