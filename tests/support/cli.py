"""The installed `previewctl` console script, run the way a workflow step runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.project import Project


def previewctl_executable() -> str:
    """The console script installed next to this interpreter (what a workflow runs)."""
    candidate = Path(sys.executable).parent / "previewctl"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("previewctl")
    assert found, "previewctl is not installed: pip install -e '.[test]'"
    return found


def base_env(tmp_path: Path) -> dict[str, str]:
    """A minimal environment: no credentials, nothing of the machine running the tests."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


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
