"""Readiness probes against a real PostgreSQL, real sockets and the flyctl stand-in."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from psycopg import pq

from previewctl import redact
from previewctl.backends.fly.tunnels import TunnelSet, TunnelSpec
from previewctl.errors import TimeoutExceededError, TunnelError
from previewctl.probes import (
    PgLogin,
    Ping,
    ProbeKind,
    ProbeTarget,
    pg_ping,
    probe_once,
    wait_all,
)
from previewctl.reporter import Reporter
from tests.support.net import free_port
from tests.support.processes import wait_for
from tests.support.reporting import output

if TYPE_CHECKING:
    from tests.fakes.postgres import PgDatabase, PostgresServer


@contextmanager
def tcp_server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server calling ``handle(conn)`` for each connection, in threads."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()
    held: list[socket.socket] = []

    def run(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            handle(conn)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            threading.Thread(target=run, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        for conn in held:
            conn.close()
        thread.join(2)


def hold_open(conn: socket.socket) -> None:
    """Accept and say nothing, like a gRPC server waiting for the client preface."""


def close_at_once(conn: socket.socket) -> None:
    """What a tunnel does when it cannot dial the remote."""
    conn.close()


def error_reply(sqlstate: str, message: str) -> Callable[[socket.socket], None]:
    """Answer the startup packet with a FATAL ErrorResponse, as Postgres does."""
    return lambda conn: _error_reply(conn, sqlstate, message)


def _error_reply(conn: socket.socket, sqlstate: str, message: str) -> None:
    with conn:
        conn.settimeout(5)
        (length,) = struct.unpack("!I", conn.recv(4))
        remaining = length - 4
        while remaining > 0:
            chunk = conn.recv(remaining)
            if not chunk:
                return
            remaining -= len(chunk)
        fields = b"".join(
            code + value.encode() + b"\0"
            for code, value in (
                (b"S", "FATAL"),
                (b"V", "FATAL"),
                (b"C", sqlstate),
                (b"M", message),
            )
        )
        body = fields + b"\0"
        conn.sendall(b"E" + struct.pack("!I", len(body) + 4) + body)


# ---- probe_once ------------------------------------------------------------------------------


def test_postgres_probe_is_ready_against_a_real_server(postgres_server: PostgresServer) -> None:
    ready, seen = probe_once(ProbeKind.POSTGRES, postgres_server.host, postgres_server.port, 2)
    assert (ready, seen) == (True, "accepting connections")


def test_postgres_probe_sees_nothing_listening() -> None:
    port = free_port()
    ready, seen = probe_once(ProbeKind.POSTGRES, "127.0.0.1", port, 2)
    assert not ready
    assert seen.startswith(f"no response: nothing accepts connections on 127.0.0.1:{port}")


def test_postgres_probe_through_a_tunnel_whose_remote_is_down() -> None:
    with tcp_server(close_at_once) as port:
        ready, seen = probe_once(ProbeKind.POSTGRES, "127.0.0.1", port, 2)
    assert not ready
    assert seen.startswith("no response: the connection was accepted, then closed")


def test_postgres_probe_reports_a_server_that_is_starting_up() -> None:
    with tcp_server(error_reply("57P03", "the database system is starting up")) as port:
        assert pg_ping("127.0.0.1", port, 2) == (
            Ping.REJECT,
            "server is up but rejecting connections (the database system is starting up)",
        )
        assert probe_once(ProbeKind.POSTGRES, "127.0.0.1", port, 2)[0] is False


def test_postgres_probe_counts_any_other_server_error_as_up() -> None:
    # As libpq's PQping: a server that dislikes our role or database is still up.
    with tcp_server(error_reply("28000", 'role "previewctl" does not exist')) as port:
        assert pg_ping("127.0.0.1", port, 2) == (Ping.OK, "accepting connections")


def test_postgres_probe_of_something_that_is_not_postgres() -> None:
    def http_server(conn: socket.socket) -> None:
        conn.recv(100)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with tcp_server(http_server) as port:
        result, seen = pg_ping("127.0.0.1", port, 2)
    assert result == Ping.NO_RESPONSE
    assert "is a PostgreSQL server on the remote port?" in seen


def test_postgres_probe_of_a_silent_server_is_bounded_and_lets_other_threads_run() -> None:
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(0.05):
            ticks.append(time.monotonic())

    thread = threading.Thread(target=ticker, daemon=True)
    with tcp_server(hold_open) as port:
        thread.start()
        started = time.monotonic()
        result, seen = pg_ping("127.0.0.1", port, 0.5)
        elapsed = time.monotonic() - started
        stop.set()
        thread.join(1)
    assert result == Ping.NO_RESPONSE
    assert seen == "no response within 0.5s"
    assert 0.4 < elapsed < 1.5
    # The GIL was free while the probe waited: the ticker kept ticking.
    assert len(ticks) >= 5


def test_tcp_probe() -> None:
    with tcp_server(hold_open) as port:
        assert probe_once(ProbeKind.TCP, "127.0.0.1", port, 2) == (True, "TCP connection open")
    with tcp_server(close_at_once) as port:
        ready, seen = probe_once(ProbeKind.TCP, "127.0.0.1", port, 2)
        assert not ready
        assert "closed at once" in seen
    ready, seen = probe_once(ProbeKind.TCP, "127.0.0.1", free_port(), 2)
    assert not ready
    assert seen.startswith("TCP connect to 127.0.0.1:")


def test_none_kind_is_always_ready() -> None:
    assert probe_once(ProbeKind.NONE, "127.0.0.1", free_port(), 1)[0] is True


# ---- postgres probe with a login -------------------------------------------------------------


def test_login_probe_is_ready_when_the_database_takes_the_login(pg_database: PgDatabase) -> None:
    login = PgLogin(pg_database.user, pg_database.password, pg_database.dbname)
    server = pg_database.server
    ready, seen = probe_once(ProbeKind.POSTGRES, server.host, server.port, 3, login)
    assert (ready, seen) == (True, f"database {pg_database.dbname} accepts a login")


def test_login_probe_waits_for_a_database_a_ping_already_calls_up(
    pg_database: PgDatabase,
) -> None:
    """Doltgres answers before it has created its database: a ping passes, a login must not."""
    server = pg_database.server
    missing = pg_database.dbname + "_later"
    assert probe_once(ProbeKind.POSTGRES, server.host, server.port, 3)[0] is True
    login = PgLogin(pg_database.user, pg_database.password, missing)
    ready, seen = probe_once(ProbeKind.POSTGRES, server.host, server.port, 3, login)
    assert not ready
    assert f'database "{missing}" does not exist' in seen


def test_login_probe_refuses_a_wrong_password_without_showing_it(pg_database: PgDatabase) -> None:
    wrong = "wrong-" + pg_database.password
    redact.register(wrong)
    server = pg_database.server
    login = PgLogin(pg_database.user, wrong, pg_database.dbname)
    ready, seen = probe_once(ProbeKind.POSTGRES, server.host, server.port, 3, login)
    assert not ready
    assert "password authentication failed" in seen
    assert wrong not in seen
    assert wrong not in repr(login)


def test_a_probe_with_a_login_returns_once_the_database_exists(
    pg_database: PgDatabase, reporter: Reporter
) -> None:
    server = pg_database.server
    later = pg_database.dbname + "_late"
    created = threading.Event()

    def create_after_a_few_probes() -> None:
        # created while the probe is already waiting (event-driven, not timed)
        time.sleep(0.3)
        server.create_database(later, pg_database.user)
        created.set()

    worker = threading.Thread(target=create_after_a_few_probes, daemon=True)
    worker.start()
    reporter.verbose = True  # the per-tunnel "ready" line is a detail (ops.session says it)
    try:
        login = PgLogin(pg_database.user, pg_database.password, later)
        wait_all(
            [ProbeTarget("manage_db", ProbeKind.POSTGRES, server.host, server.port, login)],
            deadline=time.monotonic() + 20,
            reporter=reporter,
        )
        assert created.is_set()
        assert f"database {later} accepts a login" in output(reporter)
    finally:
        worker.join()
        server.drop_database(later)


# ---- one tunnel ---------------------------------------------------------------------------


def one(name: str, kind: ProbeKind, host: str, port: int) -> list[ProbeTarget]:
    return [ProbeTarget(name, kind, host, port)]


def test_a_probe_returns_when_postgres_answers(
    postgres_server: PostgresServer, reporter: Reporter
) -> None:
    target = one("manage_db", ProbeKind.POSTGRES, postgres_server.host, postgres_server.port)
    wait_all(target, deadline=time.monotonic() + 10, reporter=reporter)
    # a plain log: the wait, and no line per probe
    assert output(reporter) == "… waiting for 1 tunnel(s) to be ready\n"
    reporter.verbose = True
    wait_all(target, deadline=time.monotonic() + 10, reporter=reporter)
    assert f"tunnel manage_db: postgres ready on localhost:{postgres_server.port}" in output(
        reporter
    )


def test_nothing_listening_fails_within_the_deadline_naming_the_tunnel(
    reporter: Reporter,
) -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TimeoutExceededError) as info:
        wait_all(
            one("run_db", ProbeKind.POSTGRES, "127.0.0.1", port),
            deadline=started + 1.0,
            reporter=reporter,
            describe_remote=lambda: "machine 148e: postgres=starting, doltgres=started",
        )
    elapsed = time.monotonic() - started
    # libpq's connect_timeout is at least 2 s, but a refused connect fails at once.
    assert 1.0 <= elapsed < 2.0
    message = str(info.value)
    assert message.startswith(f"tunnel run_db (localhost:{port}): postgres not ready after 1s")
    assert "last seen: no response: nothing accepts connections" in message
    assert message.endswith("\nmachine 148e: postgres=starting, doltgres=started")
    assert "waiting for 1 tunnel(s) to be ready: run_db: no response" in output(reporter)


def test_a_failing_describe_remote_does_not_hide_the_timeout(reporter: Reporter) -> None:
    def broken() -> str:
        raise RuntimeError("fly api down")

    with pytest.raises(TimeoutExceededError) as info:
        wait_all(
            one("db", ProbeKind.TCP, "127.0.0.1", free_port()),
            deadline=time.monotonic() + 0.3,
            reporter=reporter,
            describe_remote=broken,
        )
    assert "not ready after" in str(info.value)
    assert "could not describe the machine: fly api down" in str(info.value)


def test_a_dead_tunnel_fails_fast_through_alive_check(reporter: Reporter) -> None:
    calls: list[int] = []

    def alive_check() -> None:
        calls.append(1)
        if len(calls) >= 3:
            raise TunnelError("tunnel db ended unexpectedly")

    started = time.monotonic()
    with pytest.raises(TunnelError, match="tunnel db ended unexpectedly"):
        wait_all(
            one("db", ProbeKind.TCP, "127.0.0.1", free_port()),
            deadline=started + 30,
            reporter=reporter,
            alive_check=alive_check,
        )
    assert time.monotonic() - started < 3
    assert len(calls) == 3


# ---- wait_all -----------------------------------------------------------------------------


def test_wait_all_reports_the_failing_tunnel_and_describes_the_machine_once(
    postgres_server: PostgresServer, reporter: Reporter
) -> None:
    described: list[int] = []

    def describe() -> str:
        described.append(1)
        return "containers: spicedb=stopped"

    dead = free_port()
    targets = [
        ProbeTarget("manage_db", ProbeKind.POSTGRES, postgres_server.host, postgres_server.port),
        ProbeTarget("spicedb", ProbeKind.TCP, "127.0.0.1", dead),
        ProbeTarget("other", ProbeKind.TCP, "127.0.0.1", free_port()),
    ]
    reporter.verbose = True  # the per-tunnel "ready" line is a detail (ops.session says it)
    started = time.monotonic()
    with pytest.raises(TimeoutExceededError) as info:
        wait_all(targets, deadline=started + 1.0, reporter=reporter, describe_remote=describe)
    assert time.monotonic() - started < 3
    assert "not ready after 1s" in str(info.value)
    assert str(info.value).endswith("containers: spicedb=stopped")
    assert len(described) == 1
    assert "tunnel manage_db: postgres ready" in output(reporter)


def test_wait_all_stops_the_others_when_one_tunnel_dies(reporter: Reporter) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def alive_check() -> None:
        with lock:
            calls.append(1)
            if len(calls) > 6:
                raise TunnelError("tunnel spicedb ended unexpectedly")

    targets = [ProbeTarget(n, ProbeKind.TCP, "127.0.0.1", free_port()) for n in ("a", "b", "c")]
    started = time.monotonic()
    with pytest.raises(TunnelError, match="spicedb"):
        wait_all(targets, deadline=started + 30, reporter=reporter, alive_check=alive_check)
    # The two others were cancelled rather than left to run to the 30 s deadline.
    assert time.monotonic() - started < 5
    assert not [t for t in threading.enumerate() if t.name.startswith("probe-")]


def test_wait_all_waits_for_a_late_server_through_a_real_tunnel(
    flyctl_path: Path, reporter: Reporter, tmp_path: Path
) -> None:
    from tests.fakes.postgres import PostgresServer

    # The server starts only once the probe has said what it saw through the tunnel with
    # nothing behind it: no timer decides which of the two comes first.
    reporter.verbose = True  # the per-tunnel "ready" line is a detail (ops.session says it)
    late = PostgresServer()
    late.init()
    closed_seen = threading.Event()

    def start_once_the_probe_failed() -> None:
        if wait_for(lambda: "accepted, then closed" in output(reporter), timeout=60):
            closed_seen.set()
            late.start()

    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLY_", "FAKE_FLYCTL_"))}
        env["FAKE_FLYCTL_TARGETS"] = json.dumps({"5432": f"127.0.0.1:{late.port}"})
        spec = TunnelSpec("manage_db", "pr-7-agents", "pr-7-agents.internal", 5432, 0)
        starter = threading.Thread(target=start_once_the_probe_failed, daemon=True)
        with TunnelSet([spec], flyctl=str(flyctl_path), env=env, reporter=reporter) as ts:
            tunnel = ts.tunnels["manage_db"]
            starter.start()
            wait_all(
                [ProbeTarget("manage_db", ProbeKind.POSTGRES, tunnel.host, tunnel.port)],
                deadline=time.monotonic() + 90,
                reporter=reporter,
                alive_check=ts.check_alive,
            )
            starter.join(90)
        assert closed_seen.is_set(), "the probe never reported the closed connection"
        assert late.running
        text = output(reporter)
        assert text.index("the connection was accepted, then closed") < text.index(
            "tunnel manage_db: postgres ready"
        )
    finally:
        late.stop()


def test_ping_values_are_libpqs() -> None:
    assert {p.name: p.value for p in Ping} == {p.name: p.value for p in pq.Ping}
