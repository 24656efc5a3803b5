"""`gc`: destroy previews nobody needs any more, and sweep orphaned Vercel vars.

Safety rules (DESIGN.md): only an app the one rule of previewctl/managed.py calls managed is
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

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from previewctl.backends.base import Instance, PreviewBackend
from previewctl.config_sections import as_max_age
from previewctl.errors import ApiError, ConfigError, InputError, PreviewctlError
from previewctl.ops.gc_rules import (
    DESTROY,
    KEEP,
    SKIP,
    STOP,
    UNDECIDED,
    UNKNOWN,
    GcResult,
    GcRow,
    PrState,
    age_text,
    decide,
    states_of,
    totals_line,
)
from previewctl.ops.gc_vercel import sweep_vercel
from previewctl.ops.inventory import AppScan, bounded_map, scan_app, scan_previews
from previewctl.ops.preflight import check_all
from previewctl.ops.runtime import Runtime
from previewctl.repository import UNKNOWN_REPO

# Fly allows 100 app deletions a minute. A bucket of BURST plus RATE per second stays
# under that in any 60 s window: 10 + 60 × 1.5 = 100.
DELETE_RATE = 1.5
DELETE_BURST = 10.0


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


# ---- the sweep ---------------------------------------------------------------------------


@dataclass
class _Sweep:
    rt: Runtime
    backend: PreviewBackend
    dry_run: bool
    now: datetime
    max_age: float
    stop_after: float | None
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
            state=states_of(scan),
            age_seconds=None if last is None else round((self.now - last).total_seconds(), 1),
            action=SKIP,
            reason="",
            branch=scan.branch if managed else None,
            cost_per_day=self._cost_per_day(scan) if managed else 0.0,
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

    def _cost_per_day(self, scan: AppScan) -> float:
        return round(sum(self.backend.cost(m, self.now).per_day for m in scan.managed_machines), 4)

    def _destroy(self, scan: AppScan, row: GcRow) -> None:
        row.saved_per_day = row.cost_per_day
        if self.dry_run:
            row.action = f"would {DESTROY}"
            return
        self.pacer.take()
        if not self._still_managed(scan, row):
            return
        existed = self.backend.destroy(scan.app)
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
        fresh = scan_app(
            self.backend,
            config,
            scan.app,
            scan.pr,
            org=config.model.app.org,
            repo=self.rt.repository or UNKNOWN_REPO,
        )
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
            if not self.backend.stop_if_idle(scan.app, machine):
                # Someone (an `up`, a `resume`) is working on it right now: not idle.
                row.action = KEEP
                row.reason = f"machine {machine.id} is leased by another run; left running"
                break
            stopped += self._stop_saving(machine)
        row.saved_per_day = round(stopped, 4)
        if row.action == STOP:
            self.rt.reporter.info(f"stopped {scan.app}: {row.reason}")

    def _stop_saving(self, machine: Instance) -> float:
        return self.backend.cost(machine, self.now).stop_saves_per_day


def _max_age(rt: Runtime, max_age: str | None) -> float:
    if max_age is None:
        config = rt.config
        try:
            return as_max_age(config.model.gc.max_age)
        except ValueError as exc:
            key = "gc.max_age"
            raise ConfigError(
                str(exc), file=str(config.path), key=key, line=config.line_of(key)
            ) from None
    try:
        return as_max_age(max_age)
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
        rt.backend,
        lambda: rt.github() if rt.repo else None,
        lambda: rt.vercel() if rt.vercel_configured() else None,
    )
    max_age_seconds = _max_age(rt, max_age)
    config = rt.config
    backend = rt.backend()
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
        scans = [s for s in scan_previews(rt, sweep=True) if not s.gone]
        rt.reporter.info(f"{len(scans)} app(s) named like previews in {config.model.app.org}")

    sweep = _Sweep(
        rt=rt,
        backend=backend,
        dry_run=dry_run,
        now=now or datetime.now(UTC),
        max_age=max_age_seconds,
        stop_after=gc_config.stop_after,
        open_prs=open_prs,
        pacer=pacer or Pacer(DELETE_RATE, DELETE_BURST),
        lookup_error=result.lookup_error,
    )
    with rt.reporter.phase("destroy" if not dry_run else "plan (dry run)"):
        result.rows = bounded_map(sweep.handle, scans, gc_config.concurrency)

    if vercel is not None:
        with rt.reporter.phase("vercel"):
            result.vercel_rows = sweep_vercel(rt, vercel, result, open_branches, dry_run)

    rt.actions.append_summary(render_summary(result))
    return result


# ---- the step summary --------------------------------------------------------------------


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
                f"| {row.pr} | `{row.app}` | {row.state} | {age_text(row.age_seconds)} | "
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
    lines.append(totals_line(result))
    for note in result.notes:
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"
