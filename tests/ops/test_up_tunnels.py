"""`up`, `resume`, `tunnel`, `env` and `seed` end to end: emulator, flyctl stand-in,
a real PostgreSQL, and the installed previewctl."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.postgres import PostgresServer, free_port
from tests.support.checks import assert_no_leak
from tests.support.processes import wait_gone
from tests.support.stack import MIGRATE, Stack, make_stack

APP = "pr-21-stack"


def test_up_runs_migrations_through_the_tunnel_into_the_real_database(stack: Stack) -> None:
    result = stack.cli.run("up", "--pr", "21", env={"GITHUB_ACTIONS": "true"})
    assert result.code == 0, result.output
    assert stack.tables() == ["widgets"]
    assert stack.widgets() == 1
    assert "migrated" in result.stderr  # the step's output is streamed
    pids = stack.flyctl_pids()
    assert len(pids) == 1
    assert wait_gone(pids) == set()
    argv = next(e["argv"] for e in stack.flyctl_events() if e["event"] == "start")
    machine_id = next(iter(stack.fly.apps[APP].machines))
    assert argv[1:3] == ["proxy", "0:5432"]
    assert f"{machine_id}.vm.{APP}.internal" in argv
    assert "--watch-stdin" in argv
    secrets = stack.secrets(APP)
    assert_no_leak(result.output, list(secrets.values()))
    assert f"::add-mask::{secrets['pg_password']}" in result.stderr


def test_failing_step_reports_name_and_output_and_leaves_nothing(stack: Stack) -> None:
    (stack.project.root / "migrate.py").write_text(
        "import sys\nprint('relation widgets already exploded', flush=True)\nsys.exit(3)\n"
    )
    result = stack.cli.run("up", "--pr", "21")
    assert result.code == 1
    assert "migrate" in result.stderr
    assert "exit code 3" in result.stderr
    assert "relation widgets already exploded" in result.stderr
    assert wait_gone(stack.flyctl_pids()) == set()
    (stack.project.root / "migrate.py").write_text(MIGRATE)
    assert stack.cli.run("up", "--pr", "21").code == 0
    assert stack.tables() == ["widgets"]


def test_step_timeout_kills_the_step_and_its_children(stack: Stack, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    (stack.project.root / "migrate.py").write_text(
        textwrap.dedent(
            f"""
            import subprocess, os, time
            child = subprocess.Popen(["sleep", "60"])
            open({str(pidfile)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
            time.sleep(60)
            """
        )
    )
    toml = stack.project.config.read_text().replace('timeout = "60s"', 'timeout = "2s"')
    stack.project.config.write_text(toml)
    result = stack.cli.run("up", "--pr", "21")
    assert result.code == 1
    assert "timed out" in result.stderr
    step_pids = {int(p) for p in pidfile.read_text().split()}
    assert wait_gone(step_pids) == set()
    assert wait_gone(stack.flyctl_pids()) == set()
    (stack.project.root / "migrate.py").write_text(MIGRATE)
    assert stack.cli.run("up", "--pr", "21").code == 0
    assert stack.tables() == ["widgets"]


def test_taken_local_port_is_a_clear_error(
    tmp_path: Path,
    fly: FlyEmulator,
    fly_token: str,
    postgres_server: PostgresServer,
    flyctl_path: Path,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = make_stack(tmp_path, fly, fly_token, postgres_server, flyctl_path, local_port=port)
        result = stack.cli.run("up", "--pr", "21")
    # found before the machine is made: bad input, nothing created, no tunnel started
    assert result.code == 2, result.output
    assert f"tunnel db: local port {port} is already in use" in result.stderr
    assert fly.requests == []
    assert stack.flyctl_pids() == set()
    assert stack.cli.run("up", "--pr", "21").code == 0  # the port is free again
    assert stack.tables() == ["widgets"]


def test_database_that_never_answers_fails_within_the_deadline(
    tmp_path: Path,
    fly: FlyEmulator,
    fly_token: str,
    postgres_server: PostgresServer,
    flyctl_path: Path,
) -> None:
    stack = make_stack(
        tmp_path, fly, fly_token, postgres_server, flyctl_path, target_port=free_port()
    )
    toml = stack.project.config.read_text().replace('ready = "8s"', 'ready = "2s"')
    stack.project.config.write_text(toml)
    result = stack.cli.run("up", "--pr", "21")
    assert result.code == 1
    assert "db" in result.stderr
    assert "not ready" in result.stderr
    assert stack.tables() == []  # the step never ran
    assert wait_gone(stack.flyctl_pids()) == set()
    fixed = {"FAKE_FLYCTL_TARGETS": json.dumps({"5432": f"127.0.0.1:{postgres_server.port}"})}
    assert stack.cli.run("up", "--pr", "21", env=fixed).code == 0
    assert stack.tables() == ["widgets"]


def test_database_accepting_late_is_waited_for(
    tmp_path: Path, fly: FlyEmulator, fly_token: str, flyctl_path: Path
) -> None:
    late = PostgresServer().start()
    timers: list[threading.Timer] = []
    try:
        stack = make_stack(tmp_path, fly, fly_token, late, flyctl_path)

        def boot_then_restart_late(app: str, config: dict[str, Any]) -> None:
            # the container gets its database, then the server goes away and only
            # accepts connections again 2 s later, while up is already probing
            stack.recreate_database(app, config)
            late._running = False
            late._shutdown()
            timer = threading.Timer(2.0, late.start)
            timers.append(timer)
            timer.start()

        fly.on_boot = boot_then_restart_late
        result = stack.cli.run("up", "--pr", "21")
        for timer in timers:
            timer.join()
        assert result.code == 0, result.output
        assert "db" in result.stderr
        assert stack.tables() == ["widgets"]
    finally:
        late.stop()


def test_env_prints_urls_pointing_at_the_tunnel_ports(stack: Stack) -> None:
    toml = stack.project.config.read_text().replace("local_port = 0", "local_port = 25432")
    stack.project.config.write_text(toml)
    assert stack.cli.run("up", "--pr", "21").code != 2
    stack.fly.on_boot = None
    for fmt, check in (
        ("shell", "export DATABASE_URL="),
        ("dotenv", 'DATABASE_URL="postgresql://'),
    ):
        result = stack.cli.run("env", "--pr", "21", "--format", fmt)
        assert result.code == 0, result.output
        assert check in result.stdout
        assert "@127.0.0.1:25432/" in result.stdout
    result = stack.cli.run("env", "--pr", "21", "--format", "json")
    data = json.loads(result.stdout)
    password = stack.secrets(APP)["pg_password"]
    assert data["DATABASE_URL"].startswith(f"postgresql://{stack.role}:{password}@127.0.0.1:25432/")


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    status = 201

    def do_PUT(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        type(self).requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": body.decode()}
        )
        self.send_response(type(self).status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "boom"}' if type(self).status >= 400 else b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Any:
    handler = type("Handler", (_Recorder,), {"requests": [], "status": 201})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def _seed_toml(url: str) -> str:
    return f"""
[[seed]]
name = "project"
http = {{ method = "PUT", url = "{url}/manage/tenants/default/project-full/demo", body_file = "project.json", headers = {{ Authorization = "Bearer ${{secrets.bypass}}", Content-Type = "application/json" }} }}
timeout = "10s"
"""


def test_seed_sends_the_put_with_the_bearer_secret(stack: Stack, recorder: Any) -> None:
    server, handler = recorder
    url = f"http://127.0.0.1:{server.server_address[1]}"
    stack.project.config.write_text(stack.project.config.read_text() + _seed_toml(url))
    (stack.project.root / "project.json").write_text('{"id": "demo"}')
    assert stack.cli.run("up", "--pr", "21").code == 0
    result = stack.cli.run("seed", "--pr", "21")
    assert result.code == 0, result.output
    assert len(handler.requests) == 1
    sent = handler.requests[0]
    assert sent["path"] == "/manage/tenants/default/project-full/demo"
    assert sent["headers"]["Authorization"] == f"Bearer {stack.secrets(APP)['bypass']}"
    assert json.loads(sent["body"]) == {"id": "demo"}
    assert_no_leak(stack.cli.all_output(), list(stack.secrets(APP).values()))


def test_seed_fails_clearly_on_a_500(stack: Stack, recorder: Any) -> None:
    server, handler = recorder
    handler.status = 500
    url = f"http://127.0.0.1:{server.server_address[1]}"
    stack.project.config.write_text(stack.project.config.read_text() + _seed_toml(url))
    (stack.project.root / "project.json").write_text('{"id": "demo"}')
    assert stack.cli.run("up", "--pr", "21").code == 0
    result = stack.cli.run("seed", "--pr", "21")
    assert result.code == 1
    assert "project" in result.stderr
    assert "500" in result.stderr
    assert len(handler.requests) >= 1  # PUT is idempotent: retried, then failed
    assert_no_leak(stack.cli.all_output(), list(stack.secrets(APP).values()))


def test_tunnel_dying_mid_step_names_the_tunnel_and_a_rerun_converges(stack: Stack) -> None:
    (stack.project.root / "migrate.py").write_text(
        "import time, os, psycopg\n"
        "time.sleep(1.5)\n"
        "psycopg.connect(os.environ['DATABASE_URL'], connect_timeout=3)\n"
    )
    result = stack.cli.run("up", "--pr", "21", env={"FAKE_FLYCTL_DIE_AFTER": "0.5"})
    assert result.code == 1
    assert "tunnel db" in result.stderr
    assert wait_gone(stack.flyctl_pids()) == set()
    (stack.project.root / "migrate.py").write_text(MIGRATE)
    again = stack.cli.run("up", "--pr", "21")
    assert again.code == 0, again.output
    assert stack.tables() == ["widgets"]
