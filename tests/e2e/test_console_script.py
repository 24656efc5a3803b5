"""The installed `previewctl` console script, run as a workflow step runs it.

Most scenarios run in-process (tests/ops); these are what only a real process shows:
the console script is installed and starts, its exit codes are the process's own (0, 1,
2), a whole pull_request workflow (up, up, seed, down) leaks no secret into anything the
process writes, and two processes converging the same preview make one machine.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator, MachineState
from tests.support.checks import assert_no_leak
from tests.support.cli import Cli, CliResult, previewctl_executable
from tests.support.project import Project
from tests.support.workflow import APP, MARKER, PR, Wired, wire

pytestmark = pytest.mark.e2e


@pytest.fixture
def workflow(project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path) -> Iterator[Wired]:
    with wire(project, fly, fly_token, tmp_path, Cli) as wired:
        yield wired


def live_machines(fly: FlyEmulator, app: str) -> list[MachineState]:
    return [m for m in fly.apps[app].machines.values() if m.state != "destroyed"]


@pytest.mark.parametrize("closed", ["stdout", "stderr", "both"])
def test_a_closed_stream_does_not_turn_a_run_into_a_bug(console: Cli, closed: str) -> None:
    """`previewctl plan >&-`: Python has no sys.stdout; the run still ends as it would."""
    fds = {"stdout": (1,), "stderr": (2,), "both": (1, 2)}[closed]
    script = previewctl_executable()
    config = str(console.project.config)

    def close() -> None:
        for fd in fds:
            os.close(fd)

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [script, "--config", config, *args],
            env=console.env,
            cwd=console.project.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if 1 in fds else subprocess.PIPE,
            stderr=subprocess.DEVNULL if 2 in fds else subprocess.PIPE,
            preexec_fn=close,
            timeout=60,
            check=False,
        )

    planned = run("plan", "--pr", "3")
    assert planned.returncode == 0, planned.stderr
    if 2 not in fds:
        assert b"Traceback" not in planned.stderr
        assert b"bug in previewctl" not in planned.stderr
    bad = run("plan", "--pr", "0")
    assert bad.returncode == 2


def test_the_console_script_starts_and_shows_its_help(console: Cli) -> None:
    helped = console.run("--help")
    assert helped.code == 0
    assert "up" in helped.stdout
    assert "Exit codes" in helped.stdout


def test_a_pull_request_workflow_through_the_console_script(workflow: Wired) -> None:
    for command in ("up", "up", "seed", "down"):
        result = workflow.cli.run(command)
        assert result.code == 0, f"{command}: {result.output}"
    secrets = [
        line.removeprefix("::add-mask::")
        for line in workflow.cli.history[0].stderr.splitlines()
        if line.startswith("::add-mask::")
    ]
    assert secrets, "the first up masked nothing"
    assert_no_leak(workflow.everything_printed(), secrets)
    outputs = workflow.output.read_text()
    assert f"app={APP}" in outputs
    assert f"pr={PR}" in outputs
    assert APP not in workflow.fly.apps
    ours = [c for c in workflow.github.comments_on(PR) if MARKER in c["body"]]
    assert len(ours) == 1
    assert "removed" in ours[0]["body"]


def test_bad_input_is_exit_2_of_the_process_before_any_request(
    console: Cli, project: Project, fly: FlyEmulator
) -> None:
    project.config.write_text(project.config.read_text() + "\n[nonsense]\nkey = 1\n")
    result = console.run("up", "--pr", "3")
    assert result.code == 2, result.output
    assert "nonsense" in result.stderr
    assert fly.requests == []


def test_a_failed_operation_is_exit_1_of_the_process(console: Cli, fly: FlyEmulator) -> None:
    fly.inject("POST", r"^/v1/apps$", 422, body={"error": "org is suspended", "status": "bad"})
    result = console.run("up", "--pr", "3")
    assert result.code == 1, result.output
    assert "org is suspended" in result.stderr


def test_two_concurrent_ups_leave_exactly_one_machine(console: Cli, fly: FlyEmulator) -> None:
    results: list[CliResult] = []

    def run() -> None:
        results.append(console.run("up", "--pr", "7"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.code for r in results] == [0, 0], [r.output for r in results]
    assert len(live_machines(fly, "pr-7-svc")) == 1
