"""Secret values and their redaction.

Every value previewctl generates or renders from a secret is registered here the
moment it exists; every line previewctl prints, every error message and every
traceback passes through :func:`scrub` first. In GitHub Actions the registration
also emits ``::add-mask::`` so that the runner masks anything a child process prints.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from typing import TextIO

MASK = "***"

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None
_on_register: list[Callable[[str], None]] = []

# Shorter values would turn ordinary words into asterisks; none of ours are that short.
_MIN_LEN = 4


class Secret:
    """A string that renders as ``***``; ``.reveal()`` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def on_register(callback: Callable[[str], None]) -> None:
    """Call ``callback(value)`` for every value registered from now on (and those before)."""
    with _lock:
        _on_register.append(callback)
        existing = sorted(_values)
    for value in existing:
        callback(value)


def register(value: str) -> None:
    """Mark ``value`` as secret: it is scrubbed from all output from now on."""
    global _pattern
    if len(value) < _MIN_LEN:
        return
    with _lock:
        if value in _values:
            return
        _values.add(value)
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))
        callbacks = list(_on_register)
    for callback in callbacks:
        callback(value)


def register_if_contains_secret(text: str) -> None:
    """Register ``text`` itself when it embeds a secret (a URL with a password, say)."""
    if _pattern is not None and text != scrub(text):
        register(text)


def scrub(text: str) -> str:
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def reset_for_tests() -> None:
    global _pattern
    with _lock:
        _values.clear()
        _on_register.clear()
        _pattern = None


def write(stream: TextIO | None, text: str) -> None:
    """Write scrubbed text to a stream (stderr by default)."""
    out = stream or sys.stderr
    out.write(scrub(text))
    out.flush()
