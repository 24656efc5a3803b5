"""`up`: converge the PR's preview to the config, end to end, idempotently."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from previewctl.backends.base import Converged, Instance
from previewctl.ops import comment, deployment
from previewctl.ops.background import BackgroundPhase
from previewctl.ops.desired import desired
from previewctl.ops.early import EarlyFailure, early_row, start_early
from previewctl.ops.preflight import preflight, resolve, skip_without_secrets
from previewctl.ops.recorded import with_recorded_profiles
from previewctl.ops.runtime import Runtime
from previewctl.ops.session import open_tunnels, run_steps
from previewctl.ops.vercel_ops import RedeployLedger, VercelOutcome, apply_vercel
from previewctl.progress import elapsed_text
from previewctl.spec import PreviewSpec
from previewctl.target import Target


def run_up(
    rt: Runtime,
    pr: str | None,
    branch: str | None,
    *,
    no_wait: bool = False,
    profiles: Sequence[str] = (),
) -> dict[str, Any]:
    target = resolve(rt, pr, branch, profiles=profiles, labels=True)
    skipped = skip_without_secrets(rt, target) or _skip_closed(rt, target)
    if skipped:
        return skipped
    if no_wait:
        return _up_early(rt, target)
    target = preflight(rt, target, tunnels=True, vercel=True, steps="steps", want_branch=True)
    target = with_recorded_profiles(rt, target, tunnels=True)
    spec = rt.spec(target)
    app = spec.app
    rt.actions.set_outputs(
        {"app": app, "hostname": spec.hostname, "pr": str(target.pr), "branch": target.branch or ""}
    )
    rows = _first_rows(spec)
    early = EarlyFailure.of(rt.env, app).take()
    if early is not None:
        rt.reporter.warn(f"the early `up --no-wait` of this job failed: {early}; converging now")
        rows.append(early_row(early))
    started = time.monotonic()
    with (
        comment.failure_reported(rt, target, app, "up", rows),
        deployment.failure_recorded(rt, target, app),
    ):
        result, machine, vercel = _converge(rt, spec)
    rows.append(("Machine", f"`{machine.id}` {machine.state}"))
    rows.append(("Hostname", f"`{result.hostname}`"))
    domains = {n: f"https://{i['domain']}" for n, i in vercel.projects.items() if i.get("domain")}
    rows += list(domains.items())
    url = next(iter(domains.values()), f"https://{result.hostname}")
    recorded = deployment.record(rt, target, app, "success", url=url, description=f"{app} ready")
    comment.publish(rt, target, comment.Report("ready", app, f"ready for PR #{target.pr}", rows))
    say_ready(rt, target.pr, result.hostname, domains, time.monotonic() - started)
    say_profile_tunnels(rt, spec)
    return {
        "pr": target.pr,
        "branch": target.branch,
        "app": app,
        "profiles": list(spec.profiles),
        "hostname": result.hostname,
        "machine": {"id": machine.id, "state": machine.state, "region": machine.region},
        "actions": result.actions,
        "vercel": vercel.to_json(),
        "urls": {"hostname": result.hostname, **domains},
        "deployment": recorded,
        "next": next_steps(target.pr),
        "timings": {t.name: round(t.seconds, 3) for t in rt.reporter.timings},
        "seconds": round(time.monotonic() - started, 3),
    }


def _skip_closed(rt: Runtime, target: Target) -> dict[str, Any] | None:
    """On a closed PR's own event (labelled after it was merged, say) `up` makes nothing:
    its preview is `down`'s to remove, never to bring back."""
    if not target.closed:
        return None
    rt.reporter.notice(
        f"PR #{target.pr} is closed: no preview is made for it (`down` removes its preview)",
        title="previewctl skipped a closed PR",
    )
    return {"pr": target.pr, "skipped": "closed"}


