"""`status`: what previews exist, what state they are in, and what they cost.

Needs only Fly credentials. Also home of the read side that `gc` shares: listing the
org's apps that look like previews and classifying each as managed or not.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from rich.text import Text

from previewctl import template
from previewctl.clients.fly import FlyClient, Machine
from previewctl.config import Config
from previewctl.durations import format_duration
from previewctl.errors import ApiError, NotFoundError, PreviewctlError
from previewctl.ops import managed, preview
from previewctl.ops.managed import NOT_MANAGED, UNKNOWN, Verdict
from previewctl.ops.preflight import check_all
from previewctl.ops.runtime import Runtime
from previewctl.pricing import Prices, describe_size, estimate
from previewctl.target import parse_pr

T = TypeVar("T")
R = TypeVar("R")


# ---- bounded concurrency ---------------------------------------------------------------


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on at most ``workers`` threads, in order.

    ``fn`` is expected to catch its own errors. On Ctrl-C the calls not yet started
    are cancelled (the running ones finish their request).
    """
    todo = list(items)
    if not todo:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))))
    futures: list[Future[R]] = []
    try:
        futures = [pool.submit(fn, item) for item in todo]
        return [f.result() for f in futures]
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


# ---- finding previews ------------------------------------------------------------------


@dataclass
class AppScan:
    """One app whose name matches the template, and the one rule's verdict on it."""

    app: str
    pr: int
    machines: list[Machine] = field(default_factory=list)
    error: str | None = None
    gone: bool = False
    verdict: Verdict | None = None  # None when its machines could not be listed

    @property
    def managed(self) -> bool:
        return self.verdict is not None and self.verdict.managed

    @property
    def unknown(self) -> bool:
        """Not decidable: a machine's config cannot be seen, or the machines listed."""
        return self.error is not None or (self.verdict is not None and self.verdict.unknown)

    @property
    def managed_machines(self) -> list[Machine]:
        return list(self.machines) if self.managed else []

    @property
    def not_managed_reason(self) -> str | None:
        """Why previewctl must leave this app alone; None when it is ours."""
        if self.error is not None:
            return f"machines could not be listed: {self.error}"
        if self.gone:
            return "app is gone"
        assert self.verdict is not None
        return None if self.verdict.managed else self.verdict.reason

    @property
    def survivor(self) -> Machine | None:
        managed = self.managed_machines
        return preview.pick_survivor(managed) if managed else None

    @property
    def branch(self) -> str | None:
        survivor = self.survivor
        return preview.PreviewInfo.of(survivor).branch if survivor else None

    def last_activity(self) -> datetime | None:
        """The newest `up` (else creation) of the app's managed machines."""
        times: list[datetime] = []
        for machine in self.managed_machines:
            info = preview.PreviewInfo.of(machine)
            when = info.last_up or info.created_at
            if when is not None:
                times.append(when)
        return max(times) if times else None


def preview_apps(rt: Runtime) -> list[tuple[str, int, str]]:
    """(app, PR, org) of every app in the org whose name the app-name template can make.

    The org is the one the listing names for the app, when it names one: a listing
    asked for our org that shows another's app does not make it ours. An app listed
    twice is one app.
    """
    pattern = rt.config.name_pattern
    org = rt.config.model.app.org
    found: dict[str, tuple[str, int, str]] = {}
    for app in rt.fly().list_apps(org):
        match = pattern.match(app.name)
        listed = app.organization.slug if app.organization else None
        if match and app.name not in found:
            found[app.name] = (app.name, int(match.group("pr")), listed or org)
    return sorted(found.values(), key=lambda item: (item[1], item[0]))


def scan_app(fly: FlyClient, config: Config, app: str, pr: int, *, org: str | None) -> AppScan:
    """All live machines of ``app`` (unfiltered: foreign machines must be seen too)."""
    try:
        machines = fly.list_machines(app)
    except NotFoundError:
        return AppScan(app, pr, gone=True)
    except ApiError as exc:
        return AppScan(app, pr, error=str(exc))
    return _scanned(config, app, pr, org, machines)


def _scanned(
    config: Config, app: str, pr: int, org: str | None, machines: list[Machine]
) -> AppScan:
    for machine in machines:
        preview.register_secrets(machine)  # nothing printed can carry them
    verdict = managed.judge(config, app, org=org, machines=machines, pr=pr)
    return AppScan(app, pr, machines=list(verdict.machines), verdict=verdict)


