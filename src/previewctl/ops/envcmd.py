"""`env`: the connection env of the steps, for local tools, pointing at the tunnel ports."""

from __future__ import annotations

import json
import shlex

from previewctl import template
from previewctl.errors import ConfigError
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


def run_env(rt: Runtime, pr: str) -> dict[str, str]:
    target = resolve(rt, pr, None)
    local_problems(rt, target, tunnels=False, vercel=False).raise_if_any()
    found = find_preview(rt, target)
    values = rt.values(found.target, secrets=found.secrets)
    values.vercel_urls = domain_urls(rt, values)
    tunnels: dict[str, tuple[str, int]] = {}
    for name, t in rt.config.model.tunnels.items():
        port = t.local_port or t.remote_port
        tunnels[name] = ("127.0.0.1", port)
        note = "" if t.local_port else " (local_port = 0: the real port is chosen at start)"
        rt.reporter.info(f"# tunnel {name}: localhost:{port} -> {t.remote_port}{note}")
    values.tunnels = tunnels
    if tunnels:
        rt.reporter.info(f"# open them with: previewctl tunnel --pr {target.pr}")
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
