"""TunnelSet against the flyctl stand-in: real processes, pipes, signals and Postgres."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from previewctl.actions import GitHubActions
from previewctl.backends.fly.tunnels import Tunnel, TunnelSet, TunnelSpec, find_flyctl, flyctl_env
from previewctl.errors import InputError, TunnelError
from previewctl.reporter import Reporter
from tests.support.net import free_port
from tests.support.processes import is_gone, wait_for

if TYPE_CHECKING:
    from tests.fakes.postgres import PgDatabase

APP = "pr-7-agents"
HOST = f"e784079b449483.vm.{APP}.internal"


@pytest.fixture
def flyctl_log(tmp_path: Path) -> Path:
    return tmp_path / "flyctl.log"


def make_env(log: Path, targets: dict[int, str] | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLY_", "FAKE_FLYCTL_"))}
    env["FAKE_FLYCTL_LOG"] = str(log)
    env["FAKE_FLYCTL_TARGETS"] = json.dumps({str(k): v for k, v in (targets or {}).items()})
    env.update(extra)
    return env


def spec(name: str, remote_port: int = 5432, local_port: int = 0) -> TunnelSpec:
    return TunnelSpec(
        name=name, app=APP, remote_host=HOST, remote_port=remote_port, local_port=local_port
    )


def log_events(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@contextmanager
def listening_socket() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# ---- start-up -----------------------------------------------------------------------------


def test_local_port_zero_reads_the_real_port_from_the_ready_line(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    with listening_socket() as target_port:
        env = make_env(flyctl_log, {5432: f"127.0.0.1:{target_port}"})
        with TunnelSet([spec("db")], flyctl=str(flyctl_path), env=env, reporter=reporter) as ts:
            tunnel = ts.tunnels["db"]
            assert isinstance(tunnel, Tunnel)
            assert tunnel.host == "127.0.0.1"
            assert tunnel.port > 0
            assert tunnel.pid in ts.pids
            ready = [e for e in log_events(flyctl_log) if e["event"] == "ready"]
            assert [(e["pid"], e["port"]) for e in ready] == [(tunnel.pid, tunnel.port)]
            # Something really listens there.
            socket.create_connection(("127.0.0.1", tunnel.port), timeout=2).close()
    starts = [e for e in log_events(flyctl_log) if e["event"] == "start"]
    assert starts[0]["argv"] == ["flyctl", "proxy", "0:5432", HOST, "-a", APP, "--watch-stdin"]
    # said once per tunnel by the caller (ops.session); here only with -v
    assert "tunnel db: 127.0.0.1:" not in reporter.stream.getvalue()  # type: ignore[union-attr]


def test_fixed_free_local_port_is_used(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    port = free_port()
    env = make_env(flyctl_log)
    specs = [spec("db", local_port=port)]
    with TunnelSet(specs, flyctl=str(flyctl_path), env=env, reporter=reporter) as ts:
        assert ts.tunnels["db"].port == port


def test_three_tunnels_start_concurrently_and_carry_postgres_traffic(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter, pg_database: PgDatabase
) -> None:
    pg = f"{pg_database.server.host}:{pg_database.server.port}"
    env = make_env(flyctl_log, {5432: pg, 5433: pg, 50051: pg}, FAKE_FLYCTL_READY_DELAY="1.0")
    specs = [spec("manage_db", 5432), spec("run_db", 5433), spec("spicedb", 50051)]
    started = time.monotonic()
    with TunnelSet(specs, flyctl=str(flyctl_path), env=env, reporter=reporter) as ts:
        elapsed = time.monotonic() - started
        # Each stand-in takes 1 s to get ready: one after the other would take 3 s.
        assert elapsed < 2.5, f"tunnels were not started concurrently ({elapsed:.1f}s)"
        assert set(ts.tunnels) == {"manage_db", "run_db", "spicedb"}
        assert len({t.port for t in ts.tunnels.values()}) == 3
        for tunnel in ts.tunnels.values():
            with psycopg.connect(
                host=tunnel.host,
                port=tunnel.port,
                user=pg_database.user,
                password=pg_database.password,
                dbname=pg_database.dbname,
                sslmode="disable",
                connect_timeout=5,
            ) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        pids = ts.pids
        ts.check_alive()
    assert len(pids) == 3
    assert all(is_gone(pid) for pid in pids)
    exits = {e["pid"] for e in log_events(flyctl_log) if e["event"] == "exit"}
    assert exits == set(pids)


def test_a_taken_local_port_names_the_port_and_the_tunnel_and_closes_the_others(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    env = make_env(flyctl_log)
    with listening_socket() as taken:
        specs = [spec("manage_db", 5432), spec("run_db", 5433, taken), spec("spicedb", 50051)]
        ts = TunnelSet(specs, flyctl=str(flyctl_path), env=env, reporter=reporter)
        with pytest.raises(TunnelError) as info:
            ts.__enter__()
    message = str(info.value)
    assert f"tunnel run_db: local port {taken} is already in use" in message
    assert "[tunnels.run_db] local_port = 0" in message
    assert len(ts.pids) == 3
    assert all(is_gone(pid) for pid in ts.pids), "the other tunnels were left running"
    assert ts.tunnels == {}


def test_a_process_that_exits_before_ready_reports_its_stderr(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    env = make_env(flyctl_log)
    env["FAKE_FLYCTL_TARGETS"] = "{not json"
    ts = TunnelSet([spec("db")], flyctl=str(flyctl_path), env=env, reporter=reporter)
    with pytest.raises(TunnelError) as info:
        ts.__enter__()
    message = str(info.value)
    assert message.startswith("tunnel db: flyctl proxy failed before it was ready (exit code 1)")
    assert "invalid FAKE_FLYCTL_TARGETS" in message
    assert all(is_gone(pid) for pid in ts.pids)


def test_start_timeout_is_bounded_and_ends_the_process(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    env = make_env(flyctl_log, FAKE_FLYCTL_READY_DELAY="30")
    ts = TunnelSet(
        [spec("db")], flyctl=str(flyctl_path), env=env, reporter=reporter, start_timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(TunnelError, match=r"tunnel db: flyctl proxy did not report ready"):
        ts.__enter__()
    assert time.monotonic() - started < 5
    assert all(is_gone(pid) for pid in ts.pids)


class InterruptingReporter(Reporter):
    """Raises KeyboardInterrupt from the first progress update, like a Ctrl-C mid-wait."""

    @contextmanager
    def waiting(self, label: str) -> Iterator[Callable[[str], None]]:
        def update(text: str) -> None:
            raise KeyboardInterrupt

        yield update


def test_ctrl_c_during_start_up_ends_every_process(flyctl_path: Path, flyctl_log: Path) -> None:
    env = make_env(flyctl_log, FAKE_FLYCTL_READY_DELAY="30")
    rep = InterruptingReporter(actions=GitHubActions({}), stream=io.StringIO())
    ts = TunnelSet([spec("a"), spec("b", 5433)], flyctl=str(flyctl_path), env=env, reporter=rep)
    with pytest.raises(KeyboardInterrupt):
        ts.__enter__()
    assert len(ts.pids) == 2
    assert all(is_gone(pid) for pid in ts.pids)


# ---- running and closing ------------------------------------------------------------------


def test_close_ends_every_process_and_is_idempotent(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    env = make_env(flyctl_log)
    ts = TunnelSet(
        [spec("a"), spec("b", 5433)], flyctl=str(flyctl_path), env=env, reporter=reporter
    )
    ts.__enter__()
    pids = ts.pids
    assert not any(is_gone(pid) for pid in pids)
    ts.close()
    assert all(is_gone(pid) for pid in pids)
    ts.close()
    ts.check_alive()  # nothing left to check: no error


def test_an_error_inside_the_block_still_closes_the_tunnels(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    env = make_env(flyctl_log)
    ts = TunnelSet([spec("a")], flyctl=str(flyctl_path), env=env, reporter=reporter)
    with pytest.raises(RuntimeError, match="boom"), ts:
        raise RuntimeError("boom")
    assert ts.pids
    assert all(is_gone(pid) for pid in ts.pids)


def test_check_alive_detects_a_tunnel_that_died(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    env = make_env(flyctl_log, FAKE_FLYCTL_DIE_AFTER="0.3")
    with TunnelSet([spec("manage_db")], flyctl=str(flyctl_path), env=env, reporter=reporter) as ts:
        port = ts.tunnels["manage_db"].port
        errors: list[TunnelError] = []

        def died() -> bool:
            try:
                ts.check_alive()
            except TunnelError as exc:
                errors.append(exc)
                return True
            return False

        assert wait_for(died, timeout=5)
    message = str(errors[0])
    assert f"tunnel manage_db (localhost:{port}) ended unexpectedly (flyctl exit code 1)" in message
    assert "tunnel unexpectedly closed" in message


def test_hold_returns_with_an_error_when_a_tunnel_dies(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    env = make_env(flyctl_log, FAKE_FLYCTL_DIE_AFTER="0.3")
    with TunnelSet([spec("manage_db")], flyctl=str(flyctl_path), env=env, reporter=reporter) as ts:
        started = time.monotonic()
        with pytest.raises(TunnelError, match=r"tunnel manage_db .* ended unexpectedly"):
            ts.hold()
        assert time.monotonic() - started < 5


ORPHAN_SCRIPT = textwrap.dedent(
    """
    import io, os, sys, time
    from previewctl.actions import GitHubActions
    from previewctl.reporter import Reporter
    from previewctl.backends.fly.tunnels import TunnelSet, TunnelSpec

    spec = TunnelSpec("db", "pr-7-agents", "pr-7-agents.internal", 5432, 0)
    ts = TunnelSet([spec], flyctl=sys.argv[1], env=os.environ,
                   reporter=Reporter(actions=GitHubActions({}), stream=io.StringIO()))
    ts.__enter__()
    print(ts.tunnels["db"].pid, flush=True)
    time.sleep(60)
    """
)


def test_flyctl_exits_when_previewctl_is_killed(
    flyctl_path: Path, flyctl_log: Path, tmp_path: Path
) -> None:
    """The --watch-stdin orphan guard: SIGKILL leaves no cleanup code to run."""
    env = make_env(flyctl_log)
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(flyctl_path)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"no PID from the helper: {line!r}"
        flyctl_pid = int(line)
        assert not is_gone(flyctl_pid)
    finally:
        parent.kill()
        parent.wait(5)
        if parent.stdout is not None:
            parent.stdout.close()
    assert wait_for(lambda: is_gone(flyctl_pid), timeout=5), "flyctl outlived previewctl"
    exits = [e for e in log_events(flyctl_log) if e["event"] == "exit"]
    assert [(e["pid"], e["code"]) for e in exits] == [(flyctl_pid, 0)]


# ---- find_flyctl ----------------------------------------------------------------------------


def make_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_find_flyctl_prefers_the_configured_path(tmp_path: Path) -> None:
    configured = make_executable(tmp_path / "custom" / "my-flyctl")
    on_path = make_executable(tmp_path / "bin" / "flyctl")
    env = {"PATH": str(on_path.parent), "PREVIEWCTL_FLYCTL": str(configured)}
    assert find_flyctl(env) == str(configured)


def test_find_flyctl_configured_name_is_looked_up_on_path(tmp_path: Path) -> None:
    tool = make_executable(tmp_path / "bin" / "flyctl-nightly")
    assert find_flyctl({"PATH": str(tool.parent), "PREVIEWCTL_FLYCTL": "flyctl-nightly"}) == str(
        tool
    )


def test_find_flyctl_rejects_a_configured_path_that_is_not_executable(tmp_path: Path) -> None:
    not_exec = tmp_path / "flyctl"
    not_exec.write_text("")
    for value in (str(tmp_path / "missing" / "flyctl"), str(not_exec)):
        with pytest.raises(InputError) as info:
            find_flyctl({"PATH": "", "PREVIEWCTL_FLYCTL": value})
        assert "PREVIEWCTL_FLYCTL" in str(info.value)
        assert value in str(info.value)
        assert info.value.exit_code == 2


def test_find_flyctl_prefers_flyctl_over_fly_on_path(tmp_path: Path) -> None:
    fly_only = make_executable(tmp_path / "a" / "fly")
    both = tmp_path / "b"
    flyctl = make_executable(both / "flyctl")
    make_executable(both / "fly")
    assert find_flyctl({"PATH": str(fly_only.parent)}) == str(fly_only)
    assert find_flyctl({"PATH": f"{fly_only.parent}{os.pathsep}{both}"}) == str(flyctl)


def test_find_flyctl_explains_how_to_install_when_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        find_flyctl({"PATH": str(tmp_path)})
    assert info.value.exit_code == 2
    assert "flyctl was not found" in str(info.value)
    assert info.value.hint is not None
    assert "PREVIEWCTL_FLYCTL" in info.value.hint


# ---- the environment flyctl gets ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "flaps"),
    [
        ({"FLY_API_BASE_URL": "http://machines"}, "http://machines"),
        ({"FLY_FLAPS_BASE_URL": "http://flaps"}, "http://flaps"),
        # previewctl's own choice (contract order) is what flyctl gets
        (
            {"FLY_API_BASE_URL": "http://machines", "FLY_FLAPS_BASE_URL": "http://x"},
            "http://machines",
        ),
        ({}, None),
    ],
)
def test_flyctl_never_gets_the_machines_url_as_its_graphql_base(
    given: dict[str, str], flaps: str | None
) -> None:
    """flyctl reads FLY_API_BASE_URL as its GraphQL base, FLY_FLAPS_BASE_URL as Machines."""
    env = flyctl_env({"PATH": "/bin", "FLY_API_TOKEN": "fm2_t", **given})
    assert "FLY_API_BASE_URL" not in env
    assert env.get("FLY_FLAPS_BASE_URL") == flaps
    assert (env["PATH"], env["FLY_API_TOKEN"]) == ("/bin", "fm2_t")


def test_the_tunnel_processes_get_that_environment(
    flyctl_path: Path, flyctl_log: Path, reporter: Reporter
) -> None:
    env = make_env(flyctl_log, FLY_API_BASE_URL="http://127.0.0.1:9")
    ts = TunnelSet([spec("db")], flyctl=str(flyctl_path), env=env, reporter=reporter)
    assert "FLY_API_BASE_URL" not in ts.env
    assert ts.env["FLY_FLAPS_BASE_URL"] == "http://127.0.0.1:9"
