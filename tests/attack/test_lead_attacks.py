"""The lead's attacks on the latest landings: the repository in the marker, the output
streams a caller closed, and what the user can do when the rule says "not managed".

Each test drives the installed console script against the loopback Fly emulator and
asserts the outcome the contract demands (exit code, emulator state, output).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import Cli, previewctl_executable

pytestmark = pytest.mark.e2e

APP = "pr-6-svc"


def run_into_closed_pipe(
    console: Cli, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run with stdout a pipe whose reader has gone (``| head -c0``): exit code, stderr."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        proc = subprocess.run(
            [previewctl_executable(), "--config", str(console.project.config), *args],
            stdout=writer,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**console.env, **(env or {})},
            cwd=console.project.root,
            timeout=90,
            check=False,
        )
    finally:
        os.close(writer)
    return proc.returncode, proc.stderr.decode()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--version",), 0),
        (("--json", "--version"), 0),
        (("--help",), 0),
        (("--json", "gc", "--max-age", "1m"), 2),
        (("gc", "--max-age", "1m"), 2),
    ],
    ids=["version", "json-version", "help", "json-bad-input", "bad-input"],
)
def test_a_reader_that_went_away_changes_no_exit_code(
    console: Cli, args: tuple[str, ...], code: int
) -> None:
    """Break: with stdout a closed pipe (``previewctl --version | head -c0``) the first
    write raised BrokenPipeError: exit 120 with a traceback, or click's silent exit 1,
    where >/dev/null gives 0 or 2. A reader that left must not change the outcome."""
    got, stderr = run_into_closed_pipe(console, *args)
    assert got == code, stderr
    assert "Traceback" not in stderr, stderr
    assert "BrokenPipe" not in stderr, stderr


def test_up_into_a_closed_pipe_does_its_work_and_says_so(console: Cli, fly: FlyEmulator) -> None:
    """Break: ``previewctl --json up | head -c0`` exited 1 (click's EPIPE exit) though the
    preview was made: a workflow step would call a good run failed."""
    got, stderr = run_into_closed_pipe(console, "--json", "up", "--pr", "6")
    assert got == 0, stderr
    assert "Traceback" not in stderr, stderr
    (machine,) = fly.apps[APP].machines.values()
    assert machine.state == "started"
