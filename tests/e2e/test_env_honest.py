"""`env` prints only ports where a tunnel really listens: fixed ports, or the live ports
of a running `tunnel`/`resume` (a state file it writes and removes); else exit 2."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.postgres import PostgresServer
from tests.support.processes import wait_gone
from tests.support.stack import Stack, interrupt, make_stack, read_until

pytestmark = pytest.mark.e2e

APP = "pr-21-stack"


@pytest.fixture
def stack(
    tmp_path: Path,
    fly: FlyEmulator,
    fly_token: str,
    postgres_server: PostgresServer,
    flyctl_path: Path,
) -> Iterator[Stack]:
    stack = make_stack(tmp_path, fly, fly_token, postgres_server, flyctl_path)  # local_port = 0
    stack.cli.env["XDG_STATE_HOME"] = str(tmp_path / "state")
    assert stack.cli.run("up", "--pr", "21").code == 0
    yield stack
    stack.close()


def state_files(stack: Stack) -> list[Path]:
    return sorted((Path(stack.cli.env["XDG_STATE_HOME"]) / "previewctl").glob("tunnels-*.json"))


def test_env_without_a_running_tunnel_is_a_clear_error_before_any_call(stack: Stack) -> None:
    stack.fly.clear_log()
    result = stack.cli.run("env", "--pr", "21")
    assert result.code == 2, result.output
    assert result.stdout == ""
    assert "no `previewctl tunnel --pr 21` (or `resume`) is running" in result.stderr
    assert "tunnel(s) db have local_port = 0" in result.stderr
    assert "hint: run `previewctl tunnel --pr 21` in another shell" in result.stderr
    assert stack.fly.requests == []


def test_env_prints_the_live_port_of_a_running_tunnel_and_it_works(stack: Stack) -> None:
    proc = stack.popen("tunnel", "--pr", "21", "--json")
    seen: list[str] = []
    assert read_until(proc.stdout, "tunnels", 30, seen), "".join(seen)
    port = json.loads(seen[-1])["tunnels"]["db"]["port"]
    [state] = state_files(stack)
    assert json.loads(state.read_text())["ports"] == {"db": port}
    assert json.loads(state.read_text())["pid"] == proc.pid
    result = stack.cli.run("env", "--pr", "21", "--format", "json")
    assert result.code == 0, result.output
    url = json.loads(result.stdout)["DATABASE_URL"]
    assert f"@127.0.0.1:{port}/" in url
    assert f"# tunnel db: localhost:{port} -> 5432 (open in pid {proc.pid})" in result.stderr
    with psycopg.connect(url, connect_timeout=5) as conn:  # the printed env really works
        assert conn.execute("SELECT count(*) FROM widgets").fetchone() == (1,)
    code, _, err = interrupt(proc, signal.SIGINT)
    assert code == 130, err
    assert wait_gone(stack.flyctl_pids()) == set()
    assert state_files(stack) == []  # removed on exit
    assert stack.cli.run("env", "--pr", "21").code == 2


def test_a_stale_state_file_of_a_dead_process_is_ignored_and_removed(stack: Stack) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    directory = Path(stack.cli.env["XDG_STATE_HOME"]) / "previewctl"
    directory.mkdir(parents=True)
    stale = directory / f"tunnels-{APP}-{dead.pid}.json"
    stale.write_text(
        json.dumps(
            {
                "app": APP,
                "pr": 21,
                "pid": dead.pid,
                "machine": "m",
                "started_at": "x",
                "ports": {"db": 1},
            }
        )
    )
    result = stack.cli.run("env", "--pr", "21")
    assert result.code == 2, result.output
    assert ":1/" not in result.stdout
    assert not stale.exists()


def test_fixed_ports_are_printed_with_a_note_when_no_tunnel_runs(stack: Stack) -> None:
    toml = stack.project.config.read_text().replace("local_port = 0", "local_port = 25433")
    stack.project.config.write_text(toml)
    result = stack.cli.run("env", "--pr", "21")
    assert result.code == 0, result.output
    assert "@127.0.0.1:25433/" in result.stdout
    assert "# tunnel db: localhost:25433 -> 5432 (fixed local_port)" in result.stderr
    assert "no tunnel is open yet: start one with `previewctl tunnel --pr 21`" in result.stderr


def test_resume_publishes_its_tunnels_for_env_too(stack: Stack) -> None:
    assert stack.cli.run("stop", "--pr", "21").code == 0
    proc = stack.popen("resume", "--pr", "21")
    seen: list[str] = []
    assert read_until(proc.stderr, "tunnels are open", 40, seen), "".join(seen)
    [state] = state_files(stack)
    port = json.loads(state.read_text())["ports"]["db"]
    result = stack.cli.run("env", "--pr", "21")
    assert result.code == 0, result.output
    assert f"@127.0.0.1:{port}/" in result.stdout
    code, _, err = interrupt(proc, signal.SIGINT)
    assert code == 130, err
    assert state_files(stack) == []


def test_up_announces_each_tunnel_once(stack: Stack) -> None:
    result = stack.cli.run("up", "--pr", "21")
    assert result.code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "tunnel db" in line]
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(
        r"✓ tunnel db: localhost:\d+ → pr-21-stack:5432 \(postgres ready\)", lines[0]
    ), lines
