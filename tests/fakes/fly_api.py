"""A stateful fake of the Fly Machines REST API (``/v1``), served on loopback.

It follows ``shared/reference/fly.md``: apps, machines with a time-driven life
cycle (``starting`` → ``started`` after ``boot_seconds``, per-container health
after ``health_seconds``), ``wait``, leases, metadata, IP assignments, optional
per-action rate limits, plus everything :class:`LoopbackApi` gives (request log,
injected faults, latency).

What Fly's own clients (fly-go, flyctl) expect, and this fake does too:

* ``POST /v1/apps?wait=true`` takes ``name`` (fly-go's ``CreateAppRequest``; the old
  ``app_name`` alone is refused). A created app is invisible for
  ``new_app_hidden_seconds``: every call on it answers ``new_app_hidden_status``
  (404, or 401 as flyctl also expects) and listings leave it out, while its name is
  already taken. A taken name answers 422 with body ``status: "name_taken"`` and the
  legacy prose "Name has already been taken".
* Every machine carries a ``bg_deployments_compat*`` check that is always critical:
  Fly adds such checks for old flyctl versions and they say nothing about the
  machine, so a client must drop them (fly-go's ``RemoveCompatChecks``).
* A freshly started machine reports no check results for ``checks_reported_after``
  seconds (flyctl: "Machine.Checks is empty for freshly-launched machines").
* A lease's TTL is read from the query, ``?ttl=SECONDS``, as fly-go sends it; a body
  is ignored (the default TTL applies).

States are computed from ``time.monotonic()`` timestamps: an action schedules a
timeline (e.g. ``stopping`` now, ``stopped`` in ``stop_seconds``) and
``MachineState.state`` reads it, so no background thread is needed.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.loopback import ApiError, LoopbackApi, RecordedRequest

MACAROON_PREFIXES = ("fm1r_", "fm1a_", "fm2_")
APP_NAME_RE = re.compile(r"^[a-z0-9-]{1,63}$")
WAITABLE_STATES = ("started", "stopped", "suspended", "destroyed")
DEFAULT_HEALTH_SECONDS = 0.05
MAX_WAIT_SECONDS = 60.0
WAIT_POLL_SECONDS = 0.01
LEASE_NONCE_HEADER = "fly-machine-lease-nonce"
SEEDED_LONG_AGO = 3600.0  # seeded machines count as started (and healthy) for an hour
DEFAULT_LEASE_TTL = 30.0
DEFAULT_NEW_APP_HIDDEN_SECONDS = 0.02
COMPAT_CHECK = "bg_deployments_compat_tcp"
NAME_TAKEN_MESSAGE = "Validation failed: Name has already been taken"

# Rate limit classes: (requests per second, burst). Endpoints not listed are "other".
READ_RATE = (5.0, 10.0)
OTHER_RATE = (1.0, 3.0)
READ_ENDPOINTS = frozenset(
    {
        "get_machine",
        "list_machines",
        "list_apps",
        "get_app",
        "create_app",
        "delete_app",
        "list_ips",
    }
)

# A state settles into the next one after a delay (seconds) chosen by the emulator.
TRANSIENT_NEXT = {
    "starting": "started",
    "replacing": "started",
    "updating": "started",
    "stopping": "stopped",
    "suspending": "suspended",
    "destroying": "destroyed",
}


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_from_monotonic(at: float) -> str:
    wall = time.time() - (time.monotonic() - at)
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


@dataclass
class Lease:
    nonce: str
    expires_at: float  # monotonic
    owner: str
    description: str = ""
    version: int = 1

    def active(self) -> bool:
        return time.monotonic() < self.expires_at

    def to_json(self) -> dict[str, Any]:
        wall_expiry = time.time() + (self.expires_at - time.monotonic())
        return {
            "nonce": self.nonce,
            "expires_at": int(wall_expiry),
            "owner": self.owner,
            "description": self.description,
            "version": str(self.version),
        }


@dataclass
class MachineState:
    """One machine. ``state`` is derived from ``timeline`` (or pinned by ``stuck``)."""

    id: str
    name: str
    region: str
    config: dict[str, Any]
    instance_id: str
    private_ip: str
    timeline: list[tuple[float, str]]  # (monotonic time, state), ascending
    health_seconds: Callable[[str], float] = field(repr=False)
    checks_reported_after: Callable[[], float] = field(repr=False, default=lambda: 0.0)
    compat_checks: bool = True
    prefix_check_names: bool = True
    created_at: str = field(default_factory=_now_iso)
    updated_at: str = field(default_factory=_now_iso)
    stuck: str | None = None
    unhealthy: set[str] = field(default_factory=set)
    lease: Lease | None = None
    # Host trouble (fly-go's HostStatus): while not "ok", Fly answers with no config and
    # what it still knows in incomplete_config. ``config_as`` picks how "no config" looks.
    host_status: str = "ok"
    config_as: str = "omitted"  # omitted | null | empty
    incomplete_metadata: bool = True  # whether incomplete_config still has the metadata
    checks_without_status: bool = False  # checks come back without their "status" field

    # ---- state -----------------------------------------------------------------
    def state_at(self, now: float) -> str:
        if self.stuck is not None:
            return self.stuck
        current = self.timeline[0][1]
        for at, state in self.timeline:
            if at <= now:
                current = state
        return current

    @property
    def state(self) -> str:
        return self.state_at(time.monotonic())

    @property
    def target_state(self) -> str:
        """Where the current timeline ends (``started`` while booting, etc.)."""
        return self.stuck or self.timeline[-1][1]

    @property
    def started_at(self) -> float | None:
        """When the current timeline reaches ``started`` (health is counted from there)."""
        return next((at for at, state in self.timeline if state == "started"), None)

    def schedule(self, *steps: tuple[float, str]) -> None:
        """Replace the timeline with ``(delay from now, state)`` steps."""
        now = time.monotonic()
        self.timeline = [(now + delay, state) for delay, state in steps]
        self.updated_at = _now_iso()

    @property
    def host_ok(self) -> bool:
        return self.host_status == "ok"

    def visible_metadata(self) -> dict[str, Any]:
        """The metadata Fly shows (and filters listings on): none while the host is not ok."""
        return dict(self.config.get("metadata") or {}) if self.host_ok else {}

    def incomplete_config(self) -> dict[str, Any]:
        """What Fly rebuilds from other sources: partial, not enough to recreate the machine."""
        partial: dict[str, Any] = {"guest": copy.deepcopy(self.config.get("guest") or {})}
        if self.config.get("image"):
            partial["image"] = self.config["image"]
        if self.incomplete_metadata and self.config.get("metadata"):
            partial["metadata"] = copy.deepcopy(self.config["metadata"])
        return partial

    def held_lease(self) -> Lease | None:
        if self.lease is not None and not self.lease.active():
            self.lease = None
        return self.lease

    # ---- health ----------------------------------------------------------------
    def _check_specs(self) -> list[tuple[str, str]]:
        """``(check name, health key)`` pairs; the key picks ``health_seconds`` and
        ``unhealthy`` entries: the container's name, or the check's own for top-level checks."""
        specs: list[tuple[str, str]] = []
        for container in self.config.get("containers") or []:
            cname = str(container.get("name", ""))
            for index, check in enumerate(container.get("healthchecks") or []):
                check_name = str(check.get("name") or index)
                full = f"{cname}-{check_name}" if self.prefix_check_names else check_name
                specs.append((full, cname))
        for check_name in self.config.get("checks") or {}:
            specs.append((str(check_name), str(check_name)))
        return specs

    def _healthy(self, key: str, now: float, state: str) -> bool:
        started_at = self.started_at
        if state != "started" or key in self.unhealthy:
            return False
        if started_at is None:  # pinned to "started" by set_stuck
            return True
        return now >= started_at + self.health_seconds(key)

    def checks_json(self, now: float, state: str) -> list[dict[str, Any]]:
        checks = self._own_checks_json(now, state)
        if self.compat_checks:
            compat = {
                "name": COMPAT_CHECK,
                "status": "critical",
                "output": "",
                "updated_at": _iso_from_monotonic(self.timeline[0][0]),
            }
            if self.checks_without_status:
                del compat["status"]
            checks.insert(0, compat)
        return checks

    def _own_checks_json(self, now: float, state: str) -> list[dict[str, Any]]:
        checks: list[dict[str, Any]] = []
        since = self.started_at
        if since is not None and now < since + self.checks_reported_after():
            return checks  # a fresh machine: Fly has no results for its checks yet
        for name, key in self._check_specs():
            healthy = self._healthy(key, now, state)
            started_at = self.started_at
            if healthy and started_at is not None:
                changed = started_at + self.health_seconds(key)
            else:
                changed = self.timeline[0][0]
            check = {
                "name": name,
                "status": "passing" if healthy else "critical",
                "output": "OK"
                if healthy
                else ("connection refused" if key in self.unhealthy else ""),
                "updated_at": _iso_from_monotonic(min(changed, now)),
            }
            if self.checks_without_status:  # fly-go: status is omitempty
                del check["status"]
            checks.append(check)
        return checks

    def containers_json(self, state: str) -> list[dict[str, Any]]:
        if state == "started":
            cstate = "running"
        elif state in ("stopping", "stopped", "suspending", "suspended", "destroyed"):
            cstate = "stopped"
        else:
            cstate = "created"
        return [
            {"name": c.get("name", ""), "state": cstate}
            for c in self.config.get("containers") or []
        ]

    def to_json(self) -> dict[str, Any]:
        now = time.monotonic()
        state = self.state_at(now)
        answer: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "state": state,
            "region": self.region,
            "instance_id": self.instance_id,
            "private_ip": self.private_ip,
            "config": copy.deepcopy(self.config),
            "image_ref": {},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "events": [],
            "checks": self.checks_json(now, state),
            "containers": self.containers_json(state),
            "host_status": self.host_status,
        }
        if not self.host_ok:
            answer["incomplete_config"] = self.incomplete_config()
            if self.config_as == "omitted":
                del answer["config"]
            else:
                answer["config"] = None if self.config_as == "null" else {}
        return answer


@dataclass
class AppState:
    name: str
    org: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    machines: dict[str, MachineState] = field(default_factory=dict)
    ips: list[dict[str, Any]] = field(default_factory=list)
    visible_at: float = 0.0  # monotonic: before it, the app answers hidden_status
    hidden_status: int = 404

    def hidden(self) -> bool:
        return time.monotonic() < self.visible_at

    def live_machines(self) -> list[MachineState]:
        return [m for m in self.machines.values() if m.state != "destroyed"]


@dataclass
class _Bucket:
    tokens: float
    at: float


def _rule(path: str, method: str, endpoint: str) -> Rule:
    return Rule(path, methods=[method], endpoint=endpoint)


_MACHINE = "/v1/apps/<app>/machines/<machine_id>"


class FlyEmulator(LoopbackApi):
    """The Fly Machines API, in memory. See the module docstring and ``tests/fakes_tests``."""

    name = "fly"
    rules: ClassVar[list[Rule]] = [
        _rule("/v1/apps", "POST", "create_app"),
        _rule("/v1/apps", "GET", "list_apps"),
        _rule("/v1/apps/<app>", "GET", "get_app"),
        _rule("/v1/apps/<app>", "DELETE", "delete_app"),
        _rule("/v1/apps/<app>/machines", "GET", "list_machines"),
        _rule("/v1/apps/<app>/machines", "POST", "create_machine"),
        _rule(_MACHINE, "GET", "get_machine"),
        _rule(_MACHINE, "POST", "update_machine"),
        _rule(_MACHINE, "DELETE", "delete_machine"),
        _rule(f"{_MACHINE}/start", "POST", "start_machine"),
        _rule(f"{_MACHINE}/stop", "POST", "stop_machine"),
        _rule(f"{_MACHINE}/suspend", "POST", "suspend_machine"),
        _rule(f"{_MACHINE}/wait", "GET", "wait_machine"),
        _rule(f"{_MACHINE}/lease", "POST", "acquire_lease"),
        _rule(f"{_MACHINE}/lease", "GET", "get_lease"),
        _rule(f"{_MACHINE}/lease", "DELETE", "release_lease"),
        _rule(f"{_MACHINE}/metadata", "GET", "get_metadata"),
        _rule(f"{_MACHINE}/metadata/<key>", "POST", "set_metadata"),
        _rule(f"{_MACHINE}/metadata/<key>", "DELETE", "delete_metadata"),
        _rule("/v1/apps/<app>/ip_assignments", "GET", "list_ips"),
        _rule("/v1/apps/<app>/ip_assignments", "POST", "assign_ip"),
        _rule("/v1/apps/<app>/ip_assignments/<ip>", "DELETE", "delete_ip"),
    ]

    def __init__(
        self,
        *,
        token: str,
        org: str = "acme",
        boot_seconds: float = 0.05,
        health_seconds: dict[str, float] | float = DEFAULT_HEALTH_SECONDS,
        stop_seconds: float = 0.02,
        latency: float = 0.0,
        rate_limits: bool = False,
        rate_limit_retry_after: str | None = None,
        containers_enabled: bool = True,
        prefix_check_names: bool = True,
        lease_owner: str = "previewctl@example.com",
        new_app_hidden_seconds: float = DEFAULT_NEW_APP_HIDDEN_SECONDS,
        new_app_hidden_status: int = 404,
        compat_checks: bool = True,
        checks_reported_after: float = 0.0,
    ) -> None:
        super().__init__(latency=latency)
        self.token = token
        self.org = org
        self.boot_seconds = boot_seconds
        self.health_seconds = health_seconds
        self.stop_seconds = stop_seconds
        self.rate_limits = rate_limits
        self.rate_limit_retry_after = rate_limit_retry_after
        self.containers_enabled = containers_enabled
        self.prefix_check_names = prefix_check_names
        self.lease_owner = lease_owner
        self.new_app_hidden_seconds = new_app_hidden_seconds
        self.new_app_hidden_status = new_app_hidden_status
        self.compat_checks = compat_checks
        self.checks_reported_after = checks_reported_after
        self.apps: dict[str, AppState] = {}
        self.rate_limited = 0
        # Called with (app, machine config) whenever a machine is booted with a config:
        # tests use it to make "the container" (a real local server) follow the config,
        # e.g. set the database password the config carries.
        self.on_boot: Callable[[str, dict[str, Any]], None] | None = None
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._ip_counter = 0

    # ---- test controls ---------------------------------------------------------
    def add_app(
        self,
        name: str,
        org: str | None = None,
        *,
        hidden_for: float = 0.0,
        hidden_status: int | None = None,
    ) -> AppState:
        """Seed an app; ``hidden_for`` seconds it answers ``hidden_status`` (a new app)."""
        with self.lock:
            app = AppState(
                name=name,
                org=org or self.org,
                visible_at=time.monotonic() + hidden_for,
                hidden_status=hidden_status or self.new_app_hidden_status,
            )
            self.apps[name] = app
            return app

    def reveal_app(self, name: str) -> None:
        """End an app's invisible spell now."""
        with self.lock:
            self.apps[name].visible_at = 0.0

    def add_foreign_app(self, name: str, org: str = "other") -> AppState:
        return self.add_app(name, org=org)

    def add_machine(
        self,
        app: str,
        config: dict[str, Any],
        state: str = "started",
        region: str = "iad",
        name: str | None = None,
    ) -> MachineState:
        """Seed a machine (no request logged). ``started`` counts as started long ago,
        so its checks already pass; a transient state settles as it would normally."""
        with self.lock:
            machine = self._new_machine(self.apps[app], config, region, name)
            if state == "started":
                machine.schedule((-SEEDED_LONG_AGO, "started"))
            elif state in TRANSIENT_NEXT:
                machine.schedule((0.0, state), (self._settle_delay(state), TRANSIENT_NEXT[state]))
            else:
                machine.schedule((0.0, state))
            return machine

    def machine(self, app: str, machine_id: str) -> MachineState:
        return self.apps[app].machines[machine_id]

    def set_stuck(self, app: str, machine_id: str, state: str | None = "starting") -> None:
        """Pin a machine's state (``None`` releases it)."""
        with self.lock:
            self.machine(app, machine_id).stuck = state

    def set_unhealthy(self, app: str, machine_id: str, container: str) -> None:
        """Keep the checks of ``container`` (or the top-level check of that name) critical."""
        with self.lock:
            self.machine(app, machine_id).unhealthy.add(container)

    def set_healthy(self, app: str, machine_id: str, container: str) -> None:
        with self.lock:
            self.machine(app, machine_id).unhealthy.discard(container)

    def set_host_status(
        self,
        app: str,
        machine_id: str,
        status: str = "unreachable",
        *,
        config_as: str = "omitted",
        incomplete_metadata: bool = True,
    ) -> None:
        """Put the machine's host in trouble (``unknown``, ``unreachable``) or back (``ok``).

        While not ok the machine answers without its config (``config_as``: the field
        omitted, ``null`` or ``{}``), with a partial ``incomplete_config`` instead, and
        is left out of metadata-filtered listings (its metadata is not known).
        """
        assert status in ("ok", "unknown", "unreachable"), status
        assert config_as in ("omitted", "null", "empty"), config_as
        with self.lock:
            machine = self.machine(app, machine_id)
            machine.host_status = status
            machine.config_as = config_as
            machine.incomplete_metadata = incomplete_metadata

    def set_checks_without_status(self, app: str, machine_id: str, value: bool = True) -> None:
        """Make the machine's checks come back without a ``status`` field."""
        with self.lock:
            self.machine(app, machine_id).checks_without_status = value

    def hold_lease(
        self, app: str, machine_id: str, ttl: float = 60.0, owner: str = "someone-else@example.com"
    ) -> str:
        """Make someone else hold the machine's lease; returns its nonce."""
        with self.lock:
            lease = Lease(secrets.token_hex(16), time.monotonic() + ttl, owner)
            self.machine(app, machine_id).lease = lease
            return lease.nonce

    def mutating_calls(self, succeeded_only: bool = False) -> list[RecordedRequest]:
        """POST/DELETE requests that (try to) change state: apps, machines, start/stop/
        suspend, update, metadata, IPs. Leases are left out; so is ``wait`` (a GET)."""
        return [
            r
            for r in self.calls()
            if r.method in ("POST", "DELETE")
            and r.path.startswith("/v1/apps")
            and not r.path.rstrip("/").endswith("/lease")
            and (not succeeded_only or 200 <= r.status < 300)
        ]

    # ---- LoopbackApi hooks -----------------------------------------------------
    def error_response(self, status: int, message: str, code: str | None = None) -> Response:
        return self.json_response({"error": message, "status": code or str(status)}, status)

    def echo_response(self, status: int, request: Request, body: Any) -> Response:
        """Fly's ``{"error", "status"}`` whose message quotes the machine config: the
        request's, else every stored machine's of the app in the path (env, metadata
        and the generated secrets in it included), as Fly's state errors print them."""
        if isinstance(body, dict) and isinstance(body.get("config"), dict):
            quoted = [body["config"]]
        else:
            match = re.match(r"^/v1/apps/([^/]+)", request.path)
            app = self.apps.get(match.group(1)) if match else None
            quoted = [m.config for m in app.machines.values()] if app else []
        configs = " ".join(f"config={json.dumps(c)}" for c in quoted) or "no machines"
        return self.json_response(
            {
                "error": f"failed_precondition: machine is in an invalid state: {configs}",
                "status": "failed_precondition",
            },
            status,
        )

    def authorize(self, request: Request) -> Response | None:
        scheme = "FlyV1" if self.token.startswith(MACAROON_PREFIXES) else "Bearer"
        if request.headers.get("Authorization") != f"{scheme} {self.token}":
            return self.json_response({"error": "unauthorized"}, 401)
        return None

    def finalize_response(self, request: Request, response: Response) -> Response:
        response.headers["fly-request-id"] = f"{secrets.token_hex(13).upper()}-iad"
        return response

    def before_handler(
        self, request: Request, endpoint: str, args: Mapping[str, Any]
    ) -> Response | None:
        if not self.rate_limits:
            return None
        rate, burst = READ_RATE if endpoint in READ_ENDPOINTS else OTHER_RATE
        key = (str(args.get("machine_id") or args.get("app") or ""), endpoint)
        now = time.monotonic()
        with self.lock:
            bucket = self._buckets.setdefault(key, _Bucket(burst, now))
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            self.rate_limited += 1
        response = self.error_response(429, "rate limit exceeded", "rate_limited")
        if self.rate_limit_retry_after is not None:
            response.headers["Retry-After"] = self.rate_limit_retry_after
        return response

    # ---- internals -------------------------------------------------------------
    def _health_for(self, key: str) -> float:
        if isinstance(self.health_seconds, dict):
            return self.health_seconds.get(key, DEFAULT_HEALTH_SECONDS)
        return self.health_seconds

    def _settle_delay(self, state: str) -> float:
        return self.boot_seconds if TRANSIENT_NEXT.get(state) == "started" else self.stop_seconds

    def _new_machine(
        self, app: AppState, config: dict[str, Any], region: str, name: str | None
    ) -> MachineState:
        machine_id = secrets.token_hex(7)
        self._ip_counter += 1
        machine = MachineState(
            id=machine_id,
            name=name or f"machine-{machine_id[:6]}",
            region=region,
            config=copy.deepcopy(config),
            instance_id=self._instance_id(),
            private_ip=f"fdaa:0:1:a7b:{self._ip_counter:x}:{machine_id[:4]}:{machine_id[4:8]}:2",
            timeline=[(time.monotonic(), "created")],
            health_seconds=self._health_for,
            checks_reported_after=lambda: self.checks_reported_after,
            compat_checks=self.compat_checks,
            prefix_check_names=self.prefix_check_names,
        )
        app.machines[machine_id] = machine
        return machine

    @staticmethod
    def _instance_id() -> str:
        return "01" + secrets.token_hex(12).upper()

    def _app(self, name: str) -> AppState:
        app = self.apps.get(name)
        if app is None:
            raise ApiError(404, f"app not found: {name}", "not_found")
        if app.hidden():
            if app.hidden_status == 401:
                raise ApiError(401, "unauthorized", "unauthorized")
            raise ApiError(app.hidden_status, f"app not found: {name}", "not_found")
        if app.org != self.org:
            raise ApiError(403, f"unauthorized to access app {name}", "unauthorized")
        return app

    def _machine(self, app_name: str, machine_id: str) -> MachineState:
        machine = self._app(app_name).machines.get(machine_id)
        if machine is None:
            raise ApiError(404, f"machine not found: {machine_id}", "not_found")
        return machine

    def _mutable_machine(self, request: Request, app_name: str, machine_id: str) -> MachineState:
        """The machine, if it exists, is not destroyed and no one else holds its lease."""
        machine = self._machine(app_name, machine_id)
        if machine.state == "destroyed":
            raise ApiError(404, f"machine not found: {machine_id}", "not_found")
        lease = machine.held_lease()
        if lease is not None and request.headers.get(LEASE_NONCE_HEADER) != lease.nonce:
            expires = _iso_from_monotonic(lease.expires_at)
            raise ApiError(
                409,
                f"machine ID {machine_id} lease currently held by {lease.owner}, "
                f"expires at {expires}",
                "conflict",
            )
        return machine

    def _check_config(self, config: Any) -> dict[str, Any]:
        if not isinstance(config, dict):
            raise ApiError(400, "config is required", "invalid_argument")
        if config.get("containers") and not self.containers_enabled:
            raise ApiError(
                422,
                "multi-container machines are not enabled for this organization",
                "unprocessable_entity",
            )
        return config

    def _boot(self, machine: MachineState, first: str = "starting") -> None:
        machine.schedule((0.0, first), (self.boot_seconds, "started"))

    @staticmethod
    def _body(body: Any) -> dict[str, Any]:
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object", "invalid_argument")
        return body

    # ---- apps ------------------------------------------------------------------
    def on_create_app(self, request: Request, body: Any) -> Response:
        data = self._body(body)
        name = data.get("name")  # fly-go's field; the 2024 spec's app_name alone is refused
        org = data.get("org_slug")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "name is required", "invalid_argument")
        if not isinstance(org, str) or not org:
            raise ApiError(400, "org_slug is required", "invalid_argument")
        if not APP_NAME_RE.match(name):
            raise ApiError(
                422, "app name may only contain [a-z0-9-] and be at most 63 chars", "invalid_name"
            )
        if org != self.org:
            raise ApiError(403, f"unauthorized to access org {org}", "unauthorized")
        with self.lock:
            if name in self.apps:  # hidden ones too: the name is taken at once
                raise ApiError(422, NAME_TAKEN_MESSAGE, "name_taken")
            app = self.add_app(name, org, hidden_for=self.new_app_hidden_seconds)
        return self.json_response(
            {"id": app.id, "name": app.name, "organization": {"slug": app.org}}, 201
        )

    def on_list_apps(self, request: Request, body: Any) -> Response:
        org = request.args.get("org_slug") or self.org
        if org != self.org:
            raise ApiError(403, f"unauthorized to access org {org}", "unauthorized")
        with self.lock:
            apps = [
                {
                    "id": a.id,
                    "name": a.name,
                    "machine_count": len(a.live_machines()),
                    "network": "default",
                }
                for a in self.apps.values()
                if a.org == org and not a.hidden()
            ]
        return self.json_response({"total_apps": len(apps), "apps": apps})

    def on_get_app(self, request: Request, body: Any, app: str) -> Response:
        with self.lock:
            state = self._app(app)
            return self.json_response(
                {
                    "id": state.id,
                    "name": state.name,
                    "organization": {"slug": state.org},
                    "status": "deployed",
                }
            )

    def on_delete_app(self, request: Request, body: Any, app: str) -> Response:
        with self.lock:
            self._app(app)
            del self.apps[app]
        return Response(status=202)

    # ---- machines --------------------------------------------------------------
    def on_list_machines(self, request: Request, body: Any, app: str) -> Response:
        wanted_meta = {
            k.removeprefix("metadata."): v
            for k, v in request.args.items()
            if k.startswith("metadata.")
        }
        states = {s for s in request.args.get("state", "").split(",") if s}
        include_deleted = _truthy(request.args.get("include_deleted"))
        with self.lock:
            result = []
            for machine in self._app(app).machines.values():
                state = machine.state
                if state == "destroyed" and not include_deleted:
                    continue
                if states and state not in states:
                    continue
                metadata = machine.visible_metadata()
                if any(metadata.get(k) != v for k, v in wanted_meta.items()):
                    continue
                result.append(machine.to_json())
        return self.json_response(result)

    def on_create_machine(self, request: Request, body: Any, app: str) -> Response:
        data = self._body(body)
        region = data.get("region")
        if not isinstance(region, str) or not region:
            raise ApiError(400, "region is required", "invalid_argument")
        config = self._check_config(data.get("config"))
        with self.lock:
            state = self._app(app)
            name = data.get("name")
            if name and any(m.name == name for m in state.live_machines()):
                raise ApiError(409, f"machine name {name!r} already in use", "already_exists")
            machine = self._new_machine(state, config, region, name)
            if data.get("skip_launch"):
                machine.schedule((0.0, "created"), (self.stop_seconds, "stopped"))
            else:
                self._boot(machine)
                self._notify_boot(app, config)
            if data.get("lease_ttl"):
                machine.lease = Lease(
                    secrets.token_hex(16),
                    time.monotonic() + float(data["lease_ttl"]),
                    self.lease_owner,
                )
            answer = machine.to_json()
        answer["state"] = "created"  # what Fly answers a create with
        if machine.lease is not None:  # fly-go's Machine.LeaseNonce
            answer["nonce"] = machine.lease.nonce
        return self.json_response(answer)

    def _notify_boot(self, app: str, config: dict[str, Any]) -> None:
        if self.on_boot is not None:
            self.on_boot(app, copy.deepcopy(config))

    def on_get_machine(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        with self.lock:
            return self.json_response(self._machine(app, machine_id).to_json())

    def on_update_machine(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        data = self._body(body)
        config = self._check_config(data.get("config"))
        with self.lock:
            machine = self._mutable_machine(request, app, machine_id)
            if data.get("region") not in (None, machine.region):
                raise ApiError(400, "a machine's region cannot be changed", "invalid_argument")
            if data.get("name") not in (None, machine.name):
                raise ApiError(400, "a machine's name cannot be changed", "invalid_argument")
            machine.config = copy.deepcopy(config)
            machine.instance_id = self._instance_id()
            if machine.target_state == "started" and not data.get("skip_launch"):
                self._notify_boot(app, config)
                machine.schedule(
                    (0.0, "replacing"),
                    (self.stop_seconds, "starting"),
                    (self.stop_seconds + self.boot_seconds, "started"),
                )
            else:  # a stopped (or stopping, suspended) machine stays so
                machine.updated_at = _now_iso()
            return self.json_response(machine.to_json())

    def on_start_machine(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        with self.lock:
            machine = self._mutable_machine(request, app, machine_id)
            previous = machine.state
            if machine.target_state != "started":
                machine.instance_id = self._instance_id()
                self._boot(machine)
                self._notify_boot(app, machine.config)
        return self.json_response(
            {"previous_state": previous, "migrated": False, "new_host_id": ""}
        )

    def on_stop_machine(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        with self.lock:
            machine = self._mutable_machine(request, app, machine_id)
            state = machine.state
            if state == "suspended":
                machine.schedule((0.0, "stopped"))
            elif machine.target_state != "stopped":
                machine.schedule((0.0, "stopping"), (self.stop_seconds, "stopped"))
        return self.json_response({"ok": True})

    def on_suspend_machine(
        self, request: Request, body: Any, app: str, machine_id: str
    ) -> Response:
        with self.lock:
            machine = self._mutable_machine(request, app, machine_id)
            if machine.target_state == "stopped":
                raise ApiError(
                    412, "failed_precondition: machine is not started", "failed_precondition"
                )
            if machine.target_state != "suspended":
                machine.schedule((0.0, "suspending"), (self.stop_seconds, "suspended"))
        return self.json_response({"ok": True})

    def on_delete_machine(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        force = _truthy(request.args.get("force")) or _truthy(request.args.get("kill"))
        with self.lock:
            machine = self._mutable_machine(request, app, machine_id)
            if machine.state not in ("stopped", "suspended", "created", "failed") and not force:
                raise ApiError(
                    412,
                    "failed_precondition: unable to destroy machine, "
                    "not currently stopped, suspended or failed",
                    "failed_precondition",
                )
            machine.stuck = None
            machine.lease = None
            machine.schedule((0.0, "destroyed"))
        return self.json_response({"ok": True})

    def on_wait_machine(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        target = request.args.get("state", "started")
        if target not in WAITABLE_STATES:
            raise ApiError(400, f"invalid state {target!r}", "invalid_argument")
        try:
            timeout = float(request.args.get("timeout", MAX_WAIT_SECONDS))
        except ValueError:
            raise ApiError(400, "invalid timeout", "invalid_argument") from None
        # instance_id is accepted and deliberately not checked.
        deadline = time.monotonic() + max(0.0, min(timeout, MAX_WAIT_SECONDS))
        with self.lock:
            machine = self._machine(app, machine_id)
        while machine.state != target:
            if time.monotonic() >= deadline:
                raise ApiError(
                    408, "deadline_exceeded: machine did not reach state", "deadline_exceeded"
                )
            time.sleep(WAIT_POLL_SECONDS)
        return self.json_response({"ok": True})

    # ---- leases ----------------------------------------------------------------
    def on_acquire_lease(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        data = self._body(body)
        try:  # fly-go sends ?ttl=; a body's ttl is not read
            ttl = float(request.args.get("ttl", DEFAULT_LEASE_TTL))
        except (TypeError, ValueError):
            raise ApiError(400, "invalid ttl", "invalid_argument") from None
        with self.lock:
            machine = self._machine(app, machine_id)
            lease = machine.held_lease()
            if lease is not None:
                if request.headers.get(LEASE_NONCE_HEADER) != lease.nonce:
                    raise ApiError(409, f"lease currently held by {lease.owner}", "already_leased")
                lease.expires_at = time.monotonic() + ttl
                lease.version += 1
            else:
                lease = Lease(
                    secrets.token_hex(16),
                    time.monotonic() + ttl,
                    self.lease_owner,
                    str(data.get("description", "")),
                )
                machine.lease = lease
            return self.json_response({"status": "success", "data": lease.to_json()}, 201)

    def on_get_lease(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        with self.lock:
            lease = self._machine(app, machine_id).held_lease()
            if lease is None:
                raise ApiError(404, "no lease held", "not_found")
            return self.json_response({"status": "success", "data": lease.to_json()})

    def on_release_lease(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        with self.lock:
            machine = self._machine(app, machine_id)
            lease = machine.held_lease()
            if lease is None:
                raise ApiError(404, "no lease held", "not_found")
            if request.headers.get(LEASE_NONCE_HEADER) != lease.nonce:
                raise ApiError(409, f"lease currently held by {lease.owner}", "already_leased")
            machine.lease = None
        return self.json_response({"ok": True})

    # ---- metadata --------------------------------------------------------------
    def on_get_metadata(self, request: Request, body: Any, app: str, machine_id: str) -> Response:
        with self.lock:
            machine = self._machine(app, machine_id)
            return self.json_response(dict(machine.config.get("metadata") or {}))

    def on_set_metadata(
        self, request: Request, body: Any, app: str, machine_id: str, key: str
    ) -> Response:
        value = self._body(body).get("value")
        if not isinstance(value, str):
            raise ApiError(400, "value must be a string", "invalid_argument")
        with self.lock:
            machine = self._mutable_machine(request, app, machine_id)
            machine.config.setdefault("metadata", {})[key] = value
            machine.updated_at = _now_iso()
        return Response(status=204)

    def on_delete_metadata(
        self, request: Request, body: Any, app: str, machine_id: str, key: str
    ) -> Response:
        with self.lock:
            machine = self._mutable_machine(request, app, machine_id)
            (machine.config.get("metadata") or {}).pop(key, None)
            machine.updated_at = _now_iso()
        return Response(status=204)

    # ---- IP assignments --------------------------------------------------------
    def on_list_ips(self, request: Request, body: Any, app: str) -> Response:
        with self.lock:
            return self.json_response({"ips": copy.deepcopy(self._app(app).ips)})

    def on_assign_ip(self, request: Request, body: Any, app: str) -> Response:
        data = self._body(body)
        kind = data.get("type")
        with self.lock:
            state = self._app(app)
            self._ip_counter += 1
            n = self._ip_counter
            if kind == "v6":
                address = f"2a09:8280:1::{n:x}"
            elif kind == "v4":
                address = f"137.66.{n // 256 % 256}.{n % 256}"
            elif kind == "shared_v4":
                address = "66.241.124.1"
            else:
                raise ApiError(400, "type must be v6, v4 or shared_v4", "invalid_argument")
            assignment = {
                "ip": address,
                "region": data.get("region", "global"),
                "service_name": data.get("service_name", "app-shared-edge"),
                "shared": kind == "shared_v4",
                "created_at": _now_iso(),
            }
            state.ips.append(assignment)
        return self.json_response(assignment)

    def on_delete_ip(self, request: Request, body: Any, app: str, ip: str) -> Response:
        with self.lock:
            state = self._app(app)
            remaining = [a for a in state.ips if a["ip"] != ip]
            if len(remaining) == len(state.ips):
                raise ApiError(404, f"ip not found: {ip}", "not_found")
            state.ips = remaining
        return Response(status=204)
