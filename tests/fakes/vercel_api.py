"""A stateful fake of the parts of the Vercel REST API previewctl uses.

Projects (with the connected repo's branches), environment variables (branch-scoped
validation, upsert, ``failed[]`` in a 201, per-deployment size limit, encrypted and
sensitive values that never come back in plaintext, cursor pagination), project
domains, and deployments (list with filters and ``until`` paging, get, redeploy with a
lazily computed QUEUED → BUILDING → READY timeline). Deployment states are
@vercel/sdk's: ``ERROR``, ``CANCELED``, ``BLOCKED`` and ``DELETED`` are final like
``READY`` and are still listed (a deleted deployment shows as ``DELETED``).

Behaviour follows ``shared/reference/vercel-github.md``. Where Vercel's behaviour is
not documented the fake is strict, so client bugs surface in tests:

* schema errors in an env item (``key``/``value`` not strings, unknown ``type``,
  ``target`` not a non-empty list of known targets) fail the whole request with 400;
* a redeploy whose ``name`` differs from the source deployment's project, or that
  asks for a ``target`` other than the source's, is refused with 400.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.loopback import LoopbackApi, RecordedRequest

ENV_TYPES = frozenset({"plain", "encrypted", "sensitive", "secret", "system"})
ENV_TARGETS = frozenset({"production", "preview", "development"})
# @vercel/sdk's readyState enum. The FINAL ones never change again (set_state pins them).
FINAL_STATES = frozenset({"READY", "ERROR", "CANCELED", "BLOCKED", "DELETED"})
READY_STATES = frozenset({"QUEUED", "INITIALIZING", "BUILDING"}) | FINAL_STATES
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
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


class _Failure(Exception):
    """An env item that lands in ``failed`` with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class VercelFake(LoopbackApi):
    """Loopback fake of ``api.vercel.com``. Start with ``with VercelFake(token=...) as v:``."""

    name = "vercel"
    rules: ClassVar[list[Rule]] = [
        Rule("/v9/projects/<id_or_name>", endpoint="get_project", methods=["GET"]),
        Rule("/v10/projects/<id_or_name>/env", endpoint="create_env", methods=["POST"]),
        Rule("/v10/projects/<id_or_name>/env", endpoint="list_env", methods=["GET"]),
        Rule("/v10/projects/<id_or_name>/env/<env_id>", endpoint="delete_env", methods=["DELETE"]),
        Rule("/v1/projects/<id_or_name>/env", endpoint="batch_delete_env", methods=["DELETE"]),
        Rule("/v10/projects/<id_or_name>/domains", endpoint="add_domain", methods=["POST"]),
        Rule("/v9/projects/<id_or_name>/domains", endpoint="list_domains", methods=["GET"]),
        Rule("/v9/projects/<id_or_name>/domains/<domain>", endpoint="get_domain", methods=["GET"]),
        Rule(
            "/v9/projects/<id_or_name>/domains/<domain>",
            endpoint="delete_domain",
            methods=["DELETE"],
        ),
        Rule("/v6/deployments", endpoint="list_deployments", methods=["GET"]),
        Rule("/v7/deployments", endpoint="list_deployments", methods=["GET"]),
        Rule("/v13/deployments/<id_or_url>", endpoint="get_deployment", methods=["GET"]),
        Rule("/v13/deployments", endpoint="create_deployment", methods=["POST"]),
        Rule("/v5/domains/<domain>", endpoint="get_team_domain", methods=["GET"]),
    ]

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

    # ---- seeding and controls ------------------------------------------------------
    def add_project(
        self,
        name: str,
        production_branch: str = "main",
        branches: tuple[str, ...] | list[str] | set[str] = ("main",),
        *,
        repo: str = "acme/agents",
        project_id: str | None = None,
    ) -> ProjectState:
        with self.lock:
            project = ProjectState(
                id=project_id or f"prj_{_rand(24, _ID_ALPHABET)}",
                name=name,
                production_branch=production_branch,
                branches={*branches, production_branch},
                repo=repo,
                created_at=self._now_ms(),
            )
            self.projects[name] = project
            return project

    def project(self, id_or_name: str) -> ProjectState | None:
        """The project with this name or id (``prj_...``)."""
        with self.lock:
            if id_or_name in self.projects:
                return self.projects[id_or_name]
            for project in self.projects.values():
                if project.id == id_or_name:
                    return project
            return None

    def add_branch(self, project: str, branch: str) -> None:
        self._require_project(project).branches.add(branch)

    def add_env(
        self,
        project: str,
        key: str,
        value: str,
        *,
        target: list[str] | None = None,
        git_branch: str | None = None,
        env_type: str = "encrypted",
        comment: str = "",
    ) -> dict[str, Any]:
        """Seed a var directly, bypassing validation (e.g. an orphan of a deleted branch)."""
        with self.lock:
            env = self._new_env(
                {
                    "key": key,
                    "value": value,
                    "type": env_type,
                    "target": target or ["preview"],
                    "gitBranch": git_branch,
                    "comment": comment,
                }
            )
            self._require_project(project).envs.append(env)
            return dict(env)

    def envs_for(self, project: str, branch: str | None = None) -> list[dict[str, Any]]:
        """Stored vars (plaintext values) of ``project``, only ``branch``'s when given."""
        with self.lock:
            return [
                dict(e)
                for e in self._require_project(project).envs
                if branch is None or e.get("gitBranch") == branch
            ]

    def domains_for(self, project: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(d) for d in self._require_project(project).domains]

    def add_deployment(
        self,
        project: str,
        branch: str,
        state: str = "READY",
        sha: str | None = None,
        *,
        target: str | None = None,
    ) -> dict[str, Any]:
        """Seed a deployment of ``branch`` (a preview unless ``target="production"``)."""
        with self.lock:
            proj = self._require_project(project)
            meta = {
                "githubCommitRef": branch,
                "githubCommitSha": sha or secrets.token_hex(20),
                "githubOrg": proj.repo.split("/")[0],
                "githubRepo": proj.repo.split("/")[-1],
            }
            return dict(self._create_deployment(proj, meta, state, target))

    def set_state(self, uid: str, state: str) -> None:
        """Force a deployment's ``readyState`` (stops its build timeline)."""
        assert state in READY_STATES, state
        with self.lock:
            dep = self._find_deployment(uid)
            assert dep is not None, f"no deployment {uid}"
            self._builds.pop(uid, None)
            dep["readyState"] = dep["state"] = state

    def deployment(self, uid: str) -> dict[str, Any] | None:
        with self.lock:
            dep = self._find_deployment(uid)
            return None if dep is None else dict(self._refresh(dep))

    def deployments_for(self, project: str, branch: str | None = None) -> list[dict[str, Any]]:
        """Deployments of ``project`` (of ``branch`` when given), newest first."""
        with self.lock:
            deps = [
                dict(self._refresh(d))
                for d in self._require_project(project).deployments
                if branch is None or d["meta"].get("githubCommitRef") == branch
            ]
            return sorted(deps, key=lambda d: d["createdAt"], reverse=True)

    def deployment_env(self, uid: str) -> dict[str, str]:
        """The env a deployment was built with: generic preview vars overlaid by its branch's."""
        with self.lock:
            return dict(self._deployment_envs.get(uid, {}))

    def redeploys(self) -> list[RecordedRequest]:
        """Successful ``POST /v13/deployments`` requests (each created a deployment)."""
        return [r for r in self.calls("POST", r"^/v13/deployments/?$") if r.status == 200]

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

    # ---- projects --------------------------------------------------------------------
    def on_get_project(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        org, _, repo = project.repo.partition("/")
        return self.json_response(
            {
                "id": project.id,
                "name": project.name,
                "accountId": self.team_id or "user_fake",
                "framework": "nextjs",
                "createdAt": project.created_at,
                "updatedAt": project.created_at,
                "link": {
                    "type": "github",
                    "org": org,
                    "repo": repo,
                    "repoId": 1,
                    "productionBranch": project.production_branch,
                },
            }
        )

    def on_get_team_domain(self, request: Request, body: Any, domain: str) -> Response:
        """The shape of ``@vercel/sdk``'s getDomain (``GetDomainResponseBody``)."""
        verified = self.team_domains.get(domain.lower())
        if verified is None:
            return self.error_response(404, f"The domain {domain!r} was not found", "not_found")
        created = self._now_ms()
        return self.json_response(
            {
                "domain": {
                    "id": f"dom_{hashlib.sha256(domain.encode()).hexdigest()[:24]}",
                    "name": domain.lower(),
                    "verified": verified,
                    "serviceType": "external",
                    "suffix": False,
                    "teamId": self.team_id,
                    "userId": "user_fake",
                    "createdAt": created,
                    "boughtAt": None,
                    "expiresAt": None,
                    "nameservers": [],
                    "intendedNameservers": ["ns1.vercel-dns.com", "ns2.vercel-dns.com"],
                    "creator": {"id": "user_fake", "username": "fake", "email": "f@example.com"},
                    "echMode": "auto",
                }
            }
        )

    # ---- environment variables -------------------------------------------------------
    def on_create_env(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        upsert = request.args.get("upsert") == "true"
        if isinstance(body, dict):
            items, single = [body], True
        elif isinstance(body, list) and body:
            items, single = body, False
        else:
            return self.error_response(
                400, "Invalid request: body should be an object or a non-empty array"
            )
        for item in items:
            problem = self._schema_problem(item)
            if problem:
                return self.error_response(400, f"Invalid request: {problem}")
        created: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for item in items:
            try:
                created.append(self._apply_env(project, item, upsert=upsert))
            except _Failure as fail:
                failed.append(
                    {
                        "error": {
                            "code": fail.code,
                            "message": fail.message,
                            "key": item["key"],
                            "gitBranch": item.get("gitBranch"),
                            "target": item["target"],
                        }
                    }
                )
        if single and failed and self.reject_single_failures:
            return self.json_response(failed[0], 400)
        shown = [self._public_env(e) for e in created]
        result: Any = (shown[0] if shown else []) if single else shown
        return self.json_response({"created": result, "failed": failed}, 201)

    def on_list_env(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        envs = project.envs
        if "gitBranch" in request.args:
            envs = [e for e in envs if e.get("gitBranch") == request.args["gitBranch"]]
        if "target" in request.args:
            envs = [e for e in envs if request.args["target"] in e["target"]]
        size = self._page_size(request, default=self.env_page_size, maximum=self.env_page_size)
        page, pagination = self._paginate(envs, request, size)
        return self.json_response(
            {"envs": [self._public_env(e) for e in page], "pagination": pagination}
        )

    def on_delete_env(self, request: Request, body: Any, id_or_name: str, env_id: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        for env in project.envs:
            if env["id"] == env_id:
                project.envs.remove(env)
                return self.json_response(self._public_env(env))
        return self.error_response(404, f"Environment Variable {env_id} was not found", "not_found")

    def on_batch_delete_env(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return self.error_response(400, "Invalid request: `ids` should be a non-empty array")
        wanted = set(ids)
        deleted = [e["id"] for e in project.envs if e["id"] in wanted]
        project.envs[:] = [e for e in project.envs if e["id"] not in wanted]
        return self.json_response({"deleted": deleted, "ids": ids})

    # ---- domains ---------------------------------------------------------------------
    def on_add_domain(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return self.error_response(400, "Invalid request: missing required property `name`")
        name = body["name"].lower()
        if not _DOMAIN_RE.match(name):
            return self.error_response(400, f"Invalid domain name {name!r}", "invalid_domain")
        git_branch = body.get("gitBranch")
        if git_branch is not None and git_branch not in project.branches:
            return self.error_response(
                400, f'The Git branch "{git_branch}" does not exist in the connected repository'
            )
        for other in self.projects.values():
            if any(d["name"] == name for d in other.domains):
                where = "this project" if other is project else "a different project"
                return self.error_response(
                    409,
                    f'The domain "{name}" is already in use by {where}.',
                    "domain_already_in_use",
                )
        now = self._now_ms()
        domain = {
            "name": name,
            "apexName": ".".join(name.split(".")[-2:]),
            "projectId": project.id,
            "gitBranch": git_branch,
            "redirect": body.get("redirect"),
            "redirectStatusCode": body.get("redirectStatusCode"),
            "verified": True,
            "createdAt": now,
            "updatedAt": now,
        }
        project.domains.append(domain)
        return self.json_response(dict(domain))

    def on_list_domains(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        domains = project.domains
        if "gitBranch" in request.args:
            domains = [d for d in domains if d.get("gitBranch") == request.args["gitBranch"]]
        size = self._page_size(request, default=20, maximum=100)
        page, pagination = self._paginate(domains, request, size)
        return self.json_response({"domains": [dict(d) for d in page], "pagination": pagination})

    def on_get_domain(self, request: Request, body: Any, id_or_name: str, domain: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        found = self._find_domain(project, domain)
        if found is None:
            return self._domain_not_found(domain)
        return self.json_response(dict(found))

    def on_delete_domain(
        self, request: Request, body: Any, id_or_name: str, domain: str
    ) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        found = self._find_domain(project, domain)
        if found is None:
            return self._domain_not_found(domain)
        project.domains.remove(found)
        return self.json_response({})

    # ---- deployments -----------------------------------------------------------------
    def on_list_deployments(self, request: Request, body: Any) -> Response:
        args = request.args
        deps: list[dict[str, Any]] = []
        wanted_project = args.get("projectId") or args.get("app")
        for project in self.projects.values():
            if wanted_project and wanted_project not in (project.id, project.name):
                continue
            deps.extend(self._refresh(d) for d in project.deployments)
        if "target" in args:
            target = args["target"]
            deps = [d for d in deps if (d["target"] or "preview") == target]
        if "branch" in args:
            deps = [d for d in deps if d["meta"].get("githubCommitRef") == args["branch"]]
        if "sha" in args:
            deps = [d for d in deps if d["meta"].get("githubCommitSha") == args["sha"]]
        for key in args:
            if key.startswith("meta-"):
                meta_key, value = key[len("meta-") :], args[key]
                deps = [d for d in deps if d["meta"].get(meta_key) == value]
        if "state" in args:
            states = {s.strip().upper() for s in args["state"].split(",")}
            deps = [d for d in deps if d["readyState"] in states]
        if "since" in args:
            since = self._int_arg(args["since"])
            deps = [d for d in deps if d["createdAt"] > since]
        size = self._page_size(request, default=20, maximum=100)
        page, pagination = self._paginate(deps, request, size)
        return self.json_response(
            {"deployments": [self._list_item(d) for d in page], "pagination": pagination}
        )

    def on_get_deployment(self, request: Request, body: Any, id_or_url: str) -> Response:
        dep = self._find_deployment(id_or_url)
        if dep is None:
            return self.error_response(404, "The deployment could not be found.", "not_found")
        return self.json_response(self._full_view(self._refresh(dep)))

    def on_create_deployment(self, request: Request, body: Any) -> Response:
        if not isinstance(body, dict):
            return self.error_response(400, "Invalid request: body should be an object")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return self.error_response(400, "Invalid request: missing required property `name`")
        source_id = body.get("deploymentId")
        if not isinstance(source_id, str):
            # A fresh deployment from files or a git source is out of scope for this fake.
            return self.error_response(
                400, "Invalid request: this fake only supports redeploys (`deploymentId`)"
            )
        source = self._find_deployment(source_id)
        if source is None or source["readyState"] == "DELETED":
            return self.error_response(
                404, f"Deployment {source_id} could not be found.", "not_found"
            )
        project = self._require_project(source["projectId"])
        if name != project.name:
            return self.error_response(
                400,
                f"Invalid request: `name` {name!r} is not the project {project.name!r} "
                "of the deployment to redeploy",
            )
        target = body.get("target")
        if target is not None and target != source["target"]:
            return self.error_response(
                400,
                f"Invalid request: `target` {target!r} differs from the redeployed "
                f"deployment's ({source['target']!r}); omit it for a preview",
            )
        meta = {
            **source["meta"],
            **(body.get("meta") or {}),
            "originalDeploymentId": source["uid"],
        }
        dep = self._create_deployment(project, meta, "QUEUED", source["target"])
        if self.build_seconds is not None:
            self._builds[dep["uid"]] = self.clock()
        return self.json_response(self._full_view(dep))

    # ---- internals -------------------------------------------------------------------
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

    def _domain_not_found(self, domain: str) -> Response:
        return self.error_response(404, f"The domain {domain} was not found", "not_found")

    @staticmethod
    def _find_domain(project: ProjectState, name: str) -> dict[str, Any] | None:
        return next((d for d in project.domains if d["name"] == name.lower()), None)

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

    @staticmethod
    def _schema_problem(item: Any) -> str | None:
        if not isinstance(item, dict):
            return "each item should be an object"
        if not isinstance(item.get("key"), str) or not item["key"]:
            return "missing required property `key`"
        if not isinstance(item.get("value"), str):
            return f"`value` of {item['key']} should be a string"
        if item.get("type") not in ENV_TYPES:
            return f"`type` of {item['key']} should be one of {sorted(ENV_TYPES)}"
        target = item.get("target")
        if not isinstance(target, list) or not target:
            return f"`target` of {item['key']} should be a non-empty array"
        if any(t not in ENV_TARGETS for t in target):
            return f"`target` of {item['key']} should hold only {sorted(ENV_TARGETS)}"
        if item.get("gitBranch") is not None and not isinstance(item["gitBranch"], str):
            return f"`gitBranch` of {item['key']} should be a string"
        return None

    def _apply_env(
        self, project: ProjectState, item: dict[str, Any], *, upsert: bool
    ) -> dict[str, Any]:
        key: str = item["key"]
        target: list[str] = item["target"]
        branch: str | None = item.get("gitBranch") or None
        if key in self.fail_keys:
            raise _Failure(self.fail_keys[key], f"Injected failure for {key}")
        if branch is not None:
            if sorted(target) != ["preview"]:
                raise _Failure(
                    "BAD_REQUEST",
                    "A Git branch can only be set for Environment Variables that target "
                    'only "preview"',
                )
            if branch == project.production_branch:
                raise _Failure(
                    "BAD_REQUEST",
                    f'Cannot set Production Branch "{branch}" for a Preview Environment Variable',
                )
            if branch not in project.branches:
                raise _Failure(
                    "BAD_REQUEST",
                    f'The Git branch "{branch}" does not exist in the connected Git repository '
                    f"{project.repo}",
                )
        existing: dict[str, Any] | None = None
        for env in project.envs:
            if env["key"] != key or (env.get("gitBranch") or None) != branch:
                continue
            if set(env["target"]) == set(target):
                existing = env
                break
            if set(env["target"]) & set(target):
                raise _Failure(
                    "ENV_CONFLICT",
                    f'The Environment Variable "{key}" conflicts with an existing one '
                    f"for target {sorted(set(env['target']) & set(target))}",
                )
        if existing is not None and not upsert:
            raise _Failure(
                "ENV_ALREADY_EXISTS",
                f'A variable with the name "{key}" already exists for the target '
                f"{','.join(target)}" + (f" on branch {branch}" if branch else ""),
            )
        added = len(key) + len(item["value"])
        removed = len(key) + len(existing["value"]) if existing is not None else 0
        if self._scope_size(project, target, branch) - removed + added > self.env_size_limit:
            raise _Failure(
                "ENV_SIZE_LIMIT",
                f"The total size of Environment Variables would exceed {self.env_size_limit} "
                "bytes for a deployment",
            )
        if existing is not None:
            existing.update(
                value=item["value"],
                type=item["type"],
                comment=item.get("comment", existing.get("comment", "")),
                updatedAt=self._now_ms(),
            )
            return existing
        env = self._new_env(item)
        project.envs.append(env)
        return env

    @staticmethod
    def _scope_size(project: ProjectState, target: list[str], branch: str | None) -> int:
        """Bytes of the vars a deployment of (target, branch) would see."""
        return sum(
            len(e["key"]) + len(e["value"])
            for e in project.envs
            if set(e["target"]) & set(target) and (e.get("gitBranch") or None) in (None, branch)
        )

    def _new_env(self, item: dict[str, Any]) -> dict[str, Any]:
        now = self._now_ms()
        env: dict[str, Any] = {
            "id": _rand(16, _ID_ALPHABET),
            "key": item["key"],
            "value": item["value"],
            "type": item["type"],
            "target": list(item["target"]),
            "comment": item.get("comment", ""),
            "createdAt": now,
            "updatedAt": now,
        }
        if item.get("gitBranch"):
            env["gitBranch"] = item["gitBranch"]
        return env

    @staticmethod
    def _public_env(env: dict[str, Any]) -> dict[str, Any]:
        shown = dict(env)
        if env["type"] == "sensitive":
            shown.pop("value", None)
        elif env["type"] in ("encrypted", "secret"):
            digest = hashlib.sha256(
                f"{env['id']}:{env['updatedAt']}:{env['value']}".encode()
            ).hexdigest()
            shown["value"] = f"enc:{digest[:48]}"
        shown["decrypted"] = False
        return shown

    def _create_deployment(
        self, project: ProjectState, meta: dict[str, Any], state: str, target: str | None
    ) -> dict[str, Any]:
        assert state in READY_STATES, state
        uid = f"dpl_{_rand(28, _ID_ALPHABET)}"
        now = self._now_ms()
        dep: dict[str, Any] = {
            "uid": uid,
            "name": project.name,
            "url": f"{project.name}-{_rand(9)}.vercel.app",
            "created": now,
            "createdAt": now,
            "state": state,
            "readyState": state,
            "target": target,
            "type": "LAMBDAS",
            "projectId": project.id,
            "meta": meta,
            "inspectorUrl": f"https://vercel.com/fake/{project.name}/{uid[4:]}",
        }
        project.deployments.append(dep)
        self._deployment_envs[uid] = self._effective_env(
            project, target or "preview", meta.get("githubCommitRef")
        )
        return dep

    @staticmethod
    def _effective_env(project: ProjectState, target: str, branch: str | None) -> dict[str, str]:
        env: dict[str, str] = {}
        for var in project.envs:
            if target in var["target"] and not var.get("gitBranch"):
                env[var["key"]] = var["value"]
        for var in project.envs:
            if target in var["target"] and branch and var.get("gitBranch") == branch:
                env[var["key"]] = var["value"]
        return env

    def _find_deployment(self, id_or_url: str) -> dict[str, Any] | None:
        needle = id_or_url.removeprefix("https://")
        for project in self.projects.values():
            for dep in project.deployments:
                if needle in (dep["uid"], dep["url"]):
                    return dep
        return None

    def _refresh(self, dep: dict[str, Any]) -> dict[str, Any]:
        """Advance a redeploy along its build timeline (computed lazily from the clock)."""
        started = self._builds.get(dep["uid"])
        if started is not None and self.build_seconds is not None:
            elapsed = self.clock() - started
            if elapsed >= self.build_seconds:
                state = self.build_result
                self._builds.pop(dep["uid"], None)
                if state == "READY":
                    dep["ready"] = self._now_ms()
            elif elapsed >= self.build_seconds / 4:
                state = "BUILDING"
                dep.setdefault("buildingAt", self._now_ms())
            else:
                state = "QUEUED"
            dep["state"] = dep["readyState"] = state
        return dep

    @staticmethod
    def _list_item(dep: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in dep.items() if k != "type"}

    @staticmethod
    def _full_view(dep: dict[str, Any]) -> dict[str, Any]:
        view = dict(dep)
        view["id"] = dep["uid"]
        view["status"] = dep["readyState"]
        view["alias"] = []
        return view
