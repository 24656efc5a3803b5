"""`stop`: stop the preview's machine to save cost (its data is lost; `resume` is back)."""

from __future__ import annotations

import time
from typing import Any

from previewctl.ops import comment
from previewctl.ops.existing import open_preview
from previewctl.ops.preflight import check_all, resolve
from previewctl.ops.runtime import Runtime


def run_stop(rt: Runtime, pr: str) -> dict[str, Any]:
    target = resolve(rt, pr, None)
    check_all(lambda: rt.config.app_name(target.pr), rt.backend)
    found = open_preview(rt, target, command="stop")
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
