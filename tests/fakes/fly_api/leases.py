"""Leases: acquire (TTL from ``?ttl=``, as fly-go sends it), get, release."""

from __future__ import annotations

import secrets
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.fly_api.common import _MACHINE, FlyBase, _rule
from tests.fakes.fly_api.state import DEFAULT_LEASE_TTL, LEASE_NONCE_HEADER, Lease
from tests.fakes.loopback import ApiError

RULES = [
    _rule(f"{_MACHINE}/lease", "POST", "acquire_lease"),
    _rule(f"{_MACHINE}/lease", "GET", "get_lease"),
    _rule(f"{_MACHINE}/lease", "DELETE", "release_lease"),
]


class LeasesApi(FlyBase):
    """``/v1/apps/{app}/machines/{id}/lease``; someone else's lease as a test control."""

    def hold_lease(
        self, app: str, machine_id: str, ttl: float = 60.0, owner: str = "someone-else@example.com"
    ) -> str:
        """Make someone else hold the machine's lease; returns its nonce."""
        with self.lock:
            lease = Lease(secrets.token_hex(16), time.monotonic() + ttl, owner)
            self.machine(app, machine_id).lease = lease
            return lease.nonce

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
