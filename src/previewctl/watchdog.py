"""Nothing previewctl starts outlives it, even when previewctl is killed with SIGKILL.

A step runs in its own session and process group, so that a timeout or Ctrl-C ends the
whole tree it starts (``pnpm`` -> ``node`` -> ...). Such a group does not die with its
parent, and a SIGKILLed previewctl runs no ``finally``. A parent-death signal (Linux's
PR_SET_PDEATHSIG, set in the child) would reach only the group's leader, not the
children, and exists only on Linux; no library does better without cgroups. So
previewctl starts one small watchdog process that holds the read end of a pipe only
previewctl writes to. previewctl tells it which steps to guard, by a random tag each
step carries in its environment, before the step's fork (``+TAG``), then with the step's
group (``+TAG PGID``), and which have ended (``-TAG``). When the pipe closes - previewctl
exited or died, however - the watchdog ends every step still guarded: SIGTERM, a grace
period, SIGKILL. On Linux it
also reaches the processes of the group's session that moved to a process group of
their own. Tunnels are guarded the same way (they exit when their stdin closes, but a
wrapper script around the tunnel tool may not watch its stdin, nor end on SIGTERM).

The watchdog has its own session (terminal signals pass it by) and imports nothing but
the standard library: run as a script (``python -I -S watchdog.py``) it starts in a few
milliseconds. Imported, this module is the client side (:func:`guard`, :func:`release`).
A process that starts a session of its own (a daemon: setsid, fork) leaves the group and
the session; it keeps the environment, which carries the step's own random tag
(``PREVIEWCTL_CHILD_TAG``): on Linux, what carries it is ended with the step too. Only a
process that also drops that variable (``env -i``) escapes.

Between the fork of a child and its registration here there is a moment in which an
interrupt (Ctrl-C, SIGTERM, SIGHUP) would unwind previewctl past a child that nobody
ends: :class:`HeldInterrupts` holds such a signal until the child is registered, and
then lets it take effect where the child's cleanup is sure to run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

GRACE = 3.0
_POLL = 0.05
# Every step runs with TAG_ENV set to a tag of its own: what inherited it is the step's.
TAG_ENV = "PREVIEWCTL_CHILD_TAG"


def new_tag() -> str:
    return os.urandom(8).hex()


# ---- ending a group (shared by the watchdog and previewctl's own cleanup) -----------------


def _strays(sid: int | None, tag: str | None) -> list[int]:
    """Live PIDs of the session ``sid`` outside its first process group, and those whose
    environment carries the step's ``tag`` (a daemon that left the session, re-parented
    anywhere, still has it). Linux ``/proc``; zombies are skipped: they are gone."""
    needle = f"{TAG_ENV}={tag}".encode() if tag else None
    strays: list[int] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp session ...; comm may hold spaces and parens
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) < 4 or fields[0] in ("Z", "X"):
                continue
            in_session = sid is not None and int(fields[3]) == sid and int(fields[2]) != sid
            if in_session or (needle is not None and _carries(entry.path, needle)):
                strays.append(int(entry.name))
    return strays


def _carries(proc_dir: str, needle: bytes) -> bool:
    try:
        return needle in Path(proc_dir, "environ").read_bytes().split(b"\0")
    except OSError:  # another user's process, or gone
        return False


def signal_tree(pgid: int | None, sig: int, tag: str | None = None) -> bool:
    """Signal the group ``pgid``, its session's strays and the processes carrying ``tag``;
    False when none is left. (No ``pgid`` yet: what carries ``tag`` only.)

    ``pgid`` is a leader started with ``start_new_session``: its PID, process group and
    session id are one number, which the kernel does not reuse while any of them is in use.
    """
    alive = pgid is not None
    if pgid is not None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            alive = False
        except PermissionError:
            pass
    for pid in _strays(pgid, tag):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            alive = True
    return alive


def end_trees(trees: dict[str, int | None], grace: float = GRACE) -> None:
    """SIGTERM every tree (tag -> group), wait up to ``grace`` for them to go, SIGKILL
    what is left. A tree without a group yet may still be starting: it is looked for
    until the grace ends."""
    left = {t: p for t, p in trees.items() if signal_tree(p, signal.SIGTERM, t) or p is None}
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        time.sleep(_POLL)  # not our children: there is nothing to wait on but their absence
        for tag, pgid in list(left.items()):
            if pgid is None:
                signal_tree(None, signal.SIGTERM, tag)  # it may have exec'd only now
            elif not signal_tree(pgid, 0, tag):
                del left[tag]
    for tag, pgid in left.items():
        signal_tree(pgid, signal.SIGKILL, tag)


# ---- the watchdog process -----------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:  # noqa: ARG001
    raise _Stop


def main() -> None:
    """Read ``+TAG [PGID]`` / ``-TAG`` lines until EOF (or SIGTERM); then end what is
    guarded."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    guarded: dict[str, int | None] = {}
    try:
        for raw in sys.stdin.buffer:
            head, _, pgid = raw.decode("ascii", "replace").strip().partition(" ")
            tag = head[1:]
            if not tag.isalnum() or (pgid and not pgid.isdigit()):
                continue
            if head[:1] == "+":
                guarded[tag] = int(pgid) if pgid else None
            elif head[:1] == "-":
                guarded.pop(tag, None)
    except (_Stop, OSError):
        pass
    end_trees(guarded)


