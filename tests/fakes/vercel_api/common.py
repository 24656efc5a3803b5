"""What every resource of the Vercel fake shares: state, errors, auth, paging, ids."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.loopback import LoopbackApi, RecordedRequest

ENV_TYPES = frozenset({"plain", "encrypted", "sensitive", "secret", "system"})

ENV_TARGETS = frozenset({"production", "preview", "development"})
FINAL_STATES = frozenset({"READY", "ERROR", "CANCELED", "BLOCKED", "DELETED"})
READY_STATES = frozenset({"QUEUED", "INITIALIZING", "BUILDING"}) | FINAL_STATES

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    429: "rate_limited",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _rand(n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789") -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass
class ProjectState:
    """One Vercel project and the repo it is connected to."""

    id: str
    name: str
    production_branch: str
    branches: set[str]
    repo: str = "acme/agents"
    envs: list[dict[str, Any]] = field(default_factory=list)
    domains: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    created_at: int = 0


class VercelBase(LoopbackApi):
    """The fake's state and the hooks every route shares; resources add the routes."""

    name = "vercel"

    def __init__(
        self,
        *,
        token: str,
        team_id: str | None = None,
        latency: float = 0.0,
        env_page_size: int = 20,
        env_size_limit: int = 65536,
        build_seconds: float | None = None,
        build_result: str = "READY",
        reject_single_failures: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(latency=latency)
        assert build_result in FINAL_STATES, build_result
        self.token = token
        self.team_id = team_id
        self.projects: dict[str, ProjectState] = {}
        # Test switches.
        self.env_page_size = env_page_size
        """Default and maximum page size of ``GET .../env`` (forces clients to follow ``next``)."""
        self.env_size_limit = env_size_limit
        """Max sum of len(key)+len(value) over the vars one deployment of a branch sees."""
        self.fail_keys: dict[str, str] = {}
        """key → error code: items with that key land in ``failed`` of a 201."""
        self.build_seconds = build_seconds
        """Redeploys go QUEUED → BUILDING → ``build_result`` over this time; None: stay QUEUED."""
        self.build_result = build_result
        self.reject_single_failures = reject_single_failures
        """When True, a single-object POST .../env whose item fails answers 400, not 201."""
        self.clock = clock
        self._last_ms = 0
        self._builds: dict[str, float] = {}
        self._deployment_envs: dict[str, dict[str, str]] = {}
        self.team_domains: dict[str, bool] = {}
        """Domains of the team (or account): name -> verified (``GET /v5/domains/{domain}``)."""

    # ---- LoopbackApi hooks -----------------------------------------------------------
    def error_response(self, status: int, message: str, code: str | None = None) -> Response:
        return self.json_response(
            {
                "error": {
                    "code": code or _DEFAULT_CODES.get(status, str(status)),
                    "message": message,
                }
            },
            status,
        )

    def echo_response(self, status: int, request: Request, body: Any) -> Response:
        """Vercel's ``{"error": {"code", "message", ...}}``: the message quotes the
        request, and the error object carries the (first) env item's own fields, value
        included, as its env errors do."""
        item = body[0] if isinstance(body, list) and body else body
        error: dict[str, Any] = {
            "code": _DEFAULT_CODES.get(status, "bad_request"),
            "message": f"Invalid request: {json.dumps(body)}",
        }
        if isinstance(item, dict):
            error.update({k: item[k] for k in ("key", "value", "target", "gitBranch") if k in item})
        return self.json_response({"error": error}, status)

    def authorize(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return self.error_response(
                403, "The request is missing an authentication token", "forbidden"
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            return self.json_response(
                {
                    "error": {
                        "code": "forbidden",
                        "message": "Not authorized",
                        "invalidToken": True,
                    }
                },
                403,
            )
        team = request.args.get("teamId")
        if team != self.team_id:
            if self.team_id is not None and team is None:
                message = "Not authorized: this token's resources belong to a team; pass teamId"
            else:
                message = "Not authorized: you do not have access to this team"
            return self.error_response(403, message, "forbidden")
        return None

    def _dispatch(self, request: Request, record: RecordedRequest) -> Response | None:
        with self.lock:
            return super()._dispatch(request, record)

    # ---- shared by the resources -----------------------------------------------------
    def project(self, id_or_name: str) -> ProjectState | None:
        """The project with this name or id (``prj_...``)."""
        with self.lock:
            if id_or_name in self.projects:
                return self.projects[id_or_name]
            for project in self.projects.values():
                if project.id == id_or_name:
                    return project
            return None

    def _now_ms(self) -> int:
        """Wall-clock milliseconds, strictly increasing so cursors never tie."""
        with self.lock:
            self._last_ms = max(self._last_ms + 1, int(time.time() * 1000))
            return self._last_ms

    def _require_project(self, id_or_name: str) -> ProjectState:
        project = self.project(id_or_name)
        assert project is not None, f"no project {id_or_name!r}; add_project() it first"
        return project

    def _project_not_found(self, id_or_name: str) -> Response:
        return self.error_response(404, f"Project not found: {id_or_name}", "not_found")

    @staticmethod
    def _int_arg(raw: str) -> int:
        try:
            return int(raw)
        except ValueError:
            return 0

    def _page_size(self, request: Request, *, default: int, maximum: int) -> int:
        raw = request.args.get("limit")
        size = self._int_arg(raw) if raw is not None else default
        return max(1, min(size or default, maximum))

    def _paginate(
        self, items: list[dict[str, Any]], request: Request, size: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Newest first; ``until`` is an exclusive createdAt cursor, ``next`` the next one."""
        ordered = sorted(items, key=lambda i: i["createdAt"], reverse=True)
        if "until" in request.args:
            until = self._int_arg(request.args["until"])
            ordered = [i for i in ordered if i["createdAt"] < until]
        page = ordered[:size]
        more = len(ordered) > size
        return page, {
            "count": len(page),
            "next": page[-1]["createdAt"] if more and page else None,
            "prev": page[0]["createdAt"] if page else None,
        }
