"""Independent work run alongside the main flow (e.g. Vercel while the steps run)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from previewctl.reporter import Reporter

T = TypeVar("T")


class BackgroundPhase(Generic[T]):
    """Runs ``work(reporter)`` in a thread; :meth:`join` shows its output and returns
    its result or raises its error, in the calling thread."""

    def __init__(self, name: str, reporter: Reporter, work: Callable[[Reporter], T]) -> None:
        self.name = name
        self._parent = reporter
        self._child = reporter.buffered()
        self._work = work
        self._result: T | None = None
        self._error: BaseException | None = None
        self._seconds = 0.0
        self._thread = threading.Thread(target=self._run, name=f"previewctl-{name}", daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            self._result = self._work(self._child)
        except BaseException as exc:  # handed to the main thread by join()
            self._error = exc
        finally:
            self._seconds = time.monotonic() - started

    def start(self) -> BackgroundPhase[T]:
        self._thread.start()
        return self

    def join(self) -> T:
        self._thread.join()
        self._parent.replay(self._child, self.name, self._seconds, self._error is None)
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
