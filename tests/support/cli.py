"""The installed `previewctl` console script, run the way a workflow step runs it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from tests.support.project import Project


def previewctl_executable() -> str:
    """The console script installed next to this interpreter (what a workflow runs)."""
    candidate = Path(sys.executable).parent / "previewctl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("previewctl")
    assert found, "previewctl is not installed: pip install -e '.[test]'"
    return found


def base_env(tmp_path: Path) -> dict[str, str]:
    """A minimal environment: no credentials, nothing of the machine running the tests."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Cli:
    """Runs the installed `previewctl` the way a workflow step does."""

    project: Project
    env: dict[str, str]
    history: list[CliResult] = field(default_factory=list)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 90) -> CliResult:
        full_env = {**self.env, **(env or {})}
        proc = subprocess.run(
            [previewctl_executable(), "--config", str(self.project.config), *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=self.project.root,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
        self.history.append(result)
        return result

    def all_output(self) -> str:
        return "".join(r.output for r in self.history)


@dataclass
class InProcessCli(Cli):
    """The same command line, run by previewctl's own ``main()`` in this process.

    The environment, working directory, argv, stdout and stderr are the run's own for its
    duration (then put back), and what ``main()`` installs process-wide (signal handlers,
    exception hooks) is restored after it, so a run here sees what a subprocess would,
    minus the interpreter's start-up. Signals, the console script and process exit are
    what it does not prove: those tests use :class:`Cli`.

    One thing is made quicker: the HTTP retries back off by milliseconds instead of
    seconds (:data:`FAST_BACKOFF`). They are still made, counted and reported the same
    way, and a server's ``Retry-After`` (a rate limit's reset) is still waited out in
    full; the backoff's own figures are tested against the clock in tests/clients.
    """

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 90) -> CliResult:
        from previewctl import redact

        assert threading.current_thread() is threading.main_thread(), (
            "an in-process run owns the process (env, cwd, signals): run concurrent ones "
            "as subprocesses (Cli)"
        )
        full_env = {**self.env, **(env or {})}
        argv = ["previewctl", "--config", str(self.project.config), *args]
        out, err = io.StringIO(), io.StringIO()
        redact.reset_for_tests()  # a new process knows no secret yet
        with _process_state(full_env, self.project.root, argv, out, err), _fast_retries():
            code = _main_exit_code()
        result = CliResult(code, out.getvalue(), err.getvalue())
        self.history.append(result)
        return result


FAST_BACKOFF = (0.001, 0.01)
"""The in-process runs' retry backoff: 1 ms doubling up to 10 ms (the CLI's: 0.25 s to 10 s)."""


@contextlib.contextmanager
def _fast_retries() -> Iterator[None]:
    """The run's Runtime gets a RetryPolicy with :data:`FAST_BACKOFF`."""
    from previewctl.clients.http import RetryPolicy
    from previewctl.ops.runtime import Runtime

    made = Runtime.from_environ

    def from_environ(config_path: Path, *, verbose: bool = False) -> Runtime:
        rt = made(config_path, verbose=verbose)
        rt.retry = RetryPolicy(multiplier=FAST_BACKOFF[0], max_wait=FAST_BACKOFF[1])
        return rt

    with mock.patch.object(Runtime, "from_environ", from_environ):
        yield


def _main_exit_code() -> int:
    from previewctl.cli.main import main

    try:
        main()
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@contextlib.contextmanager
def _process_state(
    env: dict[str, str], cwd: Path, argv: list[str], out: io.StringIO, err: io.StringIO
) -> Iterator[None]:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_argv = sys.argv
    saved_hooks = (sys.excepthook, threading.excepthook)
    saved_signals = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.excepthook, threading.excepthook = saved_hooks
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
