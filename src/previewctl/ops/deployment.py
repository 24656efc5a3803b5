"""The preview as a GitHub deployment of environment ``pr-N`` ("View deployment" on the PR).

``up`` records ``success`` with the preview's URL, or ``failure`` with the run's log
URL; ``down`` marks previewctl's deployments of the environment ``inactive``. A GitHub
problem never fails the command: it is a warning (with the missing permission named).

Idempotent: a re-run of ``up`` reuses the environment's deployment of the same ref and
commit, made by previewctl (its payload says so), and adds a status only when the state
or the URL changed. A new push (another commit) gets a new deployment; GitHub's
``auto_inactive`` then marks the earlier one inactive. Deployments that previewctl did
not make are never touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from previewctl import redact, template
from previewctl.clients.github_deployments import MAX_STATUS_DESCRIPTION, Deployment, DeploymentsApi
from previewctl.errors import ApiError, PreviewctlError
from previewctl.ops.runtime import Runtime
from previewctl.target import Target


@dataclass(frozen=True)
class Environment:
    repo: str
    name: str


def environment(rt: Runtime, target: Target) -> Environment | None:
    """Where the deployment goes, or None when deployments are off or impossible."""
    github = rt.config.model.github
    repo = target.repo or rt.repo
    if not github.deployments or not repo or not rt.env.get("GITHUB_TOKEN"):
        return None
    values = template.Values(pr=target.pr, branch=target.branch or "")
    return Environment(repo, template.render(github.environment, values))


def run_url(env: Mapping[str, str]) -> str | None:
    """The log of this workflow run, as GitHub Actions names it."""
    repo, run = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    if not (repo and run):
        return None
    server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    return f"{server}/{repo}/actions/runs/{run}"


def _head_sha(env: Mapping[str, str], pr: int) -> str | None:
    """The PR's head commit, when this run is its pull_request event."""
    path = env.get("GITHUB_EVENT_PATH")
    try:
        event: Any = json.loads(Path(path).read_text(encoding="utf-8")) if path else None
        pull = event.get("pull_request") if isinstance(event, dict) else None
        if isinstance(pull, dict) and pull.get("number") == pr:
            sha = (pull.get("head") or {}).get("sha")
            return str(sha) if sha else None
    except (OSError, ValueError, AttributeError):
        return None
    return None


def _of_preview(deployment: Deployment, pr: int, app: str) -> bool:
    """Made by previewctl for this PR's preview: an environment may be shared by all PRs
    (``[github] environment = "previews"``), and the others' are not this one's."""
    payload = deployment.payload
    return (
        deployment.by_previewctl
        and isinstance(payload, dict)
        and payload.get("pr") == pr
        and payload.get("app") == app
    )


def _ours(items: list[Deployment], sha: str | None, pr: int, app: str) -> Deployment | None:
    return next(
        (d for d in items if _of_preview(d, pr, app) and (sha is None or d.sha == sha)), None
    )


def _find_or_create(rt: Runtime, where: Environment, target: Target, app: str) -> Deployment:
    api = DeploymentsApi(rt.github())
    ref = target.branch
    assert ref is not None
    sha = _head_sha(rt.env, target.pr)
    found = _ours(api.list(where.repo, where.name, ref=ref), sha, target.pr, app)
    if found is not None:
        return found
    payload = {"previewctl": True, "app": app, "pr": target.pr}
    return api.create(
        where.repo,
        ref=ref,
        environment=where.name,
        description=f"previewctl: {app} for PR #{target.pr}",
        payload=payload,
        # an answer lost after GitHub made it: the one it made, not a second one
        find=lambda: _ours(api.list(where.repo, where.name, ref=ref), sha, target.pr, app),
    )


def _warn(rt: Runtime, exc: PreviewctlError) -> None:
    hint = ""
    if isinstance(exc, ApiError) and exc.status == 403:
        hint = " (the workflow needs `permissions: deployments: write`)"
    rt.reporter.warn(f"could not record the GitHub deployment: {exc}{hint}", title="previewctl")


def record(
    rt: Runtime,
    target: Target,
    app: str,
    state: str,
    *,
    url: str | None = None,
    description: str = "",
) -> dict[str, Any] | None:
    """Set the PR's deployment to ``state``; returns what was recorded (for --json)."""
    where = environment(rt, target)
    if where is None or target.branch is None:
        return None
    text = redact.scrub(description).splitlines()[0] if description.strip() else ""
    try:
        deployment = _find_or_create(rt, where, target, app)
        api = DeploymentsApi(rt.github())
        latest = api.latest_status(where.repo, deployment.id)
        unchanged = (
            latest is not None
            and latest.state == state == "success"
            and (latest.environment_url or None) == url
        )
        if not unchanged:
            api.set_status(
                where.repo,
                deployment.id,
                state,
                description=text[:MAX_STATUS_DESCRIPTION],
                environment_url=url,
                log_url=run_url(rt.env),
                after=latest,
            )
    except PreviewctlError as exc:
        _warn(rt, exc)
        return None
    rt.reporter.detail(f"GitHub deployment {deployment.id} of {where.name}: {state}")
    return {"id": deployment.id, "environment": where.name, "state": state, "url": url}


@contextmanager
def failure_recorded(rt: Runtime, target: Target, app: str) -> Iterator[None]:
    """On a previewctl error, mark the deployment failed (with the run's log), re-raise."""
    try:
        yield
    except PreviewctlError as exc:
        record(rt, target, app, "failure", description=f"previewctl up failed: {exc}")
        raise


def mark_inactive(rt: Runtime, target: Target, app: str) -> list[int]:
    """``down``: every deployment previewctl made for this preview becomes inactive."""
    where = environment(rt, target)
    if where is None:
        return []
    done: list[int] = []
    try:
        api = DeploymentsApi(rt.github())
        for deployment in api.list(where.repo, where.name):
            if not _of_preview(deployment, target.pr, app):
                continue
            latest = api.latest_status(where.repo, deployment.id)
            if latest is None or latest.state != "inactive":
                api.set_status(
                    where.repo,
                    deployment.id,
                    "inactive",
                    description="removed by previewctl down",
                    after=latest,
                )
                done.append(deployment.id)
    except PreviewctlError as exc:
        _warn(rt, exc)
    return done
