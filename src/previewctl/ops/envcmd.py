"""`env`: the connection env of the steps, for local tools, pointing at the tunnel ports."""

from __future__ import annotations

import dataclasses

from previewctl import template, tunnel_state
from previewctl.errors import InputError
from previewctl.ops.existing import open_preview
from previewctl.ops.preflight import local_problems, resolve
from previewctl.ops.runtime import Runtime
from previewctl.spec import PreviewSpec


def _used_tunnels(spec: PreviewSpec) -> set[str]:
    """The tunnels the [[steps]] env refers to (only their ports matter to `env`)."""
    used: set[str] = set()
    for step in spec.steps:
        for text in step.env.values():
            used.update(r.parts[1] for r in template.refs(text) if r.namespace == "tunnels")
    return used


def listening_ports(
    rt: Runtime, spec: PreviewSpec, *, say: bool = True, machine: str | None = None
) -> dict[str, tuple[str, int]]:
    """Where each tunnel really listens: a running tunnel/resume's ports, else fixed ones.

    A tunnel with ``local_port = 0`` and no running tunnel has no port yet: bad input
    (exit 2), found before any remote call. ``machine``: the preview's machine, once
    known; a tunnel to another one (a preview made again since) does not count.
    """
    app, pr = spec.app, spec.pr
    live = tunnel_state.find_live(rt.env, app, pr, machine)
    ports: dict[str, tuple[str, int]] = {}
    unknown: list[str] = []
    for name, t in spec.tunnels.items():
        if live is not None and name in live.ports:
            ports[name] = ("127.0.0.1", live.ports[name])
        elif t.local_port:
            ports[name] = ("127.0.0.1", t.local_port)
        elif name in _used_tunnels(spec):
            unknown.append(name)
    if unknown:
        raise InputError(
            f"no `previewctl tunnel --pr {pr}` (or `resume`) is running, and tunnel(s) "
            f"{', '.join(unknown)} have local_port = 0: their port is chosen when they "
            "open, so there is no address to print",
            hint=f"run `previewctl tunnel --pr {pr}` in another shell, then `previewctl env "
            f"--pr {pr}` again; or give [tunnels.{unknown[0]}] a fixed local_port",
        )
    if not say:
        return ports
    for name, (_host, port) in ports.items():
        remote = spec.tunnels[name].remote_port
        how = f"open in pid {live.pid}" if live and name in live.ports else "fixed local_port"
        rt.reporter.info(f"# tunnel {name}: localhost:{port} -> {remote} ({how})")
    if live is None and ports:
        rt.reporter.info(f"# no tunnel is open yet: start one with `previewctl tunnel --pr {pr}`")
    return ports


def run_env(rt: Runtime, pr: str) -> dict[str, str]:
    target = resolve(rt, pr, None)
    local_problems(rt, target, tunnels=False, vercel=False).raise_if_any()
    listening_ports(rt, rt.spec(target), say=False)  # the base's: before any remote call
    found = open_preview(rt, target)
    # with the recorded profiles' tunnels, and only a tunnel to this preview's machine
    tunnels = listening_ports(rt, found.spec, machine=found.instance.id)
    values = dataclasses.replace(found.values(), tunnels=tunnels)
    return found.spec.steps_env(values)
