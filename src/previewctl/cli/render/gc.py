"""`gc` as text: what the sweep did to each preview and Vercel branch, and why."""

from __future__ import annotations

from rich.table import Table

from previewctl.cli.render.tables import plain_row, render_text
from previewctl.ops.gc_rules import GcResult, age_text, totals_line


def render_gc(result: GcResult) -> str:
    parts: list[Table | str] = []
    title = "gc (dry run)" if result.dry_run else "gc"
    table = Table(title=title, title_justify="left")
    for column in ("PR", "app", "state", "age", "action", "reason"):
        table.add_column(column)
    for row in result.rows:
        reason = row.reason if row.ok else f"{row.reason}: FAILED: {row.error}"
        plain_row(
            table,
            str(row.pr) if row.pr is not None else "—",
            row.app,
            row.state,
            age_text(row.age_seconds),
            row.action if row.ok else f"{row.action} (failed)",
            reason,
        )
    parts.append(table if result.rows else "no apps named like previews")
    if result.vercel_rows:
        vtable = Table(title="Vercel", title_justify="left")
        for column in ("project", "branch", "action", "reason"):
            vtable.add_column(column)
        for vrow in result.vercel_rows:
            plain_row(
                vtable,
                vrow.project,
                vrow.branch,
                vrow.action if vrow.ok else f"{vrow.action} (failed)",
                vrow.reason if vrow.ok else f"{vrow.reason}: FAILED: {vrow.error}",
            )
        parts.append(vtable)
    parts.append(totals_line(result))
    parts.extend(f"note: {note}" for note in result.notes)
    return render_text(*parts)
