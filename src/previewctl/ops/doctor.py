"""`doctor`: check a set-up with read-only calls, every problem at once, a hint for each.

Only GET requests and the backend's read-only checks: nothing is created, changed or
removed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from previewctl import template
from previewctl.backends.base import FAIL, PASS, SKIP, WARN, Check
from previewctl.clients.http import RetryPolicy
from previewctl.config import Config
from previewctl.errors import ApiError, InputError, PreviewctlError
from previewctl.ops.runtime import Runtime
from previewctl.target import Target
from previewctl.template import TemplateError
from previewctl.tokens import read_token, register_tokens

_MARKS = {PASS: "✓", WARN: "!", FAIL: "✗", SKIP: "-"}
EXAMPLE = Target(pr=1, branch="feature-branch")
# Answers within seconds, not the minutes a real run rides out.
DOCTOR_RETRY = RetryPolicy(deadline=15.0, attempts=3, max_wait=2.0)
_NETWORK_HINTS = {
    "Vercel": "check the network and VERCEL_API_URL (default https://api.vercel.com); "
    "a 429 or 5xx is Vercel's side: run doctor again later",
    "GitHub": "check the network and GITHUB_API_URL (default https://api.github.com)",
}


def _api_problem(exc: PreviewctlError) -> str:
    return exc.api_message if isinstance(exc, ApiError) else str(exc)


def check_config(rt: Runtime) -> tuple[Config | None, list[Check]]:
    try:
        config = rt.config
    except InputError as exc:
        hint = exc.hint or "`previewctl init` writes a starting previewctl.toml"
        return None, [Check("config", FAIL, str(exc), hint)]
    except (OSError, UnicodeDecodeError) as exc:  # unreadable, or not UTF-8 text
        hint = "save previewctl.toml and the machine config as UTF-8 text"
        return None, [Check("config", FAIL, f"cannot read the config: {exc}", hint)]
    app = config.app_name(EXAMPLE.pr)
    checks = [Check("config", PASS, f"{config.path} is valid (PR 1 would be app {app})")]
    missing = sorted(n for n in config.env_refs() | config.env_refs(seed=True) if n not in rt.env)
    if missing:
        checks.append(
            Check(
                "config env",
                WARN,
                "the config uses environment variables unset here: " + ", ".join(missing),
                "set them in the workflow's env (up and seed fail without them)",
            )
        )
    return config, checks


def _parents(domain: str) -> list[str]:
    """``pr-1-api.preview.example.com`` -> ``preview.example.com``, ``example.com``."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def _team_domain(rt: Runtime, name: str) -> dict[str, Any] | None:
    """The domain as the Vercel team holds it (``GET /v5/domains/{domain}``), or None."""
    try:
        data = rt.vercel().request("GET", f"/v5/domains/{quote(name, safe='')}").json()
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    found = data.get("domain") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        raise TypeError("not a domain")
    return found


def check_domain(rt: Runtime, project: str, pattern: str, scope: str) -> Check:
    name = f"vercel domain {project}"
    try:
        domain = template.render(pattern, rt.spec(EXAMPLE).values())
    except TemplateError as exc:
        hint = f"set it in the workflow's env, or change [vercel.projects.{project}] domain"
        return Check(name, FAIL, str(exc), hint)
    for parent in _parents(domain):
        try:
            found = _team_domain(rt, parent)
        except PreviewctlError as exc:
            hint = exc.hint or _NETWORK_HINTS["Vercel"]
            return Check(name, FAIL, f"could not read {parent} on {scope}: {exc}", hint)
        if found is None:
            continue
        if found.get("verified") is False:
            hint = "verify it in Vercel's domain settings"
            return Check(name, WARN, f"{domain}: {parent} is on {scope} but not verified", hint)
        return Check(name, PASS, f"{domain}: its parent {parent} is on {scope}")
    return Check(
        name,
        FAIL,
        f"{domain}: no parent domain ({', '.join(_parents(domain)) or 'none'}) is on {scope}",
        f"add the domain to {scope} in Vercel, or change [vercel.projects.{project}] domain",
    )


def check_project(rt: Runtime, name: str, scope: str) -> Check:
    label = f"vercel project {name}"
    try:
        project = rt.vercel().get_project(name)
    except PreviewctlError as exc:
        status = exc.status if isinstance(exc, ApiError) else None
        if status == 404:
            hint = "use the project's name as Vercel shows it, or set [vercel] team_id"
            return Check(label, FAIL, f"project {name!r} not found on {scope}", hint)
        if status in (401, 403):
            hint = "a token with access to the team, and [vercel] team_id set to the team's id"
            return Check(label, FAIL, f"not readable with this token: {_api_problem(exc)}", hint)
        return Check(
            label, FAIL, f"could not ask Vercel: {exc}", exc.hint or _NETWORK_HINTS["Vercel"]
        )
    if not project.production_branch:
        hint = "connect the project to its Git repository in Vercel"
        return Check(label, FAIL, "no production branch known (no Git repository?)", hint)
    return Check(
        label, PASS, f"{project.id} on {scope}, production branch {project.production_branch}"
    )


