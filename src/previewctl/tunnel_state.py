"""Which local ports the running ``previewctl tunnel``/``resume`` processes listen on.

``env`` must print only ports where a tunnel really listens; with ``local_port = 0``
that port is chosen when the tunnel opens, so the process holding the tunnels writes a
small file (``tunnels-APP-PID.json`` in ``$XDG_STATE_HOME/previewctl``, else
``~/.local/state/previewctl``) once they are open, and removes it when it ends. A file
whose process is gone (killed with SIGKILL) is stale: ignored, and removed when seen. A
file is believed only when it is this user's regular file (no symlink), names the app
and the PR, and every port in it accepts connections now (the PID of a killed tunnel is
soon another process's). The file holds no secret: names, ports, the app, the PR and
the PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
_PROBE_TIMEOUT = 1.0


def state_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if base.startswith("/") else Path(env.get("HOME") or "~") / ".local/state"
    return root.expanduser() / "previewctl"


@dataclass(frozen=True)
class LiveTunnels:
    app: str
    pr: int
    pid: int
    machine: str
    started_at: str
    ports: dict[str, int]  # tunnel name -> local port on 127.0.0.1
    path: Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process with that PID: not ours, but alive
    return True


def _listening(port: int) -> bool:
    """Something accepts connections on the loopback port now (a tunnel's listener).

    A live PID alone proves nothing: a tunnel killed with SIGKILL leaves its file, and
    its PID is reused by whatever starts next.
    """
    try:
        with socket.create_connection((LOOPBACK, port), timeout=_PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"not a TCP port: {value!r}")
    return value


def _own_file(path: Path) -> bool:
    """A regular file of this user: never a symlink to, nor a file by, someone else."""
    try:
        info = path.lstat()
    except OSError:
        return False
    owner = getattr(os, "getuid", None)
    return stat.S_ISREG(info.st_mode) and (owner is None or info.st_uid == owner())


def _read(path: Path) -> LiveTunnels | None:
    if not _own_file(path):
        return None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return LiveTunnels(
            app=str(data["app"]),
            pr=int(data["pr"]),
            pid=int(data["pid"]),
            machine=str(data.get("machine") or ""),
            started_at=str(data.get("started_at") or ""),
            ports={str(k): _port(v) for k, v in dict(data["ports"]).items()},
            path=path,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_live(
    env: Mapping[str, str], app: str, pr: int, machine: str | None = None
) -> LiveTunnels | None:
    """The newest running tunnel process of ``app`` (PR ``pr``; to ``machine`` when given:
    a tunnel goes to one machine) whose every port listens; files whose process is gone
    are removed."""
    found: list[LiveTunnels] = []
    for path in state_dir(env).glob(f"tunnels-{app}-*.json"):
        live = _read(path)
        if live is None or live.app != app or live.pr != pr:
            continue
        if machine is not None and live.machine != machine:
            continue
        if not _alive(live.pid):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if all(_listening(port) for port in live.ports.values()):
            found.append(live)
    return max(found, key=lambda t: t.started_at) if found else None


@contextlib.contextmanager
def published(
    env: Mapping[str, str],
    app: str,
    pr: int,
    machine: str,
    ports: Mapping[str, int],
    *,
    warn: Callable[[str], None],
) -> Iterator[Path | None]:
    """Announce this process's open tunnels for as long as the block runs.

    The file is a convenience for `env`: when it cannot be written (the directory cannot
    be made, a full disk), ``warn`` says so and the tunnels hold all the same.
    """
    path: Path | None = None
    try:
        path = _write(env, app, pr, machine, ports)
    except OSError as exc:
        warn(
            f"cannot write the tunnel state file in {state_dir(env)} ({exc.strerror or exc}): "
            "`previewctl env` will not find these tunnels' ports"
        )
    try:
        yield path
    finally:
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def _write(
    env: Mapping[str, str], app: str, pr: int, machine: str, ports: Mapping[str, int]
) -> Path:
    directory = state_dir(env)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"tunnels-{app}-{os.getpid()}.json"
    body = {
        "app": app,
        "pr": pr,
        "pid": os.getpid(),
        "machine": machine,
        "started_at": datetime.now(UTC).isoformat(),
        "ports": dict(ports),
    }
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tunnels-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh)
        os.replace(tmp, path)  # whole or not at all: a reader never sees half a file
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
