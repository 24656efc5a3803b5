"""`gc`: destroy previews nobody needs any more, and sweep orphaned Vercel vars.

Safety rules (DESIGN.md): only an app the one rule of ops/managed.py calls managed is
ever touched; everything else is a "not managed" row, and an app with a machine whose
config Fly cannot show is an "undecided" row. gc destroys only what it KNOWS is done:
a PR is taken for closed, merged or missing only when GitHub said so. When its state
cannot be learned (the lookup failed: 403, a rate limit, 5xx after retries, a lost
connection), the preview is kept as "undecided" unless age alone condemns it, and the
sweep exits 1 once everything decidable is done. Without a GitHub repository
configured, PR state is unknown by choice: then only age decides, and that is exit 0.

Calls grow linearly with the number of previews: one app listing, one machine listing
per matching app, one paginated listing of open PRs, and per preview to destroy one
`GET pull` (closed, merged or missing, and a last check that it was not reopened), one
more machine listing right before the deletion (the rule, judged again: a machine put
into the app since makes it someone else's) and one `DELETE app`. Work runs on
``[gc] concurrency`` threads, and app deletions are paced below Fly's documented 100
per minute.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from previewctl import template
from previewctl.clients.fly import FlyClient, Machine
from previewctl.clients.vercel import VercelClient
from previewctl.durations import format_duration, parse_duration
from previewctl.errors import ApiError, ConflictError, InputError, PreviewctlError
from previewctl.ops import status
from previewctl.ops.preflight import check_all
from previewctl.ops.runtime import Runtime
from previewctl.ops.status import AppScan, bounded_map, plain_row, render_text
from previewctl.pricing import Prices, hourly_cost, machine_hourly
from previewctl.vercel_sync import managed_vars_by_branch, remove_branch_env

# Fly allows 100 app deletions a minute. A bucket of BURST plus RATE per second stays
# under that in any 60 s window: 10 + 60 × 1.5 = 100.
DELETE_RATE = 1.5
DELETE_BURST = 10.0
STOP_LEASE_TTL = 60

DESTROY = "destroy"
STOP = "stop"
KEEP = "keep"
SKIP = "skip"
UNDECIDED = "undecided"  # kept because gc could not learn what it needs; exit 1


class Pacer:
    """A token bucket shared by the worker threads: ``take()`` blocks until allowed."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._clock = clock
        self._sleep = sleep
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)


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


# ---- deciding ----------------------------------------------------------------------------


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


def _states(scan: AppScan) -> str:
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


# ---- the sweep ---------------------------------------------------------------------------


