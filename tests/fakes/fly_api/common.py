"""What every resource of the Fly emulator shares: state, auth, rate limits, lookups."""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.fly_api.state import (
    DEFAULT_HEALTH_SECONDS,
    DEFAULT_NEW_APP_HIDDEN_SECONDS,
    LEASE_NONCE_HEADER,
    MACAROON_PREFIXES,
    OTHER_RATE,
    READ_ENDPOINTS,
    READ_RATE,
    TRANSIENT_NEXT,
    AppState,
    MachineState,
    _iso_from_monotonic,
)
from tests.fakes.loopback import ApiError, LoopbackApi, RecordedRequest


@dataclass
class _Bucket:
    tokens: float
    at: float


def _rule(path: str, method: str, endpoint: str) -> Rule:
    return Rule(path, methods=[method], endpoint=endpoint)


_MACHINE = "/v1/apps/<app>/machines/<machine_id>"


class FlyBase(LoopbackApi):
    """The emulator's state and the hooks every route shares; resources add the routes."""

    name = "fly"

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

    # ---- shared by the resources -----------------------------------------------
    def machine(self, app: str, machine_id: str) -> MachineState:
        return self.apps[app].machines[machine_id]

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
        # Fly's own texts: fly-go's AppNameAvailable tells a free name by "app not found"
        # and a name held in an org this token cannot see by "unauthorized".
        app = self.apps.get(name)
        if app is None:
            raise ApiError(404, "app not found", "not_found")
        if app.hidden():
            if app.hidden_status == 401:
                raise ApiError(401, "unauthorized", "unauthorized")
            raise ApiError(app.hidden_status, "app not found", "not_found")
        if app.org != self.org:
            raise ApiError(403, "unauthorized", "unauthorized")
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
