"""Everything that is bad input, found before the first change and reported together.

Local checks (the target, the config, credentials, the tunnel tool, tunnel ports) need no
network. The branch checks read, and never write: the PR's head branch from the
GitHub API or the preview's metadata, and each Vercel project's production branch.
"""

from __future__ import annotations

import dataclasses
import errno
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from previewctl import bookkeeping, selection
from previewctl.config import Config
from previewctl.config_sections import TunnelSection
from previewctl.errors import ApiError, InputError, NotFoundError, Problems
from previewctl.ops.runtime import Runtime
from previewctl.ops.session import check_step_files
from previewctl.ops.vercel_ops import require_branch
from previewctl.target import Target, require_target

# Tunnels listen on the loopback interface only.
LOOPBACK = "127.0.0.1"


def resolve(
    rt: Runtime,
    pr: str | None,
    branch: str | None,
    *,
    profiles: Sequence[str] | None = None,
    labels: bool = False,
) -> Target:
    """The command's target, with the profiles this run chose (``profiles``: the
    ``--profile`` flags of a command that takes them; ``labels``: it follows the PR's
    labels). When either is bad, the config's and the Fly token's problems are named
    with it."""
    problems = Problems()
    target: Target | None = None
    with problems.check():
        target = require_target(pr, branch, rt.env)
    config = _config_or_none(rt)  # a broken one is named with the rest, later
    if profiles is not None and config is not None:
        with problems.check():
            event_labels = target.labels if target is not None and labels else None
            chosen = selection.choose(
                config.model.profiles, rt.env, flags=profiles, labels=event_labels
            )
            if target is not None:
                target = dataclasses.replace(target, profiles=chosen)
                if chosen:  # what collides among them is found before any request
                    rt.spec(target)
    if problems or target is None:
        with problems.check():
            _ = rt.config
        with problems.check():
            rt.backend()
        problems.raise_if_any()
    assert target is not None  # no problems means the target was resolved
    return target


def skip_without_secrets(rt: Runtime, target: Target) -> dict[str, Any] | None:
    """A PR that gets no secrets is skipped with a notice and exit 0, not a failure mail.

    Forks never get them; Dependabot's PRs get none of the repository's secrets either.
    Only a run on the PR's own event is judged so: a missing token on the command
    line is still bad input (exit 2).
    """
    if target.is_fork:
        rt.reporter.notice(
            f"PR #{target.pr} comes from a fork ({target.head_repo}): it gets no secrets, "
            "so no preview is made for it",
            title="previewctl skipped a fork PR",
        )
        return {"pr": target.pr, "skipped": "fork"}
    has_token = rt.platform.has_credentials(rt.env)
    if target.from_event and rt.actions.enabled and not has_token:
        actor = rt.env.get("GITHUB_ACTOR") or "this run"
        rt.reporter.notice(
            f"PR #{target.pr}: no FLY_API_TOKEN in this run ({actor} gets no secrets, as "
            "for Dependabot), so no preview is made for it; if this PR should have one, "
            "add FLY_API_TOKEN to the repository's Actions secrets",
            title="previewctl skipped a PR without secrets",
        )
        return {"pr": target.pr, "skipped": "no secrets"}
    return None


def check_all(*checks: Callable[[], object]) -> None:
    """Run every check; raise the bad input they found, all of it together."""
    problems = Problems()
    for check in checks:
        with problems.check():
            check()
    problems.raise_if_any()


def preflight(
    rt: Runtime,
    target: Target,
    *,
    tunnels: bool,
    vercel: bool,
    seed: bool = False,
    branch_required: bool | None = None,
    steps: str | None = None,
    want_branch: bool = False,
) -> Target:
    """Every problem of bad input, before any change (read-only calls only), at once.

    ``vercel``: the command uses Vercel (its token, the production branch);
    ``branch_required`` (default: ``vercel``): the config's Vercel projects need a branch;
    ``steps``: the section ("steps" or "seed") whose files must exist or be created;
    ``want_branch``: the branch is wanted anyway (a GitHub deployment's ref).

    A branch nobody gave (no --branch, PREVIEWCTL_BRANCH or event) is looked up from the
    GitHub API when GITHUB_TOKEN and GITHUB_REPOSITORY are set; the returned target
    carries it.
    """
    required = vercel if branch_required is None else branch_required
    lookup = target.branch is None and (required or want_branch) and rt.github_available()
    problems = local_problems(
        rt,
        target,
        tunnels=tunnels,
        vercel=vercel,
        seed=seed,
        branch_required=required and not lookup,
        steps=steps,
    )
    config = _config_or_none(rt)
    if lookup and not problems:  # a read, worth making once nothing else is wrong
        with problems.check():
            target = lookup_branch(rt, target, required=required)
    elif config is not None and target.branch and not problems.failed_credentials:
        with problems.check():
            check_pr_branch(rt, target)
    usable = config is not None and target.branch and not problems.failed_credentials
    if usable and target.branch and vercel and rt.vercel_configured():
        production_branch_problems(rt, target.branch, problems)
    problems.raise_if_any()
    return target


