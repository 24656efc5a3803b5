"""Hostile timing: signals at the worst moments; nothing previewctl starts may outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from previewctl import steps
from previewctl.actions import GitHubActions
from previewctl.reporter import Reporter
from previewctl.steps import CommandStep
from tests.attack.harness import (
    PR,
    ActionsStage,
    HangingServer,
    blocked,
    leaks,
    new_tag,
    survivors,
    with_vercel,
)
from tests.support.processes import wait_for, wait_gone
from tests.support.stack import Stack, finished, read_until

APP = f"pr-{PR}-stack"

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
    """A real SIGINT delivered right after the step's process exists (its fork has
    returned), before previewctl has begun to watch it: the step must still be ended."""
    step, pidfile = _step(tmp_path)

    class InterruptedAfterFork(subprocess.Popen[bytes]):
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            super().__init__(args, *rest, **kwargs)
            if list(args) == step.argv:  # the step, not the watchdog
                assert wait_for(pidfile.exists, 10), "the step did not start"
                os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: here

    monkeypatch.setattr(subprocess, "Popen", InterruptedAfterFork)
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
    from tests.support.cli import previewctl_executable

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


SLEEPER = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("step-started", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.e2e
def test_ctrl_c_during_a_step_does_not_wait_for_a_hung_vercel_write(
    stage: ActionsStage, stack: Stack
) -> None:
    """Vercel is written in the background while the steps run. Ctrl-C during a step,
    with Vercel's answer not coming: previewctl ends the step, the tunnels, and exits
    130 - it does not sit in the Vercel call (whose timeouts and retries run for
    minutes) while the runner's cancel grace runs out."""
    vercel = with_vercel(stage)
    (stack.project.root / "migrate.py").write_text(SLEEPER)
    gate = threading.Event()
    writing = blocked(vercel, "create_env", gate)
    tag = new_tag()
    try:
        proc = stack.popen("up", env={"ATTACK_TAG": tag})
        seen: list[str] = []
        assert read_until(proc.stderr, "step-started", 60, seen), "".join(seen)
        assert writing.wait(30), "Vercel was not written"
        os.kill(proc.pid, signal.SIGINT)
        try:
            code, _, err = finished(proc)
        except subprocess.TimeoutExpired:
            pytest.fail("previewctl did not exit after Ctrl-C while Vercel hung")
        assert code == 130, err
        assert survivors(tag) == []
    finally:
        gate.set()


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_pr_comment_is_written_exits_130(
    stage: ActionsStage, stack: Stack, sig: signal.Signals
) -> None:
    """The last call of `up` is the PR comment; GitHub does not answer. A signal then
    ends previewctl with 130, nothing left running (the tunnels closed before)."""
    gate = threading.Event()
    commenting = blocked(stage.github, "create_comment", gate)
    tag = new_tag()
    try:
        proc = stack.popen("up", env={"ATTACK_TAG": tag})
        assert commenting.wait(60), "the PR comment was not written"
        os.kill(proc.pid, sig)
        code, _, err = finished(proc)
        assert code == 130, err
        assert survivors(tag) == []
    finally:
        gate.set()


HANGING_SEED = """
[[seed]]
name = "project"
http = {{ method = "PUT", url = "{url}/manage/project", body = "{{}}" }}
timeout = "50s"
"""


@pytest.mark.e2e
def test_ctrl_c_twice_during_an_http_seed_step_exits_130(stage: ActionsStage, stack: Stack) -> None:
    """`seed` sends its request to the preview's API, which hangs; Ctrl-C, and again:
    exit 130 after cleanup, no process left, no secret printed."""
    assert stage.run("up").code == 0
    gate = threading.Event()
    server = HangingServer(gate).start()
    config = stack.project.config
    config.write_text(config.read_text() + HANGING_SEED.format(url=server.url))
    tag = new_tag()
    try:
        proc = stack.popen("seed", env={"ATTACK_TAG": tag})
        assert wait_for(lambda: server.requests > 0, 60)
        os.kill(proc.pid, signal.SIGINT)
        os.kill(proc.pid, signal.SIGINT)
        code, out, err = finished(proc)
        assert code == 130, err
        assert survivors(tag) == []
        assert leaks(out + err, list(stack.secrets(APP).values())) == []
    finally:
        gate.set()
        server.stop()


@pytest.mark.e2e
def test_resume_prints_no_secret_and_ctrl_c_leaves_nothing(
    stage: ActionsStage, stack: Stack
) -> None:
    """`resume` re-runs the steps and holds the tunnels: it says how to get the env, and
    prints none of its values (only `env` does). Ctrl-C: 130, tunnels and all gone."""
    assert stage.run("up").code == 0
    secret_values = list(stack.secrets(APP).values())
    assert stage.run("stop", "--pr", str(PR)).code == 0
    tag = new_tag()
    proc = stack.popen("resume", "--pr", str(PR), env={"ATTACK_TAG": tag})
    seen: list[str] = []
    assert read_until(proc.stderr, "press Ctrl-C", 90, seen), "".join(seen)
    # only `env` prints them, when asked (and while resume's tunnels listen)
    env = stage.run("env", "--pr", str(PR))
    assert any(v in env.stdout for v in secret_values), env.output
    os.kill(proc.pid, signal.SIGINT)
    code, out, err = finished(proc)
    assert code == 130, err
    assert "previewctl env --pr" in out
    assert leaks(out + "".join(seen) + err, secret_values) == []
    assert survivors(tag) == []