@dataclass
class _Sweep:
    rt: Runtime
    fly: FlyClient
    dry_run: bool
    now: datetime
    max_age: float
    stop_after: float | None
    prices: Prices
    open_prs: set[int] | None
    pacer: Pacer
    lookup_error: str | None = None

    def pr_state(self, pr: int) -> PrState:
        if self.lookup_error is not None:
            return PrState(UNDECIDED, f"open PRs could not be listed: {self.lookup_error}")
        if self.open_prs is None:
            return UNKNOWN
        if pr in self.open_prs:
            return PrState("open")
        # Not in the listing: ask once more, for the reason and in case it was opened or
        # reopened since. An answer we do not get is not "closed".
        repo = self.rt.repo
        assert repo is not None
        try:
            pull = self.rt.github().get_pull(repo, pr)
        except (ApiError, ValueError) as exc:  # ValueError: a body that is not a PR
            self.rt.reporter.warn(f"GitHub: PR #{pr}: {exc}; its preview is kept", title="gc")
            return PrState(UNDECIDED, str(exc))
        if pull is None:
            return PrState("missing")
        if pull.is_open:
            return PrState("reopened")
        return PrState("merged" if pull.merged else "closed")

    def handle(self, scan: AppScan) -> GcRow:
        managed = scan.managed
        last = scan.last_activity() if managed else None
        row = GcRow(
            pr=scan.pr,
            app=scan.app,
            state=_states(scan),
            age_seconds=None if last is None else round((self.now - last).total_seconds(), 1),
            action=SKIP,
            reason="",
            branch=scan.branch if managed else None,
            cost_per_day=round(
                sum(machine_hourly(m, self.prices) for m in scan.managed_machines) * 24, 4
            )
            if managed
            else 0.0,
        )
        try:
            pr_state = self.pr_state(scan.pr) if managed else UNKNOWN
            action, row.reason = decide(
                scan, pr_state, now=self.now, max_age=self.max_age, stop_after=self.stop_after
            )
            row.action = action
            if scan.error is not None:
                row.ok = False
                row.error = scan.error
            if action == DESTROY:
                self._destroy(scan, row)
            elif action == STOP:
                self._stop(scan, row)
        except PreviewctlError as exc:
            row.ok = False
            row.error = str(exc)
            self.rt.reporter.error(f"{scan.app}: {exc}", title="gc")
        return row

    def _destroy(self, scan: AppScan, row: GcRow) -> None:
        row.saved_per_day = row.cost_per_day
        if self.dry_run:
            row.action = f"would {DESTROY}"
            return
        self.pacer.take()
        if not self._still_managed(scan, row):
            return
        existed = self.fly.delete_app(scan.app)
        if not existed:
            row.reason += " (already gone)"
        self.rt.reporter.info(f"destroyed {scan.app}: {row.reason}")

    def _still_managed(self, scan: AppScan, row: GcRow) -> bool:
        """Judge the app again right before deleting it.

        The verdict may be minutes old (GitHub round-trips, the deletion pacer), and a
        machine someone put into the app since makes it theirs: deleting the app would
        take that machine with it.
        """
        config = self.rt.config
        fresh = status.scan_app(self.fly, config, scan.app, scan.pr, org=config.model.app.org)
        if fresh.gone:
            row.reason += " (already gone)"
            return False
        if fresh.managed:
            return True
        row.action = UNDECIDED if fresh.unknown else SKIP
        why = "not judged again before the deletion" if fresh.error else "changed since judged"
        row.reason = f"{why}: {fresh.not_managed_reason}; nothing done"
        row.saved_per_day = 0.0
        if fresh.error is not None:
            row.ok, row.error = False, fresh.error
        return False

    def _stop(self, scan: AppScan, row: GcRow) -> None:
        started = [m for m in scan.managed_machines if m.state == "started"]
        saved = sum(self._stop_saving(m) for m in started)
        if self.dry_run:
            row.action = f"would {STOP}"
            row.saved_per_day = round(saved, 4)
            return
        stopped = 0.0
        for machine in started:
            try:
                lease = self.fly.acquire_lease(scan.app, machine.id, ttl=STOP_LEASE_TTL)
            except ConflictError:
                # Someone (an `up`, a `resume`) is working on it right now: not idle.
                row.action = KEEP
                row.reason = f"machine {machine.id} is leased by another run; left running"
                break
            try:
                self.fly.stop_machine(scan.app, machine.id, nonce=lease.nonce)
            finally:
                # a lease we fail to release expires on its own after STOP_LEASE_TTL
                with contextlib.suppress(ApiError):
                    self.fly.release_lease(scan.app, machine.id, lease.nonce)
            stopped += self._stop_saving(machine)
        row.saved_per_day = round(stopped, 4)
        if row.action == STOP:
            self.rt.reporter.info(f"stopped {scan.app}: {row.reason}")

    def _stop_saving(self, machine: Machine) -> float:
        guest = machine.config.get("guest")
        running = hourly_cost(guest, "started", self.prices)
        return (running - hourly_cost(guest, "stopped", self.prices)) * 24


def _max_age(rt: Runtime, max_age: str | None) -> float:
    if max_age is None:
        return rt.config.model.gc.max_age
    try:
        return parse_duration(max_age)
    except ValueError as exc:
        raise InputError(f"--max-age: {exc}") from None