def lookup_branch(rt: Runtime, target: Target, *, required: bool) -> Target:
    """The PR's head branch from ``GET /repos/O/R/pulls/N`` (its ``head.ref``).

    When the branch is required and GitHub cannot say, that is GitHub's failure (exit 1,
    its error), not bad input.
    """
    head = pr_head_branch(rt, target, metadata=False, strict=required)
    if head.branch is None:
        if required:
            require_branch(target)  # GitHub did not answer: the usual "branch needed"
        return target
    rt.reporter.info(f"PR #{target.pr} is branch {head.branch} (from {head.source})")
    return dataclasses.replace(target, branch=head.branch)


class _Found(Problems):
    """Problems, and whether a client could not be built (its remote checks are moot)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed_credentials = False


def local_problems(
    rt: Runtime,
    target: Target,
    *,
    tunnels: bool,
    vercel: bool,
    seed: bool = False,
    branch_required: bool = False,
    steps: str | None = None,
) -> _Found:
    """What can be found without the network."""
    problems = _Found()
    config = None
    with problems.check():
        config = rt.config
    if config is not None:
        with problems.check():
            config.app_name(target.pr)
        with problems.check():
            rt.check_env_refs(seed=seed, profiles=target.profiles or ())
        if steps is not None:
            with problems.check():
                check_step_files(config, rt.spec(target), steps)
    needs_vercel = vercel and config is not None and rt.vercel_configured()
    for make in (rt.backend, rt.vercel) if needs_vercel else (rt.backend,):
        try:
            make()
        except InputError as exc:
            problems.add(exc)
            problems.failed_credentials = True
    if config is not None and branch_required and rt.vercel_configured():
        with problems.check():
            require_branch(target)
    if config is not None and vercel and rt.vercel_configured():
        with problems.check():
            rt.spec(target).domains()  # none may render empty
    spec_tunnels: Mapping[str, TunnelSection] = {}
    if config is not None and tunnels:
        with problems.check():
            spec_tunnels = rt.spec(target).tunnels  # the active profiles' too
    for problem in tunnel_problems(rt, spec_tunnels):
        problems.add(problem)
    return problems


def tunnel_problems(rt: Runtime, tunnels: Mapping[str, TunnelSection]) -> list[InputError]:
    """What stops ``tunnels`` from opening here: no tunnel tool, a taken local port."""
    if not tunnels:
        return []
    found: list[InputError] = []
    try:
        rt.platform.check_tunnel_tool(rt.env)
    except InputError as exc:
        found.append(exc)
    return found + port_problems(tunnels)


def _config_or_none(rt: Runtime) -> Config | None:
    try:
        return rt.config
    except InputError:
        return None


def port_problems(tunnels: Mapping[str, TunnelSection]) -> list[InputError]:
    """Fixed local ports of the tunnels that this machine cannot listen on now.

    A port that frees up later is fine; one taken after this check still fails when
    the tunnel starts.
    """
    found: list[InputError] = []
    for name, tunnel in tunnels.items():
        if not tunnel.local_port:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # the tunnel listens with SO_REUSEADDR: a port in TIME_WAIT is free to it too
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((LOOPBACK, tunnel.local_port))
            except OSError as exc:
                why = (
                    "is already in use"
                    if exc.errno == errno.EADDRINUSE
                    else f"cannot be used ({exc.strerror})"
                )
                found.append(
                    InputError(
                        f"tunnel {name}: local port {tunnel.local_port} {why} on this machine",
                        hint="free the port, or set local_port = 0 for any free port",
                    )
                )
    return found


# ---- the branch belongs to the PR --------------------------------------------------------


@dataclass(frozen=True)
class HeadBranch:
    """The PR's head branch and who said so (None: nobody knows)."""

    branch: str | None
    source: str


