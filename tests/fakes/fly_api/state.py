"""The emulator's model: apps, machines with time-driven states and health, leases."""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MACAROON_PREFIXES = ("fm1r_", "fm1a_", "fm2_")
APP_NAME_RE = re.compile(r"^[a-z0-9-]{1,63}$")
WAITABLE_STATES = ("started", "stopped", "suspended", "destroyed")
DEFAULT_HEALTH_SECONDS = 0.05
MAX_WAIT_SECONDS = 60.0
WAIT_POLL_SECONDS = 0.01
LEASE_NONCE_HEADER = "fly-machine-lease-nonce"
SEEDED_LONG_AGO = 3600.0  # seeded machines count as started (and healthy) for an hour
# The events Fly logs when a machine reaches a state (type by state).
_TIMELINE_EVENTS = {"started": "start", "stopped": "exit", "destroyed": "destroy"}
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
    # Machine events (fly-go's MachineEvent: type, status, source, timestamp in ms,
    # request): what happened, newest first in answers. Actions add theirs at once;
    # "start"/"exit" are added when the timeline reaches started/stopped.
    events: list[dict[str, Any]] = field(default_factory=list)
    container_states: dict[str, str] = field(default_factory=dict)  # name -> forced state
    check_outputs: dict[str, str] = field(default_factory=dict)  # health key -> output

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
        self.events.extend(self._reached(now))  # what the old timeline already did
        self.timeline = [(now + delay, state) for delay, state in steps]
        self.updated_at = _now_iso()

    def event(
        self,
        kind: str,
        status: str,
        source: str = "user",
        request: dict[str, Any] | None = None,
        *,
        after_start: bool = False,
    ) -> None:
        """Log an event now (``after_start``: not before the machine has started)."""
        now = time.monotonic()
        at = max(now, (self.started_at or now) + 0.001) if after_start else now
        entry: dict[str, Any] = {
            "id": secrets.token_hex(13).upper(),
            "type": kind,
            "status": status,
            "source": source,
            "timestamp": int((time.time() + (at - now)) * 1000),
        }
        if request is not None:
            entry["request"] = request
        self.events.append(entry)

    def _reached(self, now: float) -> list[dict[str, Any]]:
        out = []
        for at, state in self.timeline:
            kind = _TIMELINE_EVENTS.get(state)
            if kind is not None and at <= now:
                wall_ms = int((time.time() - (now - at)) * 1000)
                out.append(
                    {
                        "id": f"T{int(at * 1000)}",
                        "type": kind,
                        "status": state,
                        "source": "flyd",
                        "timestamp": wall_ms,
                    }
                )
        return out

    def events_json(self, now: float) -> list[dict[str, Any]]:
        everything = [*self.events, *self._reached(now)]
        return sorted(everything, key=lambda e: e["timestamp"], reverse=True)[:20]

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
            failing = self.check_outputs.get(key, "connection refused")
            check = {
                "name": name,
                "status": "passing" if healthy else "critical",
                "output": "OK" if healthy else (failing if key in self.unhealthy else ""),
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
            {"name": c.get("name", ""), "state": self.container_states.get(c.get("name"), cstate)}
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
            "events": self.events_json(now),
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
