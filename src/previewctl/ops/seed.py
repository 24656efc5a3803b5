"""`seed`: run [[seed]] once the preview (and the Vercel deployments it needs) are ready."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

from previewctl import template
from previewctl.errors import InputError, PreviewctlError
from previewctl.ops import comment
from previewctl.ops.existing import open_preview
from previewctl.ops.preflight import preflight, resolve, skip_without_secrets
from previewctl.ops.runtime import Runtime
from previewctl.ops.session import OpenTunnels, open_tunnels, run_steps
from previewctl.target import Target


def _seed_refs(rt: Runtime) -> tuple[set[str], bool]:
    """Vercel projects and whether tunnels are referenced by the seed steps."""
    projects: set[str] = set()
    tunnels = False
    for step in rt.config.model.seed:
        for found in step.templated():
            for ref in template.refs(found.text):
                if ref.namespace == "vercel":
                    projects.add(ref.parts[1])
                elif ref.namespace == "tunnels":
                    tunnels = True
    return projects, tunnels


def run_seed(rt: Runtime, pr: str | None, branch: str | None) -> dict[str, Any]:
    target = resolve(rt, pr, branch)
    skipped = skip_without_secrets(rt, target)
    if skipped:
        return skipped
    try:
        projects, needs_tunnels = _seed_refs(rt)
    except InputError:  # a bad config: preflight names its problems with the others
        projects, needs_tunnels = set(), False
    target = preflight(
        rt, target, tunnels=needs_tunnels, vercel=bool(projects), seed=True, steps="seed"
    )
    if not rt.config.model.seed:
        rt.reporter.info("no [[seed]] steps configured: nothing to do")
        return {"pr": target.pr, "seeded": []}
    found = open_preview(rt, target)
    target, spec = found.target, found.spec
    values = found.values()
    base_rows = [("Fly app", f"`{found.app}`")]
    with comment.failure_reported(rt, target, found.app, "seed", base_rows):
        deployments = _ready_deployments(rt, target, projects)
        values = dataclasses.replace(values, vercel_urls={**values.vercel_urls, **deployments})
        # Tunnels only when a seed step names one.
        tunnels = (
            open_tunnels(rt, spec, found.instance.id, values)
            if needs_tunnels
            else contextlib.nullcontext(OpenTunnels(None, values))
        )
        with tunnels as opened:
            run_steps(rt, spec, opened.values, section="seed", tunnels=opened.tunnels)
    rows = [("Fly app", f"`{found.app}`"), ("Hostname", f"`{spec.hostname}`")]
    rows += [(f"{n} (branch domain)", u) for n, u in spec.domain_urls().items()]
    rows += [(f"{n} (deployment)", u) for n, u in deployments.items()]
    comment.publish(
        rt,
        target,
        comment.Report("seeded", found.app, f"ready and seeded for PR #{target.pr}", rows),
    )
    rt.reporter.success(f"seeded PR #{target.pr}: {', '.join(s.name for s in spec.seed)}")
    return {
        "pr": target.pr,
        "app": found.app,
        "seeded": [s.name for s in spec.seed],
        "deployments": deployments,
        "timings": {t.name: round(t.seconds, 3) for t in rt.reporter.timings},
    }


def _ready_deployments(rt: Runtime, target: Target, projects: set[str]) -> dict[str, str]:
    """The URL of the branch's newest READY deployment of each project a seed step names."""
    deployments: dict[str, str] = {}
    if not projects:
        return deployments
    client = rt.vercel()
    assert target.branch is not None
    vercel = rt.config.model.vercel
    deadline = time.monotonic() + (vercel.deployment_timeout if vercel else 900.0)
    with rt.reporter.phase("vercel deployments"):
        for name in sorted(projects):
            info = client.get_project(name)
            ready = client.wait_ready(
                info.id, target.branch, deadline=deadline, reporter=rt.reporter
            )
            url = ready.https_url
            if not url:
                raise PreviewctlError(f"deployment {ready.uid} of {name} has no URL")
            deployments[name] = url
            rt.reporter.info(f"{name}: {ready.uid} is READY at {url}")
    return deployments
