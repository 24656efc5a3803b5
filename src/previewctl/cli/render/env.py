"""`env` as shell, dotenv or JSON text (the only output that carries secret values)."""

from __future__ import annotations

import json
import shlex


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
