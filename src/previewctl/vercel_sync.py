"""Converge one branch's preview env vars in a Vercel project to the desired set.

previewctl only ever touches vars it made: branch-scoped (``target: ["preview"]``,
``gitBranch``) with a comment ``previewctl:v1 fp=FINGERPRINT``. The fingerprint of
key and value is what makes a repeated sync free: values of encrypted or sensitive
vars cannot be read back, so "unchanged" is decided on the comment alone, and an
unchanged var is not sent (no write, no reason to redeploy).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from previewctl.clients.vercel import VercelClient
from previewctl.clients.vercel_models import ENV_TYPES, EnvInput, EnvVar
from previewctl.errors import InputError, NotManagedError
from previewctl.reporter import Reporter

MANAGED_PREFIX = "previewctl:"
COMMENT_VERSION = "v1"


def fingerprint(key: str, value: str) -> str:
    """A short digest of key and value: safe to store in a var's visible comment."""
    return hashlib.sha256(f"{key}\0{value}".encode()).hexdigest()[:16]


def managed_comment(key: str, value: str) -> str:
    return f"{MANAGED_PREFIX}{COMMENT_VERSION} fp={fingerprint(key, value)}"


def comment_fingerprint(comment: str | None) -> str | None:
    """The ``fp=`` of a previewctl comment, or None."""
    if not comment or not comment.startswith(MANAGED_PREFIX):
        return None
    for token in comment[len(MANAGED_PREFIX) :].split():
        if token.startswith("fp="):
            return token[3:] or None
    return None


def is_managed(var: EnvVar) -> bool:
    """previewctl made this var: it carries our comment AND is branch-scoped.

    previewctl never writes a var without a branch, so one with our comment but no
    branch was copied by hand and is not ours to delete.
    """
    return bool(var.git_branch) and bool(var.comment and var.comment.startswith(MANAGED_PREFIX))


@dataclass
class SyncResult:
    project: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Something was written or deleted: deployments built before now are stale."""
        return bool(self.created or self.updated or self.removed)


def _check_branch(project: str, branch: str) -> None:
    if not branch or not branch.strip():
        raise InputError(
            f"Vercel project {project}: no branch given; previewctl only writes branch-scoped vars"
        )


def _branch_vars(client: VercelClient, project: str, branch: str) -> list[EnvVar]:
    # Vercel filters on gitBranch already; check again, deletions depend on it.
    return [v for v in client.list_env(project, git_branch=branch) if v.git_branch == branch]


def _writable_vars(
    client: VercelClient,
    project: str,
    branch: str,
    desired: Mapping[str, str],
    env_type: str,
) -> list[EnvVar]:
    """The branch's current vars, once everything that could refuse the sync is checked:
    the branch, the type, the production branch, a desired key someone else set."""
    _check_branch(project, branch)
    if env_type not in ENV_TYPES:
        raise InputError(f"Vercel env type {env_type!r} is not one of {sorted(ENV_TYPES)}")
    info = client.get_project(project)
    if info.production_branch and branch == info.production_branch:
        raise InputError(
            f"Vercel project {project}: {branch!r} is the production branch; "
            "previewctl never writes preview vars for it",
            hint="run previewctl for a pull request's branch",
        )
    current = _branch_vars(client, project, branch)
    foreign = sorted(
        key for key in desired if any(v.key == key and not is_managed(v) for v in current)
    )
    if foreign:
        raise NotManagedError(
            f"Vercel project {project}, branch {branch}: "
            f"{', '.join(foreign)} already set by someone else (no previewctl comment); "
            "previewctl will not overwrite it",
            hint="delete that var in Vercel, or stop listing the key in previewctl.toml",
        )
    return current


def sync_branch_env(
    client: VercelClient,
    project: str,
    branch: str,
    desired: Mapping[str, str],
    reporter: Reporter,
    *,
    env_type: str = "encrypted",
    before_change: Callable[[], None] | None = None,
) -> SyncResult:
    """Make ``branch``'s managed preview vars in ``project`` exactly ``desired``.

    Created and changed vars go in one upsert; managed vars no longer desired are
    deleted. Everything that could refuse the sync is checked before any write;
    ``before_change`` is called once before the first write or deletion, if any.
    """
    current = _writable_vars(client, project, branch, desired, env_type)
    by_key: dict[str, list[EnvVar]] = {}
    for var in current:
        by_key.setdefault(var.key, []).append(var)
    _warn_generic_fallbacks(client, project, branch, desired, reporter)

    result = SyncResult(project=project)
    writes: list[EnvInput] = []
    for key in sorted(desired):
        value = desired[key]
        mine = by_key.get(key, [])
        wanted_fp = fingerprint(key, value)
        if any(comment_fingerprint(v.comment) == wanted_fp and v.type == env_type for v in mine):
            result.unchanged.append(key)
            continue
        (result.updated if mine else result.created).append(key)
        comment = managed_comment(key, value)
        writes.append(
            EnvInput(key=key, value=value, git_branch=branch, comment=comment, type=env_type)
        )
    stale = [
        v for v in current if v.key not in desired and is_managed(v) and v.git_branch == branch
    ]
    if (writes or stale) and before_change is not None:
        before_change()
    client.upsert_env(project, writes)

    for var in stale:
        if client.delete_env(project, var.id):
            result.removed.append(var.key)
    result.removed.sort()
    _say(result, branch, reporter)
    return result


def _say(result: SyncResult, branch: str, reporter: Reporter) -> None:
    for key in result.created:
        reporter.detail(f"{result.project}: {key} created for {branch}")
    for key in result.updated:
        reporter.detail(f"{result.project}: {key} updated for {branch}")
    for key in result.removed:
        reporter.detail(f"{result.project}: {key} removed from {branch}")


def _warn_generic_fallbacks(
    client: VercelClient,
    project: str,
    branch: str,
    desired: Mapping[str, str],
    reporter: Reporter,
) -> None:
    generic = sorted(
        {
            var.key
            for var in client.list_env(project)
            if var.key in desired and not var.git_branch and "preview" in var.target
        }
    )
    if generic:
        reporter.warn(
            f"Vercel project {project} also has {', '.join(generic)} for all previews "
            f"(no branch): if the branch var of {branch} were missing, its preview would "
            "silently use that value instead",
            title="generic preview var",
        )


def remove_branch_env(
    client: VercelClient, project: str, branch: str, reporter: Reporter
) -> list[str]:
    """Delete previewctl's vars of exactly ``branch``; return the keys deleted."""
    _check_branch(project, branch)
    removed: list[str] = []
    for var in _branch_vars(client, project, branch):
        if not is_managed(var) or var.git_branch != branch:
            continue
        if client.delete_env(project, var.id):
            removed.append(var.key)
            reporter.detail(f"{project}: {var.key} removed from {branch}")
    return sorted(removed)


def managed_vars_by_branch(client: VercelClient, project: str) -> dict[str, list[EnvVar]]:
    """previewctl's vars in ``project`` grouped by branch (for ``gc``'s orphan sweep)."""
    grouped: dict[str, list[EnvVar]] = {}
    for var in client.list_env(project):
        if is_managed(var) and var.git_branch:
            grouped.setdefault(var.git_branch, []).append(var)
    return grouped
