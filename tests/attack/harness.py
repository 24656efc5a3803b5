"""The attack tests' stage: the e2e stack (Fly emulator, flyctl stand-in, a real
PostgreSQL) as a GitHub Actions step sees it (masks, annotations, outputs, summary) with
the GitHub fake holding the PR, and one place that gathers EVERY output previewctl
produced, so that a test can search all of it for a value."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake
from tests.support.cli import CliResult
from tests.support.processes import wait_for
from tests.support.stack import Stack

PR = 7
BRANCH = "feature/attack"


@dataclass
class ActionsStage:
    stack: Stack
    github: GitHubFake
    output_file: Path
    summary_file: Path
    vercel: VercelFake | None = None

    def stop(self) -> None:
        self.github.stop()
        if self.vercel is not None:
            self.vercel.stop()

    def run(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        return self.stack.cli.run(*args, env=env)

    def everything(self) -> str:
        """stdout, stderr (annotations included) of every run, $GITHUB_OUTPUT,
        $GITHUB_STEP_SUMMARY and every body sent to the GitHub API (the PR comment)."""
        parts = [self.stack.cli.all_output()]
        for path in (self.output_file, self.summary_file):
            if path.exists():
                parts.append(path.read_text())
        for request in self.github.calls():
            if request.body is not None:
                parts.append(json.dumps(request.body))
        # what previewctl sent to Vercel is not output (the vars carry the secrets on
        # purpose), but what it read back and printed is in stderr above
        return "\n".join(parts)

    def comments(self) -> str:
        return "\n".join(c["body"] for c in self.github.comments_on(PR))


def actions_stage(stack: Stack, tmp_path: Path) -> ActionsStage:
    token = "ghs_" + secrets.token_urlsafe(24)
    github = GitHubFake(token=token, repo="acme/agents").start()
    github.add_pr(PR, BRANCH)
    out, summary = tmp_path / "github_output", tmp_path / "step_summary"
    stack.cli.env.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(out),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_TOKEN": token,
            "GITHUB_REPOSITORY": "acme/agents",
            "GITHUB_API_URL": github.url,
            "PREVIEWCTL_PR": str(PR),
            "PREVIEWCTL_BRANCH": BRANCH,
        }
    )
    return ActionsStage(stack, github, out, summary)


VERCEL_TOML = """
[vercel]
redeploy = true

[vercel.projects.api]
env = { DATABASE_URL = "postgresql://app:${secrets.pg_password}@${app.hostname}:5432/app" }
"""


def with_vercel(stage: ActionsStage) -> VercelFake:
    """A Vercel project `api` with a ready preview of the PR's branch, in the config."""
    token = "vcp_" + secrets.token_urlsafe(24)
    vercel = VercelFake(token=token, build_seconds=0.2).start()
    vercel.add_project("api", branches=("main", BRANCH))
    vercel.add_deployment("api", BRANCH)
    stage.vercel = vercel
    stage.stack.cli.env.update({"VERCEL_TOKEN": token, "VERCEL_API_URL": vercel.url})
    config = stage.stack.project.config
    config.write_text(config.read_text() + VERCEL_TOML)
    return vercel


def leaks(text: str, values: list[str]) -> list[str]:
    """Lines (outside ``::add-mask::``, which carries values on purpose) holding a value."""
    return [
        line[:300]
        for line in text.splitlines()
        if not line.startswith("::add-mask::") and any(v in line for v in values)
    ]


def unknown_secret() -> str:
    """A value previewctl has never seen: not generated, read or rendered by it."""
    return "Unk" + secrets.token_hex(12)


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment holds ``tag``: everything a previewctl run with
    ``ATTACK_TAG=tag`` started (steps, their children, daemons, flyctl, the watchdog),
    wherever they were re-parented to."""
    from tests.support.processes import is_gone

    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"ATTACK_TAG={tag}".encode() in environ.split(b"\0") and not is_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def new_tag() -> str:
    return "attack-" + secrets.token_hex(8)


class HangingServer:
    """An HTTP server on loopback whose every request waits for ``gate`` (at most a
    minute) before it answers 200: the preview's API, hung."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests += 1
                outer.gate.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> HangingServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()


def survivors(tag: str) -> list[int]:
    """What is left of a run after a bounded grace (the watchdog's TERM -> KILL is 3 s)."""
    wait_for(lambda: not tagged_processes(tag), 15)
    left = tagged_processes(tag)
    for pid in left:  # never leave them to the next test
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def blocked(fake: Any, endpoint: str, gate: threading.Event) -> threading.Event:
    """Make the fake's ``endpoint`` hang until ``gate`` is set (at most a minute); the
    event returned is set once a request is hanging there. (Not the fake's request log:
    the GitHub fake holds its lock while a handler runs.)"""
    real = getattr(fake, f"on_{endpoint}")
    entered = threading.Event()

    def hanging(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        gate.wait(60)
        return real(*args, **kwargs)

    setattr(fake, f"on_{endpoint}", hanging)
    return entered
