"""The real-PostgreSQL fixtures: password auth over TCP, fresh databases, late start."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psycopg
import pytest

if TYPE_CHECKING:
    from tests.fakes.postgres import PgDatabase, PostgresServer

# Imported by pytest itself (so with assertion rewriting) rather than from this module.
pytest_plugins = ["tests.fakes.postgres"]


def test_dsn_shape(pg_database: PgDatabase) -> None:
    url = urlsplit(pg_database.dsn)
    assert url.scheme == "postgresql"
    assert url.hostname == "127.0.0.1"
    assert url.port == pg_database.server.port
    assert url.username == pg_database.user
    assert url.path == f"/{pg_database.dbname}"
    assert url.query == "sslmode=disable"
    assert pg_database.user.startswith("appuser_")
    assert pg_database.dbname.startswith("t_")


def test_database_is_owned_by_its_role(pg_database: PgDatabase) -> None:
    with psycopg.connect(pg_database.dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (
            pg_database.user,
            pg_database.dbname,
        )
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row == (False,)


def test_tcp_needs_the_password(pg_database: PgDatabase) -> None:
    wrong = pg_database.server.dsn(pg_database.user, "not-the-password", pg_database.dbname)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)


def test_each_test_gets_a_fresh_database(
    pg_database: PgDatabase, postgres_server: PostgresServer
) -> None:
    from tests.fakes.postgres import new_database

    other = new_database(postgres_server)
    try:
        assert other.dbname != pg_database.dbname
        assert other.user != pg_database.user
        with psycopg.connect(other.dsn, connect_timeout=5) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
            assert tables == (0,)
    finally:
        postgres_server.drop_database(other.dbname)
        postgres_server.drop_role(other.user)
    with postgres_server.admin_connect() as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (other.dbname,)
        ).fetchone()
        assert left == (0,)


def test_server_settings(postgres_server: PostgresServer) -> None:
    with postgres_server.admin_connect() as admin:
        assert admin.execute("SHOW fsync").fetchone() == ("off",)
        assert admin.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert admin.execute("SHOW port").fetchone() == (str(postgres_server.port),)
        assert admin.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
    assert (postgres_server.socket_dir / f".s.PGSQL.{postgres_server.port}").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to hand the server over")
def test_as_root_the_server_runs_as_postgres(postgres_server: PostgresServer) -> None:
    pid = int((postgres_server.data_dir / "postmaster.pid").read_text().splitlines()[0])
    owner = Path(f"/proc/{pid}").stat().st_uid
    assert owner == pwd.getpwnam("postgres").pw_uid
    assert postgres_server.base_dir.stat().st_uid == owner


def test_start_delayed_and_stop() -> None:
    from tests.fakes.postgres import PostgresServer

    server = PostgresServer()
    try:
        server.start_delayed(0.5)
        assert (server.data_dir / "PG_VERSION").exists()  # initdb ran already
        with pytest.raises(psycopg.OperationalError):
            server.admin_connect(connect_timeout=2)
        server.wait_started(timeout=30)
        with server.admin_connect() as admin:
            assert admin.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert not server.running
    assert not server.base_dir.exists()
    server.stop()  # idempotent
    with pytest.raises(psycopg.OperationalError):
        server.admin_connect(connect_timeout=2)


def test_stop_cancels_a_pending_delayed_start() -> None:
    from tests.fakes.postgres import PostgresServer

    server = PostgresServer().start_delayed(60)
    server.stop()
    assert not server.running
    assert not server.base_dir.exists()


def test_missing_binaries_name_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.fakes import postgres

    monkeypatch.setattr("shutil.which", lambda *_args, **_kw: None)
    monkeypatch.setattr(postgres, "DEBIAN_PG_ROOT", tmp_path / "nothing")
    with pytest.raises(RuntimeError, match="Debian package `postgresql`"):
        postgres.find_binaries()
