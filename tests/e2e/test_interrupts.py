"""Nothing outlives previewctl, whatever ends it: SIGKILL, SIGHUP, two Ctrl-C in a row.

Real signals to the installed console script, real step processes (with children and a
grandchild in a process group of its own), the flyctl stand-in and a real PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.postgres import PostgresServer
from tests.support.processes import is_gone, wait_for, wait_gone
from tests.support.stack import MIGRATE, Stack, finished, interrupt, make_stack, read_until

APP = "pr-21-stack"

# The step: a child in its group, a grandchild that moved to a process group of its own,
# all PIDs written down, then it hangs. With IGNORE_TERM it shrugs SIGTERM off, so that
# previewctl's cleanup must wait out its grace period and SIGKILL.
HANGING_STEP = """
import os, signal, subprocess, sys, time
if {ignore_term}:
    signal.signal(signal.SIGTERM, lambda *_: open({termfile!r}, "a").write("term\\n"))
child = subprocess.Popen(["sleep", "300"])
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import os, time; os.setpgid(0, 0); time.sleep(300)"]
)
pids = [os.getpid(), child.pid, grandchild.pid]
open({pidfile!r}, "w").write(" ".join(map(str, pids)))
print("step running", flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def stack(
    tmp_path: Path,
    fly: FlyEmulator,
    fly_token: str,
    postgres_server: PostgresServer,
    flyctl_path: Path,
) -> Iterator[Stack]:
    stack = make_stack(tmp_path, fly, fly_token, postgres_server, flyctl_path)
    yield stack
    stack.close()
    # a failed test must not leave its hanging step behind (it never ends by itself)
    pidfile = tmp_path / "step.pids"
    for pid in {int(p) for p in pidfile.read_text().split()} if pidfile.exists() else ():
        if not is_gone(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def hang_step(stack: Stack, tmp_path: Path, *, ignore_term: bool = False) -> tuple[Path, Path]:
    pidfile, termfile = tmp_path / "step.pids", tmp_path / "step.term"
    script = HANGING_STEP.format(
        ignore_term=ignore_term, pidfile=str(pidfile), termfile=str(termfile)
    )
    (stack.project.root / "migrate.py").write_text(textwrap.dedent(script))
    return pidfile, termfile


def children_of(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (the step's leader, the tunnels, the watchdog)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def start_up_in_a_step(stack: Stack, pidfile: Path) -> tuple[int, set[int]]:
    """`up` running its hanging step: its PID and every process the step started."""
    proc = stack.popen("up", "--pr", "21")
    seen: list[str] = []
    assert read_until(proc.stderr, "step running", 30, seen), "".join(seen)
    assert wait_for(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 3)
    return proc.pid, {int(p) for p in pidfile.read_text().split()}


def rerun_converges(stack: Stack) -> None:
    (stack.project.root / "migrate.py").write_text(MIGRATE)
    again = stack.cli.run("up", "--pr", "21")
    assert again.code == 0, again.output
    assert stack.tables() == ["widgets"]
    assert len(stack.fly.apps[APP].live_machines()) == 1


def test_sigkill_during_a_step_leaves_no_process_behind(stack: Stack, tmp_path: Path) -> None:
    pidfile, _ = hang_step(stack, tmp_path)
    pid, step_pids = start_up_in_a_step(stack, pidfile)
    children = children_of(pid)  # the step's leader, flyctl, the watchdog
    assert step_pids & children
    os.kill(pid, signal.SIGKILL)
    assert finished(stack.procs[-1])[0] == -signal.SIGKILL
    left = wait_gone(step_pids | children | stack.flyctl_pids())
    assert left == set(), f"outlived a SIGKILLed previewctl: {sorted(left)}"
    rerun_converges(stack)


def test_sighup_is_an_interruption_like_sigterm(stack: Stack, tmp_path: Path) -> None:
    pidfile, _ = hang_step(stack, tmp_path)
    _, step_pids = start_up_in_a_step(stack, pidfile)
    code, _, err = interrupt(stack.procs[-1], signal.SIGHUP)
    assert code == 130, err
    assert "interrupted: everything previewctl started has been stopped" in err
    assert wait_gone(step_pids | stack.flyctl_pids()) == set()
    rerun_converges(stack)


def test_two_ctrl_c_in_a_row_still_end_in_130_after_cleanup(stack: Stack, tmp_path: Path) -> None:
    """The second Ctrl-C lands while previewctl waits out a step that ignores SIGTERM."""
    pidfile, termfile = hang_step(stack, tmp_path, ignore_term=True)
    pid, step_pids = start_up_in_a_step(stack, pidfile)
    proc = stack.procs[-1]
    os.kill(pid, signal.SIGINT)
    time.sleep(0.3)  # the spacing of the two key presses, not a wait for an outcome
    assert proc.poll() is None  # still cleaning up: the step shrugged SIGTERM off
    code, _, err = interrupt(proc, signal.SIGINT)
    assert code == 130, err  # not -2: it did not die of the second SIGINT
    assert "interrupted: everything previewctl started has been stopped" in err
    assert termfile.read_text().count("term") >= 1  # the step was asked first
    assert wait_gone(step_pids | stack.flyctl_pids()) == set()
    rerun_converges(stack)


@pytest.mark.parametrize("ignore_term", [False, True], ids=["quick-step", "step-ignores-term"])
def test_ctrl_c_held_down_still_ends_in_130_after_cleanup(
    stack: Stack, tmp_path: Path, ignore_term: bool
) -> None:
    """SIGINT every 10 ms until previewctl exits: none of them may cut the cleanup short
    or kill it by SIGINT, not even one that lands while Python shuts down."""
    pidfile, _ = hang_step(stack, tmp_path, ignore_term=ignore_term)
    pid, step_pids = start_up_in_a_step(stack, pidfile)
    proc = stack.procs[-1]
    sent = 0
    while proc.poll() is None:
        os.kill(pid, signal.SIGINT)
        sent += 1
        time.sleep(0.01)  # the key's auto-repeat
    code, _, err = finished(proc)
    assert sent > 1
    assert code == 130, err
    assert "interrupted: everything previewctl started has been stopped" in err
    assert wait_gone(step_pids | stack.flyctl_pids()) == set()
    rerun_converges(stack)
