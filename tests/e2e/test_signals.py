"""Signals through the installed previewctl: Ctrl-C and SIGTERM during a step, a
foreground `resume` and `tunnel` ended by a signal. What in-process runs cannot show:
exit 130 of a real process, and that nothing it started outlives it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.checks import assert_no_leak
from tests.support.cli import Cli, previewctl_executable
from tests.support.processes import wait_gone
from tests.support.stack import MIGRATE, Stack, interrupt, read_until

pytestmark = pytest.mark.e2e

APP = "pr-21-stack"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_a_step_closes_tunnels_and_the_step(
    stack: Stack, tmp_path: Path, sig: signal.Signals
) -> None:
    pidfile = tmp_path / "step.pid"
    (stack.project.root / "migrate.py").write_text(
        textwrap.dedent(
            f"""
            import os, time
            open({str(pidfile)!r}, "w").write(str(os.getpid()))
            print("step running", flush=True)
            time.sleep(60)
            """
        )
    )
    proc = stack.popen("up", "--pr", "21")
    seen: list[str] = []
    assert read_until(proc.stderr, "step running", 30, seen), "".join(seen)
    code, _, err = interrupt(proc, sig)
    assert code == 130, "".join(seen) + err
    assert wait_gone({int(pidfile.read_text())}) == set()
    assert wait_gone(stack.flyctl_pids()) == set()
    (stack.project.root / "migrate.py").write_text(MIGRATE)
    assert stack.cli.run("up", "--pr", "21").code == 0
    assert stack.tables() == ["widgets"]


def test_resume_starts_machine_reruns_steps_and_serves_a_tunnel(stack: Stack) -> None:
    assert stack.cli.run("up", "--pr", "21").code == 0
    assert stack.cli.run("stop", "--pr", "21").code == 0
    machine = next(iter(stack.fly.apps[APP].machines.values()))
    assert machine.state == "stopped"
    proc = stack.popen("resume", "--pr", "21")
    seen: list[str] = []
    assert read_until(proc.stderr, "tunnels are open", 40, seen), "".join(seen)
    assert machine.state == "started"
    assert stack.tables() == ["widgets"]  # re-created after the fresh boot
    assert stack.widgets() == 1
    code, out, err = interrupt(proc, signal.SIGINT)
    assert code == 130, err
    # only `env` prints secrets: resume says how to get them, and prints none
    assert 'eval "$(previewctl env --pr 21)"' in out.splitlines()
    assert "DATABASE_URL" in out
    assert "export " not in out
    assert_no_leak(out + err, list(stack.secrets(APP).values()))
    assert re.search(r"tunnel db is on localhost:\d+ now \(local_port = 0\)", out), out
    assert wait_gone(stack.flyctl_pids()) == set()


def test_tunnel_serves_a_working_connection_until_interrupted(stack: Stack) -> None:
    assert stack.cli.run("up", "--pr", "21").code == 0
    proc = stack.popen("--json", "tunnel", "--pr", "21")
    seen: list[str] = []
    assert read_until(proc.stdout, "tunnels", 30, seen), "".join(seen)
    info = json.loads(seen[-1])
    port = info["tunnels"]["db"]["port"]
    password = stack.secrets(APP)["pg_password"]
    dsn = f"postgresql://{stack.role}:{password}@127.0.0.1:{port}/{stack.dbname}?sslmode=disable"
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM widgets").fetchone()
    assert row == (1,)
    code, _, err = interrupt(proc, signal.SIGTERM)
    assert code == 130, err
    assert wait_gone(stack.flyctl_pids()) == set()


def test_sigterm_during_down_then_down_again_converges(console: Cli, fly: FlyEmulator) -> None:
    assert console.run("up", "--pr", "4").code == 0
    fly.latency = 0.5  # every call is slow: the signal lands mid-way
    fly.clear_log()
    proc = subprocess.Popen(
        [previewctl_executable(), "--config", str(console.project.config), "down", "--pr", "4"],
        env=console.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while not fly.calls("GET", r"^/v1/apps/pr-4-svc$") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    fly.latency = 0.0
    again = console.run("down", "--pr", "4")
    assert again.code == 0, again.output
    assert "pr-4-svc" not in fly.apps
