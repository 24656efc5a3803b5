"""The ``flyctl`` stand-in behaves like ``flyctl proxy`` as shared/reference/fly.md describes."""

from __future__ import annotations

import errno
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

if TYPE_CHECKING:
    from tests.fakes.postgres import PgDatabase

# Imported by pytest itself (so with assertion rewriting) rather than from this module.
pytest_plugins = ["tests.fakes.flyctl_fixture", "tests.fakes.postgres"]

READY_RE = re.compile(r"^Proxying localhost:(\d+) to remote \[(.+)\]:(\d+)$")
WAIT = 10.0  # upper bound for anything that should take milliseconds


# ---- helpers --------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_FLYCTL_", "FLY_"))}
    env.update(extra)
    return env


class Proxy:
    """A running stand-in with its stdout/stderr drained by threads (bounded reads)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_chunks: list[str] = []
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._drain_stdout, daemon=True),
            threading.Thread(target=self._drain_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _drain_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr_chunks.extend(self.proc.stderr)

    def ready(self, timeout: float = WAIT) -> tuple[str, int]:
        """The ready line and the port in it."""
        line = self.lines.get(timeout=timeout)
        assert line is not None, f"exited without a ready line: {self.stderr()}"
        match = READY_RE.match(line)
        assert match, line
        return line, int(match[1])

    def wait(self, timeout: float = WAIT) -> int:
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        return code

    def stderr(self) -> str:
        return "".join(self.stderr_chunks)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


StartProxy = Callable[..., Proxy]


@pytest.fixture
def start_proxy(flyctl_path: Path) -> Iterator[StartProxy]:
    started: list[Proxy] = []

    def start(*args: str, **env: str) -> Proxy:
        proxy = Proxy([str(flyctl_path), *args], clean_env(**env))
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.kill()


def run_flyctl(flyctl_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(flyctl_path), *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=WAIT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class EchoServer:
    """Upper-cases what it receives: a stand-in for any remote service."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data.upper())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def roundtrip(port: int, payload: bytes = b"hello") -> bytes:
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
        try:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            while data := conn.recv(4096):
                chunks.append(data)
        # The far end closed with our bytes unread (the kernel sends RST), maybe before
        # our write or shutdown got there: a closed connection, whichever step saw it.
        except (ConnectionResetError, BrokenPipeError):
            pass
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise
    return b"".join(chunks)


