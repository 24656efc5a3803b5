"""The Vercel part of up/down: branch-scoped vars, domains, redeploy when vars changed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from previewctl import bookkeeping, template
from previewctl.backends.base import Instance, PreviewBackend
from previewctl.errors import ConfigError, InputError
from previewctl.ops.runtime import Runtime
from previewctl.reporter import Reporter
from previewctl.spec import PreviewSpec
from previewctl.target import Target
from previewctl.template import TemplateError
from previewctl.vercel_sync import remove_branch_env, sync_branch_env


@dataclass
class RedeployLedger:
    """The Vercel projects whose vars changed since their last redeploy, kept in a label
    on the preview: marked before the first write, cleared once redeployed. A redeploy
    that failed after the vars were written is so made by the next `up`, although that
    run finds nothing left to change (a repeated `up` with nothing pending writes none)."""

    pending: set[str] = field(default_factory=set)
    write: Callable[[str], None] | None = None  # the label's new value

    @classmethod
    def of(cls, backend: PreviewBackend, app: str, instance: Instance) -> RedeployLedger:
        pending = set(bookkeeping.names_in(instance.labels.get(bookkeeping.KEY_REDEPLOY)))

        def write(value: str) -> None:
            backend.set_label(app, instance.id, bookkeeping.KEY_REDEPLOY, value)

        return cls(pending, write)

    def mark(self, project: str) -> None:
        if project not in self.pending:
            self.pending.add(project)
            self._save()

    def done(self, project: str) -> None:
        if project in self.pending:
            self.pending.discard(project)
            self._save()

    def _save(self) -> None:
        if self.write is not None:
            self.write(",".join(sorted(self.pending)))


@dataclass
class VercelOutcome:
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    redeployed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"projects": self.projects, "redeployed": self.redeployed}


def require_branch(target: Target) -> str:
    if not target.branch:
        raise InputError(
            "the PR's branch is needed for its Vercel vars: pass --branch, set "
            "PREVIEWCTL_BRANCH, or run on a pull_request event"
        )
    return target.branch


def _without_empty(project: str, desired: dict[str, str], say: Reporter) -> dict[str, str]:
    """A var that renders empty (an optional ``${env.NAME:-}`` unset) is not written; the
    sync then removes the one an earlier run wrote, so the deployment sees it unset."""
    empty = sorted(k for k, v in desired.items() if v == "")
    if empty:
        say.notice(
            f"{project}: {', '.join(empty)} rendered empty, so "
            f"{'it is' if len(empty) == 1 else 'they are'} not set for this branch "
            "(removed if an earlier run set it)",
            title="previewctl: empty Vercel var not written",
        )
    return {k: v for k, v in desired.items() if v != ""}


def apply_vercel(
    rt: Runtime,
    spec: PreviewSpec,
    values: template.Values,
    *,
    reporter: Reporter | None = None,
    ledger: RedeployLedger | None = None,
) -> VercelOutcome:
    say = reporter or rt.reporter
    vercel = rt.config.model.vercel
    outcome = VercelOutcome()
    if not vercel or not spec.vercel_projects:
        return outcome
    ledger = ledger or RedeployLedger()
    branch = require_branch(spec.target)
    client = rt.vercel()
    domains = spec.domains()
    for name, project in spec.vercel_projects.items():
        try:
            desired = {k: template.render(v, values) for k, v in project.env.items()}
        except TemplateError as exc:
            raise ConfigError(str(exc), key=f"vercel.projects.{name}") from None
        domain = domains.get(name)
        desired = _without_empty(name, desired, say)
        result = sync_branch_env(
            client,
            name,
            branch,
            desired,
            say,
            env_type=project.env_type,
            before_change=functools.partial(ledger.mark, name) if vercel.redeploy else None,
        )
        if domain:
            client.add_domain(name, domain, branch)
        outcome.projects[name] = {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "removed": result.removed,
            "domain": domain,
        }
        summary = (
            f"{name}: {len(result.created)} created, {len(result.updated)} updated, "
            f"{len(result.unchanged)} unchanged, {len(result.removed)} removed"
        )
        say.info(summary)
        if vercel.redeploy and (result.changed or name in ledger.pending):
            _redeploy(rt, name, branch, say, outcome, earlier=not result.changed)
            ledger.done(name)
    return outcome


def _redeploy(
    rt: Runtime, name: str, branch: str, say: Reporter, outcome: VercelOutcome, *, earlier: bool
) -> None:
    """A new build of the branch's newest deployment, so the vars now set apply."""
    client = rt.vercel()
    info = client.get_project(name)
    deployments = client.list_deployments(info.id, branch, limit=1)
    why = "an earlier run changed the vars but did not redeploy" if earlier else "vars changed"
    if deployments:
        newest = deployments[0]
        new = client.redeploy(newest, info.name, project_id=info.id)
        outcome.redeployed.append(name)
        say.info(f"{name}: {why}, redeploying {newest.uid} as {new.uid} so they apply")
    else:
        say.info(f"{name}: no deployment of {branch} yet; its build will read them")


def remove_vercel(rt: Runtime, spec: PreviewSpec) -> dict[str, Any]:
    removed: dict[str, Any] = {}
    if not spec.vercel_projects:
        return removed
    branch = require_branch(spec.target)
    client = rt.vercel()
    domains = spec.domains()
    for name in spec.vercel_projects:
        keys = remove_branch_env(client, name, branch, rt.reporter)
        domain = domains.get(name)
        domain_removed = False
        if domain:
            current = client.get_domain(name, domain)
            if current is not None and current.git_branch == branch:
                domain_removed = client.remove_domain(name, domain)
        removed[name] = {"vars": keys, "domain": domain if domain_removed else None}
        rt.reporter.info(
            f"{name}: removed {len(keys)} var(s)"
            + (f" and domain {domain}" if domain_removed else "")
        )
    return removed
