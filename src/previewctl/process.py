"""One supervisor for the child processes previewctl starts: steps and tunnels.

A child runs in its own session and process group (``start_new_session``), so ending
it reaches everything it started (``pnpm`` -> ``node`` -> ...) and nothing else. Its
output is read line by line on threads, as it arrives. It is always ended the same way:
SIGTERM to the group, a grace period (for the leader to exit and for the pipes to reach
EOF: children that outlive the leader still hold them), SIGKILL, reap. While it runs,
the watchdog (:mod:`previewctl.watchdog`) guards its group: if previewctl dies, even by
SIGKILL, the group is ended too. Every child carries a random tag in its environment, so
that a daemon it starts in a session of its own is ended with it as well (Linux).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

from previewctl import watchdog

LineSink = Callable[[str], None]

GRACE = 3.0
READER_JOIN = 5.0


def _read_lines(stream: IO[bytes], sink: LineSink, on_eof: Callable[[], None] | None) -> None:
    try:
        with contextlib.suppress(OSError, ValueError):  # the pipe closed under us at shutdown
            for raw in iter(stream.readline, b""):
                sink(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    finally:
        if on_eof is not None:
            on_eof()


class Child:
    """One supervised child process; end it with :meth:`end` (or :func:`end_all`)."""

    def __init__(
        self, popen: subprocess.Popen[bytes], name: str, *, guarded: bool, tag: str
    ) -> None:
        self.popen = popen
        self.name = name
        self.guarded = guarded
        self.tag = tag  # in its environment (watchdog.TAG_ENV): a daemon of it has it too
        self.readers: list[threading.Thread] = []

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str],
        cwd: Path | None = None,
        keep_stdin: bool = False,
        guard: bool = True,
        on_stdout: LineSink,
        on_stderr: LineSink | None = None,
        on_stdout_eof: Callable[[], None] | None = None,
    ) -> Child:
        """Start ``argv`` in a new process group, guarded, its output read line by line.

        Without ``on_stderr``, stderr goes where stdout goes. With ``keep_stdin`` its
        stdin is a pipe kept open until :meth:`close_stdin` (a child that exits on EOF
        ends with us); else it reads nothing. ``guard=False`` leaves the watchdog out, for
        a child that guards itself (one that exits when its stdin reaches EOF).
        Raises ``OSError`` when it cannot start.

        The watchdog knows the child by its tag before the fork, so that no instant is
        left in which a SIGKILLed previewctl would leave it; an interrupt that comes while
        it starts is held until it is started, then ends it here.
        """
        tag = watchdog.new_tag()
        with watchdog.HeldInterrupts() as held:
            if guard:
                watchdog.guard(tag)  # ended with previewctl, even if it is SIGKILLed
            try:
                popen = subprocess.Popen(
                    list(argv),
                    cwd=cwd,
                    env={**env, watchdog.TAG_ENV: tag},
                    stdin=subprocess.PIPE if keep_stdin else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE if on_stderr is not None else subprocess.STDOUT,
                    start_new_session=True,
                )
            except BaseException:
                if guard:
                    watchdog.release(tag)
                raise
            if guard:
                watchdog.guard(tag, popen.pid)
            child = cls(popen, name, guarded=guard, tag=tag)
            try:
                child._start_readers(on_stdout, on_stderr, on_stdout_eof)
                held.release()
            except BaseException:
                child.end()
                raise
        return child

    def _start_readers(
        self,
        on_stdout: LineSink,
        on_stderr: LineSink | None,
        on_stdout_eof: Callable[[], None] | None,
    ) -> None:
        popen, child, name = self.popen, self, self.name
        streams: list[tuple[IO[bytes] | None, LineSink, Callable[[], None] | None]] = [
            (popen.stdout, on_stdout, on_stdout_eof)
        ]
        if on_stderr is not None:
            streams.append((popen.stderr, on_stderr, None))
        for stream, sink, on_eof in streams:
            assert stream is not None
            thread = threading.Thread(
                target=_read_lines,
                args=(stream, sink, on_eof),
                name=f"{name}-output-{len(child.readers)}",
                daemon=True,
            )
            child.readers.append(thread)
            thread.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None when it is still running after ``timeout``."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def join_readers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.readers:
            if thread.ident is not None:  # started
                thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def reading(self) -> bool:
        return any(thread.is_alive() for thread in self.readers)

    def close_stdin(self) -> None:
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.popen.stdin.close()

    def end(self, grace: float = GRACE) -> None:
        end_all([self], grace)

    def _close_pipes(self) -> None:
        self.close_stdin()
        if self.reading:  # a reader still blocked on its pipe holds the stream's lock
            return
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()


def end_all(children: Iterable[Child], grace: float = GRACE) -> None:
    """End every child's group: SIGTERM, up to ``grace`` seconds, SIGKILL, reap.

    Idempotent, and complete even when interrupted (a second Ctrl-C): whatever happens
    during the grace period, every group is SIGKILLed and every leader reaped.
    """
    todo = list(children)
    deadline = time.monotonic() + grace
    try:
        alive: list[Child] = []
        for child in todo:
            child.close_stdin()  # a child that exits on EOF starts to go now
            if watchdog.signal_tree(child.pid, signal.SIGTERM, child.tag):
                alive.append(child)
        for child in alive:
            child.wait(max(0.0, deadline - time.monotonic()))
            # Children that outlive the leader still hold the pipes: their EOF tells
            # when they are gone too.
            child.join_readers(max(0.0, deadline - time.monotonic()))
    finally:
        for child in todo:
            # pgid == the leader's PID (start_new_session), and a PID is not reused while
            # its process group has members (nor before the leader is reaped), so this
            # reaches only the child's own processes.
            watchdog.signal_tree(child.pid, signal.SIGKILL, child.tag)
            if child.guarded:
                watchdog.release(child.tag)  # before the reap: then the PID may be reused
                child.guarded = False
        for child in todo:
            child.popen.wait()
            child.join_readers(READER_JOIN)
            child._close_pipes()
