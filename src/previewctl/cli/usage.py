"""Usage errors worded for a person: an empty path said to be empty, and a "did you
mean" for an unknown option only when one is close (click's own offers any option that
shares a few letters: `--nosuch` got "--branch")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from previewctl.suggest import closest

EMPTY_CONFIG = (
    "the path is empty (an unset variable in `--config=$VAR`?): give previewctl.toml's path"
)


def config_path(value: str | Path | None) -> Path | None:
    """``--config``'s value; an empty one is a usage error (exit 2), not the directory ``.``."""
    if value is None:
        return None
    if not str(value).strip():
        raise typer.BadParameter(EMPTY_CONFIG, param_hint="'--config'")
    return Path(value)


def option_suggestion(name: str, ctx: Any) -> list[str] | None:
    """The one option of the command (or the group) close to ``name``, if any."""
    command = getattr(ctx, "command", None)
    known = [
        opt
        for param in getattr(command, "params", ())
        for opt in getattr(param, "opts", ())
        if opt.startswith("--")
    ]
    best = closest(name.lstrip("-"), [opt[2:] for opt in known])
    return [f"--{best}"] if best else None
