"""`down`: remove what previewctl made for a PR. Already gone is success."""

from __future__ import annotations

from typing import Any

from previewctl.ops import comment, managed, preview
from previewctl.ops.runtime import Runtime
from previewctl.ops.up import skip_without_secrets
from previewctl.ops.vercel_ops import remove_vercel
from previewctl.target import Target, require_target


def run_down(rt: Runtime, pr: str | None, branch: str | None) -> dict[str, Any]:
    target = require_target(pr, branch, rt.env)
    skipped = skip_without_secrets(rt, target)
    if skipped:
        return skipped
    config = rt.config
    app = config.app_name(target.pr)
    fly = rt.fly()
    if rt.vercel_configured():
        rt.vercel()
    result: dict[str, Any] = {"pr": target.pr, "app": app, "app_deleted": False, "vercel": {}}

    with rt.reporter.phase("find preview"):
        # The one rule (ops/managed.py), before anything is deleted, Vercel included.
        verdict = managed.inspect(fly, config, target.pr)
        existing = verdict is not None
        machines = list(managed.require(verdict, "down")) if verdict is not None else []
    if machines and target.branch is None:
        info = preview.PreviewInfo.of(preview.pick_survivor(machines))
        if info.branch:
            target = Target(pr=target.pr, branch=info.branch, repo=target.repo)

    if rt.vercel_configured():
        if target.branch:
            with rt.reporter.phase("vercel"):
                values = rt.values(target)
                result["vercel"] = remove_vercel(rt, target, values)
        else:
            rt.reporter.warn(
                "branch unknown (no --branch, no event, no preview): Vercel vars left for gc"
            )

    with rt.reporter.phase("fly app"):
        if not existing:
            rt.reporter.info(f"app {app} is already gone")
        else:
            deleted = fly.delete_app(app)
            result["app_deleted"] = deleted
            rt.reporter.success(f"destroyed Fly app {app}" if deleted else f"{app} already gone")

    comment.publish(
        rt,
        target,
        comment.Report(
            status="removed",
            app=app,
            headline=f"removed for PR #{target.pr}",
            rows=[("Fly app", f"`{app}` destroyed")],
        ),
    )
    return result