DAEMONIZING = textwrap.dedent(
    """
    import os, subprocess, sys, time
    # a daemon: a session of its own (setsid), then a second fork, as daemons do
    subprocess.Popen([sys.executable, "-c", "import os, time\\nif os.fork() == 0:\\n    time.sleep(60)"],
                     start_new_session=True)
    print("step-started", flush=True)
    time.sleep(float(os.environ.get("STEP_SLEEP", "0")))
    """
)


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["finishes", "SIGINT", "SIGKILL"])
def test_a_daemon_a_step_starts_in_its_own_session_does_not_outlive_previewctl(
    stack: Stack, how: str
) -> None:
    """A step that starts a daemon (setsid, then fork: a new session and process group,
    re-parented to init) - the step's own group and session no longer hold it. It must
    still end with the step (or with previewctl, however previewctl ends)."""
    (stack.project.root / "migrate.py").write_text(DAEMONIZING)
    tag = new_tag()
    sleep = "0" if how == "finishes" else "60"
    proc = stack.popen("up", "--pr", str(PR), env={"ATTACK_TAG": tag, "STEP_SLEEP": sleep})
    seen: list[str] = []
    assert read_until(proc.stderr, "step-started", 60, seen), "".join(seen)
    if how != "finishes":
        os.kill(proc.pid, getattr(signal, how))
    code, _, err = finished(proc)
    assert code == {"finishes": 0, "SIGINT": 130, "SIGKILL": -9}[how], err
    assert survivors(tag) == []


KILLED_AT_THE_FORK = textwrap.dedent(
    """
    import os, signal, subprocess, sys
    from pathlib import Path
    from previewctl import steps
    from previewctl.actions import GitHubActions
    from previewctl.reporter import Reporter

    real_popen = subprocess.Popen

    def popen_then_killed(argv, *args, **kwargs):
        proc = real_popen(argv, *args, **kwargs)
        if sys.argv[1] in argv:  # the step, not the watchdog
            while not Path(sys.argv[2]).exists():  # the step runs
                pass
            os.kill(os.getpid(), signal.SIGKILL)  # before previewctl could note its PID
        return proc

    subprocess.Popen = popen_then_killed
    step = steps.CommandStep(
        name="sleeper", argv=[sys.executable, sys.argv[1], sys.argv[2]], env={},
        cwd=Path.cwd(), timeout=30,
    )
    steps.run_command(step, Reporter(actions=GitHubActions({})))
    """
)


def test_sigkill_right_after_a_steps_fork_leaves_no_step(tmp_path: Path) -> None:
    """previewctl SIGKILLed in the instant between the fork of a step and the moment it
    tells the watchdog the step's PID: the step (in a session of its own, which no
    terminal signal reaches) must still end."""
    step, pidfile = _step(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_AT_THE_FORK, step.argv[1], str(pidfile)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid = int(pidfile.read_text())
    try:
        assert wait_gone([pid], 15) == set(), "the step outlived the killed previewctl"
    finally:
        if wait_gone([pid], 0):
            os.kill(pid, signal.SIGKILL)


STUBBORN_FLYCTL = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    # a wrapper around flyctl (a team's own script on PREVIEWCTL_FLYCTL) that ignores
    # SIGTERM and does not watch its stdin: only its child, the real proxy, does
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, sys.argv[1], *sys.argv[2:]])
    child.wait()
    time.sleep(60)
    """
)


@pytest.mark.e2e
def test_a_tunnel_wrapper_that_ignores_sigterm_and_stdin_dies_with_a_killed_previewctl(
    stack: Stack, tmp_path: Path
) -> None:
    """previewctl SIGKILLed during a step while its tunnel process is a wrapper that
    ignores SIGTERM and its stdin's end: --watch-stdin reaches only the proxy inside;
    the wrapper must not be left running either."""
    from tests.fakes.flyctl_fixture import STANDIN

    wrapper = tmp_path / "flyctl-wrapper.py"
    wrapper.write_text(STUBBORN_FLYCTL)
    shim = tmp_path / "bin" / "flyctl"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{wrapper}" "{STANDIN}" "$@"\n')
    shim.chmod(0o755)
    (stack.project.root / "migrate.py").write_text(SLEEPER)
    tag = new_tag()
    proc = stack.popen(
        "up", "--pr", str(PR), env={"ATTACK_TAG": tag, "PREVIEWCTL_FLYCTL": str(shim)}
    )
    seen: list[str] = []
    assert read_until(proc.stderr, "step-started", 60, seen), "".join(seen)
    os.kill(proc.pid, signal.SIGKILL)
    code, _, err = finished(proc)
    assert code == -9, err
    assert survivors(tag) == []
