"""A real, throw-away PostgreSQL server for tests, plus pytest fixtures.

:class:`PostgresServer` runs ``initdb`` in a fresh temporary directory (superuser
``postgres`` with a generated password; trust on the unix socket, scram-sha-256 over
TCP) and ``pg_ctl start`` on ``127.0.0.1`` on a free port, with durability switched off
for speed. Tests run as root here and PostgreSQL refuses to: as root, every server
command runs as the ``postgres`` system user (``runuser -u postgres --``), which owns
the temporary directory.

Fixtures (register this module with ``pytest_plugins``):

``postgres_server``
    session scope: one started :class:`PostgresServer` for the whole run.
``pg_database``
    function scope: a fresh database ``t_<hex>`` owned by a fresh login role
    ``appuser_<hex>`` with a random password, as :class:`PgDatabase`; dropped afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from tests.support.net import free_port

SERVER_USER = "postgres"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
MISSING_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package "
    "`postgresql` (apt-get install postgresql), or put its bin directory on PATH"
)
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "max_connections": "100",
}


@dataclass(frozen=True)
class PgBinaries:
    initdb: Path
    pg_ctl: Path


def _version_key(path: Path) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin -> (15,); non-numeric versions sort first."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (-1,)


def find_binaries() -> PgBinaries:
    """``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``, else PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates.extend(sorted(DEBIAN_PG_ROOT.glob("*/bin"), key=_version_key, reverse=True))
    for bindir in candidates:
        initdb, pg_ctl = bindir / "initdb", bindir / "pg_ctl"
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return PgBinaries(initdb, pg_ctl)
    initdb_path, pg_ctl_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb_path and pg_ctl_path:
        return PgBinaries(Path(initdb_path), Path(pg_ctl_path))
    raise RuntimeError(MISSING_HINT)


