"""Readiness checks through the tunnels, instead of ``sleep 30``.

A tunnel's ready line only means it is listening locally: the remote is dialled
per connection. So readiness is a real probe through the tunnel - libpq's ``PQping``
decision for Postgres-compatible servers (Postgres, Doltgres), a TCP connection that
the far end keeps open for anything else - repeated with a short exponential backoff
until a deadline. A postgres probe with a ``login`` logs in to the database the steps
use instead of pinging: a server can answer before that database exists.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from previewctl import redact
from previewctl.errors import TimeoutExceededError
from previewctl.reporter import Reporter
from previewctl.retry import Backoff, NotYet, Retry

_BACKOFF_START = 0.05
# Probes are cheap local connects: a low cap keeps the lag after "ready" short.
_BACKOFF_MAX = 0.2
_PROBE_TIMEOUT_MAX = 5.0
_PROTOCOL_3_0 = 196608
_CANNOT_CONNECT_NOW = "57P03"
_CLOSED_AT_ONCE = (
    "no response: the connection was accepted, then closed (a tunnel does this while "
    "nothing listens on the remote port)"
)
_MAX_ERROR_LEN = 30000  # libpq's bound on a pre-authentication error message
# A tunnel accepts locally and then dials the remote; when that dial fails it closes
# the connection at once. A connection still open after this long reached something.
_TCP_SETTLE = 0.3


class Ping(IntEnum):
    """libpq's PGPing values (``psycopg.Ping`` has the same; importing psycopg
    only for them would cost every run ~60 ms)."""

    OK = 0
    REJECT = 1
    NO_RESPONSE = 2
    NO_ATTEMPT = 3


class ProbeKind(StrEnum):
    POSTGRES = "postgres"
    TCP = "tcp"
    NONE = "none"


@dataclass(frozen=True)
class PgLogin:
    """Rendered credentials: a postgres probe with them logs in, not only pings."""

    user: str
    password: str
    database: str

    def __repr__(self) -> str:
        return f"PgLogin(user={self.user!r}, password='***', database={self.database!r})"


@dataclass(frozen=True)
class ProbeTarget:
    """One thing to wait for: a tunnel's local end and how to check it."""

    name: str
    kind: ProbeKind
    host: str
    port: int
    login: PgLogin | None = None


