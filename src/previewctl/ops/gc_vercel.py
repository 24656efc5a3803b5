"""gc's Vercel sweep: managed vars and branch domains of branches nobody needs any more."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from previewctl import template
from previewctl.clients.vercel import VercelClient
from previewctl.clients.vercel_models import EnvVar
from previewctl.errors import PreviewctlError
from previewctl.ops.gc_rules import GcResult, GcVercelRow
from previewctl.ops.inventory import bounded_map
from previewctl.ops.runtime import Runtime
from previewctl.vercel_sync import managed_vars_by_branch, remove_branch_env


def domain_pattern(
    domain_template: str, branch: str, env: dict[str, str]
) -> re.Pattern[str] | None:
    """A regex matching the domains the template makes for ``branch`` (any PR).

    None when the template cannot be resolved (an unset ``${env.NAME}``): then no domain
    is recognised as previewctl's, and none is removed.
    """
    out: list[str] = []
    for piece in template.parse(domain_template):
        if isinstance(piece, str):
            out.append(re.escape(piece))
        elif piece.parts == ("pr",):
            out.append(r"[1-9][0-9]{0,9}")
        elif piece.parts == ("branch",):
            out.append(re.escape(branch))
        elif piece.namespace == "env" and env.get(piece.parts[1]):
            out.append(re.escape(env[piece.parts[1]]))
        else:
            return None
    return re.compile("^" + "".join(out) + r"\Z", re.IGNORECASE)


@dataclass
class _Listing:
    """One project's managed vars and previewctl's branch domains, by branch."""

    vars: dict[str, list[EnvVar]]
    domains: dict[str, list[str]]


@dataclass
class _VercelSweep:
    rt: Runtime
    client: VercelClient
    kept: set[str]
    destroyed: set[str]
    open_branches: set[str] | None
    dry_run: bool

    def why(self, branch: str) -> str | None:
        """Why the branch's vars go; None when they stay."""
        if branch in self.kept:
            return None
        if branch in self.destroyed:
            return "preview destroyed"
        if self.open_branches is not None and branch not in self.open_branches:
            return "no open PR for the branch"
        return None

    def listing(self, project: str, domain_template: str | None) -> _Listing:
        found = _Listing(managed_vars_by_branch(self.client, project), {})
        if domain_template:
            env = dict(self.rt.env)
            for domain in self.client.list_domains(project):
                if domain.git_branch:
                    pattern = domain_pattern(domain_template, domain.git_branch, env)
                    if pattern is not None and pattern.match(domain.name):
                        found.domains.setdefault(domain.git_branch, []).append(domain.name)
        return found

    def clean(self, project: str, listing: _Listing, branch: str) -> GcVercelRow:
        keys = sorted(v.key for v in listing.vars.get(branch, []))
        domains = sorted(listing.domains.get(branch, []))
        row = GcVercelRow(project, branch, keys, domains, "", self.why(branch) or "")
        if self.dry_run:
            row.action = "would " + _removal(len(keys), len(domains))
            return row
        reporter = self.rt.reporter
        try:
            if keys:
                row.vars = remove_branch_env(self.client, project, branch, reporter)
            for name in domains:
                self.client.remove_domain(project, name)
            row.action = _removal(len(row.vars), len(domains))
            reporter.info(f"{project}: {row.action} of branch {branch} ({row.reason})")
        except PreviewctlError as exc:
            row.action = "remove"
            row.ok = False
            row.error = str(exc)
            reporter.error(f"{project}, branch {branch}: {exc}", title="gc")
        return row


def sweep_vercel(
    rt: Runtime,
    client: VercelClient,
    result: GcResult,
    open_branches: set[str] | None,
    dry_run: bool,
) -> list[GcVercelRow]:
    """Vars and domains of branches whose preview is gone or whose PR is not open.

    A branch that still has a kept preview is never swept.
    """
    vercel = rt.config.model.vercel
    assert vercel is not None
    sweep = _VercelSweep(
        rt,
        client,
        kept={r.branch for r in result.rows if r.branch and not r.removes},
        destroyed={r.branch for r in result.rows if r.removes and r.branch},
        open_branches=open_branches,
        dry_run=dry_run,
    )
    rows: list[GcVercelRow] = []
    for project, section in vercel.projects.items():
        try:
            listing = sweep.listing(project, section.domain)
        except PreviewctlError as exc:
            rows.append(
                GcVercelRow(project, "*", [], [], "skip", "could not list", False, str(exc))
            )
            continue
        branches = set(listing.vars) | set(listing.domains)
        targets = sorted(b for b in branches if sweep.why(b) is not None)
        rows.extend(
            bounded_map(
                functools.partial(sweep.clean, project, listing),
                targets,
                rt.config.model.gc.concurrency,
            )
        )
    if open_branches is None and vercel.projects:
        result.notes.append(
            "Vercel: only the branches of destroyed previews were swept (PR state unknown)"
        )
    return rows


def _removal(n_vars: int, n_domains: int) -> str:
    text = f"remove {n_vars} var{'s' if n_vars != 1 else ''}"
    if n_domains:
        text += f" + {n_domains} domain{'s' if n_domains != 1 else ''}"
    return text
