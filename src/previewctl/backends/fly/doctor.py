"""`doctor`'s checks of the Fly side: the token, the org it can reach, and flyctl.

Read-only: one app listing and ``flyctl version``, nothing created, changed or removed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping

from previewctl.backends.base import FAIL, PASS, SKIP, WARN, Check
from previewctl.backends.fly.client import build_fly_client
from previewctl.backends.fly.settings import MACAROON_PREFIXES
from previewctl.backends.fly.tunnels import find_flyctl, flyctl_env
from previewctl.clients.http import RetryPolicy
from previewctl.config import Config
from previewctl.errors import ApiError, InputError, PreviewctlError
from previewctl.process import Child
from previewctl.tokens import TOKEN_VARS, fly_token

_VERSION_RE = re.compile(r"v?(\d+\.\d+\.\d+\S*)")
_ORG_HINT = "list your orgs with `flyctl orgs list`; create an org token: `flyctl tokens create org"
FLYCTL_TIMEOUT = 10.0
NETWORK_HINT = "check the network and FLY_API_BASE_URL (default https://api.machines.dev)"


def _api_problem(exc: PreviewctlError) -> str:
    return exc.api_message if isinstance(exc, ApiError) else str(exc)


def check_fly(
    env: Mapping[str, str],
    config: Config | None,
    *,
    retry: RetryPolicy,
    on_request: Callable[[str], None] | None = None,
) -> list[Check]:
    unchecked = Check("fly org", SKIP, "no usable Fly token: the org is not checked")
    try:
        token = fly_token(env)
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
    try:
        return [token_check, check_org(env, org, retry=retry, on_request=on_request)]
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # the answer's shape
        detail = f"Fly answered with something that is not its API's JSON ({type(exc).__name__})"
        hint = f"a proxy or captive portal in between? {NETWORK_HINT}; -v shows the calls"
        return [token_check, Check("fly org", FAIL, detail, hint)]


def check_org(
    env: Mapping[str, str],
    org: str,
    *,
    retry: RetryPolicy,
    on_request: Callable[[str], None] | None = None,
) -> Check:
    try:
        apps = build_fly_client(env, retry=retry, on_request=on_request).list_apps(org)
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
            hint = exc.hint or NETWORK_HINT
            return Check("fly org", FAIL, f"could not ask Fly: {exc}", hint)
        return Check("fly org", FAIL, detail, f"{_ORG_HINT} {org}`")
    detail = f"the token lists apps in org {org!r} ({len(apps)} now): it can create previews"
    return Check("fly org", PASS, detail)


def _flyctl_version(path: str, env: dict[str, str]) -> tuple[int, str, str]:
    """``flyctl version`` in its own process group: it and all it started end with it."""
    out: list[str] = []
    err: list[str] = []
    child = Child.start(
        [path, "version"],
        name="flyctl-version",
        env=env,
        on_stdout=out.append,
        on_stderr=err.append,
    )
    try:
        code = child.wait(FLYCTL_TIMEOUT)
    finally:  # a timeout, Ctrl-C or SIGTERM: nothing of it stays behind
        child.end(grace=0.0)
    if code is None:
        raise subprocess.TimeoutExpired([path, "version"], FLYCTL_TIMEOUT)
    return code, "\n".join(out), "\n".join(err)


def check_flyctl(env: Mapping[str, str], config: Config | None) -> list[Check]:
    if config is not None and not config.model.tunnels:
        return [Check("flyctl", SKIP, "no [tunnels] configured: flyctl is not needed")]
    try:
        path = find_flyctl(env)
    except InputError as exc:
        return [Check("flyctl", FAIL, str(exc), exc.hint)]
    # `flyctl version` needs no credentials: it gets none of previewctl's.
    bare = {k: v for k, v in flyctl_env(env).items() if k not in TOKEN_VARS}
    try:
        code, out, err = _flyctl_version(path, {**bare, "FLY_NO_UPDATE_CHECK": "1"})
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
