"""Deployments: list (filters, ``until`` paging), get, and redeploys with a lazily
computed QUEUED -> BUILDING -> final-state timeline."""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.loopback import RecordedRequest
from tests.fakes.vercel_api.common import (
    _ID_ALPHABET,
    READY_STATES,
    ProjectState,
    VercelBase,
    _rand,
)

RULES = [
    Rule("/v6/deployments", endpoint="list_deployments", methods=["GET"]),
    Rule("/v7/deployments", endpoint="list_deployments", methods=["GET"]),
    Rule("/v13/deployments/<id_or_url>", endpoint="get_deployment", methods=["GET"]),
    Rule("/v13/deployments", endpoint="create_deployment", methods=["POST"]),
]


class DeploymentsApi(VercelBase):
    """``/v6|v7/deployments``, ``/v13/deployments[/{id}]``; seeding and build timelines."""

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
