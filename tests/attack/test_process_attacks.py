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

    monkeypatch.setattr(watchdog, "guard", guard_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        steps.run_command(step, Reporter(actions=GitHubActions({})))
    pid = int(pidfile.read_text())
    try:
        assert wait_gone([pid], 10) == set(), "the step outlived the interrupted run"
    finally:
        if wait_gone([pid], 0):
            os.kill(pid, signal.SIGKILL)


LOADING_INTERRUPTED = textwrap.dedent(
    """
    import builtins, os, runpy, signal, sys
    real_import = builtins.__import__
    sent = []
    sig = getattr(signal, sys.argv[2])

    def import_(name, *args, **kwargs):
        if name == "typer" and not sent:  # the CLI framework is still loading
            sent.append(1)
            os.kill(os.getpid(), sig)
        return real_import(name, *args, **kwargs)

    builtins.__import__ = import_
    script = sys.argv[1]
    sys.argv = [script, "plan", "--pr", "1"]
    runpy.run_path(script, run_name="__main__")
    """
)


@pytest.mark.e2e
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_while_the_console_script_loads_exits_130(tmp_path: Path, sig: str) -> None:
    """The console script, interrupted while it is still importing its CLI framework (the
    first ~100 ms of every run): exit 130 like any interrupt, not death by the signal
    (-15), nor a KeyboardInterrupt traceback."""
    import subprocess

    from tests.conftest import previewctl_executable

    proc = subprocess.run(
        [sys.executable, "-c", LOADING_INTERRUPTED, previewctl_executable(), sig],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
