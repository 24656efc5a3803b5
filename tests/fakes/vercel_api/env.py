"""Environment variables: branch-scoped validation, upsert, ``failed[]`` in a 201, the
per-deployment size limit, values that never come back in plaintext, cursor paging."""

from __future__ import annotations

import hashlib
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.vercel_api.common import (
    _ID_ALPHABET,
    ENV_TARGETS,
    ENV_TYPES,
    ProjectState,
    VercelBase,
    _rand,
)


class _Failure(Exception):
    """An env item that lands in ``failed`` with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


RULES = [
    Rule("/v10/projects/<id_or_name>/env", endpoint="create_env", methods=["POST"]),
    Rule("/v10/projects/<id_or_name>/env", endpoint="list_env", methods=["GET"]),
    Rule("/v10/projects/<id_or_name>/env/<env_id>", endpoint="delete_env", methods=["DELETE"]),
    Rule("/v1/projects/<id_or_name>/env", endpoint="batch_delete_env", methods=["DELETE"]),
]


class EnvApi(VercelBase):
    """``/v10/projects/{id}/env`` (create/upsert, list, delete) and the batch delete."""

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
