"""`up --no-wait`: get the machine booting before the runner installs the repo's tooling.

It converges the app, its IPs and the one machine, and returns as soon as Fly has
accepted them. The later `up` of the same job finds everything in place (no second
mutation) and does the rest. A failure here must not be lost when the workflow goes on
(`continue-on-error`): it is kept in the job's temp directory, and the later `up`
reports it in its log and the PR comment.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from previewctl import redact
from previewctl.errors import PreviewctlError
from previewctl.ops.desired import desired
from previewctl.ops.runtime import Runtime
from previewctl.target import Target

# The directory one job's steps share (GitHub Actions empties it per job).
STATE_DIR_ENV = "RUNNER_TEMP"


@dataclass(frozen=True)
class EarlyFailure:
    """Where a failed `up --no-wait` leaves its error for the next `up` of the job."""

    path: Path | None

    @classmethod
    def of(cls, env: Mapping[str, str], app: str) -> EarlyFailure:
        base = env.get(STATE_DIR_ENV)
        return cls(Path(base) / "previewctl" / f"{app}.no-wait.json" if base else None)

    def record(self, exc: Exception) -> None:
        if self.path is None:
            return
        if isinstance(exc, PreviewctlError):
            body = {"message": redact.scrub(str(exc)), "title": exc.title}
        else:  # its text may quote an answer: only its kind is kept
            body = {"message": f"unexpected error ({type(exc).__name__})", "title": "failed"}
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(body), encoding="utf-8")

    def clear(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

    def take(self) -> str | None:
        """The recorded error, once: reading it removes it."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        self.clear()
        message = data.get("message") if isinstance(data, dict) else None
        return str(message) if message else "an unreadable error record"


def early_row(message: str) -> tuple[str, str]:
    """The PR comment's row for a failed early start: one line, no table breakers."""
    text = " ".join(message.split()).replace("|", "\\|")
    if len(text) > 300:
        text = text[:297] + "..."
    return ("Early start", f"`up --no-wait` failed: {text}")


def start_early(rt: Runtime, target: Target) -> dict[str, Any]:
    """Converge app, IPs and machine; no wait, no tunnels, steps, Vercel or comment."""
    spec = rt.spec(target)
    app = spec.app
    record = EarlyFailure.of(rt.env, app)
    rt.actions.set_outputs(
        {"app": app, "hostname": spec.hostname, "pr": str(target.pr), "branch": target.branch or ""}
    )
    try:
        with rt.reporter.phase("fly machine"):
            deadline = time.monotonic() + rt.config.model.timeouts.machine
            result = rt.backend().converge(desired(spec), deadline=deadline, wait=False)
    except Exception as exc:  # whatever it was, the later `up` of the job says so
        record.record(exc)
        raise
    record.clear()
    what = ", ".join(result.actions) if result.actions else "no change"
    rt.reporter.success(
        f"machine {result.instance.id} accepted by Fly ({what}); "
        "`previewctl up` waits for it and does the rest"
    )
    return {
        "pr": target.pr,
        "branch": target.branch,
        "app": app,
        "hostname": result.hostname,
        "machine": {"id": result.instance.id, "state": result.instance.state},
        "actions": result.actions,
        "waited": False,
    }
