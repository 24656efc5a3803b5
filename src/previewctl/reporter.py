"""How previewctl talks to the person or the CI log while it works.

Everything goes to stderr (stdout is for results), through :mod:`redact`.
On a terminal long waits show a live status line; in CI (or when stderr is not a
terminal) the same events are plain, timestamp-free lines, and phases become
``::group::`` blocks inside GitHub Actions.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console

from previewctl import redact
from previewctl.actions import GitHubActions


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

    def __post_init__(self) -> None:
        out = self.stream or sys.stderr
        self._interactive = out.isatty() and not self.actions.enabled
        self._console = Console(file=out, highlight=False, soft_wrap=True)
        self._lock = threading.Lock()

    # ---- lines -------------------------------------------------------------------
    def _emit(self, text: str, style: str | None = None) -> None:
        clean = redact.scrub(text)
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
        """A line printed by a child process (a step), shown as it arrives."""
        self._emit(f"  │ {line.rstrip()}", style="dim")

    # ---- work in the background -------------------------------------------------------
    def buffered(self) -> Reporter:
        """A reporter for a background thread: its lines wait until :meth:`replay`.

        Masks and annotations still go out at once (they share ``actions``).
        """
        return Reporter(actions=self.actions, verbose=self.verbose, stream=io.StringIO())

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
        """A long wait: yields ``update(text)`` to say what is being waited on now.

        Terminal: a spinner with the latest text. CI: a line when the text changes.
        """
        started = time.monotonic()
        last: list[str] = [""]

        if self._interactive:
            status = self._console.status(redact.scrub(label))
            status.start()

            def update(text: str) -> None:
                elapsed = time.monotonic() - started
                status.update(redact.scrub(f"{label}: {text} ({elapsed:.0f}s)"))

            try:
                yield update
            finally:
                status.stop()
            return

        self._emit(f"… {label}")

        def update_plain(text: str) -> None:
            if text != last[0]:
                last[0] = text
                elapsed = time.monotonic() - started
                self._emit(f"  {label}: {text} ({elapsed:.1f}s)")

        yield update_plain
