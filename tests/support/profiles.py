"""A project with two small test profiles (not the shipped agents ones), and pull_request
events that carry labels."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.support.project import Project
from tests.support.workflow import BRANCH, PR

# Tracing: two containers, a public service, a bigger guest, a secret, a step, vars.
TRACING_MACHINE: dict[str, Any] = {
    "guest": {"memory_mb": 5120},
    "containers": [
        {
            "name": "collector",
            "image": "otel/opentelemetry-collector-contrib:0.139.0",
            "env": {"BEARER": "${secrets.otel_token}"},
        },
        {"name": "jaeger", "image": "jaegertracing/jaeger:2.11.0"},
    ],
    "services": [
        {
            "protocol": "tcp",
            "internal_port": 14318,
            "ports": [{"port": 14318, "handlers": ["tls", "http"]}],
        }
    ],
}


def profiles_toml(log: Path) -> str:
    """Two profiles: ``tracing`` (machine, guest, secret, step, vars) and ``nango``
    (vars and formatted secrets only). Every step appends its name to ``log``."""
    append = "import sys; print(sys.argv[2], file=open(sys.argv[1], 'a'))"
    return f"""
[[steps]]
name = "migrate"
run = ["{sys.executable}", "-c", "{append}", "{log}", "migrate"]

[secrets.format.nango_key]
kind = "uuid4"

[secrets.format.nango_enc]
kind = "base64"

[profiles.tracing]
description = "collector and Jaeger on the preview machine"
labels = ["preview:tracing"]
machine = ".fly/profiles/tracing.json"
secrets = ["otel_token"]
ports = [14318, 16686]

[profiles.tracing.tunnels.jaeger]
remote_port = 16686
local_port = 0
check = "none"

[profiles.tracing.vercel.projects.api]
env = {{ OTEL_ENDPOINT = "https://${{app.hostname}}:14318/v1/traces", OTEL_HEADERS = "Authorization=Bearer ${{secrets.otel_token}}" }}

[[profiles.tracing.steps]]
name = "tracing-ready"
run = ["{sys.executable}", "-c", "{append}", "{log}", "tracing-ready"]
env = {{ JAEGER_URL = "http://${{tunnels.jaeger.host}}:${{tunnels.jaeger.port}}" }}

[profiles.nango]
description = "Nango's keys"
labels = ["preview:nango"]
secrets = ["nango_key", "nango_enc"]
ports = [3003]

[profiles.nango.vercel.projects.web]
env = {{ NANGO_SECRET_KEY = "${{secrets.nango_key}}", NANGO_ENCRYPTION_KEY = "${{secrets.nango_enc}}" }}
"""


def write_profile_machine(project: Project, name: str, machine: dict[str, Any]) -> None:
    folder = project.root / ".fly" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(machine, indent=2))


def write_labeled_event(path: Path, labels: list[str], *, action: str = "labeled") -> None:
    """The PR's own pull_request event, carrying ``labels``."""
    path.write_text(
        json.dumps(
            {
                "action": action,
                "number": PR,
                "pull_request": {
                    "number": PR,
                    "labels": [{"id": i + 1, "name": n} for i, n in enumerate(labels)],
                    "head": {"ref": BRANCH, "repo": {"full_name": "acme/agents"}},
                },
            }
        )
    )
