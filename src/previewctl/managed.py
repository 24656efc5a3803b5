"""The one rule for "managed", shared by up, down, gc and status (and stop, resume, env).

An app is previewctl's when ALL of these hold:

1. its name is what the ``[app] name`` template makes for its PR;
2. it is in the configured organization;
3. every machine in it carries previewctl's marker;
4. every marker names the same PR as the name;
5. no marker names another repository than the one previewctl runs for (Fly app names
   are global and an org may serve several repositories: a PR number alone does not say
   whose preview it is). GitHub's repository id decides when both sides know it (it
   survives a rename or transfer), else the name. A marker without a repository (made
   before it was recorded, or by a run that did not know it) and a run that does not
   know its own pass this one (previewctl.repository).

A machine whose config Fly cannot show (``host_status`` not ``ok``) is *unknown*: its
marker may simply be missing from the answer, so the rule cannot be decided and
nothing acts on the app. An app with no machine at all proves nothing: it is not
managed either, though ``up`` may put its machine into it (it would have created it).

The verdict is judged on an UNFILTERED machine listing: a metadata-filtered one hides
exactly the machines that make an app someone else's. The rule is pure (no request, no
output): backends apply it to what they list, ops to what backends return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from previewctl import bookkeeping
from previewctl.backends.base import Instance
from previewctl.config import Config
from previewctl.errors import ConfigError, NotManagedError
from previewctl.repository import Repository

NOT_MANAGED = "not managed"
UNKNOWN = "unknown"


class Standing(StrEnum):
    MANAGED = "managed"
    EMPTY = "empty"  # named and placed like ours, but no machine proves it
    NOT_MANAGED = NOT_MANAGED
    UNKNOWN = UNKNOWN  # a machine's config cannot be seen: undecidable


@dataclass(frozen=True)
class Verdict:
    app: str
    pr: int | None
    standing: Standing
    reason: str  # why not managed ("" when managed)
    machines: tuple[Instance, ...] = ()  # the live machines judged, all of them

    @property
    def managed(self) -> bool:
        return self.standing is Standing.MANAGED

    @property
    def unknown(self) -> bool:
        return self.standing is Standing.UNKNOWN


def _ids(machines: Sequence[Instance]) -> str:
    return ", ".join(m.id for m in machines)


def name_pr(config: Config, app: str) -> int | None:
    """The PR whose app the template names ``app``, or None."""
    match = config.name_pattern.match(app)
    if not match:
        return None
    pr = int(match.group("pr"))
    try:
        return pr if config.app_name(pr) == app else None
    except ConfigError:
        return None


def judge(
    config: Config,
    app: str,
    *,
    org: str | None,
    machines: Sequence[Instance],
    pr: int | None = None,
    repo: Repository | str | None = None,
) -> Verdict:
    """Apply the rule (see the module docstring). Pure: no request, no output.

    ``repo`` is the repository previewctl runs for (``owner/name``), when it knows it."""
    live = tuple(m for m in machines if m.state != "destroyed")
    named = name_pr(config, app)

    def verdict(standing: Standing, reason: str) -> Verdict:
        return Verdict(app, named if named is not None else pr, standing, reason, live)

    if named is None or (pr is not None and named != pr):
        want = f"for PR #{pr}" if pr is not None else "for any PR"
        return verdict(
            Standing.NOT_MANAGED, f"{NOT_MANAGED}: the name is not the template's {want}"
        )
    wanted_org = config.model.app.org
    if org is None:
        return verdict(Standing.UNKNOWN, f"{UNKNOWN}: Fly did not say which organization owns it")
    if org != wanted_org:
        where = f"it is in organization {org!r}, not {wanted_org!r}"
        return verdict(Standing.NOT_MANAGED, f"{NOT_MANAGED}: {where}")
    unseen = [m for m in live if m.config_unknown]
    seen = [m for m in live if not m.config_unknown]
    foreign = [m for m in seen if not bookkeeping.carries_marker(m)]
    if foreign:
        return verdict(
            Standing.NOT_MANAGED,
            f"{NOT_MANAGED}: machine {_ids(foreign)} carries no previewctl marker "
            "(previewctl did not make it)",
        )
    mismatch = _marker_mismatch(seen, named, Repository.of(repo))
    if mismatch:
        return verdict(Standing.NOT_MANAGED, f"{NOT_MANAGED}: {mismatch}")
    if unseen:
        hosts = ", ".join(sorted({m.host_status or "no config" for m in unseen}))
        return verdict(
            Standing.UNKNOWN,
            f"{UNKNOWN}: Fly cannot show the config of machine {_ids(unseen)} "
            f"(host_status {hosts}), so whose it is cannot be told",
        )
    if not live:
        return verdict(Standing.EMPTY, f"{NOT_MANAGED}: no machine carries previewctl's marker")
    return verdict(Standing.MANAGED, "")


def _marker_mismatch(seen: Sequence[Instance], named: int, repo: Repository | None) -> str | None:
    """Why a marked machine is not this PR's of this repository, or None (rules 4 and 5)."""
    for machine in seen:
        info = bookkeeping.PreviewInfo.of(machine)
        if info.pr != named:
            says = f"PR #{info.pr}" if info.pr is not None else "no PR"
            return f"machine {machine.id}'s marker names {says}, the name PR #{named}"
        recorded = info.repository
        if repo and recorded and repo.other_than(recorded):
            return f"machine {machine.id} was made for {_other_repo(recorded, repo, named)}"
    return None


def _other_repo(recorded: Repository, repo: Repository, pr: int) -> str:
    if repo.unknown:
        return (
            f"repository {recorded.name or recorded.id!r}, and this run does not know its own "
            "(GITHUB_REPOSITORY is not set): a sweep leaves what may be another repository's"
        )

    def say(r: Repository) -> str:
        ident = f" (id {r.id})" if r.id else ""
        return f"{r.name!r}{ident}" if r.name else f"the one with id {r.id}"

    return (
        f"repository {say(recorded)}, not {say(repo)} (another repository's preview with "
        "the same app name: give this repository's [app] name template a part of its own; "
        "if it is this repository's under an old name, renamed or transferred, a run "
        f"without GITHUB_REPOSITORY set can remove it: previewctl down --pr {pr})"
    )


def require(verdict: Verdict, command: str, *, allow_empty: bool = False) -> tuple[Instance, ...]:
    """The verdict's machines when ``command`` may act on the app; else NotManagedError."""
    if verdict.managed or (allow_empty and verdict.standing is Standing.EMPTY):
        return verdict.machines
    hint = (
        "re-run once Fly can show the machine again (fly status / fly machine status)"
        if verdict.unknown
        else "previewctl only touches apps it made for that PR; remove or rename this one by hand"
    )
    why = verdict.reason.removeprefix(f"{NOT_MANAGED}: ")
    if verdict.unknown:
        why = "previewctl cannot tell: " + why.removeprefix(f"{UNKNOWN}: ")
    raise NotManagedError(
        f"app {verdict.app} is not managed by previewctl ({why}); {command} changes nothing",
        hint=hint,
    )


def other_org(config: Config, app: str, pr: int) -> Verdict:
    return Verdict(
        app,
        pr,
        Standing.NOT_MANAGED,
        f"{NOT_MANAGED}: the app name {app!r} belongs to another Fly organization "
        f"(not {config.model.app.org!r})",
    )
