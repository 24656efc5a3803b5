"""Checks on real processes, shared by the tests that start them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path


def is_gone(pid: int) -> bool:
    """No such process, or a zombie (ended, waiting for a parent that is not us)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` (bounded; for tests only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def wait_gone(pids: Iterable[int], timeout: float = 20.0) -> set[int]:
    """The PIDs still alive after waiting up to ``timeout``."""
    left = set(pids)
    wait_for(lambda: not {p for p in left if not is_gone(p)}, timeout)
    return {p for p in left if not is_gone(p)}
