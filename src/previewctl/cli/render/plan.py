"""`plan` as text: everything `up` would do, the machine config last."""

from __future__ import annotations

import json
from typing import Any

from previewctl import step_kinds
from previewctl.backends import platform


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
    lines += _machine_lines(machine)
    if plan["secrets"]:
        lines.append(f"  secrets (generated once per preview): {', '.join(plan['secrets'])}")
    lines += _profile_lines(plan.get("profiles") or {})
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
        lines += _vercel_lines(plan["vercel"])
    if plan["unset_env"]:
        lines.append("")
        lines.append("Not set in this environment (needed by up): " + ", ".join(plan["unset_env"]))
    lines.append("")
    lines.append("Machine config:")
    lines.append(json.dumps(machine, indent=2))
    return "\n".join(lines)


def _profile_lines(profiles: dict[str, Any]) -> list[str]:
    """What each active profile adds (merged into the sections below, too)."""
    if not profiles:
        return []
    lines = ["", "Profiles (merged into the machine, tunnels, steps and Vercel vars below)"]
    for name, p in profiles.items():
        lines.append(f"  {name}" + (f": {p['description']}" if p["description"] else ""))
        parts = [
            ("containers", ", ".join(p["containers"])),
            ("guest at least", _guest_text(p["guest"])),
            ("ports", ", ".join(str(n) for n in p["ports"])),
            ("secrets", ", ".join(f"{k}={v}" for k, v in p["secrets"].items())),
            ("tunnels", ", ".join(p["tunnels"])),
            ("vercel", "; ".join(f"{k}: {', '.join(v)}" for k, v in p["vercel"].items())),
            ("steps (after the base's)", ", ".join(p["steps"])),
            ("labels", ", ".join(p["labels"])),
        ]
        lines += [f"    {label}: {text}" for label, text in parts if text]
    return lines


def _guest_text(guest: dict[str, Any] | None) -> str:
    if not guest:
        return ""
    return ", ".join(f"{k} {v}" for k, v in guest.items())


def _machine_lines(machine: dict[str, Any]) -> list[str]:
    lines: list[str] = []
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
    return lines


def _vercel_lines(vercel: dict[str, Any]) -> list[str]:
    redeploy = "redeploy when vars change" if vercel["redeploy"] else "no redeploy"
    lines = ["", f"Vercel (branch-scoped preview vars; {redeploy})"]
    for name, project in vercel["projects"].items():
        lines.append(f"  {name}" + (f"  domain {project['domain']}" if project["domain"] else ""))
        lines += [f"      {k}={v}" for k, v in project["env"].items()]
        lines += [f"      {k} renders empty: not written" for k in project["not_written"]]
    return lines
