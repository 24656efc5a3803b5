"""`plan`: what `up` would do, computed offline from the config alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from previewctl import selection, template
from previewctl.config import Config
from previewctl.errors import ConfigError, Problems
from previewctl.ops.runtime import Runtime
from previewctl.spec import PreviewSpec
from previewctl.target import Target, resolve_target
from previewctl.template import Ref, TemplateError

EXAMPLE_PR = 1
SECRET_SHOWN = "***"  # noqa: S105 - the mask, not a secret


def _fallback(env_missing: set[str]) -> Any:
    def fallback(ref: Ref) -> str:
        if ref.namespace == "env":
            env_missing.add(ref.parts[1])
            return f"<unset ${{env.{ref.parts[1]}}}>"
        if ref.namespace == "vercel":
            return f"<{ref.parts[1]} deployment URL>"
        return f"<{ref}>"

    return fallback


def plan_values(spec: PreviewSpec) -> template.Values:
    """Masked secrets, tunnels at their local ports, Vercel projects at their domains."""
    return spec.values(
        secrets={name: SECRET_SHOWN for name in spec.secrets.names},
        tunnels={name: ("127.0.0.1", t.local_port) for name, t in spec.tunnels.items()},
        vercel_urls=spec.domain_urls(),
    )


def _target(
    rt: Runtime, pr: str | None, branch: str | None, profiles: Sequence[str]
) -> tuple[Target, bool]:
    """The target (an example PR when none is given) with the profiles the run chose
    (no recorded set: plan makes no request); every problem at once."""
    problems = Problems()
    config: Config | None = None
    target: Target | None = None
    chosen: tuple[str, ...] | None = None
    with problems.check():
        config = rt.config
    with problems.check():
        target = resolve_target(pr, branch, rt.env, need_pr=False)
    if config is not None:
        labels = target.labels if target is not None else None
        with problems.check():
            chosen = selection.choose(config.model.profiles, rt.env, flags=profiles, labels=labels)
    problems.raise_if_any()
    example = target is None
    if target is None:
        target = Target(pr=EXAMPLE_PR, branch=branch or "feature-branch")
    return dataclasses.replace(target, profiles=chosen or ()), example


def build_plan(
    rt: Runtime, pr: str | None, branch: str | None, profiles: Sequence[str] = ()
) -> dict[str, Any]:
    target, example = _target(rt, pr, branch, profiles)
    config = rt.config
    spec = rt.spec(target)
    missing: set[str] = set()
    fb = _fallback(missing)
    values = plan_values(spec)
    try:
        rendered = _rendered(rt, spec, values, fb)
    except TemplateError as exc:
        raise ConfigError(str(exc), file=str(config.path)) from None
    model = config.model
    return {
        "config": str(config.path),
        "example_pr": example,
        "pr": target.pr,
        "branch": target.branch,
        "app": {
            "name": spec.app,
            "org": spec.org,
            "region": spec.region,
            "hostname": spec.hostname,
            "ips": list(spec.ips) if spec.has_services else [],
        },
        **rendered,
        "secrets": {name: SECRET_SHOWN for name in spec.secrets.names},
        "profiles": _plan_profiles(rt, spec),
        "tunnels": _plan_tunnels(rt, spec, values, fb),
        "gc": {"max_age_seconds": model.gc.max_age, "stop_after_seconds": model.gc.stop_after},
        "unset_env": sorted(missing),
    }


def _plan_profiles(rt: Runtime, spec: PreviewSpec) -> dict[str, Any]:
    """Each active profile and what it adds (its parts are in the rest of the plan)."""
    defined = rt.config.profiles
    out: dict[str, Any] = {}
    for name in spec.profiles:
        profile = defined[name]
        section = profile.section
        out[name] = {
            "description": section.description,
            "labels": list(section.labels),
            "machine": section.machine,
            "containers": [c["name"] for c in profile.machine.get("containers") or []],
            "guest": profile.machine.get("guest"),
            "ports": list(section.ports),
            "secrets": {s: SECRET_SHOWN for s in section.secrets},
            "tunnels": list(section.tunnels),
            "vercel": {p: sorted(env) for p, env in section.vercel_env.items()},
            "steps": [s.name for s in section.steps],
        }
    return out


def _rendered(rt: Runtime, spec: PreviewSpec, values: template.Values, fb: Any) -> dict[str, Any]:
    """The machine config, the steps, the seed and the Vercel projects, rendered."""

    def render(text: str, _key: str) -> str:
        return template.render(text, values, fallback=fb)

    vercel_section = rt.config.model.vercel
    vercel: dict[str, Any] | None = None
    if vercel_section:
        vercel = {
            "team_id": vercel_section.team_id,
            "redeploy": vercel_section.redeploy,
            "projects": {
                name: _plan_project(p, values, fb, spec.branch)
                for name, p in spec.vercel_projects.items()
            },
        }
    return {
        "machine": template.render_tree(dict(spec.machine_template), values, fallback=fb),
        "steps": [s.describe(render) for s in spec.steps],
        "seed": [s.describe(render) for s in spec.seed],
        "vercel": vercel,
    }


def _plan_tunnels(
    rt: Runtime, spec: PreviewSpec, values: template.Values, fb: Any
) -> dict[str, Any]:
    return {
        name: {
            "remote": rt.platform.tunnel_route(spec.app, t.remote_port),
            "local_port": t.local_port or "any free port",
            "check": t.check,
            "login": None
            if t.login is None
            else {k: template.render(v, values, fallback=fb) for k, v in t.login},
        }
        for name, t in spec.tunnels.items()
    }


def _plan_project(
    project: Any, values: template.Values, fb: Any, branch: str | None
) -> dict[str, Any]:
    env = {k: template.render(v, values, fallback=fb) for k, v in project.env.items()}
    return {
        "domain": template.render(project.domain, values, fallback=fb) if project.domain else None,
        "env": {k: v for k, v in env.items() if v != ""},
        "not_written": sorted(k for k, v in env.items() if v == ""),  # rendered empty
        "target": ["preview"],
        "git_branch": branch,
    }