def pr_head_branch(
    rt: Runtime, target: Target, *, metadata: bool = True, strict: bool = False
) -> HeadBranch:
    """The event, else the GitHub API (with a token), else the preview's metadata.

    ``strict``: a GitHub failure is raised, not warned about. A PR whose head is in
    another repository (a fork) is bad input: its branch is not a branch of this one.
    """
    if target.event_branch is not None:
        return HeadBranch(target.event_branch, "its pull_request event")
    repo = target.repo or rt.repo
    if repo and rt.github_available():
        try:
            pull = rt.github().get_pull(repo, target.pr)
        except ApiError as exc:
            if strict:
                exc.hint = exc.hint or "pass --branch (the PR's head branch) to go without it"
                raise
            rt.reporter.warn(f"could not ask GitHub for PR #{target.pr}'s branch: {exc}")
        else:
            if pull is None:
                raise InputError(f"PR #{target.pr} is not a pull request of {repo} (GitHub: 404)")
            if (pull.head_repo or "").lower() != repo.lower():
                raise InputError(
                    f"PR #{target.pr} comes from a fork "
                    f"({pull.head_repo or 'a deleted repository'}): its branch "
                    f"{pull.head_ref!r} is not a branch of {repo}, so it gets no preview",
                    hint="previews are made for pull requests from branches of this repository",
                )
            return HeadBranch(pull.head_ref, "the GitHub API")
    recorded = recorded_branch(rt, target.pr) if metadata else None
    return HeadBranch(recorded, "its preview's metadata")


def recorded_branch(rt: Runtime, pr: int) -> str | None:
    """The branch recorded on the PR's managed preview (read-only; None without one)."""
    verdict = rt.backend().find(pr)
    if verdict is None or not verdict.managed or not verdict.machines:
        return None
    survivor = bookkeeping.pick_survivor(list(verdict.machines))
    return bookkeeping.PreviewInfo.of(survivor).branch


def check_pr_branch(rt: Runtime, target: Target) -> None:
    """A branch that is not the PR's is bad input: it would touch another PR's vars."""
    if target.branch is None or target.branch_confirmed:
        return
    head = pr_head_branch(rt, target)
    if head.branch is not None and head.branch != target.branch:
        raise InputError(
            f"branch {target.branch!r} is not the head branch of PR #{target.pr}: "
            f"{head.source} says {head.branch!r}",
            hint="pass the PR's own branch, or leave --branch out",
        )


def production_branch_problems(rt: Runtime, branch: str, problems: Problems) -> None:
    """Each configured Vercel project must exist, and ``branch`` must not be its production
    branch (Vercel has no branch-scoped preview vars for it)."""
    vercel = rt.config.model.vercel
    client = rt.vercel()
    for name in vercel.projects if vercel else {}:
        try:
            project = client.get_project(name)
        except NotFoundError:
            problems.add(InputError(f"Vercel project {name!r} was not found (check its name)"))
            continue
        if project.production_branch and project.production_branch == branch:
            problems.add(
                InputError(
                    f"branch {branch!r} is the production branch of Vercel project {name}: "
                    "previewctl makes previews for pull request branches only",
                    hint="run previewctl for a pull request's head branch",
                )
            )


def down_branch(rt: Runtime, target: Target, recorded: str | None) -> str | None:
    """The branch whose Vercel vars `down` removes: the one recorded on the preview.

    Without a preview that records one, a branch the event or the GitHub API confirms;
    an unconfirmed branch gets nothing removed (gc sweeps vars of closed PRs later).
    """
    problems = Problems()
    branch = recorded
    if recorded is not None:
        if target.branch and target.branch != recorded and not target.branch_confirmed:
            problems.add(
                InputError(
                    f"branch {target.branch!r} is not the branch recorded on PR "
                    f"#{target.pr}'s preview ({recorded!r}): down removes only that "
                    "branch's Vercel vars",
                    hint="leave --branch out",
                )
            )
    elif target.branch and target.branch_confirmed:
        branch = target.branch
    elif target.branch:
        with problems.check():
            head = pr_head_branch(rt, target, metadata=False)
            if head.branch is None:
                rt.reporter.warn(
                    f"nothing confirms that {target.branch!r} is PR #{target.pr}'s branch "
                    "(no preview records it, no event, no GitHub token): its Vercel vars "
                    "are left for gc"
                )
            elif head.branch != target.branch:
                raise InputError(
                    f"branch {target.branch!r} is not the head branch of PR #{target.pr}: "
                    f"{head.source} says {head.branch!r}",
                    hint="leave --branch out",
                )
            else:
                branch = target.branch
    if branch and rt.vercel_configured():
        production_branch_problems(rt, branch, problems)
    problems.raise_if_any()
    return branch
