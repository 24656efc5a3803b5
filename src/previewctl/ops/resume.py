"""`resume` and `tunnel`: bring a preview back to a laptop, in the foreground."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from contextlib import AbstractContextManager

from previewctl import redact, template, tunnel_state
from previewctl.backends.base import Tunnels
from previewctl.errors import PreviewctlError
from previewctl.ops.envcmd import step_env
from previewctl.ops.lifecycle import Found, find_preview
from previewctl.ops.preflight import preflight, resolve
from previewctl.ops.runtime import Runtime
from previewctl.ops.session import open_tunnels, run_steps
from previewctl.ops.vercel_ops import domain_urls


def _find(rt: Runtime, pr: str) -> Found:
    target = resolve(rt, pr, None)
    preflight(rt, target, tunnels=True, vercel=False)  # tunnel tool, free ports: before a start
    return find_preview(rt, target)


def _start(rt: Runtime, found: Found) -> None:
    backend = rt.backend()
    deadline = time.monotonic() + rt.config.model.timeouts.machine
    with rt.reporter.phase("start machine"):
        backend.start(found.app, found.instance, deadline=deadline)
        ready = backend.wait_ready(
            found.app, found.instance.id, deadline=deadline, reporter=rt.reporter
        )
        rt.reporter.success(f"machine {ready.id} is started and healthy")


def _published(
    rt: Runtime, found: Found, tunnels: Tunnels | None
) -> AbstractContextManager[object]:
    """Tell `previewctl env` where this process's tunnels listen, while they are open."""
    if tunnels is None:
        return contextlib.nullcontext()
    ports = {name: t.port for name, t in tunnels.tunnels.items()}
    return tunnel_state.published(rt.env, found.app, found.target.pr, found.instance.id, ports)


def _hold(rt: Runtime, tunnels: Tunnels | None) -> None:
    """Keep the tunnels up until Ctrl-C; a tunnel that dies ends the command."""
    if tunnels is None:
        return
    rt.reporter.info("tunnels are open; press Ctrl-C to close them")
    tunnels.hold()


def _say_how_to_get_env(
    rt: Runtime, found: Found, values: template.Values, *, json_output: bool
) -> None:
    """Only `env` prints secret values: `resume` names the command, and the keys."""
    env = step_env(rt, values)
    pr = found.target.pr
    command = f'eval "$(previewctl env --pr {pr})"'
    if json_output:
        text = json.dumps({"app": found.app, "pr": pr, "env_keys": sorted(env), "env": command})
        sys.stdout.write(redact.scrub(text) + "\n")
    else:
        sys.stdout.write(f"# the env for local tools ({', '.join(sorted(env)) or 'none'}),\n")
        sys.stdout.write("# pointing at these tunnels, in another shell:\n")
        sys.stdout.write(command + "\n")
        for name, (_, port) in sorted(values.tunnels.items()):
            if not rt.config.model.tunnels[name].local_port:
                sys.stdout.write(
                    f"# tunnel {name} is on localhost:{port} now (local_port = 0); "
                    "`env` points at a fixed local_port only\n"
                )
    sys.stdout.flush()


def run_resume(rt: Runtime, pr: str, *, json_output: bool = False) -> None:
    found = _find(rt, pr)
    _start(rt, found)
    values = rt.values(found.target, secrets=found.secrets)
    values.vercel_urls = domain_urls(rt, values)
    with (
        open_tunnels(rt, found.app, found.instance.id, values) as tunnels,
        _published(rt, found, tunnels),
    ):
        run_steps(
            rt,
            rt.config.model.steps,
            values,
            section="steps",
            tunnels=tunnels,
        )
        rt.reporter.success(f"PR #{found.target.pr} is back: data re-created by the steps")
        _say_how_to_get_env(rt, found, values, json_output=json_output)
        _hold(rt, tunnels)


def run_tunnel(rt: Runtime, pr: str, *, json_output: bool = False) -> None:
    found = _find(rt, pr)
    if not rt.config.model.tunnels:
        raise PreviewctlError("the config has no [tunnels]")
    if found.instance.state != "started":
        raise PreviewctlError(
            f"machine {found.instance.id} is {found.instance.state}",
            hint=f"start it with `previewctl resume --pr {found.target.pr}`",
        )
    values = rt.values(found.target, secrets=found.secrets)
    values.vercel_urls = domain_urls(rt, values)
    with (
        open_tunnels(rt, found.app, found.instance.id, values) as tunnels,
        _published(rt, found, tunnels),
    ):
        if json_output:
            ports = {n: {"host": h, "port": p} for n, (h, p) in values.tunnels.items()}
            sys.stdout.write(redact.scrub(json.dumps({"app": found.app, "tunnels": ports})) + "\n")
            sys.stdout.flush()
        _hold(rt, tunnels)
