"""Hostile timing: signals at the worst moments; nothing previewctl starts may outlive it."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from previewctl import steps, watchdog
from previewctl.actions import GitHubActions
from previewctl.reporter import Reporter
from previewctl.steps import CommandStep
from tests.processes import wait_for, wait_gone

CHILD = textwrap.dedent(
    """
    import os, sys, time
    open(sys.argv[1], "w").write(str(os.getpid()))
    time.sleep(60)
    """
)


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt (pytest may have its own handler)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _step(tmp_path: Path) -> tuple[CommandStep, Path]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    pidfile = tmp_path / "pid"
    return (
        CommandStep(
            name="sleeper",
            argv=[sys.executable, str(script), str(pidfile)],
            env={},
            cwd=tmp_path,
            timeout=30,
        ),
        pidfile,
    )


def test_ctrl_c_just_after_a_step_starts_still_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sigint_raises: None
) -> None:
    """A real SIGINT delivered right after the step's process exists, before previewctl
    has begun to watch it (its watchdog registration): the step must still be ended."""
    step, pidfile = _step(tmp_path)
    real_guard = watchdog.guard

    def guard_then_interrupted(pgid: int) -> None:
        assert wait_for(pidfile.exists, 10), "the step did not start"
        os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: right here
        real_guard(pgid)

    monkeypatch.setattr(steps.watchdog, "guard", guard_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        steps.run_command(step, Reporter(actions=GitHubActions({})))
    pid = int(pidfile.read_text())
    try:
        assert wait_gone([pid], 10) == set(), "the step outlived the interrupted run"
    finally:
        if wait_gone([pid], 0):
            os.kill(pid, signal.SIGKILL)
