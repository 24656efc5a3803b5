"""How previewctl talks to the person or the CI log while it works.

Everything goes to stderr (stdout is for results), through :mod:`redact`.
On a terminal every wait shows live, with what it waits for and its elapsed time
(:mod:`previewctl.progress`); whenever ``CI`` is set or stdout or stderr is not a
terminal, the same events are plain lines (no control sequences), and phases become
``::group::`` blocks inside GitHub Actions.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console

from previewctl import redact
from previewctl.actions import GitHubActions
from previewctl.progress import Board, Heartbeat, Wait


def ci_set(env: Mapping[str, str]) -> bool:
    """``CI`` set to anything but an explicit no (as most CI services and tools read it)."""
    value = env.get("CI")
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def wants_plain(env: Mapping[str, str]) -> bool:
    """Plain lines unless a person watches both streams on a terminal, outside CI."""
    return ci_set(env) or not (sys.stderr.isatty() and sys.stdout.isatty())


@dataclass
class PhaseTiming:
    name: str
    seconds: float
    ok: bool


@dataclass
class Reporter:
    actions: GitHubActions
    verbose: bool = False
    stream: TextIO | None = None
    timings: list[PhaseTiming] = field(default_factory=list)
    plain: bool | None = None
    """Plain lines; None: decide from the stream (a given stream is plain unless a tty)."""
    board: Board | None = None
    """The live area of waits; a buffered child shares its parent's."""

    def __post_init__(self) -> None:
        out = self.stream or sys.stderr
        if self.plain is None:
            self.plain = not out.isatty()
        self._interactive = not self.plain and not self.actions.enabled
        self._console = Console(file=out, highlight=False, soft_wrap=True)
        if self._interactive and self.board is None:
            self.board = Board(self._console)
        self._lock = threading.Lock()
        self._heartbeat = Heartbeat(self._emit)

    # ---- lines -------------------------------------------------------------------
    def _emit(self, text: str, style: str | None = None) -> None:
        clean = self.actions.text(redact.scrub(text))
        with self._lock:
            if self._interactive:
                self._console.print(clean, style=style, markup=False)
            else:
                out = self.stream or sys.stderr
                out.write(clean + "\n")
                out.flush()

    def info(self, message: str) -> None:
        self._emit(message)

    def success(self, message: str) -> None:
        self._emit(f"✓ {message}", style="green")

    def detail(self, message: str) -> None:
        if self.verbose:
            self._emit(f"  {message}", style="dim")

    def warn(self, message: str, *, title: str | None = None) -> None:
        if self.actions.enabled:
            self.actions.annotate("warning", message, title)
        else:
            self._emit(f"warning: {message}", style="yellow")

    def notice(self, message: str, *, title: str | None = None) -> None:
        if self.actions.enabled:
            self.actions.annotate("notice", message, title)
        else:
            self._emit(message)

    def error(self, message: str, *, title: str | None = None) -> None:
        if self.actions.enabled:
            self.actions.annotate("error", message, title)
        self._emit(f"error: {message}", style="red")

    def output_line(self, line: str) -> None:
        """A line printed by a child process (a step), shown as it arrives: redacted by
        its structure too (the step may print secrets previewctl never had)."""
        self._emit(f"  │ {redact.clean(line.rstrip())}", style="dim")

    # ---- work in the background -------------------------------------------------------
    def buffered(self) -> Reporter:
        """A reporter for a background thread: its lines wait until :meth:`replay`.

        Masks and annotations still go out at once (they share ``actions``).
        """
        return Reporter(
            actions=self.actions,
            verbose=self.verbose,
            stream=io.StringIO(),
            plain=True,
            board=self.board,  # its waits still show live on a terminal
        )

    def replay(self, child: Reporter, name: str, seconds: float, ok: bool) -> None:
        """Show a background phase's lines as one block, and count its time."""
        assert isinstance(child.stream, io.StringIO)
        self.actions.start_group(name)
        if not self.actions.enabled:
            self._emit(f"→ {name} (ran alongside the steps)", style="bold")
        for line in child.stream.getvalue().splitlines():
            self._emit(line)
        self.actions.end_group()
        self.timings.append(PhaseTiming(name, seconds, ok))

    # ---- phases and waits ----------------------------------------------------------
    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A named part of the work: grouped in Actions, timed for the summary."""
        self.actions.start_group(name)
        if not self.actions.enabled:
            self._emit(f"→ {name}", style="bold")
        started = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            elapsed = time.monotonic() - started
            self.timings.append(PhaseTiming(name, elapsed, ok))
            self.actions.end_group()

    @contextmanager
    def waiting(self, label: str) -> Iterator[Callable[[str], None]]:
        """A wait: yields ``update(text)`` to say what is being waited on now.

        Terminal: a live spinner line whose elapsed time counts up by itself. Plain: a
        line when the text changes, and a heartbeat line when it stays quiet.
        """
        wait = Wait(redact.scrub(label))
        if self.board is not None:
            self.board.add(wait)

            def update(text: str) -> None:
                wait.text = text

            try:
                yield update
            finally:
                self.board.remove(wait)
            return

        self._emit(f"… {wait.label}")
        self._heartbeat.said(wait)

        def update_plain(text: str) -> None:
            if text != wait.text:
                wait.text = text
                self._emit(f"  {wait.line()}")
                self._heartbeat.said(wait)

        try:
            yield update_plain
        finally:
            self._heartbeat.done(wait)
