"""Which profiles a run turns on.

``--profile NAME`` (repeatable) or ``PREVIEWCTL_PROFILES=a,b`` when given; else, on the
PR's own ``pull_request`` event, the profiles whose ``labels`` the PR carries; else the
set recorded on the preview (None here: only the preview can say); else none. Names are
checked against the config before any request: an unknown one is bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from previewctl.config_profiles import ProfileSection
from previewctl.errors import InputError

ENV_VAR = "PREVIEWCTL_PROFILES"


def ordered(defined: Mapping[str, ProfileSection], names: Iterable[str]) -> tuple[str, ...]:
    """``names`` in the config's order, once each; an unknown one is bad input."""
    wanted = {n for n in names if n}
    unknown = sorted(wanted - set(defined))
    if unknown:
        have = ", ".join(defined) if defined else "none: the config has no [profiles]"
        raise InputError(
            f"unknown profile(s): {', '.join(unknown)} (defined: {have})",
            hint="name a profile the config defines as [profiles.NAME]",
        )
    return tuple(name for name in defined if name in wanted)


def from_labels(defined: Mapping[str, ProfileSection], labels: Iterable[str]) -> tuple[str, ...]:
    """The profiles any of whose ``labels`` the PR carries (other labels mean nothing here).

    GitHub's label names are case-insensitive (one label per name whatever its case, and
    the workflow's ``startsWith`` ignores case too): so is the match."""
    carried = {label.casefold() for label in labels}
    return tuple(
        name for name, p in defined.items() if carried & {label.casefold() for label in p.labels}
    )


def choose(
    defined: Mapping[str, ProfileSection],
    env: Mapping[str, str],
    *,
    flags: Sequence[str],
    labels: tuple[str, ...] | None,
) -> tuple[str, ...] | None:
    """The active set this run names, or None: the preview's recorded set decides.

    ``labels``: the PR's labels from its own ``pull_request`` event (None: no event, or
    a command that does not follow labels).
    """
    if flags:
        if any(not flag.strip() for flag in flags):
            # Not "none": an unset variable in `--profile "$P"` would win over the labels.
            raise InputError(
                "--profile needs a profile name (it was given an empty one)",
                hint="name a profile the config defines, or leave --profile out",
            )
        return ordered(defined, flags)
    listed = (env.get(ENV_VAR) or "").strip()
    if listed:
        return ordered(defined, (part.strip() for part in listed.split(",")))
    if labels is not None:
        return from_labels(defined, labels)
    return None


def still_defined(
    defined: Mapping[str, ProfileSection], recorded: Iterable[str]
) -> tuple[tuple[str, ...], list[str]]:
    """The recorded set split into what the config still defines and what it dropped."""
    names = list(recorded)
    dropped = [n for n in names if n not in defined]
    return tuple(n for n in defined if n in names), dropped
