"""The profile attacks' stage: a PR workflow step (Fly emulator, flyctl stand-in, Vercel
and GitHub fakes) whose config has the two small test profiles of tests.support.profiles,
and the helpers that read what a run left behind."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import Cli, CliResult
from tests.support.profiles import (
    TRACING_MACHINE,
    profiles_toml,
    write_labeled_event,
    write_profile_machine,
)
from tests.support.project import Project
from tests.support.workflow import APP, BRANCH, PR, Wired, wire

__all__ = ["APP", "BRANCH", "PR", "Stage", "stage"]


@dataclass
class Stage:
    wired: Wired
    steps_log: Path

    @property
    def fly(self) -> FlyEmulator:
        return self.wired.fly

    @property
    def cli(self) -> Cli:
        return self.wired.cli

    def run(self, *args: str, **env: str) -> CliResult:
        return self.cli.run(*args, env=env or None)

    def up(self, *args: str, **env: str) -> CliResult:
        return self.run("up", *args, **env)

    def label(self, *labels: str, action: str = "labeled") -> None:
        """The PR's own pull_request event now carries ``labels``."""
        write_labeled_event(self.wired.event, list(labels), action=action)

    def event(self, body: Any) -> None:
        self.wired.event.write_text(body if isinstance(body, str) else json.dumps(body))

    def add_toml(self, text: str) -> None:
        config = self.wired.project.config
        config.write_text(config.read_text() + text)

    def replace_toml(self, old: str, new: str) -> None:
        config = self.wired.project.config
        text = config.read_text()
        assert old in text, old
        config.write_text(text.replace(old, new))

    def profile_machine(self, name: str, machine: dict[str, Any]) -> None:
        write_profile_machine(self.wired.project, name, machine)

    # ---- what the fakes hold ------------------------------------------------------------
    def machine(self) -> dict[str, Any]:
        live = self.fly.apps[APP].live_machines()
        assert len(live) == 1, live
        return live[0].config

    def containers(self) -> list[str]:
        return [c["name"] for c in self.machine().get("containers") or []]

    def metadata(self) -> dict[str, str]:
        return dict(self.machine().get("metadata") or {})

    def secrets(self) -> dict[str, str]:
        return dict(json.loads(self.metadata()["previewctl_secrets"]))

    def vars(self, project: str) -> dict[str, str]:
        """The branch's vars of ``project``: key -> value."""
        return {e["key"]: e["value"] for e in self.wired.vercel.envs_for(project, BRANCH)}

    def mutations(self) -> list[str]:
        """Every mutating request the run made at Fly and Vercel (GitHub's comment aside)."""
        fly = [f"{r.method} {r.path}" for r in self.fly.mutating_calls()]
        vercel = [
            f"{r.method} {r.path}"
            for r in self.wired.vercel.requests
            if r.method in ("POST", "PATCH", "PUT", "DELETE")
        ]
        return fly + vercel

    def forget_requests(self) -> None:
        self.fly.requests.clear()
        self.wired.vercel.requests.clear()
        self.wired.github.requests.clear()

    def requests(self) -> int:
        return len(self.fly.requests) + len(self.wired.vercel.requests)

    def everything(self) -> str:
        return self.wired.everything_printed()


@contextlib.contextmanager
def stage(
    project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path, flyctl_path: Path
) -> Iterator[Stage]:
    """A PR's workflow step whose config has the ``tracing`` and ``nango`` test profiles."""
    log = tmp_path / "steps.log"
    with wire(project, fly, fly_token, tmp_path) as wired:
        config = project.config
        config.write_text(config.read_text() + profiles_toml(log))
        write_profile_machine(project, "tracing", TRACING_MACHINE)
        wired.cli.env.update(
            {
                "PREVIEWCTL_FLYCTL": str(flyctl_path),
                "FAKE_FLYCTL_TARGETS": json.dumps({}),
                "FAKE_FLYCTL_DNS_WAIT": "3",
            }
        )
        write_labeled_event(wired.event, [], action="synchronize")
        yield Stage(wired, log)
