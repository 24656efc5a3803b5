"""A project directory: previewctl.toml and its machine config, as a repository holds them."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MACHINE_CONFIG: dict[str, Any] = {
    "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 1024},
    "containers": [
        {
            "name": "db",
            "image": "postgres:18",
            "env": {"POSTGRES_PASSWORD": "${secrets.pg_password}", "PR": "${pr}"},
            "healthchecks": [{"name": "tcp", "tcp": {"port": 5432}}],
        },
        {
            "name": "authz",
            "image": "authzed/spicedb:v1.49.1",
            "cmd": ["serve"],
            "env": {"SPICEDB_GRPC_PRESHARED_KEY": "${secrets.api_key}"},
        },
    ],
    "services": [
        {
            "protocol": "tcp",
            "internal_port": 5432,
            "ports": [{"port": 5432, "handlers": ["pg_tls"]}],
            "autostop": "off",
        }
    ],
}


@dataclass
class Project:
    """A temp directory holding previewctl.toml and its machine config."""

    root: Path
    machine: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(MACHINE_CONFIG)))

    @property
    def config(self) -> Path:
        return self.root / "previewctl.toml"

    def write(self, toml: str, machine: dict[str, Any] | None = None) -> Project:
        if machine is not None:
            self.machine = machine
        (self.root / ".fly").mkdir(exist_ok=True)
        (self.root / ".fly" / "machine-config.json").write_text(json.dumps(self.machine, indent=2))
        self.config.write_text(textwrap.dedent(toml))
        return self


BASIC_TOML = """
[app]
name = "pr-${pr}-svc"
org = "acme"
region = "iad"
ips = ["v6"]

[machine]
config = ".fly/machine-config.json"

[secrets]
generate = ["pg_password", "api_key"]

[timeouts]
machine = "30s"
ready = "20s"
tunnel = "20s"
"""
