"""GitHub's deployments and deployment statuses, as ``@octokit/openapi`` describes them.

Mixed into :class:`tests.fakes.github_api.GitHubFake`. What the real API does and a
client must cope with:

- ``POST /repos/O/R/deployments`` needs ``ref`` (a branch, tag or SHA; a ref the repo
  does not have is 422 "No ref found for: X"). ``auto_merge`` defaults to true: when
  the base branch is ahead (``behind_base``), GitHub merges it into the topic branch
  and answers 202 with a message instead of a deployment. ``required_contexts``
  omitted means every commit status context of the SHA must be ``success``, else 409.
  ``environment`` defaults to ``production``; ``production_environment`` to
  ``environment == "production"``; ``transient_environment`` to false; ``payload`` is
  an object or a JSON string. 201 carries the deployment.
- ``GET .../deployments`` filters by ``sha``, ``ref``, ``task``, ``environment``;
  newest first, paged with ``Link``.
- ``POST .../deployments/ID/statuses`` needs ``state`` in error, failure, inactive,
  in_progress, queued, pending, success; ``description`` ≤ 140 characters; ``log_url``
  also sets ``target_url``. ``auto_inactive`` (default true): a ``success`` adds an
  ``inactive`` status to every earlier non-transient, non-production deployment of the
  same environment whose latest status was ``success``. 201 with ``Location``.
- ``GET .../deployments/ID/statuses``: newest first, paged.
- ``DELETE .../deployments/ID``: only an inactive one, unless it is the only one: 422.
- Without ``deployments: write`` a GITHUB_TOKEN gets 403 "Resource not accessible by
  integration" on every write (``deployments_writable = False``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.loopback import ApiError, LoopbackApi

_REPO = "/repos/<owner>/<repo>"
STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
MAX_DESCRIPTION = 140
_SHA = re.compile(r"^[0-9a-f]{40}$")

DEPLOYMENT_RULES = [
    Rule(f"{_REPO}/deployments", endpoint="list_deployments", methods=["GET"]),
    Rule(f"{_REPO}/deployments", endpoint="create_deployment", methods=["POST"]),
    Rule(f"{_REPO}/deployments/<int:deployment_id>", endpoint="get_deployment", methods=["GET"]),
    Rule(
        f"{_REPO}/deployments/<int:deployment_id>",
        endpoint="delete_deployment",
        methods=["DELETE"],
    ),
    Rule(
        f"{_REPO}/deployments/<int:deployment_id>/statuses",
        endpoint="list_deployment_statuses",
        methods=["GET"],
    ),
    Rule(
        f"{_REPO}/deployments/<int:deployment_id>/statuses",
        endpoint="create_deployment_status",
        methods=["POST"],
    ),
    Rule(
        f"{_REPO}/deployments/<int:deployment_id>/statuses/<int:status_id>",
        endpoint="get_deployment_status",
        methods=["GET"],
    ),
]


class DeploymentsMixin(LoopbackApi):
    """State and handlers; the host class provides ``repo``, ``prs``, ``bot_login`` and
    the three helpers below (its paging, repository check and 404)."""

    repo: str
    prs: dict[int, dict[str, Any]]
    bot_login: str

    def _paged(self, request: Request, items: list[dict[str, Any]]) -> Response:
        raise NotImplementedError  # the host's

    def _is_repo(self, owner: str, repo: str) -> bool:
        raise NotImplementedError  # the host's

    def _not_found(self) -> Response:
        raise NotImplementedError  # the host's

    def init_deployments(self) -> None:
        self.deployments: list[dict[str, Any]] = []
        self.deployment_statuses: dict[int, list[dict[str, Any]]] = {}
        self.commit_statuses: dict[str, dict[str, str]] = {}
        """sha -> {context: state}: what ``required_contexts`` is checked against."""
        self.behind_base: set[str] = set()
        """Branches whose base moved on: auto_merge would merge into them (202)."""
        self.deployments_writable = True
        self._next_deployment_id = 7_000_001
        self._next_status_id = 9_000_001

    # ---- test views ---------------------------------------------------------------
    def deployments_in(self, environment: str) -> list[dict[str, Any]]:
        """Deployments of ``environment``, newest first."""
        with self.lock:  # the host's lock
            found = [dict(d) for d in self.deployments if d["environment"] == environment]
        return sorted(found, key=lambda d: d["id"], reverse=True)

    def statuses_of(self, deployment_id: int) -> list[dict[str, Any]]:
        """A deployment's statuses, newest first."""
        with self.lock:
            return [dict(s) for s in reversed(self.deployment_statuses.get(deployment_id, []))]

    def state_of(self, deployment_id: int) -> str | None:
        statuses = self.statuses_of(deployment_id)
        return statuses[0]["state"] if statuses else None

    # ---- helpers ---------------------------------------------------------------------
    def _api(self, path: str) -> str:
        return f"https://api.github.com/repos/{self.repo}{path}"

    def _creator(self) -> dict[str, Any]:
        """A simple-user, every required field of the schema (the Actions bot's)."""
        login = self.bot_login
        user = f"https://api.github.com/users/{login.replace('[bot]', '%5Bbot%5D')}"
        return {
            "login": login,
            "id": 41898282,
            "node_id": "MDM6Qm90NDE4OTgyODI=",
            "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4",
            "gravatar_id": "",
            "url": user,
            "html_url": f"https://github.com/apps/{login.removesuffix('[bot]')}",
            "followers_url": f"{user}/followers",
            "following_url": f"{user}/following{{/other_user}}",
            "gists_url": f"{user}/gists{{/gist_id}}",
            "starred_url": f"{user}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{user}/subscriptions",
            "organizations_url": f"{user}/orgs",
            "repos_url": f"{user}/repos",
            "events_url": f"{user}/events{{/privacy}}",
            "received_events_url": f"{user}/received_events",
            "type": "Bot",
            "site_admin": False,
        }

    def _resolve(self, ref: str) -> str | None:
        """The SHA a ref names: a PR's head branch, a head SHA, or any full SHA."""
        for pr in self.prs.values():
            head = pr["head"]
            if ref in (head["ref"], f"refs/heads/{head['ref']}", head["sha"]):
                return str(head["sha"])
        return ref if _SHA.match(ref) else None

    def _refuse_write(self) -> Response | None:
        if self.deployments_writable:
            return None
        return self.error_response(403, "Resource not accessible by integration")

    def _invalid(self, message: str) -> ApiError:
        return ApiError(422, message)

    def _find(self, deployment_id: int) -> dict[str, Any]:
        for deployment in self.deployments:
            if deployment["id"] == deployment_id:
                return deployment
        raise ApiError(404, "Not Found")

    # ---- deployments -------------------------------------------------------------------
    def on_list_deployments(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        found = list(self.deployments)
        for name in ("sha", "ref", "task", "environment"):
            if name in request.args:
                found = [d for d in found if d[name] == request.args[name]]
        found.sort(key=lambda d: d["id"], reverse=True)
        return self._paged(request, found)

    def on_create_deployment(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        refused = self._refuse_write()
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise self._invalid('Invalid request.\n\n"ref" wasn\'t supplied.')
        sha = self._resolve(ref)
        if sha is None:
            raise self._invalid(f"No ref found for: {ref}")
        if body.get("auto_merge", True) and ref in self.behind_base:
            message = f"Auto-merged main into {ref} on deployment."
            return self.json_response({"message": message}, 202)
        required = body.get("required_contexts")
        statuses = self.commit_statuses.get(sha, {})
        checked = statuses if required is None else {c: statuses.get(c, "") for c in required}
        failing = sorted(c for c, state in checked.items() if state != "success")
        if failing:
            return self.json_response(
                {
                    "message": f"Conflict: Commit status checks failed for {ref}.",
                    "errors": [
                        {
                            "contexts": failing,
                            "resource": "Deployment",
                            "field": "required_contexts",
                        }
                    ],
                    "documentation_url": "https://docs.github.com/rest/deployments/deployments",
                },
                409,
            )
        deployment = self._new_deployment(body, ref, sha)
        return self.json_response(deployment, 201)

    def _new_deployment(self, body: dict[str, Any], ref: str, sha: str) -> dict[str, Any]:
        environment = str(body.get("environment") or "production")
        payload = body.get("payload", {})
        if isinstance(payload, str):
            try:
                payload = json.loads(payload) if payload else {}
            except ValueError as exc:
                raise self._invalid("Invalid request.\n\npayload is not valid JSON.") from exc
        deployment_id = self._next_deployment_id
        self._next_deployment_id += 1
        now = _now()
        deployment: dict[str, Any] = {
            "url": self._api(f"/deployments/{deployment_id}"),
            "id": deployment_id,
            "node_id": f"DE_fake{deployment_id}",
            "sha": sha,
            "ref": ref,
            "task": str(body.get("task") or "deploy"),
            "payload": payload,
            "original_environment": environment,
            "environment": environment,
            "description": body.get("description"),
            "creator": self._creator(),
            "created_at": now,
            "updated_at": now,
            "statuses_url": self._api(f"/deployments/{deployment_id}/statuses"),
            "repository_url": self._api(""),
            "transient_environment": bool(body.get("transient_environment", False)),
            "production_environment": bool(
                body.get("production_environment", environment == "production")
            ),
            "performed_via_github_app": None,
        }
        self.deployments.append(deployment)
        self.deployment_statuses[deployment_id] = []
        return deployment

    def on_get_deployment(
        self, request: Request, body: Any, owner: str, repo: str, deployment_id: int
    ) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        return self.json_response(self._find(deployment_id))

    def on_delete_deployment(
        self, request: Request, body: Any, owner: str, repo: str, deployment_id: int
    ) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        refused = self._refuse_write()
        if refused is not None:
            return refused
        deployment = self._find(deployment_id)
        latest = self.deployment_statuses.get(deployment_id) or [{"state": None}]
        if len(self.deployments) > 1 and latest[-1]["state"] not in (
            "inactive",
            "failure",
            "error",
        ):
            raise self._invalid(
                "We cannot delete an active deployment unless it is the only deployment in a "
                "given environment."
            )
        self.deployments.remove(deployment)
        self.deployment_statuses.pop(deployment_id, None)
        return Response(status=204)

    # ---- statuses ----------------------------------------------------------------------
    def on_list_deployment_statuses(
        self, request: Request, body: Any, owner: str, repo: str, deployment_id: int
    ) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        self._find(deployment_id)
        statuses = list(reversed(self.deployment_statuses[deployment_id]))
        return self._paged(request, statuses)

    def on_get_deployment_status(
        self, request: Request, body: Any, owner: str, repo: str, deployment_id: int, status_id: int
    ) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        self._find(deployment_id)
        for status in self.deployment_statuses[deployment_id]:
            if status["id"] == status_id:
                return self.json_response(status)
        raise ApiError(404, "Not Found")

    def on_create_deployment_status(
        self, request: Request, body: Any, owner: str, repo: str, deployment_id: int
    ) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        refused = self._refuse_write()
        if refused is not None:
            return refused
        deployment = self._find(deployment_id)
        if not isinstance(body, dict):
            raise ApiError(400, "Problems parsing JSON")
        state = body.get("state")
        if state not in STATES:
            raise self._invalid(
                f'Invalid request.\n\nNo subschema in "anyOf" matched. {state!r} is not a '
                f"member of {list(STATES)}."
            )
        description = str(body.get("description") or "")
        if len(description) > MAX_DESCRIPTION:
            raise self._invalid(
                f"Validation Failed: description is too long (maximum is {MAX_DESCRIPTION} "
                "characters)"
            )
        status = self._add_status(deployment, body, str(state), description)
        if state == "success" and body.get("auto_inactive", True):
            self._auto_inactive(deployment)
        headers = {"Location": status["url"]}
        return self.json_response(status, 201, headers)

    def _add_status(
        self, deployment: dict[str, Any], body: dict[str, Any], state: str, description: str
    ) -> dict[str, Any]:
        status_id = self._next_status_id
        self._next_status_id += 1
        log_url = str(body.get("log_url") or body.get("target_url") or "")
        environment = str(body.get("environment") or deployment["environment"])
        now = _now()
        deployment_url = deployment["url"]
        status: dict[str, Any] = {
            "url": f"{deployment_url}/statuses/{status_id}",
            "id": status_id,
            "node_id": f"DES_fake{status_id}",
            "state": state,
            "creator": self._creator(),
            "description": description,
            "environment": environment,
            "target_url": log_url,
            "created_at": now,
            "updated_at": now,
            "deployment_url": deployment_url,
            "repository_url": deployment["repository_url"],
            "environment_url": str(body.get("environment_url") or ""),
            "log_url": log_url,
            "performed_via_github_app": None,
        }
        self.deployment_statuses[deployment["id"]].append(status)
        deployment["updated_at"] = now
        return status

    def _auto_inactive(self, current: dict[str, Any]) -> None:
        for other in self.deployments:
            if other is current or other["environment"] != current["environment"]:
                continue
            if other["transient_environment"] or other["production_environment"]:
                continue
            statuses = self.deployment_statuses.get(other["id"]) or []
            if statuses and statuses[-1]["state"] == "success":
                self._add_status(other, {}, "inactive", "")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
