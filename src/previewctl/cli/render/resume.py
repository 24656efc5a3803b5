"""What `resume` and `tunnel` print on stdout before they hold the tunnels open.

Only `env` prints secret values: `resume` names the command that does, and the keys.
"""

from __future__ import annotations

import json

from previewctl.ops.resume import Foreground


def render_resumed(held: Foreground, *, json_output: bool) -> str:
    if json_output:
        body = {"app": held.app, "pr": held.pr, "env_keys": held.env_keys, "env": held.env_command}
        return json.dumps(body) + "\n"
    lines = [
        f"# the env for local tools ({', '.join(held.env_keys) or 'none'}),",
        "# pointing at these tunnels, in another shell:",
        held.env_command,
    ]
    for name in held.any_port:
        lines.append(
            f"# tunnel {name} is on localhost:{held.tunnels[name][1]} now (local_port = 0); "
            "`env` points there while this runs"
        )
    return "\n".join(lines) + "\n"


def render_tunneled(held: Foreground, *, json_output: bool) -> str | None:
    """Only ``--json`` prints: where each tunnel listens."""
    if not json_output:
        return None
    ports = {name: {"host": host, "port": port} for name, (host, port) in held.tunnels.items()}
    return json.dumps({"app": held.app, "tunnels": ports}) + "\n"
