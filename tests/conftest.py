"""Shared fixtures: the fakes, a project directory, and the installed CLI as a subprocess."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from previewctl import redact
from tests.fakes.fly_api import FlyEmulator

pytest_plugins = ["tests.fakes.postgres", "tests.fakes.flyctl_fixture"]

# Variables that would make a test talk to the real world or change behaviour.
_SCRUB = (
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_EVENT_PATH",
    "GITHUB_REPOSITORY",
    "GITHUB_TOKEN",
    "FLY_API_TOKEN",
    "FLY_ACCESS_TOKEN",
    "FLY_API_BASE_URL",
    "FLY_FLAPS_BASE_URL",
    "VERCEL_TOKEN",
    "VERCEL_API_URL",
    "PREVIEWCTL_PR",
    "PREVIEWCTL_BRANCH",
    "PREVIEWCTL_CONFIG",
    "PREVIEWCTL_FLYCTL",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _SCRUB:
        monkeypatch.delenv(name, raising=False)
    redact.reset_for_tests()
    yield
    redact.reset_for_tests()


def previewctl_executable() -> str:
    """The console script installed next to this interpreter (what a workflow runs)."""
    candidate = Path(sys.executable).parent / "previewctl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("previewctl")
    assert found, "previewctl is not installed: pip install -e '.[test]'"
    return found


@pytest.fixture
def fly_token() -> str:
    return "fm2_" + secrets.token_urlsafe(24)


@pytest.fixture
def fly(fly_token: str) -> Iterator[FlyEmulator]:
    emu = FlyEmulator(token=fly_token, org="acme")
    emu.start()
    yield emu
    emu.stop()


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


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "repo"
    root.mkdir()
    return Project(root).write(BASIC_TOML)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Cli:
    """Runs the installed `previewctl` the way a workflow step does."""

    project: Project
    env: dict[str, str]
    history: list[CliResult] = field(default_factory=list)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 90) -> CliResult:
        full_env = {**self.env, **(env or {})}
        proc = subprocess.run(
            [previewctl_executable(), "--config", str(self.project.config), *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=self.project.root,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        result = CliResult(proc.returncode, proc.stdout, proc.stderr)
        self.history.append(result)
        return result

    def all_output(self) -> str:
        return "".join(r.output for r in self.history)


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture
def cli(project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path) -> Cli:
    env = base_env(tmp_path)
    env.update({"FLY_API_TOKEN": fly_token, "FLY_API_BASE_URL": fly.url})
    return Cli(project, env)


def machine_secrets(fly: FlyEmulator, app: str) -> dict[str, str]:
    """The generated secrets, read back from the emulator (as the product stores them)."""
    machines = [m for m in fly.apps[app].machines.values() if m.state != "destroyed"]
    assert len(machines) == 1
    return dict(json.loads(machines[0].config["metadata"]["previewctl_secrets"]))


def assert_no_leak(text: str, values: list[str]) -> None:
    """Every secret may appear only inside ::add-mask:: lines."""
    for line in text.splitlines():
        if line.startswith("::add-mask::"):
            continue
        for value in values:
            assert value not in line, f"secret leaked in: {line[:120]!r}"