class MachinesApi:
    """The smallest Machines API: ``GET /v1/apps/{app}/machines`` from a dict.

    With ``graphql`` on it also plays flyctl's GraphQL API (``POST /graphql``); off, a
    POST gets the 404 a Machines API gives a path it does not know.
    """

    def __init__(self) -> None:
        self.apps: dict[str, list[dict[str, Any]]] = {}
        self.auth_headers: list[str] = []
        self.posts: list[tuple[str, Any]] = []
        self.graphql = False
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with api.lock:
                    api.posts.append((self.path, json.loads(raw or b"null")))
                    name = (json.loads(raw or b"{}").get("variables") or {}).get("appName")
                    known = name in api.apps
                    serve = api.graphql and self.path == "/graphql"
                if serve:
                    app = {"id": name, "name": name, "network": "default"} if known else None
                    self.answer(200, {"data": {"app": app}})
                else:
                    self.answer(404, {"error": f"no route for {self.path}", "status": "404"})

            def answer(self, code: int, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                match = re.fullmatch(r"/v1/apps/([^/]+)/machines", self.path.split("?")[0])
                with api.lock:
                    api.auth_headers.append(self.headers.get("Authorization", ""))
                    machines = api.apps.get(match[1]) if match else None
                    body = json.dumps(machines if machines is not None else {"error": "nope"})
                self.send_response(200 if machines is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def set_state(self, app: str, machine_id: str, state: str) -> None:
        with self.lock:
            for machine in self.apps[app]:
                if machine["id"] == machine_id:
                    machine["state"] = state

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def machines_api() -> Iterator[MachinesApi]:
    api = MachinesApi()
    yield api
    api.close()


# ---- commands and arguments -----------------------------------------------------------


def test_shim_execs_the_standin(flyctl_path: Path, tmp_path: Path) -> None:
    from tests.fakes.flyctl_fixture import STANDIN, install_flyctl

    shim = install_flyctl(tmp_path / "bin")
    assert shim == tmp_path / "bin" / "flyctl"
    assert os.access(shim, os.X_OK)
    assert shim.read_text().splitlines()[1].startswith("exec ")
    assert str(STANDIN) in shim.read_text()
    assert flyctl_path.name == "flyctl"


def test_version(flyctl_path: Path) -> None:
    result = run_flyctl(flyctl_path, "version")
    assert result.returncode == 0
    assert result.stdout == (
        "flyctl v0.3.999 linux/amd64 Commit: fake BuildDate: 2026-01-01T00:00:00Z\n"
    )


def test_unknown_command(flyctl_path: Path) -> None:
    result = run_flyctl(flyctl_path, "deploy")
    assert result.returncode == 1
    assert result.stderr == 'Error: unknown command "deploy" for "flyctl"\n'
    assert result.stdout == ""


def test_unknown_flag(flyctl_path: Path) -> None:
    result = run_flyctl(flyctl_path, "proxy", "5432", "-a", "app", "--frobnicate")
    assert result.returncode == 1
    assert result.stderr == "Error: unknown flag: --frobnicate\n"


def test_missing_app(flyctl_path: Path) -> None:
    result = run_flyctl(flyctl_path, "proxy", "5432")
    assert result.returncode == 1
    assert "specify with the -a flag" in result.stderr


# ---- listening ------------------------------------------------------------------------


def test_ready_line_reports_the_real_port(start_proxy: StartProxy) -> None:
    proxy = start_proxy("proxy", "0:5432", "-a", "pr-7-db")
    line, port = proxy.ready()
    assert port != 0
    assert line == f"Proxying localhost:{port} to remote [pr-7-db.internal]:5432"
    assert listening(port)


def test_single_port_and_long_flags(start_proxy: StartProxy) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        free = probe.getsockname()[1]
    proxy = start_proxy(
        "proxy", str(free), "--app", "app", "--bind-addr", "127.0.0.1", "--quiet", "--watch-stdin"
    )
    line, port = proxy.ready()
    assert port == free
    assert line == f"Proxying localhost:{free} to remote [app.internal]:{free}"


def test_pinned_machine_host_is_shown(start_proxy: StartProxy) -> None:
    proxy = start_proxy("proxy", "0:8080", "3d8d9e1b.vm.app.internal", "-a", "app")
    line, port = proxy.ready()
    assert line == f"Proxying localhost:{port} to remote [3d8d9e1b.vm.app.internal]:8080"


def test_port_taken(flyctl_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_flyctl(flyctl_path, "proxy", f"{port}:5432", "-a", "app")
    assert result.returncode == 1
    assert result.stderr == f"Error: listen tcp 127.0.0.1:{port}: bind: address already in use\n"
    assert result.stdout == ""


def test_ready_delay(start_proxy: StartProxy) -> None:
    began = time.monotonic()
    proxy = start_proxy("proxy", "0:5432", "-a", "app", FAKE_FLYCTL_READY_DELAY="0.3")
    proxy.ready()
    assert time.monotonic() - began >= 0.3


# ---- forwarding -----------------------------------------------------------------------


def test_forwards_to_real_postgres(start_proxy: StartProxy, pg_database: PgDatabase) -> None:
    server = pg_database.server
    targets = json.dumps({"5432": f"127.0.0.1:{server.port}"})
    proxy = start_proxy("proxy", "0:5432", "-a", "app", FAKE_FLYCTL_TARGETS=targets)
    _, port = proxy.ready()
    dsn = server.dsn(pg_database.user, pg_database.password, pg_database.dbname)
    tunnelled = dsn.replace(f":{server.port}/", f":{port}/")
    assert tunnelled != dsn
    with (
        psycopg.connect(tunnelled, connect_timeout=5) as first,
        psycopg.connect(tunnelled, connect_timeout=5) as second,
    ):
        assert first.execute("SELECT 1").fetchone() == (1,)
        assert second.execute("SELECT current_database()").fetchone() == (pg_database.dbname,)


def test_forwarding_is_bidirectional_and_per_connection(
    start_proxy: StartProxy, echo: EchoServer
) -> None:
    targets = json.dumps({"80": f"127.0.0.1:{echo.port}"})
    proxy = start_proxy("proxy", "0:80", "-a", "app", FAKE_FLYCTL_TARGETS=targets)
    _, port = proxy.ready()
    assert roundtrip(port, b"one") == b"ONE"
    assert roundtrip(port, b"x" * 200_000) == b"X" * 200_000


def test_unmapped_remote_port_closes_the_connection(
    start_proxy: StartProxy, echo: EchoServer
) -> None:
    targets = json.dumps({"80": f"127.0.0.1:{echo.port}"})
    proxy = start_proxy("proxy", "0:5432", "-a", "app", FAKE_FLYCTL_TARGETS=targets)
    _, port = proxy.ready()
    assert roundtrip(port) == b""
    assert proxy.proc.poll() is None  # the listener stays up


# ---- ending -----------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_with_exit_zero(start_proxy: StartProxy, signum: signal.Signals) -> None:
    proxy = start_proxy("proxy", "0:5432", "-a", "app")
    _, port = proxy.ready()
    proxy.proc.send_signal(signum)
    assert proxy.wait() == 0
    assert proxy.stderr() == ""
    assert not listening(port)


def test_signal_during_dns_wait_exits_zero(
    start_proxy: StartProxy, machines_api: MachinesApi, tmp_path: Path
) -> None:
    machines_api.apps["app"] = []
    log = tmp_path / "flyctl.jsonl"
    proxy = start_proxy(
        "proxy",
        "0:5432",
        "-a",
        "app",
        FLY_FLAPS_BASE_URL=machines_api.url,
        FLY_API_TOKEN="fo1_x",
        FAKE_FLYCTL_DNS_WAIT="30",
        FAKE_FLYCTL_LOG=str(log),
    )
    wait_until(lambda: len(machines_api.auth_headers) > 0)
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.wait() == 0


def test_stdin_eof_ends_it_with_watch_stdin(start_proxy: StartProxy) -> None:
    proxy = start_proxy("proxy", "0:5432", "-a", "app", "--watch-stdin")
    _, port = proxy.ready()
    assert proxy.proc.stdin is not None
    proxy.proc.stdin.close()
    assert proxy.wait() == 0
    assert not listening(port)


def test_stdin_eof_is_ignored_without_watch_stdin(start_proxy: StartProxy) -> None:
    proxy = start_proxy("proxy", "0:5432", "-a", "app")
    _, port = proxy.ready()
    assert proxy.proc.stdin is not None
    proxy.proc.stdin.close()
    with pytest.raises(subprocess.TimeoutExpired):
        proxy.proc.wait(0.3)
    assert listening(port)


def test_die_after(start_proxy: StartProxy) -> None:
    proxy = start_proxy("proxy", "0:5432", "-a", "app", FAKE_FLYCTL_DIE_AFTER="0.2")
    _, port = proxy.ready()
    assert proxy.wait() == 1
    assert proxy.stderr() == "Error: tunnel unexpectedly closed\n"
    assert not listening(port)


def test_log_lines(start_proxy: StartProxy, tmp_path: Path) -> None:
    log = tmp_path / "flyctl.jsonl"
    proxy = start_proxy("proxy", "0:5432", "-a", "app", FAKE_FLYCTL_LOG=str(log))
    _, port = proxy.ready()
    proxy.proc.terminate()
    assert proxy.wait() == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    pid = proxy.proc.pid  # the shim execs: the PID is the stand-in's own
    assert events == [
        {
            "pid": pid,
            "argv": ["flyctl", "proxy", "0:5432", "-a", "app"],
            "base_urls": {},
            "event": "start",
        },
        {"pid": pid, "port": port, "event": "ready"},
        {"pid": pid, "code": 0, "event": "exit"},
    ]


# ---- "DNS" through the machines API ----------------------------------------------------


def test_dns_failure_when_no_machine_started(flyctl_path: Path, machines_api: MachinesApi) -> None:
    machines_api.apps["app"] = [{"id": "m1", "state": "stopped"}]
    began = time.monotonic()
    result = run_flyctl(
        flyctl_path,
        "proxy",
        "0:5432",
        "-a",
        "app",
        FLY_FLAPS_BASE_URL=machines_api.url,
        FLY_API_TOKEN="fm2_secret",
        FAKE_FLYCTL_DNS_WAIT="0.3",
    )
    assert result.returncode == 1
    assert result.stderr == "Error: host was not found in DNS\n"
    assert result.stdout == ""
    assert time.monotonic() - began >= 0.3
    assert len(machines_api.auth_headers) >= 2  # it polled
    assert set(machines_api.auth_headers) == {"FlyV1 fm2_secret"}


def test_pinned_machine_must_be_started(flyctl_path: Path, machines_api: MachinesApi) -> None:
    machines_api.apps["app"] = [{"id": "m1", "state": "stopped"}, {"id": "m2", "state": "started"}]
    result = run_flyctl(
        flyctl_path,
        "proxy",
        "0:5432",
        "m1.vm.app.internal",
        "-a",
        "app",
        FLY_FLAPS_BASE_URL=machines_api.url,
        FLY_ACCESS_TOKEN="fo1_secret",
        FAKE_FLYCTL_DNS_WAIT="0.3",
    )
    assert result.returncode == 1
    assert result.stderr == "Error: host was not found in DNS\n"
    assert set(machines_api.auth_headers) == {"Bearer fo1_secret"}


def test_waits_for_a_machine_to_start(
    start_proxy: StartProxy, machines_api: MachinesApi, echo: EchoServer
) -> None:
    machines_api.apps["app"] = [{"id": "m1", "state": "starting"}]
    proxy = start_proxy(
        "proxy",
        "0:5432",
        "m1.vm.app.internal",
        "-a",
        "app",
        FLY_FLAPS_BASE_URL=machines_api.url,
        FLY_API_TOKEN="FlyV1 fm2_pasted",
        FAKE_FLYCTL_TARGETS=json.dumps({"5432": f"127.0.0.1:{echo.port}"}),
    )
    wait_until(lambda: len(machines_api.auth_headers) >= 2)
    assert proxy.lines.empty()  # not listening while the host does not resolve
    machines_api.set_state("app", "m1", "started")
    _, port = proxy.ready()
    assert machines_api.auth_headers[0] == "FlyV1 fm2_pasted"
    assert roundtrip(port) == b"HELLO"
    # The remote is dialled per connection: a stopped machine no longer answers.
    machines_api.set_state("app", "m1", "stopped")
    assert roundtrip(port) == b""
    assert proxy.proc.poll() is None


def test_unknown_app(flyctl_path: Path, machines_api: MachinesApi) -> None:
    result = run_flyctl(
        flyctl_path,
        "proxy",
        "5432",
        "-a",
        "ghost",
        FLY_FLAPS_BASE_URL=machines_api.url,
        FLY_API_TOKEN="fo1_x",
    )
    assert result.returncode == 1
    assert result.stderr == 'Error: Could not find App "ghost"\n'


# ---- flyctl's two base URLs -------------------------------------------------------------


def test_a_machines_url_as_flyctls_graphql_base_fails(
    flyctl_path: Path, machines_api: MachinesApi
) -> None:
    """flyctl reads FLY_API_BASE_URL as its GraphQL base: a Machines URL there breaks it."""
    machines_api.apps["app"] = [{"id": "m1", "state": "started"}]
    result = run_flyctl(
        flyctl_path,
        "proxy",
        "0:5432",
        "-a",
        "app",
        FLY_API_BASE_URL=machines_api.url,
        FLY_API_TOKEN="fo1_x",
    )
    assert result.returncode == 1
    assert result.stderr == "Error: graphql: server returned a non-200 status code: 404\n"
    assert result.stdout == ""
    assert [path for path, _ in machines_api.posts] == ["/graphql"]
    assert machines_api.posts[0][1]["variables"] == {"appName": "app"}


def test_graphql_base_and_flaps_base_each_get_their_own_calls(
    start_proxy: StartProxy, machines_api: MachinesApi, tmp_path: Path
) -> None:
    machines_api.graphql = True
    machines_api.apps["app"] = [{"id": "m1", "state": "started"}]
    log = tmp_path / "flyctl.jsonl"
    proxy = start_proxy(
        "proxy",
        "0:5432",
        "-a",
        "app",
        FLY_API_BASE_URL=machines_api.url,
        FLY_FLAPS_BASE_URL=machines_api.url,
        FLY_API_TOKEN="fo1_x",
        FAKE_FLYCTL_LOG=str(log),
    )
    proxy.ready()
    assert [path for path, _ in machines_api.posts] == ["/graphql"]
    assert machines_api.auth_headers  # the DNS check went to the Machines API
    start = json.loads(log.read_text().splitlines()[0])
    assert start["base_urls"] == {
        "FLY_API_BASE_URL": machines_api.url,
        "FLY_FLAPS_BASE_URL": machines_api.url,
    }


def test_graphql_base_that_does_not_know_the_app(
    flyctl_path: Path, machines_api: MachinesApi
) -> None:
    machines_api.graphql = True
    result = run_flyctl(
        flyctl_path, "proxy", "5432", "-a", "ghost", FLY_API_BASE_URL=machines_api.url
    )
    assert result.returncode == 1
    assert result.stderr == 'Error: Could not find App "ghost"\n'
