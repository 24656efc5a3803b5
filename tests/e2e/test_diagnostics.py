"""A machine that does not turn healthy: the error and the PR comment show each container's
state, the failing checks' output and the machine's last events, bounded and redacted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.checks import assert_no_leak, machine_secrets
from tests.support.project import BASIC_TOML, Project
from tests.support.wiring import Wired, wire

pytestmark = pytest.mark.e2e

APP = "pr-8-svc"
FAST = BASIC_TOML.replace('machine = "30s"', 'machine = "3s"')
MARKER = "<!-- previewctl -->"


@pytest.fixture
def wired(tmp_path: Path, project: Project, fly: FlyEmulator, fly_token: str) -> Iterator[Wired]:
    w = wire(tmp_path, project, fly, fly_token, toml=FAST)
    yield w
    w.close()


def crash_db_on_boot(fly: FlyEmulator, lines: int) -> None:
    """When the machine boots, its db container dies: OOM-killed, a long log with the
    database password in it (as a careless entrypoint would print it)."""

    def on_boot(app: str, config: dict[str, Any]) -> None:
        password = config["containers"][0]["env"]["POSTGRES_PASSWORD"]
        output = "\n".join(
            [f"FATAL: password {password} rejected for user app"]
            + [f"detail line {i}" for i in range(lines - 1)]
        )
        for machine_id in fly.apps[app].machines:
            fly.crash_container(
                app, machine_id, "db", exit_code=137, output=output, oom_killed=True
            )

    fly.on_boot = on_boot


def test_the_error_and_the_comment_say_why_the_machine_is_not_healthy(wired: Wired) -> None:
    crash_db_on_boot(wired.fly, lines=50)
    result = wired.cli.run("up", "--json")
    assert result.code == 1, result.output
    message = json.loads(result.stdout)["error"]["message"]
    assert message.startswith("machine ")
    assert "did not become healthy in time:" in message
    assert "  containers: db exited, authz running" in message
    assert "  failing checks:\n    db-tcp: critical\n      FATAL: password *** rejected" in message
    assert "      detail line 2\n      … (46 more lines)" in message  # bounded
    assert "detail line 10" not in message
    assert "  last events (newest first):" in message
    events = message.split("last events (newest first):\n", 1)[1].splitlines()
    assert "exit exited (flyd): exit code 137, killed: out of memory" in events[0]
    assert any("launch created (user)" in e for e in events)
    assert len(message) < 2500
    assert "did not become healthy in time" in result.stderr
    assert "hint: see the containers' logs with `flyctl logs -a pr-8-svc`" in result.stderr
    [comment] = [c for c in wired.github.comments_on(8) if MARKER in c["body"]]
    assert "db exited, authz running" in comment["body"]
    assert "exit code 137, killed: out of memory" in comment["body"]
    assert "FATAL: password *** rejected" in comment["body"]
    secrets = list(machine_secrets(wired.fly, APP).values())
    assert_no_leak(result.output + comment["body"], secrets)


def test_a_machine_without_events_or_checks_still_reads_well(wired: Wired) -> None:
    """A container that stays up but whose check never passes: no exit, one line."""

    def on_boot(app: str, config: dict[str, Any]) -> None:
        for machine_id in wired.fly.apps[app].machines:
            wired.fly.set_unhealthy(app, machine_id, "db")

    wired.fly.on_boot = on_boot
    result = wired.cli.run("up")
    assert result.code == 1
    assert "  containers: db running, authz running" in result.stderr
    assert "    db-tcp: critical\n      connection refused" in result.stderr
    assert "exit code" not in result.stderr
