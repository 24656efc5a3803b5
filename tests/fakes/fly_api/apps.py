"""Apps: create (``?wait=true``, ``name``, invisible for a while after), list, get, delete."""

from __future__ import annotations

import time
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.fly_api.common import FlyBase, _rule
from tests.fakes.fly_api.state import APP_NAME_RE, NAME_TAKEN_MESSAGE, AppState
from tests.fakes.loopback import ApiError

RULES = [
    _rule("/v1/apps", "POST", "create_app"),
    _rule("/v1/apps", "GET", "list_apps"),
    _rule("/v1/apps/<app>", "GET", "get_app"),
    _rule("/v1/apps/<app>", "DELETE", "delete_app"),
]


class AppsApi(FlyBase):
    """``/v1/apps`` and ``/v1/apps/{app}``; seeding of apps."""

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
