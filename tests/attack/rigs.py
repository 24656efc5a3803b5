"""The rigs of the adoption attacks: a repository, the hostile fakes, the action's scripts."""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from previewctl.ops.init import template_files
from tests.attack import hostile
from tests.attack.hostile import HostileFly, HostileGitHub, HostileVercel, Ran
from tests.fakes.flyctl_fixture import install_flyctl

ROOT = Path(__file__).resolve().parents[2]
BUG = "a bug in previewctl"


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def init_repo(tmp_path: Path, *args: str, preexec: Any = None) -> Ran:
    return hostile.run(["init", *args], hostile.base_env(tmp_path), tmp_path, preexec=preexec)


def limit_file_size(limit: int) -> Any:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def postgres_template_repo(root: Path) -> Path:
    """A repository as `previewctl init --template postgres` writes it (in ``root``)."""
    repo = root / "repo"
    root.mkdir(parents=True, exist_ok=True)
    result = init_repo(root, "--template", "postgres", str(repo))
    assert result.code == 0, result.output
    return repo


class Doctor:
    """A repository from `init --template postgres` and hostile fakes of all three APIs."""

    def __init__(self, tmp_path: Path, initialized: Path | None = None) -> None:
        """``initialized``: what `init --template postgres` wrote once, copied here rather
        than written again by another `previewctl init` (a process start per test)."""
        self.tmp = tmp_path
        self.repo = tmp_path / "repo"
        if initialized is None:
            initialized = postgres_template_repo(tmp_path / "init")
        shutil.copytree(initialized, self.repo, symlinks=True)
        config = self.repo / "previewctl.toml"
        config.write_text(config.read_text().replace('"your-org"', '"acme"'))
        self.tokens = {
            "FLY_API_TOKEN": "fm2_" + secrets.token_urlsafe(24),
            "VERCEL_TOKEN": "vt" + secrets.token_urlsafe(24),
            "GITHUB_TOKEN": "ghs_" + secrets.token_urlsafe(24),
        }
        self.fly = HostileFly(token=self.tokens["FLY_API_TOKEN"], org="acme").start()
        self.vercel = HostileVercel(token=self.tokens["VERCEL_TOKEN"]).start()
        self.vercel.add_project("web")
        self.vercel.team_domains["preview.example.com"] = True
        self.github = HostileGitHub(token=self.tokens["GITHUB_TOKEN"]).start()
        self.flyctl_dir = install_flyctl(tmp_path / "bin").parent

    @property
    def fakes(self) -> list[hostile.Hostile]:
        return [self.fly, self.vercel, self.github]

    def stop(self) -> None:
        for fake in self.fakes:
            fake.stop()

    def env(self, **extra: str | None) -> dict[str, str]:
        wired: dict[str, str | None] = {
            "PATH": f"{self.flyctl_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "FLY_API_BASE_URL": self.fly.url,
            "VERCEL_API_URL": self.vercel.url,
            "GITHUB_API_URL": self.github.url,
            "GITHUB_REPOSITORY": "acme/agents",
            **self.tokens,
        }
        return hostile.base_env(self.tmp, **{**wired, **extra})

    def run(self, *, timeout: float = 120, **extra: str | None) -> tuple[Ran, dict[str, Any]]:
        """`doctor --json`: every check, and proof it changed nothing and leaked nothing."""
        result = hostile.run(["--json", "doctor"], self.env(**extra), self.repo, timeout=timeout)
        assert BUG not in result.output, result.output
        for fake in self.fakes:
            assert fake.non_get_calls() == [], f"doctor changed something at {fake.name}"
        for name, value in self.tokens.items():
            assert value not in result.output, f"{name} leaked: {result.output}"
        return result, json.loads(result.stdout)

    def broke_everywhere(self, answer: hostile.Answer) -> None:
        for fake in self.fakes:
            fake.answer_raw("*", ".", answer)


ALL_CHECKS = [
    "config",
    "fly token",
    "fly org",
    "flyctl",
    "vercel project web",
    "vercel domain web",
    "github",
]


def fake_flyctl(tmp_path: Path, script: str) -> Path:
    path = tmp_path / "fake-flyctl"
    path.write_text("#!/bin/bash\n" + script)
    path.chmod(0o755)
    return path


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def gone(pid: int) -> bool:
    """A SIGKILL lands a moment after it was sent: wait for it (bounded), then judge."""
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


EARLY_TOML = """
[app]
name = "pr-${pr}-early"
org = "acme"
region = "iad"
ips = ["v6", "v4"]

[machine]
config = ".fly/machine-config.json"

[secrets]
generate = ["pg_password"]

[timeouts]
machine = "30s"
"""
APP = "pr-7-early"
NO_WAIT = ["up", "--no-wait", "--pr", "7", "--branch", "feature"]
UP = ["up", "--pr", "7", "--branch", "feature"]


class Early:
    """A repository whose machine has a public service (so IPs are allocated), a hostile
    Fly, and one job's RUNNER_TEMP shared by the early and the later `up`."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.repo = tmp_path / "repo"
        files = template_files("postgres")
        (self.repo / ".fly").mkdir(parents=True)
        (self.repo / ".fly/machine-config.json").write_text(files[".fly/machine-config.json"])
        (self.repo / "previewctl.toml").write_text(EARLY_TOML)
        self.token = "fm2_" + secrets.token_urlsafe(24)
        self.fly = HostileFly(token=self.token, org="acme").start()
        (tmp_path / "runner-temp").mkdir()

    def env(self, **extra: str | None) -> dict[str, str]:
        wired: dict[str, str | None] = {
            "FLY_API_TOKEN": self.token,
            "FLY_API_BASE_URL": self.fly.url,
            "RUNNER_TEMP": str(self.tmp / "runner-temp"),
        }
        return hostile.base_env(self.tmp, **{**wired, **extra})

    def run(self, args: list[str], **extra: str | None) -> Ran:
        result = hostile.run(args, self.env(**extra), self.repo)
        assert self.token not in result.output
        return result

    def machines(self) -> list[str]:
        app = self.fly.apps.get(APP)
        return [] if app is None else [m.id for m in app.live_machines()]

    def ip_kinds(self) -> list[str]:
        app = self.fly.apps.get(APP)
        ips = [] if app is None else [ip["ip"] for ip in app.ips]
        return sorted("v6" if ":" in ip else "v4" for ip in ips)


ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS = {step.get("id") or step["name"]: step for step in ACTION["runs"]["steps"]}
RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["venv"]:  # as uv: make the venv
    os.makedirs(sys.argv[-1], exist_ok=True)
"""


def run_script(tmp_path: Path, step: str, env: dict[str, str]) -> Ran:
    """The step's `run:` as the runner runs `shell: bash` (a file, -e -o pipefail)."""
    script = tmp_path / f"step-{secrets.token_hex(4)}.sh"
    script.write_text(STEPS[step]["run"])
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def argv_log(env: dict[str, str]) -> list[list[str]]:
    log = Path(env["ARGV_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
