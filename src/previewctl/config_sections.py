"""What every model of previewctl.toml shares: strict keys, immutable values, durations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from previewctl.durations import parse_duration


class StrictModel(BaseModel):
    """A table of previewctl.toml: an unknown key is an error, and nothing changes it later."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def as_duration(value: Any) -> float:
    """Seconds of a config duration (``90s``, ``5m``, ``7d`` or a number)."""
    # bool is an int: without this, `timeout = true` would mean one second
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration such as 90s, 5m, 7d")
