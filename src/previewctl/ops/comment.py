"""The one sticky PR comment, and the Actions step summary; both from the same facts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from previewctl.errors import PreviewctlError
from previewctl.ops.runtime import Runtime
from previewctl.reporter import PhaseTiming
from previewctl.target import Target

MARKER = "<!-- previewctl -->"


@dataclass
class Report:
    status: str  # ready | failed | seeded | removed | stopped
    app: str
    headline: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    timings: list[PhaseTiming] = field(default_factory=list)
    error: str | None = None
    # Only an existing comment is updated: nothing happened that a PR needs telling about.
    update_only: bool = False


_ICONS = {"ready": "✅", "seeded": "🌱", "failed": "❌", "removed": "🗑️", "stopped": "⏸️"}


def render_markdown(report: Report, target: Target) -> str:
    lines = [
        MARKER,
        f"### {_ICONS.get(report.status, '')} Preview backend: {report.headline}",
        "",
    ]
    if report.rows:
        lines += ["| | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in report.rows]
        lines.append("")
    if report.error:
        error = report.error.strip()[:2000]
        lines += ["**Error**", "", *_fenced(error), ""]
    if report.status in ("ready", "seeded", "stopped"):
        lines += [
            "<details><summary>Use it from a laptop</summary>",
            "",
            "```sh",
            f"previewctl resume --pr {target.pr}   # start, re-run steps, open tunnels",
            f'eval "$(previewctl env --pr {target.pr})"   # env for local tools',
            "```",
            "</details>",
            "",
        ]
    if report.timings:
        total = sum(t.seconds for t in report.timings)
        lines += ["<details><summary>Timings</summary>", "", "| phase | seconds |", "|---|---:|"]
        lines += [
            f"| {t.name}{'' if t.ok else ' (failed)'} | {t.seconds:.1f} |" for t in report.timings
        ]
        lines += [f"| **total** | **{total:.1f}** |", "", "</details>"]
    return "\n".join(lines) + "\n"


def _fenced(text: str) -> list[str]:
    """A code block that ``text`` cannot close: its fence is longer than any run of
    backticks inside (an error may quote a step's output, or an API's message)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]


@contextmanager
def failure_reported(
    rt: Runtime, target: Target, app: str, command: str, rows: list[tuple[str, str]]
) -> Iterator[None]:
    """On a previewctl error, say so in the summary and the PR comment, then re-raise."""
    try:
        yield
    except PreviewctlError as exc:
        headline = f"`{command}` failed for PR #{target.pr}"
        publish(rt, target, Report("failed", app, headline, rows, error=str(exc)))
        raise


def publish(rt: Runtime, target: Target, report: Report) -> None:
    """Write the step summary and update the PR comment (never fails the command)."""
    if not report.timings:
        report.timings = list(rt.reporter.timings)
    body = render_markdown(report, target)
    rt.actions.append_summary(body.replace(MARKER + "\n", ""))
    if not rt.config.model.github.comment:
        return
    repo = target.repo or rt.repo
    if not (repo and rt.env.get("GITHUB_TOKEN")):
        rt.reporter.detail("no GITHUB_TOKEN/GITHUB_REPOSITORY: PR comment skipped")
        return
    try:
        rt.github().upsert_sticky_comment(
            repo, target.pr, body, marker=MARKER, update_only=report.update_only
        )
    except PreviewctlError as exc:
        rt.reporter.warn(f"could not update the PR comment: {exc}")