def _open_pulls(rt: Runtime, result: GcResult) -> tuple[set[int] | None, set[str] | None]:
    """The open PRs and their branches; None when not known (said in ``result``)."""
    repo = rt.repo
    if not repo:
        result.notes.append(
            "PR state unknown (GITHUB_REPOSITORY is not set): previews were judged by "
            "age only, and Vercel vars of branches without an open PR were not swept"
        )
        rt.reporter.warn(result.notes[-1], title="gc")
        return None, None
    try:
        pulls = rt.github().list_open_pulls(repo)
    except (ApiError, ValueError) as exc:  # ValueError: an answer that is not a listing
        result.lookup_error = str(exc)
        result.pr_state_known = False
        result.notes.append(
            f"open PRs could not be listed ({exc}): previews were judged by age only, the "
            "others are undecided, and Vercel vars were swept only for destroyed previews"
        )
        rt.reporter.error(result.notes[-1], title="gc")
        return None, None
    rt.reporter.info(f"{len(pulls)} open PR(s) in {repo}")
    return {p.number for p in pulls}, {p.head_ref for p in pulls}


def run_gc(
    rt: Runtime,
    max_age: str | None,
    dry_run: bool,
    *,
    now: datetime | None = None,
    pacer: Pacer | None = None,
) -> GcResult:
    """Sweep the org; see the module docstring. Failures are rows, not exceptions."""
    # Everything that is bad input is found here, before the first request, all at once.
    check_all(
        lambda: _max_age(rt, max_age),
        rt.fly,
        lambda: rt.github() if rt.repo else None,
        lambda: rt.vercel() if rt.vercel_configured() else None,
    )
    max_age_seconds = _max_age(rt, max_age)
    config = rt.config
    fly = rt.fly()
    repo = rt.repo
    if repo:
        rt.github()  # GITHUB_REPOSITORY without GITHUB_TOKEN is a setup error, not "unknown"
    vercel = rt.vercel() if rt.vercel_configured() else None
    gc_config = config.model.gc
    result = GcResult(
        dry_run=dry_run, max_age_seconds=max_age_seconds, pr_state_known=repo is not None
    )
    if dry_run:
        result.notes.append("dry run: nothing was changed")

    with rt.reporter.phase("find previews"):
        open_prs, open_branches = _open_pulls(rt, result)
        scans = [s for s in status.scan_previews(rt) if not s.gone]
        rt.reporter.info(f"{len(scans)} app(s) named like previews in {config.model.app.org}")

    sweep = _Sweep(
        rt=rt,
        fly=fly,
        dry_run=dry_run,
        now=now or datetime.now(UTC),
        max_age=max_age_seconds,
        stop_after=gc_config.stop_after,
        prices=Prices.from_config(config.model.pricing),
        open_prs=open_prs,
        pacer=pacer or Pacer(DELETE_RATE, DELETE_BURST),
        lookup_error=result.lookup_error,
    )
    with rt.reporter.phase("destroy" if not dry_run else "plan (dry run)"):
        result.rows = bounded_map(sweep.handle, scans, gc_config.concurrency)

    if vercel is not None:
        with rt.reporter.phase("vercel"):
            result.vercel_rows = _sweep_vercel(rt, vercel, result, open_branches, dry_run)

    rt.actions.append_summary(render_summary(result))
    return result


# ---- Vercel ------------------------------------------------------------------------------


def domain_pattern(
    domain_template: str, branch: str, env: dict[str, str]
) -> re.Pattern[str] | None:
    """A regex matching the domains the template makes for ``branch`` (any PR).

    None when the template cannot be resolved (an unset ``${env.NAME}``): then no domain
    is recognised as previewctl's, and none is removed.
    """
    out: list[str] = []
    for piece in template.parse(domain_template):
        if isinstance(piece, str):
            out.append(re.escape(piece))
        elif piece.parts == ("pr",):
            out.append(r"[1-9][0-9]{0,9}")
        elif piece.parts == ("branch",):
            out.append(re.escape(branch))
        elif piece.namespace == "env" and env.get(piece.parts[1]):
            out.append(re.escape(env[piece.parts[1]]))
        else:
            return None
    return re.compile("^" + "".join(out) + r"\Z", re.IGNORECASE)


