"""Where previews run: one package per platform; ops reach it through backends.base.

:func:`platform` is the one place that names the backend in use (Fly.io, today).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# What a person reads about the backend's tools (help, config hints): plain strings.
from previewctl.backends.fly import words

if TYPE_CHECKING:
    from previewctl.backends.base import Platform


def platform() -> Platform:
    from previewctl.backends.fly.backend import PLATFORM

    return PLATFORM


__all__ = ["platform", "words"]
