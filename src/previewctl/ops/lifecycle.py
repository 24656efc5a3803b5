"""Finding one PR's preview, and `stop`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from previewctl import bookkeeping
from previewctl.backends.base import Instance
from previewctl.errors import PreviewctlError
from previewctl.managed import require
from previewctl.ops import comment
from previewctl.ops.preflight import check_all, resolve
from previewctl.ops.runtime import Runtime
from previewctl.target import Target


@dataclass
class Found:
    target: Target
    app: str
    instance: Instance
    secrets: dict[str, str]


def find_preview(rt: Runtime, target: Target, *, command: str = "previewctl") -> Found:
    """The PR's managed machine (the one rule: previewctl.managed), or a clear error."""
    app = rt.config.app_name(target.pr)
    verdict = rt.backend().find(target.pr)
    if verdict is None:
        raise PreviewctlError(
            f"PR #{target.pr} has no preview (no Fly app {app})",
            hint=f"create it with `previewctl up --pr {target.pr}`",
        )
    instance = bookkeeping.pick_survivor(list(require(verdict, command)))
    secrets = bookkeeping.read_secrets(instance)
    if target.branch is None:
        info = bookkeeping.PreviewInfo.of(instance)
        target = Target(
            pr=target.pr,
            branch=info.branch,
            head_repo=target.head_repo,
            repo=target.repo,
            from_event=target.from_event,
        )
    return Found(target, app, instance, secrets)


def run_stop(rt: Runtime, pr: str) -> dict[str, Any]:
    target = resolve(rt, pr, None)
    check_all(lambda: rt.config.app_name(target.pr), rt.backend)
    found = find_preview(rt, target, command="stop")
    instance = found.instance
    deadline = time.monotonic() + rt.config.model.timeouts.machine
    if instance.state in ("stopped", "suspended"):
        rt.reporter.info(f"machine {instance.id} is already {instance.state}")
    else:
        with rt.reporter.phase("stop"):
            rt.backend().stop(found.app, instance, deadline=deadline)
        rt.reporter.success(
            f"stopped {found.app}: it costs only storage now; `previewctl resume --pr {target.pr}` "
            "brings it back (data is re-created by the steps)"
        )
        comment.publish(
            rt,
            found.target,
            comment.Report(
                status="stopped",
                app=found.app,
                headline=f"stopped for PR #{target.pr} (resume with `previewctl resume`)",
                rows=[("Fly app", f"`{found.app}`")],
            ),
        )
    return {"pr": target.pr, "app": found.app, "machine": instance.id, "state": "stopped"}
