"""Output streams whose reader may go away (``previewctl ... | head -c0``).

A write into a pipe nobody reads raises BrokenPipeError (Python ignores SIGPIPE). Left
alone, that ends the command at whatever it was printing, with exit 120 or click's 1.
Instead the stream's descriptor is pointed at /dev/null: what would be printed is
dropped, as for ``>&-``, the command finishes its work and its exit code says how it went.
"""

from __future__ import annotations

import os
from typing import Any, TextIO, cast


def _to_devnull(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null (child processes inherit that too)."""
    try:
        target = stream.fileno()
    except (OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, target)
    finally:
        os.close(null)


class PipeTolerant:
    """A text stream that survives its reader leaving; everything else is the stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _to_devnull(self._stream)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _to_devnull(self._stream)
            self._stream.flush()  # the buffered rest now goes to /dev/null

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def tolerate_broken_pipes(stream: TextIO) -> TextIO:
    if isinstance(stream, PipeTolerant):
        return stream
    return cast(TextIO, PipeTolerant(stream))  # duck-typed: a TextIO for every caller
