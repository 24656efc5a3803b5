"""GitHub deployments and their statuses (``/repos/O/R/deployments``), on a
:class:`GitHubClient`: the preview as a deployment ("View deployment" on the PR)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from previewctl.clients.github import GitHubClient, _repo_path
from previewctl.errors import ApiError


class Deployment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    sha: str | None = None
    ref: str | None = None
    environment: str | None = None
    payload: Any = None
    created_at: datetime | None = None

    @property
    def by_previewctl(self) -> bool:
        """Made by previewctl (its payload says so): the only ones it touches."""
        return isinstance(self.payload, dict) and self.payload.get("previewctl") is True


class DeploymentStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    state: str
    environment_url: str | None = None
    log_url: str | None = None
    description: str | None = None


MAX_STATUS_DESCRIPTION = 140


class DeploymentsApi:
    """``/repos/O/R/deployments`` on a :class:`GitHubClient` (kept apart: its own noun)."""

    def __init__(self, client: GitHubClient) -> None:
        self.client = client

    def list(self, repo: str, environment: str, *, ref: str | None = None) -> list[Deployment]:
        """Newest first (GitHub's order); the first page of 30 is enough to find ours."""
        params: dict[str, Any] = {"environment": environment, "per_page": 30}
        if ref is not None:
            params["ref"] = ref
        response = self.client.request("GET", f"{_repo_path(repo)}/deployments", params=params)
        body = response.json()
        return [Deployment.model_validate(d) for d in body if isinstance(d, dict)]

    def create(
        self,
        repo: str,
        *,
        ref: str,
        environment: str,
        description: str,
        payload: dict[str, Any],
        find: Callable[[], Deployment | None],
    ) -> Deployment:
        """A deployment of ``ref`` that is never blocked by, nor merges, anything else.

        ``auto_merge: false``: GitHub would otherwise merge the base branch into the PR's
        branch (a commit nobody asked for); ``required_contexts: []``: it would otherwise
        refuse while the PR's own checks are still running. A lost answer is not a second
        deployment: ``find()`` looks for the one it may have made before trying again.
        """
        return self.client.create_once(
            "POST",
            f"{_repo_path(repo)}/deployments",
            build=self._created,
            find=find,
            json={
                "ref": ref,
                "environment": environment,
                "description": description[:MAX_STATUS_DESCRIPTION],
                "payload": payload,
                "auto_merge": False,
                "required_contexts": [],
                "transient_environment": False,
                "production_environment": False,
            },
        )

    @staticmethod
    def _created(response: httpx.Response) -> Deployment:
        if response.status_code != 201:  # 202: GitHub did something else than deploy
            body = response.json() if response.content else {}
            message = str(body.get("message") or "no deployment was created")
            raise ApiError(
                "GitHub", message, status=response.status_code, method="POST", path="deployments"
            )
        return Deployment.model_validate(response.json())

    def latest_status(self, repo: str, deployment_id: int) -> DeploymentStatus | None:
        response = self.client.request(
            "GET",
            f"{_repo_path(repo)}/deployments/{int(deployment_id)}/statuses",
            params={"per_page": 1},
        )
        body = response.json()
        items = [DeploymentStatus.model_validate(s) for s in body if isinstance(s, dict)]
        return items[0] if items else None

    def set_status(
        self,
        repo: str,
        deployment_id: int,
        state: str,
        *,
        description: str = "",
        environment_url: str | None = None,
        log_url: str | None = None,
        after: DeploymentStatus | None = None,
    ) -> DeploymentStatus:
        """Add a status. ``after``: the latest one before; an answer lost after GitHub
        added the status finds it (a newer status in that state), not a second one."""
        body: dict[str, Any] = {"state": state, "description": description[:MAX_STATUS_DESCRIPTION]}
        if environment_url:
            body["environment_url"] = environment_url
        if log_url:
            body["log_url"] = log_url

        def added() -> DeploymentStatus | None:
            latest = self.latest_status(repo, deployment_id)
            newer = latest is not None and (after is None or latest.id != after.id)
            return latest if newer and latest is not None and latest.state == state else None

        return self.client.create_once(
            "POST",
            f"{_repo_path(repo)}/deployments/{int(deployment_id)}/statuses",
            json=body,
            build=lambda response: DeploymentStatus.model_validate(response.json()),
            find=added,
        )
