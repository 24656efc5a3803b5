"""The active profiles of a run that chose none: the set recorded on the preview.

Flags, ``PREVIEWCTL_PROFILES`` and the PR's labels are read by ``resolve`` (no request);
only when none of them speaks is the preview asked (a read), and a recorded name the
config no longer defines is said and left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from previewctl import bookkeeping, selection
from previewctl.errors import Problems
from previewctl.ops.preflight import tunnel_problems
from previewctl.ops.runtime import Runtime
from previewctl.ops.session import check_step_files
from previewctl.target import Target


def with_recorded_profiles(rt: Runtime, target: Target, *, tunnels: bool = False) -> Target:
    """A target whose run chose no profiles gets the set recorded on its preview (none
    without one); its profiles' step files and env vars (and with ``tunnels``, the tool
    and local ports their tunnels need) are checked like the base's, before any change."""
    if target.profiles is not None:
        return target
    if not rt.config.model.profiles:  # nothing to look up
        return dataclasses.replace(target, profiles=())
    verdict = rt.backend().find(target.pr)
    recorded: tuple[str, ...] = ()
    if verdict is not None and verdict.managed and verdict.machines:
        survivor = bookkeeping.pick_survivor(list(verdict.machines))
        recorded = recorded_profiles(rt, bookkeeping.PreviewInfo.of(survivor).profiles)
    target = dataclasses.replace(target, profiles=recorded)
    if recorded:
        rt.reporter.info(f"profiles recorded on the preview: {', '.join(recorded)}")
        check_profile_inputs(rt, target, steps=True, tunnels=tunnels)
    return target


def check_profile_inputs(rt: Runtime, target: Target, *, steps: bool, tunnels: bool) -> None:
    """The bad input of ``target``'s profiles (a recorded set, known only after a read),
    checked like the base's before any change: the env vars they use, with ``steps``
    their step files, with ``tunnels`` the tool and local ports their tunnels need."""
    problems = Problems()
    with problems.check():
        rt.check_env_refs(profiles=target.profiles or ())
    if steps:
        with problems.check():
            check_step_files(rt.config, rt.spec(target), "steps")
    if tunnels:
        with problems.check():
            for problem in tunnel_problems(rt, rt.spec(target).tunnels):
                problems.add(problem)
    problems.raise_if_any()


def recorded_profiles(rt: Runtime, names: Sequence[str]) -> tuple[str, ...]:
    """The recorded names the config still defines (a dropped one is said, and goes)."""
    kept, dropped = selection.still_defined(rt.config.model.profiles, names)
    if dropped:
        rt.reporter.warn(
            f"profile(s) {', '.join(dropped)} recorded on the preview are no longer in the "
            "config: left out"
        )
    return kept
