"""What a person needs when a machine does not turn healthy: each container's state, the
failing checks' output and the machine's last events, bounded and redacted.

It goes into the error (stderr, ``--json``, the ``::error`` annotation) and so into the
PR comment. Bounded: a few events, a few lines of each check's output, a cap on the
whole. Redacted: the text passes through :func:`redact.scrub` (every secret previewctl
generated or rendered is registered there), as every output does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from previewctl import redact
from previewctl.backends.fly.models import Machine, MachineEvent

MAX_EVENTS = 5
MAX_OUTPUT_LINES = 4
MAX_LINE = 200
MAX_TOTAL = 1800


def _clip(text: str, limit: int = MAX_LINE) -> str:
    text = text.rstrip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _event_line(event: MachineEvent) -> str:
    when = ""
    if event.timestamp:
        when = datetime.fromtimestamp(event.timestamp / 1000, UTC).strftime("%H:%M:%S") + " "
    source = f" ({event.source})" if event.source else ""
    detail = ""
    exit_event = (event.request or {}).get("exit_event")
    if isinstance(exit_event, dict):
        parts = []
        if exit_event.get("exit_code") is not None:
            parts.append(f"exit code {exit_event['exit_code']}")
        if exit_event.get("oom_killed"):
            parts.append("killed: out of memory")
        if exit_event.get("requested_stop"):
            parts.append("stop requested")
        detail = ": " + ", ".join(parts) if parts else ""
    return f"{when}{event.type or '?'} {event.status}{source}{detail}"


def describe(machine: Machine) -> str:
    """The machine's state, containers, failing checks and last events, as lines."""
    lines = [f"  state: {machine.state}"]
    if machine.containers:
        states = ", ".join(f"{c.name} {c.state or 'unknown'}" for c in machine.containers)
        lines.append(f"  containers: {states}")
    if machine.awaiting_check_results:
        lines.append(
            f"  checks: no results yet for its {machine.configured_checks} configured check(s)"
        )
    failing = [c for c in machine.checks if c.status != "passing"]
    if failing:
        lines.append("  failing checks:")
    for check in failing:
        lines.append(f"    {check.name}: {check.status or 'no status'}")
        output = [ln for ln in (check.output or "").splitlines() if ln.strip()]
        lines += [f"      {_clip(ln)}" for ln in output[:MAX_OUTPUT_LINES]]
        if len(output) > MAX_OUTPUT_LINES:
            lines.append(f"      … ({len(output) - MAX_OUTPUT_LINES} more lines)")
    events = sorted(machine.events, key=lambda e: e.timestamp or 0, reverse=True)[:MAX_EVENTS]
    if events:
        lines.append("  last events (newest first):")
        lines += [f"    {_event_line(e)}" for e in events]
    text = redact.scrub("\n".join(_clip(line, MAX_LINE + 10) for line in lines))
    if len(text) > MAX_TOTAL:
        text = text[: MAX_TOTAL - 1].rsplit("\n", 1)[0] + "\n  …"
    return text
