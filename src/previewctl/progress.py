"""What is being waited for right now, live: the board of a terminal and the heartbeat
of a plain log.

A :class:`Wait` knows its label, its latest text and when it began; its elapsed time
is computed when it is shown, so a wait that blocks (Fly's wait endpoint, a probe)
still counts up. On a terminal every active wait is one spinner line of one rich
``Live`` area (the machine's health wait in the background and the tunnels in the
foreground show together). In a plain log (CI, pipes) a wait writes a line when its
text changes and a heartbeat line when nothing was said for a while.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from previewctl import redact

HEARTBEAT = 15.0
"""A plain log repeats a wait's state after this many seconds without a line."""


def elapsed_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


@dataclass(eq=False)
class Wait:
    label: str
    started: float = field(default_factory=time.monotonic)
    text: str = ""
    _spinner: Spinner | None = None

    @property
    def spinner(self) -> Spinner:
        """One spinner per wait, so that its frames advance."""
        if self._spinner is None:
            self._spinner = Spinner("dots", text=self, style="cyan")
        return self._spinner

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        what = f"{self.label}: {self.text}" if self.text else self.label
        return redact.scrub(f"{what} ({elapsed_text(self.elapsed)})")

    def __rich__(self) -> Text:  # rendered at every refresh: the time counts up
        return Text(self.line())


class Board:
    """The live area of a terminal: one spinner line per active wait."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._waits: list[Wait] = []
        self._lock = threading.Lock()
        self._live: Live | None = None

    def __rich__(self) -> RenderableType:
        with self._lock:
            waits = list(self._waits)
        return Group(*(w.spinner for w in waits))

    def add(self, wait: Wait) -> None:
        with self._lock:
            self._waits.append(wait)
            if self._live is None:
                self._live = Live(
                    self,
                    console=self._console,
                    refresh_per_second=4,
                    transient=True,
                    # stdout is for results: never route it through the live area
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self._live.start()

    def remove(self, wait: Wait) -> None:
        with self._lock:
            if wait in self._waits:
                self._waits.remove(wait)
            live = self._live if not self._waits else None
            if live is not None:
                self._live = None
        if live is not None:
            live.stop()


class Heartbeat:
    """Plain logs: repeat each active wait's state when it has been quiet too long."""

    def __init__(self, emit: Callable[[str], None], every: float = HEARTBEAT) -> None:
        self._emit = emit
        self._every = every
        self._waits: dict[Wait, float] = {}  # wait -> when it last said something
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def said(self, wait: Wait) -> None:
        with self._lock:
            self._waits[wait] = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="previewctl-heartbeat", daemon=True
                )
                self._thread.start()

    def done(self, wait: Wait) -> None:
        with self._lock:
            self._waits.pop(wait, None)

    def _run(self) -> None:
        # A display timer, not a wait for an outcome: it only repeats what is known.
        while not self._wake.wait(1.0):
            now = time.monotonic()
            with self._lock:
                quiet = [w for w, at in self._waits.items() if now - at >= self._every]
                for wait in quiet:
                    self._waits[wait] = now
            for wait in quiet:
                self._emit(f"  {wait.line()} (still waiting)")
