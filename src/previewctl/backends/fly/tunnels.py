"""``flyctl proxy`` tunnels, owned by this process.

The field report's tunnels were background jobs that died with the CI step that
started them, were waited for with ``sleep`` and cleaned up with
``pkill -f "flyctl proxy"``. Here every tunnel is a child process tracked by its PID,
started with ``--watch-stdin`` and a stdin pipe that stays open for as long as the
tunnel is needed (if previewctl dies, flyctl reads EOF and exits), waited for on its
ready line and always ended by :meth:`TunnelSet.close`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from previewctl import redact
from previewctl.backends.fly.settings import BASE_URL_ENV, machines_base_url
from previewctl.errors import InputError, TunnelError
from previewctl.process import Child, end_all
from previewctl.reporter import Reporter

FLYCTL_ENV = "PREVIEWCTL_FLYCTL"
LOCAL_HOST = "127.0.0.1"

# flyctl prints exactly "Proxying localhost:PORT to remote [HOST]:REMOTE" once the local
# listener is bound; it always says "localhost", with the real port when LOCAL was 0.
_READY_RE = re.compile(r"Proxying (?:localhost|127\.0\.0\.1|\[::1\]):(?P<port>\d+) to remote ")
_BIND_IN_USE_RE = re.compile(r"listen tcp \S*?:(?P<port>\d+): bind: address already in use")
_DNS_RE = re.compile(r"host was not found in DNS")

_STDERR_KEEP = 20
_TERM_GRACE = 3.0
# How long a failed start-up may take to finish writing its error before we report it.
_EXIT_SETTLE = 2.0
_INSTALL_HINT = (
    "install flyctl (https://fly.io/docs/flyctl/install/; in GitHub Actions "
    "superfly/flyctl-actions/setup-flyctl) or set PREVIEWCTL_FLYCTL to its path"
)


@dataclass(frozen=True)
class TunnelSpec:
    name: str  # the [tunnels.NAME] key
    app: str
    remote_host: str  # e.g. "<machine_id>.vm.<app>.internal"
    remote_port: int
    local_port: int  # 0 = any free port


@dataclass(frozen=True)
class Tunnel:
    spec: TunnelSpec
    host: str  # always 127.0.0.1: flyctl listens on the loopback interface
    port: int  # the real local port, read from the ready line
    pid: int

    @property
    def remote_port(self) -> int:
        return self.spec.remote_port


def find_flyctl(env: Mapping[str, str]) -> str:
    """The flyctl executable: ``PREVIEWCTL_FLYCTL``, else ``flyctl``, else ``fly`` on PATH."""
    search_path = env.get("PATH", os.defpath)
    configured = env.get(FLYCTL_ENV, "").strip()
    if configured:
        if os.sep in configured:
            if os.path.isfile(configured) and os.access(configured, os.X_OK):
                return configured
            found = None
        else:
            found = shutil.which(configured, path=search_path)
        if found is None:
            raise InputError(
                f"{FLYCTL_ENV}={configured} is not an executable file",
                hint=f"point {FLYCTL_ENV} at the flyctl binary, or unset it to use flyctl on PATH",
            )
        return found
    for name in ("flyctl", "fly"):
        found = shutil.which(name, path=search_path)
        if found is not None:
            return found
    raise InputError("flyctl was not found on PATH (tried flyctl and fly)", hint=_INSTALL_HINT)


def flyctl_env(env: Mapping[str, str]) -> dict[str, str]:
    """previewctl's environment as flyctl must see it.

    flyctl reads ``FLY_API_BASE_URL`` as its GraphQL base (``https://api.fly.io``) and
    ``FLY_FLAPS_BASE_URL`` as the Machines API: previewctl's Machines URL goes to flyctl
    under the second name only, and never under the first.
    """
    out = {k: v for k, v in env.items() if k not in BASE_URL_ENV}
    if any((env.get(name) or "").strip() for name in BASE_URL_ENV):
        out["FLY_FLAPS_BASE_URL"] = machines_base_url(env)
    return out


@dataclass(eq=False)
class _Proc:
    """One ``flyctl proxy`` child and what its output readers have seen."""

    spec: TunnelSpec
    child: Child | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_KEEP))
    stdout_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_KEEP))
    port: int | None = None
    stdout_closed: bool = False

    @property
    def proc(self) -> Child:
        assert self.child is not None
        return self.child

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self) -> str:
        lines = list(self.stderr_tail) or list(self.stdout_tail)
        return redact.scrub("\n".join(line.rstrip() for line in lines if line.strip()))


class TunnelSet:
    """One ``flyctl proxy LOCAL:REMOTE HOST -a APP --watch-stdin`` process per spec.

    A context manager: ``__enter__`` starts them all at once and returns when every
    one has printed its ready line (or raises :class:`TunnelError` after closing the
    others); ``__exit__`` ends every process it started, by PID.
    """

    def __init__(
        self,
        specs: Sequence[TunnelSpec],
        *,
        flyctl: str,
        env: Mapping[str, str],
        reporter: Reporter,
        start_timeout: float = 90.0,
    ) -> None:
        names = [spec.name for spec in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(f"duplicate tunnel names: {', '.join(duplicates)}")
        self.specs = list(specs)
        self.flyctl = flyctl
        self.env = flyctl_env(env)
        self.reporter = reporter
        self.start_timeout = start_timeout
        self.tunnels: dict[str, Tunnel] = {}
        self._procs: list[_Proc] = []
        self._started_pids: list[int] = []
        self._changed = threading.Condition()
        self._close_lock = threading.Lock()

    # ---- public --------------------------------------------------------------------
    @property
    def pids(self) -> tuple[int, ...]:
        """Every PID this set has started (also those already ended)."""
        return tuple(self._started_pids)

    def argv(self, spec: TunnelSpec) -> list[str]:
        return [
            self.flyctl,
            "proxy",
            f"{spec.local_port}:{spec.remote_port}",
            spec.remote_host,
            "-a",
            spec.app,
            "--watch-stdin",
        ]

    def __enter__(self) -> TunnelSet:
        try:
            self._start_all()
            self._wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def check_alive(self) -> None:
        """Raise :class:`TunnelError` if any tunnel process has exited."""
        for proc in list(self._procs):
            code = proc.proc.poll()
            if code is None:
                continue
            proc.proc.join_readers(0.5)
            where = f" (localhost:{proc.port})" if proc.port is not None else ""
            detail = proc.tail()
            raise TunnelError(
                f"tunnel {proc.spec.name}{where} ended unexpectedly (flyctl exit code {code})"
                + (f":\n{detail}" if detail else ""),
                hint="the machine may have stopped or restarted; run `previewctl status`",
            )

    def hold(self) -> None:
        """Block until a tunnel process ends (Ctrl-C ends the wait), then report it.

        Waits on the readers' end-of-output events: no polling.
        """
        with self._changed:
            while not any(proc.stdout_closed for proc in self._procs):
                self._changed.wait()
        for proc in self._procs:
            if proc.stdout_closed:
                proc.proc.wait(_EXIT_SETTLE)
        self.check_alive()
        raise TunnelError("a tunnel closed its output but is still running")

    def close(self) -> None:
        """End every process this set started. Idempotent; safe in a ``finally``."""
        with self._close_lock:
            procs, self._procs = self._procs, []
            if not procs:
                return
            # Closing stdin ends flyctl (--watch-stdin); SIGTERM and SIGKILL follow it.
            end_all([p.proc for p in procs], _TERM_GRACE)
            self.reporter.detail(f"closed {len(procs)} tunnel(s)")

    # ---- start-up ------------------------------------------------------------------
    def _start_all(self) -> None:
        for spec in self.specs:
            argv = self.argv(spec)
            self.reporter.detail(f"tunnel {spec.name}: {' '.join(argv)}")
            proc = _Proc(spec=spec)
            try:
                # stdin stays open: --watch-stdin exits on its EOF, also when we die. The
                # watchdog guards it too: a wrapper script on PREVIEWCTL_FLYCTL may not
                # watch its stdin, nor end on SIGTERM.
                proc.child = Child.start(
                    argv,
                    name=f"tunnel-{spec.name}",
                    env=self.env,
                    keep_stdin=True,
                    on_stdout=functools.partial(self._read_stdout, proc),
                    on_stdout_eof=functools.partial(self._stdout_closed, proc),
                    on_stderr=proc.stderr_tail.append,
                )
            except OSError as exc:
                raise TunnelError(
                    f"tunnel {spec.name}: cannot run {self.flyctl}: {exc.strerror or exc}",
                    hint=_INSTALL_HINT,
                ) from exc
            self._procs.append(proc)
            self._started_pids.append(proc.pid)

    def _read_stdout(self, proc: _Proc, line: str) -> None:
        proc.stdout_tail.append(line)
        if proc.port is None:
            match = _READY_RE.search(line)
            if match:
                with self._changed:
                    proc.port = int(match["port"])
                    self._changed.notify_all()

    def _stdout_closed(self, proc: _Proc) -> None:
        with self._changed:
            proc.stdout_closed = True
            self._changed.notify_all()

    def _wait_ready(self) -> None:
        if not self._procs:
            return
        started = time.monotonic()
        deadline = started + self.start_timeout
        label = f"opening {len(self._procs)} tunnel(s) with flyctl proxy"
        with self.reporter.waiting(label) as update:
            while True:
                with self._changed:
                    # stdout closes when the process ends: before or after its ready line,
                    # it is gone either way.
                    failed = [p for p in self._procs if p.stdout_closed]
                    pending = [p for p in self._procs if p.port is None and not p.stdout_closed]
                    if not failed and pending:
                        remaining = deadline - time.monotonic()
                        if remaining > 0:
                            # An event wait: woken by a ready line or a process ending;
                            # the 1 s bound only refreshes the progress text.
                            self._changed.wait(min(remaining, 1.0))
                            names = ", ".join(p.spec.name for p in pending)
                            update(f"waiting for {names}")
                            continue
                if failed:
                    raise self._start_failure(failed[0])
                if pending:
                    raise self._start_timeout(pending[0], time.monotonic() - started)
                break
        for proc in self._procs:
            assert proc.port is not None
            self.tunnels[proc.spec.name] = Tunnel(
                spec=proc.spec, host=LOCAL_HOST, port=proc.port, pid=proc.pid
            )
            self.reporter.detail(  # the caller says one line per tunnel once it is ready
                f"tunnel {proc.spec.name}: {LOCAL_HOST}:{proc.port} → "
                f"{proc.spec.remote_host}:{proc.spec.remote_port}"
            )

    def _start_failure(self, proc: _Proc) -> TunnelError:
        proc.proc.wait(_EXIT_SETTLE)
        proc.proc.join_readers(_EXIT_SETTLE)
        name = proc.spec.name
        stderr = "\n".join(proc.stderr_tail)
        in_use = _BIND_IN_USE_RE.search(stderr)
        if in_use:
            port = in_use["port"]
            return TunnelError(
                f"tunnel {name}: local port {port} is already in use "
                f"(set [tunnels.{name}] local_port = 0 for any free port, or free the port)"
            )
        code = proc.proc.returncode
        detail = proc.tail()
        hint = None
        if _DNS_RE.search(stderr):
            hint = "the machine is not started (a stopped machine is not in Fly's private DNS)"
        status = f"exit code {code}" if code is not None else "closed its output"
        when = "before it was ready" if proc.port is None else "while the others started"
        return TunnelError(
            f"tunnel {name}: flyctl proxy failed {when} ({status})"
            + (f":\n{detail}" if detail else ""),
            hint=hint,
        )

    def _start_timeout(self, proc: _Proc, waited: float) -> TunnelError:
        detail = proc.tail()
        return TunnelError(
            f"tunnel {proc.spec.name}: flyctl proxy did not report ready within {waited:.0f}s"
            + (f"; its last output:\n{detail}" if detail else ""),
            hint="check that the app's machine is started and reachable",
        )