# ---- the client, in previewctl ------------------------------------------------------------

INTERRUPTS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class HeldInterrupts:
    """Hold SIGINT, SIGTERM and SIGHUP from ``__enter__`` until :meth:`release` (or the
    block's end); then the first one held is raised again, through the handlers that
    were in place (previewctl's: KeyboardInterrupt). Only the main thread can do this;
    elsewhere it does nothing (Python runs signal handlers in the main thread only).

    Start a child inside the block and call :meth:`release` inside the ``try`` whose
    ``finally`` ends it: an interrupt can no longer come between the two.
    """

    def __init__(self) -> None:
        self._saved: dict[int, Any] = {}
        self._held: list[int] = []

    def _hold(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        self._held.append(signum)

    def __enter__(self) -> HeldInterrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in INTERRUPTS:
                self._saved[sig] = signal.signal(sig, self._hold)
        return self

    def release(self) -> None:
        """Put the handlers back, and deliver the first held signal to them. Idempotent."""
        saved, self._saved = self._saved, {}
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        held, self._held = self._held, []
        if held:
            signal.raise_signal(held[0])

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Watchdog:
    """previewctl's end of the pipe; the watchdog process is started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._failed = False

    def _start(self) -> None:
        if not sys.executable:
            self._failed = True  # an embedded interpreter: the cleanup in-process remains
            return
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(Path(__file__).resolve())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
            )
        except OSError:
            self._failed = True
            return
        atexit.register(self.close)

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None and not self._failed:
                self._start()
            if self._proc is None or self._proc.stdin is None:
                return
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except (OSError, ValueError):
                self._failed = True

    def guard(self, tag: str, pgid: int | None = None) -> None:
        """From now on, what carries ``tag`` (see :func:`new_tag`) - and the group
        ``pgid`` once given - is ended if previewctl dies before :meth:`release`. Guard
        the tag before the fork: then no instant is left unguarded."""
        self._send(f"+{tag} {pgid}\n" if pgid is not None else f"+{tag}\n")

    def release(self, tag: str) -> None:
        """The tree of ``tag`` has been ended (call it before reaping its leader)."""
        self._send(f"-{tag}\n")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        """Close the pipe: the watchdog ends what is still guarded and exits."""
        with self._lock:
            if self._proc is not None and self._proc.stdin is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._proc.stdin.close()


_watchdog = Watchdog()
guard = _watchdog.guard
release = _watchdog.release


if __name__ == "__main__":
    main()
