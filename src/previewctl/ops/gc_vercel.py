"""gc's Vercel sweep: managed vars and branch domains of branches nobody needs any more."""

from __future__ import annotations

import re
from typing import Any

from previewctl import template
from previewctl.clients.vercel import VercelClient
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
    destroyed = {r.branch for r in result.rows if r.removes and r.branch}
    kept = {r.branch for r in result.rows if r.branch and not r.removes}
    env = dict(rt.env)
    rows: list[GcVercelRow] = []

    def why(branch: str) -> str | None:
        if branch in kept:
            return None
        if branch in destroyed:
            return "preview destroyed"
        if open_branches is not None and branch not in open_branches:
            return "no open PR for the branch"
        return None

    for project, section in vercel.projects.items():
        try:
            by_branch = managed_vars_by_branch(client, project)
            domains_by_branch: dict[str, list[str]] = {}
            if section.domain:
                for domain in client.list_domains(project):
                    if domain.git_branch:
                        pattern = domain_pattern(section.domain, domain.git_branch, env)
                        if pattern is not None and pattern.match(domain.name):
                            domains_by_branch.setdefault(domain.git_branch, []).append(domain.name)
        except PreviewctlError as exc:
            rows.append(
                GcVercelRow(project, "*", [], [], "skip", "could not list", False, str(exc))
            )
            continue
        targets = sorted(b for b in set(by_branch) | set(domains_by_branch) if why(b) is not None)

        def clean(
            branch: str,
            project: str = project,
            by_branch: dict[str, Any] = by_branch,
            domains_by_branch: dict[str, list[str]] = domains_by_branch,
        ) -> GcVercelRow:
            keys = sorted(v.key for v in by_branch.get(branch, []))
            domains = sorted(domains_by_branch.get(branch, []))
            row = GcVercelRow(project, branch, keys, domains, "", why(branch) or "")
            if dry_run:
                row.action = "would " + _removal(len(keys), len(domains))
                return row
            try:
                if keys:
                    row.vars = remove_branch_env(client, project, branch, rt.reporter)
                for name in domains:
                    client.remove_domain(project, name)
                row.action = _removal(len(row.vars), len(domains))
                rt.reporter.info(f"{project}: {row.action} of branch {branch} ({row.reason})")
            except PreviewctlError as exc:
                row.action = "remove"
                row.ok = False
                row.error = str(exc)
                rt.reporter.error(f"{project}, branch {branch}: {exc}", title="gc")
            return row

        rows.extend(bounded_map(clean, targets, rt.config.model.gc.concurrency))
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