def _ensure_server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVER_USER,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return pwd.getpwnam(SERVER_USER)


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory.

    ``start()`` (initdb + start), ``start_delayed(seconds)`` (initdb now, start later in a
    thread; ``wait_started()`` joins it), ``stop()`` (idempotent, also run at exit).
    """

    host = "127.0.0.1"

    def __init__(self, *, port: int | None = None, superuser: str = "postgres") -> None:
        self.binaries = find_binaries()
        self.superuser = superuser
        self.superuser_password = secrets.token_urlsafe(24)
        self._fixed_port = port is not None
        self._port = port or free_port()
        self._as_root = os.geteuid() == 0
        self._owner: pwd.struct_passwd | None = _ensure_server_user() if self._as_root else None
        # As root, under /tmp: pytest's own temp dirs are 0700 root, closed to `postgres`.
        parent = "/tmp" if self._as_root and os.path.isdir("/tmp") else None
        self.base_dir = Path(tempfile.mkdtemp(prefix="previewctl-pg-", dir=parent))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir
        self.log_path = self.base_dir / "server.log"
        if self._owner is not None:
            os.chown(self.base_dir, self._owner.pw_uid, self._owner.pw_gid)
        self._initialized = False
        self._running = False
        self._stopped = False
        self._lock = threading.RLock()
        self._cancel = threading.Event()
        self._delayed: threading.Thread | None = None
        self._delayed_error: BaseException | None = None
        atexit.register(self.stop)

    # ---- properties ---------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._running

    def dsn(self, user: str, password: str, dbname: str) -> str:
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self._port}/{quote(dbname, safe='')}?sslmode=disable"
        )

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return self.dsn(self.superuser, self.superuser_password, dbname)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ---- lifecycle ----------------------------------------------------------------
    def _server_cmd(self, *args: str | Path) -> list[str]:
        cmd = [str(arg) for arg in args]
        return ["runuser", "-u", SERVER_USER, "--", *cmd] if self._as_root else cmd

    def _run(self, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._server_cmd(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.base_dir,  # the server user may not be able to enter our cwd
            check=False,
        )

    def init(self) -> None:
        """Run initdb (once)."""
        with self._lock:
            if self._initialized:
                return
            pwfile = self.base_dir / "pwfile"
            pwfile.write_text(self.superuser_password + "\n")
            pwfile.chmod(0o600)
            if self._owner is not None:
                os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
            try:
                result = self._run(
                    self.binaries.initdb,
                    "-D",
                    self.data_dir,
                    "-U",
                    self.superuser,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                )
            finally:
                pwfile.unlink(missing_ok=True)
            if result.returncode != 0:
                raise RuntimeError(
                    f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
                )
            self._initialized = True

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        options = [f"-k {shlex.quote(str(self.socket_dir))}", f"-p {self._port}"]
        options += [f"-c {key}={value}" for key, value in SERVER_SETTINGS.items()]
        return self._run(
            self.binaries.pg_ctl,
            "-D",
            self.data_dir,
            "-l",
            self.log_path,
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
            timeout=90,
        )

    def _start_now(self, *, may_change_port: bool) -> None:
        with self._lock:
            if self._stopped:
                raise RuntimeError("this PostgresServer was stopped; make a new one")
            if self._running:
                return
            self.init()
            attempts = 3 if may_change_port else 1
            for attempt in range(attempts):
                result = self._pg_ctl_start()
                if result.returncode == 0:
                    self._running = True
                    return
                if attempt + 1 < attempts and "could not bind" in self.log_text():
                    self._port = free_port()  # lost a race for the port: take another
                    continue
                break
            raise RuntimeError(
                f"pg_ctl start failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"--- server log ---\n{self.log_text()}"
            )

    def start(self) -> PostgresServer:
        """initdb if needed, start, wait until it accepts connections. Returns self."""
        self._start_now(may_change_port=not self._fixed_port)
        return self

    def start_delayed(self, seconds: float) -> PostgresServer:
        """initdb now; start after ``seconds`` in a background thread. ``port``/``dsn`` are
        final at once (the port is not reserved meanwhile). Returns self."""
        self.init()
        if self._delayed is not None:
            raise RuntimeError("start_delayed() already called")

        def later() -> None:
            if self._cancel.wait(seconds):
                return
            try:
                self._start_now(may_change_port=False)
            except BaseException as exc:
                self._delayed_error = exc

        self._delayed = threading.Thread(target=later, name="pg-start-delayed", daemon=True)
        self._delayed.start()
        return self

    def wait_started(self, timeout: float = 60) -> None:
        """Join a ``start_delayed`` thread; re-raise its failure."""
        if self._delayed is not None:
            self._delayed.join(timeout)
            if self._delayed.is_alive():
                raise TimeoutError(f"PostgreSQL did not start within {timeout} s")
            if self._delayed_error is not None:
                raise RuntimeError("delayed start failed") from self._delayed_error
        if not self._running:
            raise RuntimeError("PostgreSQL is not running")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory. Idempotent."""
        self._cancel.set()
        if self._delayed is not None and self._delayed is not threading.current_thread():
            self._delayed.join(90)
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            try:
                if self._running or (self.data_dir / "postmaster.pid").exists():
                    self._shutdown()
            finally:
                self._running = False
                shutil.rmtree(self.base_dir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def _shutdown(self) -> None:
        for mode in ("fast", "immediate"):
            try:
                result = self._run(
                    self.binaries.pg_ctl, "-D", self.data_dir, "-m", mode, "-w", "-t", "30", "stop"
                )
            except subprocess.TimeoutExpired:
                continue
            if result.returncode == 0 or "Is server running?" in result.stderr:
                return
        pidfile = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGKILL)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- administration -------------------------------------------------------------
    def admin_connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg connection as the superuser, over TCP, autocommit on."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self._port,
            "user": self.superuser,
            "password": self.superuser_password,
            "dbname": dbname,
            "sslmode": "disable",
            "connect_timeout": 10,
            "autocommit": True,
        }
        params.update(kwargs)
        return psycopg.connect(**params)

    def execute(self, query: sql.Composed, dbname: str = "postgres") -> None:
        """Run one statement as the superuser (autocommit)."""
        with self.admin_connect(dbname) as conn:
            conn.execute(query)

    def create_role(self, name: str, password: str) -> None:
        self.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )

    def create_database(self, name: str, owner: str) -> None:
        self.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)
            )
        )

    def drop_database(self, name: str) -> None:
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def drop_role(self, name: str) -> None:
        self.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@dataclass(frozen=True)
class PgDatabase:
    server: PostgresServer
    dbname: str
    user: str
    password: str
    dsn: str

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, connect_timeout=10, **kwargs)


def new_database(server: PostgresServer) -> PgDatabase:
    suffix = secrets.token_hex(4)
    user, dbname, password = f"appuser_{suffix}", f"t_{suffix}", secrets.token_urlsafe(18)
    server.create_role(user, password)
    server.create_database(dbname, user)
    return PgDatabase(server, dbname, user, password, server.dsn(user, password, dbname))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server, started once for the whole session."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_database(postgres_server: PostgresServer) -> Iterator[PgDatabase]:
    """A fresh database owned by a fresh password-authenticated role."""
    db = new_database(postgres_server)
    try:
        yield db
    finally:
        if postgres_server.running:
            with contextlib.suppress(psycopg.Error):
                postgres_server.drop_database(db.dbname)
                postgres_server.drop_role(db.user)


__all__ = [
    "PgBinaries",
    "PgDatabase",
    "PostgresServer",
    "find_binaries",
    "free_port",
    "new_database",
    "pg_database",
    "postgres_server",
]
