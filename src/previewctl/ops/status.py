"""`status`: what previews exist, what state they are in, and what they cost.

Needs only Fly credentials. The listing is ops/inventory.py's, shared with `gc`.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from previewctl import bookkeeping, template
from previewctl.backends.base import Instance, PreviewBackend
from previewctl.errors import PreviewctlError
from previewctl.managed import NOT_MANAGED, UNKNOWN
from previewctl.ops.inventory import AppScan, scan_previews
from previewctl.ops.preflight import check_all
from previewctl.ops.runtime import Runtime
from previewctl.spec import PreviewSpec
from previewctl.target import Target, parse_pr

# ---- status ------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def machine_row(
    scan: AppScan, machine: Instance, now: datetime, backend: PreviewBackend
) -> dict[str, Any]:
    info = bookkeeping.PreviewInfo.of(machine)
    cost = backend.cost(machine, now)
    per_day, so_far = cost.per_day, cost.so_far
    return {
        "pr": scan.pr,
        "app": scan.app,
        "managed": True,
        "standing": "managed",
        "machine": machine.id,
        "state": machine.state,
        "region": machine.region,
        "size": machine.size,
        "branch": info.branch,
        "profiles": list(info.profiles),
        "created_at": _iso(info.created_at),
        "age_seconds": _age(now, info.created_at),
        "last_up": _iso(info.last_up),
        "last_up_seconds": _age(now, info.last_up),
        "cost_per_day": round(per_day, 4),
        "cost_so_far": round(so_far, 4),
    }


def _unmanaged_row(scan: AppScan) -> dict[str, Any]:
    return {
        "pr": scan.pr,
        "app": scan.app,
        "managed": False,
        "standing": UNKNOWN if scan.unknown else NOT_MANAGED,
        "machine": None,
        "state": None,
        "reason": scan.not_managed_reason,
        "cost_per_day": 0.0,
        "cost_so_far": 0.0,
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    managed = [r for r in rows if r["managed"]]
    states: dict[str, int] = {}
    for row in managed:
        states[row["state"]] = states.get(row["state"], 0) + 1
    return {
        "previews": len({r["app"] for r in managed}),
        "machines": len(managed),
        "not_managed": len([r for r in rows if r.get("standing") == NOT_MANAGED]),
        "unknown": len([r for r in rows if r.get("standing") == UNKNOWN]),
        "states": states,
        "cost_per_day": round(sum(r["cost_per_day"] for r in managed), 4),
        "cost_so_far": round(sum(r["cost_so_far"] for r in managed), 4),
    }


def run_status(rt: Runtime, pr: str | None, *, now: datetime | None = None) -> dict[str, Any]:
    """Every preview in the org, or (with ``pr``) one preview in detail. No secrets."""
    check_all(lambda: parse_pr(pr) if pr is not None else None, lambda: rt.config, rt.backend)
    number = parse_pr(pr) if pr is not None else None
    config = rt.config
    if number is not None:
        config.app_name(number)
    backend = rt.backend()
    now = now or datetime.now(UTC)
    if number is not None:
        return _detail(rt, number, now, backend)
    with rt.reporter.phase("list previews"):
        scans = scan_previews(rt)
    rows: list[dict[str, Any]] = []
    for scan in scans:
        if scan.gone:
            continue
        if not scan.managed:
            rows.append(_unmanaged_row(scan))
            continue
        for machine in sorted(scan.managed_machines, key=lambda m: (m.created_at or "", m.id)):
            rows.append(machine_row(scan, machine, now, backend))
    return {
        "mode": "list",
        "org": config.model.app.org,
        "generated_at": _iso(now),
        "rows": rows,
        "totals": _totals(rows),
        "prices": backend.prices(),
    }


def _vercel_hosts(spec: PreviewSpec, branch: str | None) -> dict[str, str]:
    """The branch domains of the preview's Vercel projects, those that can be told."""
    values = dataclasses.replace(spec.values(), branch=branch)
    hosts: dict[str, str] = {}
    for name, project in spec.vercel_projects.items():
        if not project.domain:
            continue
        try:
            hosts[name] = "https://" + template.render(project.domain, values)
        except template.TemplateError:
            continue  # e.g. ${branch} while the branch is not known
    return hosts


def _detail(rt: Runtime, pr: int, now: datetime, backend: PreviewBackend) -> dict[str, Any]:
    spec = rt.spec(Target(pr=pr, branch=None))
    app = spec.app
    verdict = backend.find(pr)
    if verdict is None:
        raise PreviewctlError(
            f"PR #{pr} has no preview (no Fly app {app})",
            hint=f"create it with `previewctl up --pr {pr}`",
        )
    for machine in verdict.machines:
        bookkeeping.register_secrets(machine)
    scan = AppScan(app, pr, machines=list(verdict.machines), verdict=verdict)
    data: dict[str, Any] = {
        "mode": "detail",
        "pr": pr,
        "app": app,
        "generated_at": _iso(now),
        "managed": scan.managed,
        "standing": verdict.standing.value,
        "reason": scan.not_managed_reason,
        "hostname": spec.hostname,
        "machines": [],
        "prices": backend.prices(),
    }
    rows: list[dict[str, Any]] = []
    if scan.managed:
        for machine in sorted(scan.managed_machines, key=lambda m: (m.created_at or "", m.id)):
            row = machine_row(scan, machine, now, backend)
            row["containers"] = [
                {"name": c.name, "image": c.image, "state": c.state} for c in machine.containers
            ]
            row["checks"] = [
                {
                    "name": c.name,
                    "status": c.status,
                    "output": (c.output or "").strip().replace("\n", " ")[:200] or None,
                }
                for c in machine.checks
            ]
            row["healthy"] = machine.healthy
            rows.append(row)
    data["machines"] = rows
    data["branch"] = scan.branch
    data["profiles"] = rows[0]["profiles"] if rows else []
    data["vercel"] = _vercel_hosts(spec, scan.branch)
    data["totals"] = _totals(rows)
    return data