def check_vercel(rt: Runtime, config: Config) -> list[Check]:
    vercel = config.model.vercel
    if not vercel or not vercel.projects:
        return []
    try:
        token = read_token(rt.env, "VERCEL_TOKEN")
    except InputError as exc:
        return [Check("vercel token", FAIL, str(exc), exc.hint)]
    if not token:
        hint = "create a token in Vercel's account settings; in Actions, a repository secret"
        detail = "VERCEL_TOKEN is not set or blank ([vercel] projects)"
        return [Check("vercel token", FAIL, detail, hint)]
    scope = f"team {vercel.team_id}" if vercel.team_id else "the token's personal account"
    checks = [
        _guarded(
            f"vercel project {name}", "Vercel", functools.partial(check_project, rt, name, scope)
        )
        for name in vercel.projects
    ]
    checks += [
        _guarded(
            f"vercel domain {name}",
            "Vercel",
            functools.partial(check_domain, rt, name, project.domain, scope),
        )
        for name, project in vercel.projects.items()
        if project.domain
    ]
    return checks


def check_github(rt: Runtime) -> list[Check]:
    repo, given = rt.repo, rt.env.get("GITHUB_TOKEN")
    if not (repo and given):
        detail = "no GITHUB_TOKEN and GITHUB_REPOSITORY here: the PR comment would be skipped"
        return [Check("github", SKIP, detail)]
    try:
        token = read_token(rt.env, "GITHUB_TOKEN")
    except InputError as exc:
        return [Check("github", FAIL, str(exc), exc.hint)]
    if not token:
        hint = "pass the token (`${{ github.token }}`), or leave GITHUB_TOKEN unset: no comment"
        return [Check("github", FAIL, "GITHUB_TOKEN is set but blank", hint)]
    return [_guarded("github", "GitHub", functools.partial(check_repo, rt, repo))]


def check_repo(rt: Runtime, repo: str) -> Check:
    try:
        github = rt.github()
        response = github.request("GET", f"/repos/{repo}")
        github.request("GET", f"/repos/{repo}/pulls", params={"state": "open", "per_page": 1})
    except PreviewctlError as exc:
        status = exc.status if isinstance(exc, ApiError) else None
        hint = "the workflow grants `pull-requests: write` and `contents: read`"
        if status is None or status == 429 or status >= 500:
            hint = exc.hint or _NETWORK_HINTS["GitHub"]
        if status == 404:
            detail = f"{repo} is not visible to the token (or does not exist)"
        else:
            detail = f"the token cannot read {repo} and its pull requests: {_api_problem(exc)}"
        return Check("github", FAIL, detail, hint)
    data = response.json()
    if not isinstance(data, dict) or "full_name" not in data:
        raise TypeError("not a repository")
    return _github_write(repo, data, response.headers.get("x-oauth-scopes"))


def _github_write(repo: str, data: Any, scopes: str | None) -> Check:
    """Can the token write the PR comment? Only user tokens say so without a write."""
    perms = data.get("permissions") if isinstance(data, dict) else None
    if scopes is not None:
        granted = {s.strip() for s in scopes.split(",")}
        can_write = bool(granted & {"repo", "public_repo"})
    elif isinstance(perms, dict):
        can_write = bool(perms.get("push") or perms.get("triage") or perms.get("admin"))
    else:
        detail = (
            f"reads {repo} and its pull requests; writing the PR comment needs "
            "`pull-requests: write`, which this token does not tell without a write"
        )
        return Check("github", PASS, detail)
    if can_write:
        return Check("github", PASS, f"reads {repo} and can write its PR comments")
    hint = "a token with write access to pull requests (or no GITHUB_TOKEN: no comment)"
    return Check("github", FAIL, f"the token can read {repo} but not write PR comments", hint)


def _guarded(name: str, api: str, check: Callable[[], Check]) -> Check:
    """One check; an answer that is not what the API sends (HTML, garbage) fails it alone."""
    try:
        return check()
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # the answer's shape
        detail = f"{api} answered with something that is not its API's JSON ({type(exc).__name__})"
        hint = f"a proxy or captive portal in between? {_NETWORK_HINTS[api]}; -v shows the calls"
        return Check(name, FAIL, detail, hint)


def run_doctor(rt: Runtime) -> list[Check]:
    rt.retry = DOCTOR_RETRY
    register_tokens(rt.env)
    config, checks = check_config(rt)
    steps: list[Callable[[], list[Check]]] = [
        lambda: rt.platform.doctor(rt.env, config, retry=rt.retry, on_request=rt.reporter.detail),
        lambda: check_vercel(rt, config) if config is not None else [],
        lambda: check_github(rt),
    ]
    for step in steps:
        checks += step()
    return checks


def render_doctor(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{_MARKS[c.status]} {c.name.ljust(width)}  {c.detail}")
        if c.hint and c.status in (FAIL, WARN):
            lines.append(f"  {' ' * width}  hint: {c.hint}")
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    verdict = "all good" if not failed else f"{failed} problem(s) will make previewctl fail"
    lines += ["", f"{verdict}; {warned} warning(s)"]
    return "\n".join(lines)
