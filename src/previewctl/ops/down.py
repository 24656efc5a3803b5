"""`down`: remove what previewctl made for a PR. Already gone is success."""

from __future__ import annotations

from typing import Any

from previewctl import bookkeeping
from previewctl.managed import require
from previewctl.ops import comment, deployment
from previewctl.ops.preflight import down_branch, local_problems, resolve, skip_without_secrets
from previewctl.ops.runtime import Runtime
from previewctl.ops.vercel_ops import remove_vercel
from previewctl.target import Target


def run_down(rt: Runtime, pr: str | None, branch: str | None) -> dict[str, Any]:
    target = resolve(rt, pr, branch)
    skipped = skip_without_secrets(rt, target)
    if skipped:
        return skipped
    local_problems(rt, target, tunnels=False, vercel=True).raise_if_any()
    config = rt.config
    app = config.app_name(target.pr)
    backend = rt.backend()
    result: dict[str, Any] = {"pr": target.pr, "app": app, "app_deleted": False, "vercel": {}}

    with rt.reporter.phase("find preview"):
        # The one rule (previewctl.managed), before anything is deleted, Vercel included.
        verdict = backend.find(target.pr)
        existing = verdict is not None
        instances = list(require(verdict, "down")) if verdict is not None else []
    survivor = bookkeeping.pick_survivor(instances) if instances else None
    recorded = bookkeeping.PreviewInfo.of(survivor).branch if survivor else None
    # Bad input is found before the first deletion: a branch that is not the PR's.
    target = Target(pr=target.pr, branch=down_branch(rt, target, recorded), repo=target.repo)

    if rt.vercel_configured():
        if target.branch:
            with rt.reporter.phase("vercel"):
                result["vercel"] = remove_vercel(rt, rt.spec(target))
        else:
            rt.reporter.warn(
                "branch unknown (no preview records it, nothing confirms --branch): "
                "Vercel vars left for gc"
            )

    with rt.reporter.phase("fly app"):
        if not existing:
            rt.reporter.info(f"app {app} is already gone")
        else:
            # Judged again: a machine put into the app while Vercel was cleaned makes it
            # someone else's, and deleting the app would take that machine with it.
            again = backend.find(target.pr)
            if again is not None:
                require(again, "down")
            deleted = again is not None and backend.destroy(app)
            result["app_deleted"] = deleted
            rt.reporter.success(f"destroyed Fly app {app}" if deleted else f"{app} already gone")

    result["deployments_inactive"] = deployment.mark_inactive(rt, target, app)
    result["timings"] = {t.name: round(t.seconds, 3) for t in rt.reporter.timings}
    comment.publish(
        rt,
        target,
        comment.Report(
            status="removed",
            app=app,
            headline=f"removed for PR #{target.pr}",
            rows=[("Fly app", f"`{app}` destroyed" if existing else f"`{app}` was already gone")],
            update_only=not existing,
        ),
    )
    return result
