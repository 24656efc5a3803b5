"""The Vercel REST API: projects, branch-scoped env vars, domains and deployments.

Facts this follows are in ``shared/reference/vercel-github.md``: errors are
``{"error": {"code", "message"}}``; a 201 from the env upsert can still carry
``failed[]``; env changes apply only to new deployments; list endpoints page with
``until=pagination.next``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from previewctl import redact
from previewctl.clients.answers import json_body, message_field, text_field
from previewctl.clients.http import ApiClient, RetryPolicy
from previewctl.clients.vercel_models import (
    FAILED_STATES,
    FINAL_STATES,
    READY,
    REDEPLOY_KEY,
    Deployment,
    Domain,
    EnvInput,
    EnvVar,
    VercelProject,
)
from previewctl.errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    PreviewctlError,
    TimeoutExceededError,
)
from previewctl.retry import Backoff, NotYet, Retry

if TYPE_CHECKING:
    from previewctl.reporter import Reporter

# A cursor loop that never ends is a server bug; stop well before it costs anything.
_MAX_PAGES = 500


def _segment(value: str) -> str:
    """One path segment: a project name, env id or domain can never escape its place."""
    return quote(value, safe="")


class VercelClient(ApiClient):
    api_name = "Vercel"
    api_title = "Vercel API"
    url_env = "VERCEL_API_URL"
    status_page = "https://www.vercel-status.com"

    def __init__(
        self,
        http: httpx.Client,
        *,
        team_id: str | None = None,
        retry: RetryPolicy | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(http, retry=retry, on_request=on_request)
        self.team_id = team_id
        self._projects: dict[str, VercelProject] = {}

    # ---- ApiClient hooks ---------------------------------------------------------------
    def scope_params(self) -> dict[str, str]:
        """Every request is scoped to the team when one is configured."""
        return {"teamId": self.team_id} if self.team_id else {}

    def error_message(self, response: httpx.Response) -> tuple[str, str | None]:
        body = json_body(response)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]  # {"code", "message"}; other fields may echo the request
            return message_field(response, err.get("message")), text_field(err.get("code"))
        return super().error_message(response)

    def request_id(self, response: httpx.Response) -> str | None:
        value = response.headers.get("x-vercel-id")
        return str(value) if value else None

    # ---- paging ------------------------------------------------------------------------
    def _pages(
        self, path: str, items_key: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Items of a cursor-paged list, following ``pagination.next`` via ``until=``."""
        query = dict(params or {})
        seen: set[Any] = set()
        for _ in range(_MAX_PAGES):
            response = self.request("GET", path, params=query)
            body = json_body(response)
            listed = (body.get(items_key) or []) if isinstance(body, dict) else None
            if not isinstance(listed, list) or not all(isinstance(i, dict) for i in listed):
                # Not a page of the listing: skipping it would make a partial listing
                # look complete (down and gc would leave what it left out behind).
                raise ApiError(
                    self.api_name,
                    f"the answer is not a page of {items_key}",
                    status=response.status_code,
                    request_id=self.request_id(response),
                    method="GET",
                    path=path,
                )
            yield from listed
            pagination = body.get("pagination")
            cursor = pagination.get("next") if isinstance(pagination, dict) else None
            if cursor is None or cursor in seen:
                return
            seen.add(cursor)
            query["until"] = cursor
        raise ApiError(self.api_name, f"more than {_MAX_PAGES} pages", method="GET", path=path)

    # ---- projects ----------------------------------------------------------------------
    def get_project(self, id_or_name: str) -> VercelProject:
        """The project (asked once per run: its id and production branch do not change)."""
        if id_or_name not in self._projects:
            response = self.request("GET", f"/v9/projects/{_segment(id_or_name)}")
            self._projects[id_or_name] = VercelProject.model_validate(response.json())
        return self._projects[id_or_name]

    # ---- environment variables ---------------------------------------------------------
    def list_env(self, project: str, git_branch: str | None = None) -> list[EnvVar]:
        """The project's vars (Vercel's ``gitBranch`` filter when given; callers still check)."""
        params = {"gitBranch": git_branch} if git_branch else None
        path = f"/v10/projects/{_segment(project)}/env"
        return [EnvVar.model_validate(item) for item in self._pages(path, "envs", params)]

    def upsert_env(self, project: str, items: list[EnvInput]) -> None:
        """Create or update ``items`` in one request; any item in ``failed`` raises."""
        if not items:
            return
        path = f"/v10/projects/{_segment(project)}/env"
        response = self.request(
            "POST", path, params={"upsert": "true"}, json=[item.body() for item in items]
        )
        try:
            body = response.json()
        except ValueError:
            return
        failed = body.get("failed") if isinstance(body, dict) else None
        if failed:
            raise self._failed_error(failed, len(items), response.status_code, path)

    def _failed_error(self, failed: list[Any], total: int, status: int, path: str) -> ApiError:
        parts: list[str] = []
        codes: list[str] = []
        for entry in failed:
            err = entry.get("error", entry) if isinstance(entry, dict) else {}
            if not isinstance(err, dict):
                err = {}
            key = text_field(err.get("key")) or (
                text_field(entry.get("key")) if isinstance(entry, dict) else None
            )
            code = redact.clean(text_field(err.get("code")) or "unknown")
            codes.append(code)
            raw = err.get("message")
            message = redact.clean(raw)[:300] if isinstance(raw, str) else "no message"
            parts.append(f"{key or '?'}: {code} ({message})")
        text = f"{len(failed)} of {total} env vars were not written: " + "; ".join(parts)
        return ApiError(
            self.api_name,
            redact.scrub(text),
            status=status,
            code=codes[0] if len(set(codes)) == 1 else None,
            method="POST",
            path=path,
        )

    def delete_env(self, project: str, env_id: str) -> bool:
        """Delete one var; False when it was already gone."""
        try:
            self.request("DELETE", f"/v10/projects/{_segment(project)}/env/{_segment(env_id)}")
        except NotFoundError:
            return False
        return True

    # ---- domains -----------------------------------------------------------------------
    def list_domains(self, project: str) -> list[Domain]:
        path = f"/v9/projects/{_segment(project)}/domains"
        return [Domain.model_validate(item) for item in self._pages(path, "domains")]

    def get_domain(self, project: str, name: str) -> Domain | None:
        try:
            response = self.request(
                "GET", f"/v9/projects/{_segment(project)}/domains/{_segment(name)}"
            )
        except NotFoundError:
            return None
        return Domain.model_validate(response.json())

    def add_domain(self, project: str, name: str, git_branch: str) -> None:
        """Attach ``name`` to ``project`` for ``git_branch``; already attached so = success."""
        if not git_branch:
            raise ValueError(f"domain {name}: previewctl only adds branch domains")
        existing = self.get_domain(project, name)
        if existing is not None and existing.git_branch == git_branch:
            return  # the usual case on a repeated run: one read, no write
        if existing is not None:
            raise ConflictError(
                self.api_name,
                f"domain {name} is already on project {project} for branch "
                f"{existing.git_branch or '(production)'}, not {git_branch}",
                status=409,
                method="POST",
                path=f"/v10/projects/{_segment(project)}/domains",
            )
        try:
            self.request(
                "POST",
                f"/v10/projects/{_segment(project)}/domains",
                json={"name": name, "gitBranch": git_branch},
            )
        except ConflictError as conflict:
            existing = self.get_domain(project, name)
            if existing is not None and existing.git_branch == git_branch:
                return
            if existing is not None:
                raise ConflictError(
                    self.api_name,
                    f"domain {name} is already on project {project} for branch "
                    f"{existing.git_branch or '(production)'}, not {git_branch}",
                    status=conflict.status,
                    code=conflict.code,
                    method="POST",
                    path=f"/v10/projects/{_segment(project)}/domains",
                ) from conflict
            raise

    def remove_domain(self, project: str, name: str) -> bool:
        """Detach ``name``; False when it was not attached."""
        try:
            self.request("DELETE", f"/v9/projects/{_segment(project)}/domains/{_segment(name)}")
        except NotFoundError:
            return False
        return True

    # ---- deployments -------------------------------------------------------------------
    def list_deployments(self, project_id: str, branch: str, limit: int = 20) -> list[Deployment]:
        """The branch's newest preview deployments, newest first."""
        response = self.request(
            "GET",
            "/v6/deployments",
            params={
                "projectId": project_id,
                "target": "preview",
                "limit": limit,
                "meta-githubCommitRef": branch,
            },
        )
        body = response.json()
        raw = body.get("deployments") if isinstance(body, dict) else None
        deployments = [Deployment.model_validate(d) for d in raw or [] if isinstance(d, dict)]
        mine = [d for d in deployments if d.branch == branch]
        return sorted(mine, key=lambda d: d.created_at or 0, reverse=True)

    def redeploy(
        self, deployment: Deployment, project_name: str, *, project_id: str | None = None
    ) -> Deployment:
        """A new deployment of the same source; it reads the env as it is now.

        No ``target``: the new deployment keeps the source's (preview). When an answer
        is lost, a deployment of the branch created since the request is looked for
        before trying again (it reads the same env), so a redeploy is made once.
        """
        since_ms = int(time.time() * 1000)
        branch = deployment.branch
        # Also a key in its meta: it finds our redeploy even when clocks disagree.
        key = uuid.uuid4().hex

        def made_since() -> Deployment | None:
            if not (project_id and branch):
                return None
            return next(
                (
                    d
                    for d in self.list_deployments(project_id, branch)
                    if d.uid != deployment.uid
                    and (d.meta.get(REDEPLOY_KEY) == key or (d.created_at or 0) >= since_ms)
                ),
                None,
            )

        return self.create_once(
            "POST",
            "/v13/deployments",
            params={"forceNew": "1"},
            json={
                "deploymentId": deployment.uid,
                "name": project_name,
                "meta": {"action": "redeploy", REDEPLOY_KEY: key},
            },
            build=lambda response: Deployment.model_validate(response.json()),
            find=made_since,
        )

    def wait_ready(
        self,
        project_id: str,
        branch: str,
        *,
        deadline: float,
        reporter: Reporter,
        created_after_ms: int | None = None,
        poll: float = 0.5,
        max_poll: float = 5.0,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deployment:
        """Wait for the branch's newest preview deployment to be READY and return it.

        ``deadline`` is a ``clock()`` (monotonic) instant. With ``created_after_ms``
        only deployments created strictly after that epoch-ms instant count.
        The newest one in a final state (ERROR, CANCELED, BLOCKED, DELETED) fails at once:
        it will never be READY.
        """

        def timed_out(last: BaseException) -> TimeoutExceededError:
            return TimeoutExceededError(
                f"no READY Vercel preview deployment of branch {branch} "
                f"(project {project_id}) in time; last seen: {last}"
            )

        retry = Retry(Backoff(poll, max_poll), clock=clock, sleep=sleep or self.retry.sleep)
        with reporter.waiting(f"Vercel preview of {branch}") as update:

            def newest_ready() -> Deployment:
                try:
                    return self._newest_ready(project_id, branch, created_after_ms)
                except NotYet as seen:
                    update(seen.seen)
                    raise

            return retry.poll(newest_ready, deadline=deadline, timeout=timed_out)

    def _newest_ready(
        self, project_id: str, branch: str, created_after_ms: int | None
    ) -> Deployment:
        """The branch's newest deployment when READY; NotYet while it may still become so."""
        candidates = [
            d
            for d in self.list_deployments(project_id, branch)
            if created_after_ms is None or (d.created_at or 0) > created_after_ms
        ]
        if not candidates:
            raise NotYet("no deployment yet")
        newest = candidates[0]
        state = (newest.ready_state or "UNKNOWN").upper()
        if state == READY:
            return newest
        if state in FAILED_STATES:
            raise PreviewctlError(
                f"Vercel deployment {newest.describe()} of branch {branch} is "
                f"{state}: {FINAL_STATES[state]}; it will never be READY",
                hint="open the deployment in Vercel; push a commit or redeploy to make a new one",
            )
        raise NotYet(f"{newest.describe()} is {state}")