def scan_previews(rt: Runtime) -> list[AppScan]:
    """Every app the org's listing names like a preview (so in the org), judged."""
    fly, config = rt.fly(), rt.config
    return bounded_map(
        lambda item: scan_app(fly, config, item[0], item[1], org=item[2]),
        preview_apps(rt),
        config.model.gc.concurrency,
    )


# ---- status ------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def machine_row(scan: AppScan, machine: Machine, now: datetime, prices: Prices) -> dict[str, Any]:
    info = preview.PreviewInfo.of(machine)
    per_day, so_far = estimate(machine, now, prices)
    return {
        "pr": scan.pr,
        "app": scan.app,
        "managed": True,
        "standing": "managed",
        "machine": machine.id,
        "state": machine.state,
        "region": machine.region,
        "size": describe_size(machine.config.get("guest")),
        "branch": info.branch,
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


def _prices_json(prices: Prices) -> dict[str, float]:
    return {
        "shared_cpu_hour": prices.shared_cpu_hour,
        "performance_cpu_hour": prices.performance_cpu_hour,
        "memory_gb_hour": prices.memory_gb_hour,
        "rootfs_gb_month": prices.rootfs_gb_month,
        "rootfs_gb": prices.rootfs_gb,
    }


def run_status(rt: Runtime, pr: str | None, *, now: datetime | None = None) -> dict[str, Any]:
    """Every preview in the org, or (with ``pr``) one preview in detail. No secrets."""
    check_all(lambda: parse_pr(pr) if pr is not None else None, lambda: rt.config, rt.fly)
    number = parse_pr(pr) if pr is not None else None
    config = rt.config
    if number is not None:
        config.app_name(number)
    rt.fly()
    now = now or datetime.now(UTC)
    prices = Prices.from_config(config.model.pricing)
    if number is not None:
        return _detail(rt, number, now, prices)
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
            rows.append(machine_row(scan, machine, now, prices))
    return {
        "mode": "list",
        "org": config.model.app.org,
        "generated_at": _iso(now),
        "rows": rows,
        "totals": _totals(rows),
        "prices": _prices_json(prices),
    }


def _vercel_hosts(rt: Runtime, pr: int, branch: str | None) -> dict[str, str]:
    vercel = rt.config.model.vercel
    if not vercel:
        return {}
    values = template.Values(pr=pr, branch=branch, env=rt.env)
    hosts: dict[str, str] = {}
    for name, project in vercel.projects.items():
        if not project.domain:
            continue
        try:
            hosts[name] = "https://" + template.render(project.domain, values)
        except template.TemplateError:
            continue  # e.g. ${branch} while the branch is not known
    return hosts


def _detail(rt: Runtime, pr: int, now: datetime, prices: Prices) -> dict[str, Any]:
    app = rt.config.app_name(pr)
    verdict = managed.inspect(rt.fly(), rt.config, pr)
    if verdict is None:
        raise PreviewctlError(
            f"PR #{pr} has no preview (no Fly app {app})",
            hint=f"create it with `previewctl up --pr {pr}`",
        )
    for machine in verdict.machines:
        preview.register_secrets(machine)
    scan = AppScan(app, pr, machines=list(verdict.machines), verdict=verdict)
    data: dict[str, Any] = {
        "mode": "detail",
        "pr": pr,
        "app": app,
        "generated_at": _iso(now),
        "managed": scan.managed,
        "standing": verdict.standing.value,
        "reason": scan.not_managed_reason,
        "hostname": f"{app}.fly.dev",
        "machines": [],
        "prices": _prices_json(prices),
    }
    rows: list[dict[str, Any]] = []
    if scan.managed:
        for machine in sorted(scan.managed_machines, key=lambda m: (m.created_at or "", m.id)):
            row = machine_row(scan, machine, now, prices)
            images = {
                str(c.get("name")): str(c.get("image", ""))
                for c in machine.config.get("containers") or []
                if isinstance(c, dict)
            }
            states = {c.name: c.state for c in machine.containers}
            row["containers"] = [
                {"name": name, "image": image, "state": states.get(name)}
                for name, image in images.items()
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
    data["vercel"] = _vercel_hosts(rt, pr, scan.branch)
    data["totals"] = _totals(rows)
    return data


# ---- rendering ---------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def _ago(seconds: float | None) -> str:
    return "—" if seconds is None else f"{format_duration(seconds)} ago"


def plain_row(table: Table, *cells: str) -> None:
    """Cells are data, not rich markup: an error's ``[request id …]`` must print as is."""
    table.add_row(*(Text(cell) for cell in cells))


def render_text(*parts: Table | str) -> str:
    """Tables and plain lines as text, 120 columns wide, without trailing blanks."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, no_color=True, highlight=False)
    for part in parts:
        if isinstance(part, str):
            console.print(part, markup=False)
        else:
            console.print(part)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _render(table: Table, lines: list[str]) -> str:
    return render_text(table, *lines)


def render_status(data: dict[str, Any]) -> str:
    if data.get("mode") == "detail":
        return _render_detail(data)
    table = Table(title=Text(f"previews in {data.get('org')}"), title_justify="left")
    for column in ("PR", "app", "machine", "state", "size", "age", "last up"):
        table.add_column(column, no_wrap=column != "state")
    table.add_column("$/day", justify="right")
    table.add_column("$ so far", justify="right")
    unmanaged: list[str] = []
    unknown: list[str] = []
    for row in data["rows"]:
        if not row["managed"]:
            standing = row.get("standing") or NOT_MANAGED
            plain_row(table, str(row["pr"]), row["app"], "—", standing, "", "", "", "", "")
            into = unknown if standing == UNKNOWN else unmanaged
            into.append(f"{row['app']}: {row['reason'] or standing}")
            continue
        plain_row(
            table,
            str(row["pr"]),
            row["app"],
            row["machine"],
            row["state"],
            row["size"],
            format_duration(row["age_seconds"]) if row["age_seconds"] is not None else "—",
            _ago(row["last_up_seconds"]),
            _money(row["cost_per_day"]),
            _money(row["cost_so_far"]),
        )
    totals = data["totals"]
    states = ", ".join(f"{n} {s}" for s, n in sorted(totals["states"].items())) or "none"
    lines = [
        f"total: {totals['previews']} preview(s) ({states}); "
        f"{_money(totals['cost_per_day'])}/day, {_money(totals['cost_so_far'])} so far "
        "(estimates; see previewctl.pricing)"
    ]
    if unmanaged:
        lines.append(
            f"{len(unmanaged)} app(s) look like previews but are not managed by previewctl "
            "(gc leaves them alone):"
        )
        lines.extend(f"  {line}" for line in unmanaged)
    if unknown:
        lines.append(
            f"{len(unknown)} app(s) could not be judged (nothing acts on them until Fly "
            "shows them again):"
        )
        lines.extend(f"  {line}" for line in unknown)
    return _render(table, lines)


def _render_detail(data: dict[str, Any]) -> str:
    table = Table(
        title=Text(f"PR #{data['pr']}: {data['app']}"), title_justify="left", show_header=False
    )
    table.add_column("key", style="bold")
    table.add_column("value")
    if not data["managed"]:
        plain_row(table, "status", data.get("reason") or NOT_MANAGED)
        return _render(table, [])
    plain_row(table, "branch", data.get("branch") or "—")
    plain_row(table, "hostname", data["hostname"])
    for project, url in sorted(data.get("vercel", {}).items()):
        plain_row(table, f"vercel {project}", url)
    for machine in data["machines"]:
        plain_row(table, "machine", f"{machine['machine']} ({machine['region'] or '?'})")
        plain_row(table, "  state", machine["state"] + (" (healthy)" if machine["healthy"] else ""))
        plain_row(table, "  size", machine["size"])
        age = machine["age_seconds"]
        plain_row(table, "  created", f"{machine['created_at']} ({_ago(age)})")
        plain_row(
            table, "  last up", f"{machine['last_up'] or '—'} ({_ago(machine['last_up_seconds'])})"
        )
        for container in machine["containers"]:
            plain_row(
                table,
                f"  container {container['name']}",
                f"{container['state'] or 'unknown'} ({container['image']})",
            )
        for check in machine["checks"]:
            output = (
                f": {check['output']}" if check["output"] and check["status"] != "passing" else ""
            )
            status = check["status"] or "no status"
            plain_row(table, f"  check {check['name']}", status + output)
        plain_row(
            table,
            "  cost",
            f"{_money(machine['cost_per_day'])}/day, {_money(machine['cost_so_far'])} so far",
        )
    totals = data["totals"]
    return _render(
        table,
        [f"total: {_money(totals['cost_per_day'])}/day, {_money(totals['cost_so_far'])} so far"],
    )
