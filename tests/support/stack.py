"""A preview stack for end-to-end tests: the Fly emulator whose machine "runs" a real
PostgreSQL (the emulator's boot hook re-creates the database with the password in the
machine config, as a fresh container would), reached through the flyctl stand-in."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.postgres import PostgresServer
from tests.support.cli import Cli, InProcessCli, base_env, previewctl_executable
from tests.support.project import Project

MIGRATE = textwrap.dedent(
    """
    import os, psycopg
    with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS widgets (id serial PRIMARY KEY, name text)")
        conn.execute("INSERT INTO widgets (name) VALUES ('from-migrate')")
    print("migrated", flush=True)
    """
)


def stack_toml(dbname: str, role: str, *, local_port: int = 0, extra: str = "") -> str:
    python = sys.executable
    return textwrap.dedent(
        f"""
        [app]
        name = "pr-${{pr}}-stack"
        org = "acme"

        [secrets]
        generate = ["pg_password", "bypass"]

        [tunnels.db]
        remote_port = 5432
        local_port = {local_port}
        check = "postgres"

        [timeouts]
        machine = "30s"
        ready = "8s"
        tunnel = "15s"

        [[steps]]
        name = "migrate"
        run = ["{python}", "migrate.py"]
        timeout = "60s"
        env = {{ DATABASE_URL = "postgresql://{role}:${{secrets.pg_password}}@${{tunnels.db.host}}:${{tunnels.db.port}}/{dbname}?sslmode=disable" }}
        """
    ) + textwrap.dedent(extra)


MACHINE = {
    "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
    "containers": [
        {
            "name": "db",
            "image": "postgres:18",
            "env": {"POSTGRES_PASSWORD": "${secrets.pg_password}"},
            "healthchecks": [{"name": "tcp", "tcp": {"port": 5432}}],
        }
    ],
}


@dataclass
class Stack:
    fly: FlyEmulator
    server: PostgresServer
    project: Project
    cli: Cli
    dbname: str
    role: str
    flyctl_log: Path
    boots: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def close(self) -> None:
        """End any previewctl a failed test left running (its tunnels go with it)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def recreate_database(self, app: str, config: dict[str, Any]) -> None:
        """What a fresh container does: an empty database, the configured password."""
        password = config["containers"][0]["env"]["POSTGRES_PASSWORD"]
        with self.server.admin_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.dbname)
                )
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(self.role), sql.Literal(password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.dbname), sql.Identifier(self.role)
                )
            )
        self.boots.append(app)

    def tables(self) -> list[str]:
        with self.server.admin_connect(self.dbname) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def widgets(self) -> int:
        with self.server.admin_connect(self.dbname) as conn:
            row = conn.execute("SELECT count(*) FROM widgets").fetchone()
        assert row is not None
        return int(row[0])

    def flyctl_events(self) -> list[dict[str, Any]]:
        if not self.flyctl_log.exists():
            return []
        return [json.loads(line) for line in self.flyctl_log.read_text().splitlines() if line]

    def flyctl_pids(self) -> set[int]:
        return {e["pid"] for e in self.flyctl_events() if e["event"] == "start"}

    def secrets(self, app: str) -> dict[str, str]:
        machines = [m for m in self.fly.apps[app].machines.values() if m.state != "destroyed"]
        return dict(json.loads(machines[0].config["metadata"]["previewctl_secrets"]))

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [previewctl_executable(), "--config", str(self.project.config), *args],
            env={**self.cli.env, **(env or {})},
            cwd=self.project.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.procs.append(proc)
        return proc


_readers: dict[int, queue.Queue[str | None]] = {}


def _lines(stream: Any) -> queue.Queue[str | None]:
    """A queue fed by a thread reading the pipe (select() and buffered readline don't mix)."""
    key = id(stream)
    if key not in _readers:
        q: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            for line in iter(stream.readline, ""):
                q.put(line)
            q.put(None)

        threading.Thread(target=pump, daemon=True).start()
        _readers[key] = q
    return _readers[key]


def read_until(stream: Any, needle: str, timeout: float, into: list[str]) -> bool:
    """Read lines from a pipe until one contains needle (bounded by timeout)."""
    q = _lines(stream)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = q.get(timeout=left)
        except queue.Empty:
            return False
        if line is None:
            return False
        into.append(line)
        if needle in line:
            return True
    return False


def make_stack(
    tmp_path: Path,
    fly: FlyEmulator,
    fly_token: str,
    server: PostgresServer,
    flyctl_path: Path,
    *,
    local_port: int = 0,
    extra_toml: str = "",
    target_port: int | None = None,
) -> Stack:
    import secrets as pysecrets

    suffix = pysecrets.token_hex(4)
    role, dbname = f"app_{suffix}", f"stack_{suffix}"
    server.create_role(role, pysecrets.token_urlsafe(12))
    server.create_database(dbname, role)
    root = tmp_path / "repo"
    root.mkdir(exist_ok=True)
    (root / "migrate.py").write_text(MIGRATE)
    project = Project(root, machine=json.loads(json.dumps(MACHINE)))
    project.write(stack_toml(dbname, role, local_port=local_port, extra=extra_toml))
    log = tmp_path / "flyctl.log"
    env = base_env(tmp_path)
    env.update(
        {
            "FLY_API_TOKEN": fly_token,
            "FLY_API_BASE_URL": fly.url,
            "PREVIEWCTL_FLYCTL": str(flyctl_path),
            "FAKE_FLYCTL_TARGETS": json.dumps({"5432": f"127.0.0.1:{target_port or server.port}"}),
            "FAKE_FLYCTL_LOG": str(log),
            "FAKE_FLYCTL_DNS_WAIT": "3",
        }
    )
    stack = Stack(fly, server, project, InProcessCli(project, env), dbname, role, log)
    fly.on_boot = stack.recreate_database
    return stack


def _drain(stream: Any) -> str:
    """What is left on a pipe after the process ended."""
    q = _readers.pop(id(stream), None)
    if q is None:
        return str(stream.read())
    out: list[str] = []
    while (line := q.get(timeout=10)) is not None:
        out.append(line)
    return "".join(out)


def finished(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of a previewctl that ends (or has ended)."""
    proc.wait(timeout=30)
    return proc.returncode, _drain(proc.stdout), _drain(proc.stderr)


def interrupt(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str, str]:
    os.kill(proc.pid, sig)
    return finished(proc)


def iter_lines(text: str) -> Iterator[str]:
    yield from text.splitlines()
