"""What gc decides about each preview, and how the sweep's result reads: kept pure.

:func:`decide` is the heart of gc's safety (property-tested): it sees one app's scan
and what GitHub said about its PR, and names the action and why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from previewctl.durations import format_duration
from previewctl.ops.inventory import AppScan

DESTROY = "destroy"
STOP = "stop"
KEEP = "keep"
SKIP = "skip"
UNDECIDED = "undecided"  # kept because gc could not learn what it needs; exit 1


@dataclass
class GcRow:
    """One app the sweep looked at, and what it did about it."""

    pr: int | None
    app: str
    state: str
    age_seconds: float | None
    action: str
    reason: str
    ok: bool = True
    error: str | None = None
    branch: str | None = None
    cost_per_day: float = 0.0
    saved_per_day: float = 0.0

    @property
    def removes(self) -> bool:
        """Destroyed (or would be, in a dry run) and not failed."""
        return self.ok and self.action.endswith(DESTROY)


@dataclass
class GcVercelRow:
    """One branch of one Vercel project whose previewctl vars (and domains) go."""

    project: str
    branch: str
    vars: list[str]
    domains: list[str]
    action: str
    reason: str
    ok: bool = True
    error: str | None = None


@dataclass
class GcResult:
    dry_run: bool
    max_age_seconds: float
    pr_state_known: bool
    rows: list[GcRow] = field(default_factory=list)
    vercel_rows: list[GcVercelRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    lookup_error: str | None = None  # the open PRs could not be listed

    @property
    def failed(self) -> bool:
        return any(not r.ok for r in self.rows) or any(not r.ok for r in self.vercel_rows)

    @property
    def undecided(self) -> int:
        return self.count(UNDECIDED)

    @property
    def exit_code(self) -> int:
        """0 when every row was decided and done; 1 when something failed or is undecided
        (everything decidable is still done)."""
        return 1 if self.failed or self.undecided or self.lookup_error else 0

    @property
    def saved_per_day(self) -> float:
        return round(sum(r.saved_per_day for r in self.rows if r.ok), 4)

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.ok and r.action.endswith(action))

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "max_age_seconds": self.max_age_seconds,
            "pr_state_known": self.pr_state_known,
            "failed": self.failed,
            "complete": self.exit_code == 0,
            "lookup_error": self.lookup_error,
            "saved_per_day": self.saved_per_day,
            "totals": {
                "destroyed": self.count(DESTROY),
                "stopped": self.count(STOP),
                "kept": self.count(KEEP),
                "skipped": self.count(SKIP),
                "undecided": self.undecided,
                "failed": sum(1 for r in self.rows if not r.ok),
                "vercel_vars": sum(len(r.vars) for r in self.vercel_rows if r.ok),
                "vercel_domains": sum(len(r.domains) for r in self.vercel_rows if r.ok),
            },
            "rows": [asdict(r) for r in self.rows],
            "vercel": [asdict(r) for r in self.vercel_rows],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class PrState:
    """What GitHub says about a PR: open, reopened, closed, merged or missing; "unknown"
    when no repository is configured; "undecided" when asking failed (``error`` says how).
    """

    kind: str
    error: str | None = None

    @property
    def known_not_open(self) -> bool:
        return self.kind in ("closed", "merged", "missing")

    def describe(self, pr: int) -> str:
        if self.kind == UNDECIDED:
            return f"PR #{pr} state could not be learned ({self.error})"
        return {
            "closed": f"PR #{pr} closed",
            "merged": f"PR #{pr} merged",
            "missing": f"PR #{pr} does not exist",
            "open": f"PR #{pr} open",
            "reopened": f"PR #{pr} open (not in the open-PR listing yet, or reopened)",
        }.get(self.kind, "PR state unknown")


UNKNOWN = PrState("unknown")


def states_of(scan: AppScan) -> str:
    return ",".join(sorted({m.state for m in scan.machines})) or "no machines"


def decide(
    scan: AppScan,
    pr_state: PrState,
    *,
    now: datetime,
    max_age: float,
    stop_after: float | None,
) -> tuple[str, str]:
    """(action, reason) for one app; the heart of gc's safety, kept pure."""
    reason = scan.not_managed_reason
    if scan.verdict is not None and scan.verdict.unknown:
        return UNDECIDED, f"{reason}; nothing done"
    if reason is not None:
        return SKIP, reason
    last = scan.last_activity()
    age = None if last is None else (now - last).total_seconds()
    if pr_state.known_not_open:
        return DESTROY, pr_state.describe(scan.pr)
    # "older than": exactly max_age is still kept. Age alone decides, whatever the PR.
    if age is not None and age > max_age:
        unsure = {"open": "", "reopened": "", UNDECIDED: " (PR state could not be learned)"}
        return DESTROY, (
            f"last up {format_duration(age)} ago, older than max age {format_duration(max_age)}"
            + unsure.get(pr_state.kind, " (PR state unknown)")
        )
    when = "never up" if age is None else f"last up {format_duration(age)} ago"
    if pr_state.kind == UNDECIDED:
        return UNDECIDED, f"{pr_state.describe(scan.pr)}, {when}; kept"
    started = [m for m in scan.managed_machines if m.state == "started"]
    if stop_after is not None and started and age is not None and age > stop_after:
        return (
            STOP,
            f"idle: last up {format_duration(age)} ago (stop after {format_duration(stop_after)})",
        )
    return KEEP, f"{pr_state.describe(scan.pr)}, {when}"


def age_text(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(seconds)


def totals_line(result: GcResult) -> str:
    verb = "would destroy" if result.dry_run else "destroyed"
    stop_verb = "would stop" if result.dry_run else "stopped"
    failed = sum(1 for r in result.rows if not r.ok)
    parts = [
        f"{verb} {result.count(DESTROY)}",
        f"{stop_verb} {result.count(STOP)}",
        f"kept {result.count(KEEP)}",
        f"undecided {result.undecided} (kept)",
        f"not managed {result.count(SKIP)}",
    ]
    if failed:
        parts.append(f"FAILED {failed}")
    saving = "would save" if result.dry_run else "saves"
    return ", ".join(parts) + f"; {saving} ≈ ${result.saved_per_day:,.2f}/day"
