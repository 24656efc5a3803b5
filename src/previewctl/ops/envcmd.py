"""`env`: the connection env of the steps, for local tools, pointing at the tunnel ports."""

from __future__ import annotations

import json
import shlex

from previewctl import template, tunnel_state
from previewctl.errors import ConfigError, InputError
from previewctl.ops.lifecycle import find_preview
from previewctl.ops.preflight import local_problems, resolve
from previewctl.ops.runtime import Runtime
from previewctl.ops.vercel_ops import domain_urls
from previewctl.template import TemplateError


def step_env(rt: Runtime, values: template.Values) -> dict[str, str]:
    """The union of the [[steps]] env (a later step wins on a shared key)."""
    env: dict[str, str] = {}
    for index, step in enumerate(rt.config.model.steps):
        for key, text in step.env.items():
            try:
                env[key] = template.render(text, values)
            except TemplateError as exc:
                raise ConfigError(str(exc), key=f"steps[{index}].env.{key}") from None
    return env


def _used_tunnels(rt: Runtime) -> set[str]:
    """The tunnels the [[steps]] env refers to (only their ports matter to `env`)."""
    used: set[str] = set()
    for step in rt.config.model.steps:
        for text in step.env.values():
            used.update(r.parts[1] for r in template.refs(text) if r.namespace == "tunnels")
    return used


def listening_ports(rt: Runtime, app: str, pr: int) -> dict[str, tuple[str, int]]:
    """Where each tunnel really listens: a running tunnel/resume's ports, else fixed ones.

    A tunnel with ``local_port = 0`` and no running tunnel has no port yet: bad input
    (exit 2), found before any remote call.
    """
    live = tunnel_state.find_live(rt.env, app)
    ports: dict[str, tuple[str, int]] = {}
    unknown: list[str] = []
    for name, t in rt.config.model.tunnels.items():
        if live is not None and name in live.ports:
            ports[name] = ("127.0.0.1", live.ports[name])
        elif t.local_port:
            ports[name] = ("127.0.0.1", t.local_port)
        elif name in _used_tunnels(rt):
            unknown.append(name)
    if unknown:
        raise InputError(
            f"no `previewctl tunnel --pr {pr}` (or `resume`) is running, and tunnel(s) "
            f"{', '.join(unknown)} have local_port = 0: their port is chosen when they "
            "open, so there is no address to print",
            hint=f"run `previewctl tunnel --pr {pr}` in another shell, then `previewctl env "
            f"--pr {pr}` again; or give [tunnels.{unknown[0]}] a fixed local_port",
        )
    for name, (_host, port) in ports.items():
        remote = rt.config.model.tunnels[name].remote_port
        how = f"open in pid {live.pid}" if live and name in live.ports else "fixed local_port"
        rt.reporter.info(f"# tunnel {name}: localhost:{port} -> {remote} ({how})")
    if live is None and ports:
        rt.reporter.info(f"# no tunnel is open yet: start one with `previewctl tunnel --pr {pr}`")
    return ports


def run_env(rt: Runtime, pr: str) -> dict[str, str]:
    target = resolve(rt, pr, None)
    local_problems(rt, target, tunnels=False, vercel=False).raise_if_any()
    app = rt.config.app_name(target.pr)
    tunnels = listening_ports(rt, app, target.pr)  # before any remote call
    found = find_preview(rt, target)
    values = rt.values(found.target, secrets=found.secrets)
    values.vercel_urls = domain_urls(rt, values)
    values.tunnels = tunnels
    return step_env(rt, values)


def render_env(env: dict[str, str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(env, indent=2, sort_keys=True) + "\n"
    lines = []
    for key in sorted(env):
        value = env[key]
        if fmt == "dotenv":
            escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'{key}="{escaped}"')
        else:
            lines.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"