def _sweep_vercel(
    rt: Runtime,
    client: VercelClient,
    result: GcResult,
    open_branches: set[str] | None,
    dry_run: bool,
) -> list[GcVercelRow]:
    """Vars and domains of branches whose preview is gone or whose PR is not open.

    A branch that still has a kept preview is never swept.
    """
    vercel = rt.config.model.vercel
    assert vercel is not None
    destroyed = {r.branch for r in result.rows if r.removes and r.branch}
    kept = {r.branch for r in result.rows if r.branch and not r.removes}
    env = dict(rt.env)
    rows: list[GcVercelRow] = []

    def why(branch: str) -> str | None:
        if branch in kept:
            return None
        if branch in destroyed:
            return "preview destroyed"
        if open_branches is not None and branch not in open_branches:
            return "no open PR for the branch"
        return None

    for project, section in vercel.projects.items():
        try:
            by_branch = managed_vars_by_branch(client, project)
            domains_by_branch: dict[str, list[str]] = {}
            if section.domain:
                for domain in client.list_domains(project):
                    if domain.git_branch:
                        pattern = domain_pattern(section.domain, domain.git_branch, env)
                        if pattern is not None and pattern.match(domain.name):
                            domains_by_branch.setdefault(domain.git_branch, []).append(domain.name)
        except PreviewctlError as exc:
            rows.append(
                GcVercelRow(project, "*", [], [], "skip", "could not list", False, str(exc))
            )
            continue
        targets = sorted(b for b in set(by_branch) | set(domains_by_branch) if why(b) is not None)

        def clean(
            branch: str,
            project: str = project,
            by_branch: dict[str, Any] = by_branch,
            domains_by_branch: dict[str, list[str]] = domains_by_branch,
        ) -> GcVercelRow:
            keys = sorted(v.key for v in by_branch.get(branch, []))
            domains = sorted(domains_by_branch.get(branch, []))
            row = GcVercelRow(project, branch, keys, domains, "", why(branch) or "")
            if dry_run:
                row.action = "would " + _removal(len(keys), len(domains))
                return row
            try:
                if keys:
                    row.vars = remove_branch_env(client, project, branch, rt.reporter)
                for name in domains:
                    client.remove_domain(project, name)
                row.action = _removal(len(row.vars), len(domains))
                rt.reporter.info(f"{project}: {row.action} of branch {branch} ({row.reason})")
            except PreviewctlError as exc:
                row.action = "remove"
                row.ok = False
                row.error = str(exc)
                rt.reporter.error(f"{project}, branch {branch}: {exc}", title="gc")
            return row

        rows.extend(bounded_map(clean, targets, rt.config.model.gc.concurrency))
    if open_branches is None and vercel.projects:
        result.notes.append(
            "Vercel: only the branches of destroyed previews were swept (PR state unknown)"
        )
    return rows


def _removal(n_vars: int, n_domains: int) -> str:
    text = f"remove {n_vars} var{'s' if n_vars != 1 else ''}"
    if n_domains:
        text += f" + {n_domains} domain{'s' if n_domains != 1 else ''}"
    return text


# ---- rendering ---------------------------------------------------------------------------


def _age(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(seconds)


def _totals_line(result: GcResult) -> str:
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
            _age(row.age_seconds),
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
    parts.append(_totals_line(result))
    parts.extend(f"note: {note}" for note in result.notes)
    return render_text(*parts)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_summary(result: GcResult) -> str:
    """The Markdown written to the Actions step summary."""
    lines = [f"### previewctl gc{' (dry run)' if result.dry_run else ''}", ""]
    if result.rows:
        lines += ["| PR | app | state | age | action | reason |", "|---|---|---|---|---|---|"]
        for row in result.rows:
            action = row.action if row.ok else f"{row.action} (**failed**)"
            reason = row.reason if row.ok else f"{row.reason}: {row.error}"
            lines.append(
                f"| {row.pr} | `{row.app}` | {row.state} | {_age(row.age_seconds)} | "
                f"{_md(action)} | {_md(reason)} |"
            )
        lines.append("")
    if result.vercel_rows:
        lines += ["| Vercel project | branch | action | reason |", "|---|---|---|---|"]
        for vrow in result.vercel_rows:
            action = vrow.action if vrow.ok else f"{vrow.action} (**failed**)"
            reason = vrow.reason if vrow.ok else f"{vrow.reason}: {vrow.error}"
            lines.append(
                f"| {_md(vrow.project)} | `{_md(vrow.branch)}` | {_md(action)} | {_md(reason)} |"
            )
        lines.append("")
    lines.append(_totals_line(result))
    for note in result.notes:
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"
