""" "Did you mean": the closest known name to what a person typed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: object, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The best match by similarity, or one with the same letters (``bd`` → ``db``)."""
    text = str(word)
    names = sorted(set(candidates))
    found = difflib.get_close_matches(text, names, n=1, cutoff=cutoff)
    if found:
        return found[0]
    for name in names:
        if name.lower() == text.lower() or (len(text) > 1 and sorted(name) == sorted(text)):
            return name
    return None