def _up_early(rt: Runtime, target: Target) -> dict[str, Any]:
    # Only the Fly token: no tunnel tool, no Vercel token. Bad input that needs no other
    # credential is still found here, before anything changes (the production
    # branch too, when a Vercel token is there to ask).
    has_vercel = bool(rt.env.get("VERCEL_TOKEN"))
    target = preflight(
        rt, target, tunnels=False, vercel=has_vercel, branch_required=True, want_branch=True
    )
    return start_early(rt, with_recorded_profiles(rt, target))


def _first_rows(spec: PreviewSpec) -> list[tuple[str, str]]:
    """The PR comment's rows known before anything is done: the app, the profiles."""
    rows = [("Fly app", f"`{spec.app}` ({spec.region})")]
    if spec.profiles:
        rows.append(("Profiles", ", ".join(f"`{p}`" for p in spec.profiles)))
    return rows


def _converge(rt: Runtime, spec: PreviewSpec) -> tuple[Converged, Instance, VercelOutcome]:
    """The machine, then (at once) its health wait, Vercel, tunnels and the steps."""
    backend = rt.backend()
    app = spec.app
    with rt.reporter.phase("fly machine"):
        deadline = time.monotonic() + rt.config.model.timeouts.machine
        result = backend.converge(desired(spec), deadline=deadline, wait=True)
        what = ", ".join(result.actions) if result.actions else "no change"
        rt.reporter.success(f"machine {result.instance.id} is started ({what})")
    # Tunnels need the machine started, not healthy: open them while Fly's checks
    # settle, and write Vercel (it needs only secrets and hostname) meanwhile too.
    health = BackgroundPhase(
        "machine health",
        rt.reporter,
        lambda reporter: backend.wait_ready(
            app, result.instance.id, deadline=deadline, reporter=reporter
        ),
    ).start()
    values = spec.values(secrets=result.secrets, vercel_urls=spec.domain_urls())
    job: BackgroundPhase[VercelOutcome] | None = None
    if rt.vercel_configured():
        ledger = RedeployLedger.of(backend, app, result.instance)
        job = BackgroundPhase(
            "vercel",
            rt.reporter,
            lambda reporter: apply_vercel(rt, spec, values, reporter=reporter, ledger=ledger),
        ).start()
    interrupted = False
    try:
        with open_tunnels(rt, spec, result.instance.id, values) as opened:
            machine = health.join()
            rt.reporter.success(f"machine {machine.id} is healthy")
            run_steps(rt, spec, opened.values, section="steps", tunnels=opened.tunnels)
    except KeyboardInterrupt:
        # Not waiting for Vercel: a hung write retries for minutes, longer than a
        # runner's cancel grace. Its thread ends with the process; a re-run converges.
        interrupted = True
        raise
    finally:
        vercel = job.join() if job is not None and not interrupted else VercelOutcome()
    return result, machine, vercel


def say_profile_tunnels(rt: Runtime, spec: PreviewSpec) -> None:
    """How to reach what the active profiles added (a UI behind a tunnel, say)."""
    config = rt.config.model.profiles
    for name in spec.profiles:
        for tunnel, t in config[name].tunnels.items():
            rt.reporter.info(
                f"  profile {name}: `previewctl tunnel --pr {spec.pr}` opens {tunnel} on "
                f"localhost:{t.local_port or '(a free port)'}"
            )


def next_steps(pr: int) -> list[str]:
    return [
        f"previewctl tunnel --pr {pr}",
        f'eval "$(previewctl env --pr {pr})"',
        f"previewctl resume --pr {pr}",
    ]


def say_ready(rt: Runtime, pr: int, hostname: str, domains: dict[str, str], seconds: float) -> None:
    """The result line: where the preview is, and what to do with it next."""
    where = ", ".join([hostname, *(f"{url} ({name})" for name, url in domains.items())])
    rt.reporter.success(f"preview for PR #{pr} is ready in {elapsed_text(seconds)}: {where}")
    rt.reporter.info(
        f"  next: `previewctl tunnel --pr {pr}` to reach it from here (then "
        f'`eval "$(previewctl env --pr {pr})"` for local tools); after a stop, '
        f"`previewctl resume --pr {pr}`"
    )
