"""`status` as text: the list of previews, or one preview in detail."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from previewctl.cli.render.tables import money, plain_row, render_text
from previewctl.durations import format_duration
from previewctl.managed import NOT_MANAGED, UNKNOWN


def _ago(seconds: float | None) -> str:
    return "—" if seconds is None else f"{format_duration(seconds)} ago"


def _render(table: Table, lines: list[str]) -> str:
    return render_text(table, *lines)


def render_status(data: dict[str, Any]) -> str:
    if data.get("mode") == "detail":
        return _render_detail(data)
    table = Table(title=Text(f"previews in {data.get('org')}"), title_justify="left")
    for column in ("PR", "app", "machine", "state", "size", "profiles", "age", "last up"):
        table.add_column(column, no_wrap=column != "state")
    table.add_column("$/day", justify="right")
    table.add_column("$ so far", justify="right")
    unmanaged: list[str] = []
    unknown: list[str] = []
    for row in data["rows"]:
        if not row["managed"]:
            standing = row.get("standing") or NOT_MANAGED
            plain_row(table, str(row["pr"]), row["app"], "—", standing, "", "", "", "", "", "")
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
            ", ".join(row.get("profiles") or []) or "—",
            format_duration(row["age_seconds"]) if row["age_seconds"] is not None else "—",
            _ago(row["last_up_seconds"]),
            money(row["cost_per_day"]),
            money(row["cost_so_far"]),
        )
    totals = data["totals"]
    states = ", ".join(f"{n} {s}" for s, n in sorted(totals["states"].items())) or "none"
    lines = [
        f"total: {totals['previews']} preview(s) ({states}); "
        f"{money(totals['cost_per_day'])}/day, {money(totals['cost_so_far'])} so far "
        "(estimates; see previewctl.backends.fly.pricing)"
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
    plain_row(table, "profiles", ", ".join(data.get("profiles") or []) or "none")
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
            f"{money(machine['cost_per_day'])}/day, {money(machine['cost_so_far'])} so far",
        )
    totals = data["totals"]
    return _render(
        table,
        [f"total: {money(totals['cost_per_day'])}/day, {money(totals['cost_so_far'])} so far"],
    )
