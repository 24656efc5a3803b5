"""`doctor`: check a set-up with read-only calls, every problem at once, a hint for each.

Only GET requests and ``flyctl version``: nothing is created, changed or removed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from previewctl import template
from previewctl.backends.fly.settings import MACAROON_PREFIXES
from previewctl.backends.fly.tunnels import find_flyctl, flyctl_env
from previewctl.clients.http import RetryPolicy
from previewctl.config import Config
from previewctl.errors import ApiError, InputError, PreviewctlError
from previewctl.ops.runtime import Runtime
from previewctl.target import Target
from previewctl.template import TemplateError
from previewctl.tokens import TOKEN_VARS, fly_token, read_token, register_tokens

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
_MARKS = {PASS: "✓", WARN: "!", FAIL: "✗", SKIP: "-"}
EXAMPLE = Target(pr=1, branch="feature-branch")
# Answers within seconds, not the minutes a real run rides out.
DOCTOR_RETRY = RetryPolicy(deadline=15.0, attempts=3, max_wait=2.0)
_VERSION_RE = re.compile(r"v?(\d+\.\d+\.\d+\S*)")
_ORG_HINT = "list your orgs with `flyctl orgs list`; create an org token: `flyctl tokens create org"
FLYCTL_TIMEOUT = 10.0
_NETWORK_HINTS = {
    "Fly": "check the network and FLY_API_BASE_URL (default https://api.machines.dev)",
    "Vercel": "check the network and VERCEL_API_URL (default https://api.vercel.com); "
    "a 429 or 5xx is Vercel's side: run doctor again later",
    "GitHub": "check the network and GITHUB_API_URL (default https://api.github.com)",
}


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


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


def check_fly(rt: Runtime, config: Config | None) -> list[Check]:
    unchecked = Check("fly org", SKIP, "no usable Fly token: the org is not checked")
    try:
        token = fly_token(rt.env)
    except InputError as exc:
        return [Check("fly token", FAIL, str(exc), exc.hint), unchecked]
    if not token:
        hint = "create one with `flyctl tokens create org ORG`; in Actions, a repository secret"
        return [Check("fly token", FAIL, "FLY_API_TOKEN is not set (or blank)", hint), unchecked]
    bare = token.rpartition(" ")[2]
    kind = "a macaroon (FlyV1)" if bare.startswith(MACAROON_PREFIXES) else "a Bearer"
    token_check = Check("fly token", PASS, f"FLY_API_TOKEN is set: {kind} token")
    if config is None:
        return [token_check, Check("fly org", SKIP, "no valid config: the org is unknown")]
    org = config.model.app.org
    return [token_check, _guarded("fly org", "Fly", functools.partial(check_org, rt, org))]


def check_org(rt: Runtime, org: str) -> Check:
    try:
        apps = rt.fly().list_apps(org)
    except PreviewctlError as exc:
        status = exc.status if isinstance(exc, ApiError) else None
        if status == 401:
            detail = f"Fly rejected the token: {_api_problem(exc)}"
        elif status in (403, 404):
            detail = (
                f"the token cannot list apps in org {org!r} ({_api_problem(exc)}): the org "
                "slug is wrong, or it is a deploy token (scoped to one app; previewctl "
                "creates an app per PR)"
            )
        else:
            hint = exc.hint or _NETWORK_HINTS["Fly"]
            return Check("fly org", FAIL, f"could not ask Fly: {exc}", hint)
        return Check("fly org", FAIL, detail, f"{_ORG_HINT} {org}`")
    detail = f"the token lists apps in org {org!r} ({len(apps)} now): it can create previews"
    return Check("fly org", PASS, detail)


def _flyctl_version(path: str, env: dict[str, str]) -> tuple[int, str, str]:
    """``flyctl version`` in its own process group: it and all it started end with it."""
    proc = subprocess.Popen(
        [path, "version"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=FLYCTL_TIMEOUT)
    except BaseException:  # a timeout, Ctrl-C or SIGTERM: nothing of it stays behind
        _end_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)
        proc.wait()
        raise
    _end_group(proc)  # what it left running in the background goes too
    return proc.returncode, out, err


def _end_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def check_flyctl(rt: Runtime, config: Config | None) -> list[Check]:
    if config is not None and not config.model.tunnels:
        return [Check("flyctl", SKIP, "no [tunnels] configured: flyctl is not needed")]
    try:
        path = find_flyctl(rt.env)
    except InputError as exc:
        return [Check("flyctl", FAIL, str(exc), exc.hint)]
    # `flyctl version` needs no credentials: it gets none of previewctl's.
    env = {k: v for k, v in flyctl_env(rt.env).items() if k not in TOKEN_VARS}
    try:
        code, out, err = _flyctl_version(path, {**env, "FLY_NO_UPDATE_CHECK": "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        hint = f"run `{path} version` yourself to see why; reinstall flyctl"
        return [Check("flyctl", FAIL, f"{path} did not run: {exc}", hint)]
    tail = (err or out).strip()[-200:]
    if code != 0:
        hint = f"run `{path} version` yourself to see why; reinstall flyctl"
        return [Check("flyctl", FAIL, f"{path} version exited {code}: {tail}", hint)]
    found = _VERSION_RE.search(out)
    if found is None:
        hint = "check that PREVIEWCTL_FLYCTL (or flyctl on PATH) is Fly's flyctl"
        return [Check("flyctl", WARN, f"{path} version gave no version: {tail}", hint)]
    return [Check("flyctl", PASS, f"{path}: version {found.group(1)}")]


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
        domain = template.render(pattern, rt.values(EXAMPLE))
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
        lambda: check_fly(rt, config),
        lambda: check_flyctl(rt, config),
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
