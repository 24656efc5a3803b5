"""Machine metadata: get, set a key, delete a key."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.fly_api.common import _MACHINE, FlyBase, _rule
from tests.fakes.fly_api.state import _now_iso
from tests.fakes.loopback import ApiError

RULES = [
    _rule(f"{_MACHINE}/metadata", "GET", "get_metadata"),
    _rule(f"{_MACHINE}/metadata/<key>", "POST", "set_metadata"),
    _rule(f"{_MACHINE}/metadata/<key>", "DELETE", "delete_metadata"),
]


class MetadataApi(FlyBase):
    """``/v1/apps/{app}/machines/{id}/metadata[/{key}]``."""

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
