"""How previewctl's process ends: interruptions (signals) and unexpected errors.

- The first SIGINT, SIGTERM or SIGHUP (the terminal or the runner went away) interrupts
  the command: ``KeyboardInterrupt``, the cleanup of everything previewctl started, exit
  130. The ones after it must not interrupt that cleanup, nor kill the process while
  Python shuts down: they are noted and ignored.
- A traceback never carries local variables (they can hold secrets) and is redacted
  structurally too (it may quote an API's answer): also those Python or a thread would
  print on its own.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from types import FrameType, TracebackType
from typing import NoReturn

INTERRUPTS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _on_interrupt(signum: int, frame: FrameType | None) -> NoReturn:  # noqa: ARG001
    for sig in INTERRUPTS:
        signal.signal(sig, _while_cleaning_up)
    raise KeyboardInterrupt


def _while_cleaning_up(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    # os.write, not sys.stderr: the handler may run in the middle of a write to it.
    os.write(2, b"previewctl: still stopping what it started; exit follows (130)\n")


def install() -> None:
    """Signal handlers and exception hooks for the whole process (main thread only)."""
    for sig in INTERRUPTS:
        signal.signal(sig, _on_interrupt)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def ignore_interrupts_if_interrupted() -> None:
    """Python puts SIGINT back to its default while it shuts down: a Ctrl-C then would
    kill the process by SIGINT instead of the 130 it is about to exit with. An ignored
    signal stays ignored."""
    if signal.getsignal(signal.SIGINT) is _while_cleaning_up:
        for sig in INTERRUPTS:
            signal.signal(sig, signal.SIG_IGN)


def format_exception(exc: BaseException, *, full: bool) -> str:
    """The traceback (``full``) or the last line, without locals, redacted."""
    from previewctl import redact

    tb = traceback.TracebackException.from_exception(exc, capture_locals=False)
    return redact.clean("".join(tb.format() if full else tb.format_exception_only()))


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:  # noqa: ARG001
    sys.stderr.write(format_exception(exc, full=True))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        name = args.thread.name if args.thread is not None else "a thread"
        sys.stderr.write(f"unexpected error in {name}:\n")
        sys.stderr.write(format_exception(args.exc_value, full=True))
