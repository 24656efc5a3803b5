"""Human durations in config and flags: ``90s``, ``5m``, ``36h``, ``7d``, ``1w``, or seconds."""

from __future__ import annotations

import math
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
# Ten years: longer is a typo, and deadlines and OS waits overflow on absurd values.
MAX_SECONDS = 3650 * 86400.0


def _checked(seconds: float, text: object) -> float:
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{text!r} is not a duration: it must be a finite number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than the longest duration allowed (3650d)")
    return seconds


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text``; raises ValueError with a readable message."""
    if isinstance(text, int | float):
        try:
            return _checked(float(text), text)
        except OverflowError:  # an int too large for a float
            raise ValueError(f"{text!r} is longer than the longest duration allowed") from None
    raw = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return _checked(float(raw), text)
    pos = 0
    total = 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw) or not raw:
        raise ValueError(f"{text!r} is not a duration (examples: 90s, 5m, 36h, 7d)")
    return _checked(total, text)


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours:.0f}h{rest // 60:02.0f}m" if rest >= 60 else f"{hours:.0f}h"
    days, rest = divmod(seconds, 86400)
    return f"{days:.0f}d{rest // 3600:.0f}h" if rest >= 3600 else f"{days:.0f}d"
