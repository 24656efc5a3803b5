"""Finding one PR's preview, and `stop`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from previewctl.backends.fly.models import Machine
from previewctl.errors import PreviewctlError
from previewctl.ops import comment, managed, preview
from previewctl.ops.preflight import check_all, resolve
from previewctl.ops.runtime import Runtime
from previewctl.target import Target


@dataclass
class Found:
    target: Target
    app: str
    machine: Machine
    secrets: dict[str, str]


def find_preview(rt: Runtime, target: Target, *, command: str = "previewctl") -> Found:
    """The PR's managed machine (the one rule: ops/managed.py), or a clear error."""
    app = rt.config.app_name(target.pr)
    verdict = managed.inspect(rt.fly(), rt.config, target.pr)
    if verdict is None:
        raise PreviewctlError(
            f"PR #{target.pr} has no preview (no Fly app {app})",
            hint=f"create it with `previewctl up --pr {target.pr}`",
        )
    machine = preview.pick_survivor(list(managed.require(verdict, command)))
    secrets = preview.read_secrets(machine)
    if target.branch is None:
        info = preview.PreviewInfo.of(machine)
        target = Target(
            pr=target.pr,
            branch=info.branch,
            head_repo=target.head_repo,
            repo=target.repo,
            from_event=target.from_event,
        )
    return Found(target, app, machine, secrets)


def run_stop(rt: Runtime, pr: str) -> dict[str, Any]:
    target = resolve(rt, pr, None)
    check_all(lambda: rt.config.app_name(target.pr), rt.fly)
    found = find_preview(rt, target, command="stop")
    fly = rt.fly()
    machine = found.machine
    deadline = time.monotonic() + rt.config.model.timeouts.machine
    if machine.state in ("stopped", "suspended"):
        rt.reporter.info(f"machine {machine.id} is already {machine.state}")
    else:
        with (
            rt.reporter.phase("stop"),
            fly.lease(found.app, machine.id, deadline=deadline) as nonce,
        ):
            rt.reporter.info(f"stopping machine {machine.id} of {found.app}")
            fly.stop_machine(found.app, machine.id, nonce=nonce)
            with rt.reporter.waiting(f"machine {machine.id}") as update:
                update("waiting for state 'stopped'")
                fly.wait(found.app, machine.id, "stopped", deadline=deadline)
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
    return {"pr": target.pr, "app": found.app, "machine": machine.id, "state": "stopped"}