def _tcp_probe(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return False, f"TCP connect to {host}:{port} failed: {reason}"
    with sock:
        sock.settimeout(min(_TCP_SETTLE, timeout))
        try:
            data = sock.recv(1)
        except TimeoutError:
            return True, "TCP connection open"
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            return False, f"TCP connection reset by the far end: {reason}"
        if data:
            return True, "TCP connection open (the server spoke first)"
        return False, "TCP connection closed at once by the far end (remote not listening?)"


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes, or None when the peer closes first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _error_fields(body: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse body: {"C": sqlstate, "M": message, ...}."""
    fields: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", errors="replace")
    return fields


def pg_ping(host: str, port: int, timeout: float) -> tuple[Ping, str]:
    """libpq's ``PQping`` decision, done on the wire (plain TCP, no TLS, no credentials).

    Why not ``psycopg.pq.PGconn.ping``: psycopg's C wrapper calls ``PQping`` without
    releasing the GIL, so one ping through a slow tunnel froze every other thread
    (the other probes, the tunnel readers, Ctrl-C) for up to its connect timeout.

    Sends a protocol 3.0 StartupMessage and reads the first answer, deciding as
    libpq's ``internal_ping`` does: an authentication request, or any error with a
    SQLSTATE except 57P03, means the server is up (OK); 57P03 "cannot connect now"
    (starting up, shutting down, recovering) is REJECT; no answer is NO_RESPONSE.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return Ping.NO_RESPONSE, (
            f"no response: nothing accepts connections on {host}:{port} ({reason})"
        )
    with sock:
        try:
            params = b"user\0previewctl\0database\0postgres\0application_name\0previewctl-probe\0\0"
            sock.sendall(struct.pack("!II", 8 + len(params), _PROTOCOL_3_0) + params)
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                header = _recv_exactly(sock, 5)
                if header is None:
                    return Ping.NO_RESPONSE, _CLOSED_AT_ONCE
                kind, length = header[:1], struct.unpack("!I", header[1:])[0]
                if kind in (b"R", b"v"):  # an authentication request / protocol negotiation
                    return Ping.OK, "accepting connections"
                if kind == b"E" and 4 < length <= _MAX_ERROR_LEN:
                    body = _recv_exactly(sock, length - 4) or b""
                    fields = _error_fields(body)
                    sqlstate, message = fields.get("C", ""), fields.get("M", "")
                    if sqlstate == _CANNOT_CONNECT_NOW:
                        return Ping.REJECT, (
                            "server is up but rejecting connections "
                            + (f"({message})" if message else "(starting up?)")
                        )
                    if len(sqlstate) == 5:
                        return Ping.OK, "accepting connections"
                    return Ping.NO_RESPONSE, f"unexpected error reply: {message or body!r}"
                if kind == b"N" and 4 < length <= _MAX_ERROR_LEN:  # a notice: read on
                    _recv_exactly(sock, length - 4)
                    continue
                return Ping.NO_RESPONSE, (
                    f"unexpected reply {kind!r} (is a PostgreSQL server on the remote port?)"
                )
        except TimeoutError:
            return Ping.NO_RESPONSE, f"no response within {timeout:.1f}s"
        except (ConnectionResetError, BrokenPipeError):
            return Ping.NO_RESPONSE, _CLOSED_AT_ONCE
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            return Ping.NO_RESPONSE, f"connection failed: {reason}"


def _postgres_probe(host: str, port: int, timeout: float) -> tuple[bool, str]:
    result, seen = pg_ping(host, port, timeout)
    return result == Ping.OK, seen


def pg_login(host: str, port: int, login: PgLogin, timeout: float) -> tuple[bool, str]:
    """Log in to ``login.database`` and run ``SELECT 1``: proof that the database the
    steps use exists and takes these credentials (Doltgres answers a ping before it
    has created its database). psycopg waits for the server with the GIL released."""
    import psycopg  # ~60 ms: only for probes that log in

    try:
        with psycopg.connect(
            host=host,
            port=port,
            user=login.user,
            password=login.password,
            dbname=login.database,
            sslmode="disable",  # a tunnel: plain TCP to the machine's private network
            connect_timeout=max(2, round(timeout)),  # libpq's minimum is 2 s
            application_name="previewctl-probe",
            autocommit=True,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        return False, redact.scrub(f"login to {login.database} as {login.user} failed: {reason}")
    return True, f"database {login.database} accepts a login"


def probe_once(
    kind: ProbeKind, host: str, port: int, timeout: float, login: PgLogin | None = None
) -> tuple[bool, str]:
    """Check once. Returns (ready, what was seen)."""
    if kind is ProbeKind.NONE:
        return True, "no check configured"
    if kind is ProbeKind.POSTGRES:
        if login is not None:
            return pg_login(host, port, login, timeout)
        return _postgres_probe(host, port, timeout)
    return _tcp_probe(host, port, timeout)


def _describe(describe_remote: Callable[[], str] | None) -> str:
    if describe_remote is None:
        return ""
    try:
        text = describe_remote()
    except Exception as exc:  # the message must not be lost to a failing description
        return f"\n(could not describe the machine: {exc})"
    return f"\n{text}" if text else ""


DEFAULT_HINT = "check the service's logs; raise the timeout if it is slow"


@dataclass(frozen=True)
class _Wait:
    """How one probe waits: until when, what it tells, what it checks each round."""

    deadline: float
    reporter: Reporter
    describe_remote: Callable[[], str] | None = None
    alive_check: Callable[[], None] | None = None
    cancel: threading.Event | None = None
    hint: str = DEFAULT_HINT


def _wait_loop(target: ProbeTarget, how: _Wait, update: Callable[[str], None]) -> None:
    name, kind, port = target.name, target.kind, target.port
    started = time.monotonic()
    sleeper = how.cancel or threading.Event()

    def probe() -> None:
        if how.cancel is not None and how.cancel.is_set():
            return
        if how.alive_check is not None:
            how.alive_check()
        timeout = min(max(how.deadline - time.monotonic(), _BACKOFF_START), _PROBE_TIMEOUT_MAX)
        ready, seen = probe_once(kind, target.host, port, timeout, target.login)
        if not ready:
            update(seen)
            raise NotYet(seen)
        shown = f"{kind} ({seen})" if target.login is not None else str(kind)
        how.reporter.detail(f"tunnel {name}: {shown} ready on localhost:{port}")  # said by session

    def timed_out(last: BaseException) -> TimeoutExceededError:
        waited = time.monotonic() - started
        return TimeoutExceededError(
            redact.scrub(
                f"tunnel {name} (localhost:{port}): {kind} not ready after {waited:.0f}s; "
                f"last seen: {last}"
            )
            + redact.scrub(_describe(how.describe_remote)),
            hint=how.hint,
        )

    # The waits are on the cancel event, so wait_all can stop the others at once.
    retry = Retry(Backoff(_BACKOFF_START, _BACKOFF_MAX), sleep=sleeper.wait)
    retry.poll(probe, deadline=how.deadline, timeout=timed_out)


class _Together:
    """The probes of :func:`wait_all`: one wait display, one description at most, and
    the first failure, which stops the others."""

    def __init__(self, active: Sequence[ProbeTarget], how: _Wait) -> None:
        self.lock = threading.Lock()
        self.states = {t.name: "starting" for t in active}
        self.errors: list[BaseException] = []
        self._how = how
        self._described: list[str] = []

    def _describe_once(self) -> str:
        with self.lock:
            if not self._described and self._how.describe_remote is not None:
                self._described.append(self._how.describe_remote())
        return self._described[0] if self._described else ""

    def run(self, target: ProbeTarget, update: Callable[[str], None]) -> None:
        def progress(text: str) -> None:
            with self.lock:
                self.states[target.name] = text
                summary = "; ".join(f"{n}: {s}" for n, s in self.states.items())
            update(summary)

        how = self._how
        describe = self._describe_once if how.describe_remote is not None else None
        try:
            _wait_loop(target, dataclasses.replace(how, describe_remote=describe), progress)
        except BaseException as exc:  # carried to the calling thread
            with self.lock:
                self.errors.append(exc)
            if how.cancel is not None:
                how.cancel.set()
            return
        with self.lock:
            self.states[target.name] = "ready"


def wait_all(
    targets: Sequence[ProbeTarget],
    *,
    deadline: float,
    reporter: Reporter,
    describe_remote: Callable[[], str] | None = None,
    alive_check: Callable[[], None] | None = None,
    hint: str = DEFAULT_HINT,
) -> None:
    """Probe all targets concurrently (one thread each) until all are ready.

    The first failure stops the others (they end at their next round); it is raised
    once every thread has finished. ``describe_remote`` is called at most once.
    """
    active = [t for t in targets if t.kind is not ProbeKind.NONE]
    if not active:
        if alive_check is not None:
            alive_check()
        return
    cancel = threading.Event()
    how = _Wait(deadline, reporter, describe_remote, alive_check, cancel, hint)
    together = _Together(active, how)
    with reporter.waiting(f"waiting for {len(active)} tunnel(s) to be ready") as update:
        threads = [
            threading.Thread(
                target=together.run, args=(t, update), name=f"probe-{t.name}", daemon=True
            )
            for t in active
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        finally:
            # On Ctrl-C in the main thread the probers stop at their next round.
            cancel.set()
    if together.errors:
        raise together.errors[0]
    reporter.detail(f"all {len(active)} tunnel(s) ready")
