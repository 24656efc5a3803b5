"""IP assignments of an app: list, assign, delete."""

from __future__ import annotations

import copy
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.fly_api.common import FlyBase, _rule
from tests.fakes.fly_api.state import _now_iso
from tests.fakes.loopback import ApiError

RULES = [
    _rule("/v1/apps/<app>/ip_assignments", "GET", "list_ips"),
    _rule("/v1/apps/<app>/ip_assignments", "POST", "assign_ip"),
    _rule("/v1/apps/<app>/ip_assignments/<ip>", "DELETE", "delete_ip"),
]


class IpsApi(FlyBase):
    """``/v1/apps/{app}/ip_assignments[/{ip}]``."""

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
