"""Machines: list (metadata filters), create, get, update, start, stop, suspend, delete,
and ``wait``; seeding and test controls (stuck states, health, host trouble)."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.fly_api.common import _MACHINE, FlyBase, _rule
from tests.fakes.fly_api.state import (
    MAX_WAIT_SECONDS,
    SEEDED_LONG_AGO,
    TRANSIENT_NEXT,
    WAIT_POLL_SECONDS,
    WAITABLE_STATES,
    Lease,
    MachineState,
    _now_iso,
    _truthy,
)
from tests.fakes.loopback import ApiError

RULES = [
    _rule("/v1/apps/<app>/machines", "GET", "list_machines"),
    _rule("/v1/apps/<app>/machines", "POST", "create_machine"),
    _rule(_MACHINE, "GET", "get_machine"),
    _rule(_MACHINE, "POST", "update_machine"),
    _rule(_MACHINE, "DELETE", "delete_machine"),
    _rule(f"{_MACHINE}/start", "POST", "start_machine"),
    _rule(f"{_MACHINE}/stop", "POST", "stop_machine"),
    _rule(f"{_MACHINE}/suspend", "POST", "suspend_machine"),
    _rule(f"{_MACHINE}/wait", "GET", "wait_machine"),
]


class MachinesApi(FlyBase):
    """``/v1/apps/{app}/machines[/{id}[/start|stop|suspend|wait]]``."""

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

    def crash_container(
        self,
        app: str,
        machine_id: str,
        container: str,
        *,
        exit_code: int = 1,
        output: str = "connection refused",
        oom_killed: bool = False,
    ) -> None:
        """``container`` exited: its checks fail with ``output``, an exit event is logged."""
        with self.lock:
            machine = self.machine(app, machine_id)
            machine.unhealthy.add(container)
            machine.check_outputs[container] = output
            machine.container_states[container] = "exited"
            exit_event = {"exit_code": exit_code, "oom_killed": oom_killed, "requested_stop": False}
            machine.event("exit", "exited", "flyd", {"exit_event": exit_event}, after_start=True)

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
            machine.event("launch", "created")
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
