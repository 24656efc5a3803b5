"""The API answers the client tests serve through respx, in one place.

``tests/clients`` builds its respx routes from these; ``tests/contract`` serves the same
answers through respx and checks them, with the same assertions, against what the
emulators in ``tests/fakes`` answer. So a canned answer cannot drift from the platform's
shape (fly-go's flaps types, ``@vercel/sdk``, GitHub's REST spec) without a test failing.
"""

from __future__ import annotations

from typing import Any

FLY_APP = "pr-7-agents"
FLY_MACHINE = "m123"
GITHUB_DOCS = "https://docs.github.com/rest"


# ---- Fly Machines API ---------------------------------------------------------------------
def fly_error(message: str, status: str | None = None) -> dict[str, Any]:
    """fly-go's ``errorResponse``: ``{"error": message, "status": code}`` (status optional)."""
    return {"error": message} if status is None else {"error": message, "status": status}


def fly_name_taken() -> dict[str, Any]:
    return fly_error("Validation failed: Name has already been taken", "name_taken")


def fly_app(name: str = FLY_APP, org: str = "acme") -> dict[str, Any]:
    """``POST /v1/apps`` (201) and ``GET /v1/apps/{app}``."""
    return {"id": "a1b2c3", "name": name, "organization": {"slug": org}}


def fly_apps(*names: str) -> dict[str, Any]:
    """``GET /v1/apps?org_slug=ORG``."""
    apps = [{"id": f"id-{n}", "name": n, "machine_count": 1, "network": "default"} for n in names]
    return {"total_apps": len(apps), "apps": apps}


def fly_machine(state: str = "started", **extra: Any) -> dict[str, Any]:
    """A ``Machine`` (create, get, list items, update)."""
    return {"id": FLY_MACHINE, "name": "preview", "state": state, "region": "iad", **extra}


def fly_started(previous: str = "stopped") -> dict[str, Any]:
    """``POST .../start``: fly-go's ``MachineStartResponse``."""
    return {"previous_state": previous, "migrated": False, "new_host_id": ""}


def fly_lease(nonce: str = "nonce-1") -> dict[str, Any]:
    """``POST .../lease`` (201): fly-go's ``MachineLease``."""
    lease = {"nonce": nonce, "expires_at": 1_900_000_000, "owner": "ci", "description": ""}
    return {"status": "success", "data": {**lease, "version": "1"}}


def fly_ip(ip: str = "2a09:8280:1::2") -> dict[str, Any]:
    """``POST /v1/apps/{app}/ip_assignments``: fly-go's ``AssignIPResponse`` (and list items)."""
    return {"ip": ip, "region": "global", "service_name": "app-shared-edge", "shared": False}


# ---- Vercel ---------------------------------------------------------------------------------
def vercel_error(code: str, message: str) -> dict[str, Any]:
    """Vercel's ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


def vercel_env_failure(key: str, code: str, message: str, branch: str) -> dict[str, Any]:
    """An item of a 201's ``failed`` from ``POST /v10/projects/{p}/env``."""
    error = {"code": code, "message": message, "key": key, "gitBranch": branch}
    return {"error": {**error, "target": ["preview"]}}


def vercel_project(name: str = "web", production_branch: str = "main") -> dict[str, Any]:
    return {"id": f"prj_{name}", "name": name, "link": {"productionBranch": production_branch}}


def vercel_deployment(
    uid: str, branch: str, created: int, state: str = "READY", **extra: Any
) -> dict[str, Any]:
    """An item of ``GET /v6/deployments`` (newest first there)."""
    return {
        "uid": uid,
        "name": "web",
        "url": f"web-{uid}.vercel.app",
        "createdAt": created,
        "readyState": state,
        "state": state,
        "target": None,
        "meta": {"githubCommitRef": branch},
        **extra,
    }


# ---- GitHub ---------------------------------------------------------------------------------
def github_error(message: str) -> dict[str, Any]:
    """GitHub's ``{"message", "documentation_url"}``."""
    return {"message": message, "documentation_url": GITHUB_DOCS}


def github_pull(number: int, repo: str = "acme/agents", **extra: Any) -> dict[str, Any]:
    """``GET /repos/{o}/{r}/pulls/{n}`` (and list items, which have ``merged_at``)."""
    return {
        "number": number,
        "state": "open",
        "merged": False,
        "merged_at": None,
        "updated_at": "2024-05-01T10:00:00Z",
        "head": {"ref": f"feat-{number}", "repo": {"full_name": repo}},
        **extra,
    }


def github_comment(comment_id: int, body: str) -> dict[str, Any]:
    return {
        "id": comment_id,
        "body": body,
        "user": {"login": "github-actions[bot]", "type": "Bot"},
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
    }


def github_deployment(deployment_id: int, ref: str, environment: str) -> dict[str, Any]:
    """``POST /repos/{o}/{r}/deployments`` (201)."""
    return {
        "id": deployment_id,
        "ref": ref,
        "sha": "0" * 40,
        "environment": environment,
        "description": "",
        "payload": {},
        "transient_environment": False,
        "production_environment": False,
        "creator": {"login": "github-actions[bot]", "type": "Bot"},
    }


def github_deployment_status(status_id: int, state: str, environment_url: str) -> dict[str, Any]:
    """``POST /repos/{o}/{r}/deployments/{id}/statuses`` (201)."""
    return {"id": status_id, "state": state, "environment_url": environment_url}
