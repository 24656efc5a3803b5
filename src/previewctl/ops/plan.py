"""`plan`: what `up` would do, computed offline from the config alone."""

from __future__ import annotations

import copy
import json
from typing import Any

from previewctl import step_kinds, template
from previewctl.backends import platform
from previewctl.config import Config
from previewctl.errors import ConfigError
from previewctl.ops.preflight import check_all
from previewctl.ops.runtime import Runtime
from previewctl.ops.vercel_ops import render_domain
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


def plan_values(rt: Runtime, target: Target, config: Config) -> template.Values:
    values = rt.values(target, secrets={n: SECRET_SHOWN for n in config.model.secrets.generate})
    tunnels = {}
    for name, tunnel in config.model.tunnels.items():
        tunnels[name] = ("127.0.0.1", tunnel.local_port)
    values.tunnels = tunnels
    vercel = config.model.vercel
    if vercel:
        values.vercel_urls = {
            p: f"https://{render_domain(p, s.domain, values)}"
            for p, s in vercel.projects.items()
            if s.domain
        }
    return values


def build_plan(rt: Runtime, pr: str | None, branch: str | None) -> dict[str, Any]:
    check_all(lambda: rt.config, lambda: resolve_target(pr, branch, rt.env, need_pr=False))
    config = rt.config
    target = resolve_target(pr, branch, rt.env, need_pr=False)
    example = target is None
    if target is None:
        target = Target(pr=EXAMPLE_PR, branch=branch or "feature-branch")
    model = config.model
    missing: set[str] = set()
    fb = _fallback(missing)
    values = plan_values(rt, target, config)

    def render(text: str, _key: str) -> str:
        return template.render(text, values, fallback=fb)

    try:
        machine = template.render_tree(copy.deepcopy(config.machine_template), values, fallback=fb)
        steps = [s.describe(render) for s in model.steps]
        seeds = [s.describe(render) for s in model.seed]
        vercel: dict[str, Any] | None = None
        if model.vercel:
            vercel = {
                "team_id": model.vercel.team_id,
                "redeploy": model.vercel.redeploy,
                "projects": {
                    name: _plan_project(p, values, fb, target.branch)
                    for name, p in model.vercel.projects.items()
                },
            }
    except TemplateError as exc:
        raise ConfigError(str(exc), file=str(config.path)) from None
    app = values.app_name
    services = config.machine_has_services()
    return {
        "config": str(config.path),
        "example_pr": example,
        "pr": target.pr,
        "branch": target.branch,
        "app": {
            "name": app,
            "org": model.app.org,
            "region": model.app.region,
            "hostname": values.app_hostname,
            "ips": list(model.app.ips) if services else [],
        },
        "machine": machine,
        "secrets": {name: SECRET_SHOWN for name in model.secrets.generate},
        "tunnels": {
            name: {
                "remote": platform().tunnel_route(str(app), t.remote_port),
                "local_port": t.local_port or "any free port",
                "check": t.check,
                "login": None
                if t.login is None
                else {k: template.render(v, values, fallback=fb) for k, v in t.login},
            }
            for name, t in model.tunnels.items()
        },
        "steps": steps,
        "seed": seeds,
        "vercel": vercel,
        "gc": {"max_age_seconds": model.gc.max_age, "stop_after_seconds": model.gc.stop_after},
        "unset_env": sorted(missing),
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


def render_plan(plan: dict[str, Any]) -> str:
    lines: list[str] = []
    app = plan["app"]
    head = f"Plan for PR {plan['pr']}"
    if plan["example_pr"]:
        head += " (no PR given: PR 1 shown as an example; pass --pr N)"
    lines.append(head)
    lines.append(f"  config:   {plan['config']}")
    lines.append(f"  branch:   {plan['branch'] or '(unknown)'}")
    lines.append("")
    lines.append(f"Fly app {app['name']} (org {app['org']}, region {app['region']})")
    lines.append(f"  hostname: {app['hostname']}")
    if app["ips"]:
        lines.append(f"  public IPs: {', '.join(app['ips'])}")
    machine = plan["machine"]
    guest = machine.get("guest") or {}
    if guest:
        lines.append(
            f"  machine:  {guest.get('cpu_kind', 'shared')} x{guest.get('cpus', 1)}, "
            f"{guest.get('memory_mb', 256)} MB"
        )
    for c in machine.get("containers") or []:
        lines.append(f"    container {c['name']}: {c['image']}")
    for s in machine.get("services") or []:
        ports = ", ".join(
            f"{p.get('port')}{'/' + '+'.join(p.get('handlers', [])) if p.get('handlers') else ''}"
            for p in s.get("ports", [])
        )
        lines.append(f"    service {s.get('protocol')} :{s.get('internal_port')} <- {ports}")
    if plan["secrets"]:
        lines.append(f"  secrets (generated once per preview): {', '.join(plan['secrets'])}")
    if plan["tunnels"]:
        lines.append("")
        lines.append(f"Tunnels ({platform().tunnel_tool})")
        for name, t in plan["tunnels"].items():
            check = t["check"]
            if t["login"]:
                check += f": logs in to {t['login']['database']} as {t['login']['user']}"
            lines.append(f"  {name}: localhost:{t['local_port']} -> {t['remote']} ({check})")
    for title, key in (("Steps (up, resume)", "steps"), ("Seed (seed)", "seed")):
        if plan[key]:
            lines.append("")
            lines.append(title)
            for step in plan[key]:
                lines += step_kinds.plan_lines(step)
    if plan["vercel"]:
        lines.append("")
        redeploy = "redeploy when vars change" if plan["vercel"]["redeploy"] else "no redeploy"
        lines.append(f"Vercel (branch-scoped preview vars; {redeploy})")
        for name, project in plan["vercel"]["projects"].items():
            lines.append(
                f"  {name}" + (f"  domain {project['domain']}" if project["domain"] else "")
            )
            for k, v in project["env"].items():
                lines.append(f"      {k}={v}")
            for k in project["not_written"]:
                lines.append(f"      {k} renders empty: not written")
    if plan["unset_env"]:
        lines.append("")
        lines.append("Not set in this environment (needed by up): " + ", ".join(plan["unset_env"]))
    lines.append("")
    lines.append("Machine config:")
    lines.append(json.dumps(machine, indent=2))
    return "\n".join(lines)
