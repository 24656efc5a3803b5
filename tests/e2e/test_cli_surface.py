"""The command line as a person types it: global options anywhere, -h, --version,
completion, bare `previewctl`, help worth reading, and --json failures as objects.

Everything runs the installed console script; no --config is added for us here.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from previewctl import __version__
from previewctl.cli.helptext import COMMANDS
from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import base_env, previewctl_executable
from tests.support.project import Project

pytestmark = pytest.mark.e2e

ENV_VARS = (
    "FLY_API_TOKEN",
    "FLY_API_BASE_URL",
    "PREVIEWCTL_FLYCTL",
    "VERCEL_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_REPOSITORY",
    "PREVIEWCTL_PR",
    "PREVIEWCTL_CONFIG",
    "CI",
)


def run(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [previewctl_executable(), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return base_env(tmp_path)


def error_object(stdout: str) -> dict[str, Any]:
    data = json.loads(stdout)
    assert set(data) >= {"error"}, data
    error = data["error"]
    assert set(error) == {"title", "message", "hint", "exit_code"}, error
    return dict(error)


# ---- global options ------------------------------------------------------------------------


def test_global_options_after_the_command(project: Project, env: dict[str, str]) -> None:
    elsewhere = project.root.parent / "elsewhere"
    elsewhere.mkdir()
    config = str(project.config)
    after = run("plan", "--pr", "12", "--config", config, "--json", cwd=elsewhere, env=env)
    before = run("--config", config, "--json", "plan", "--pr", "12", cwd=elsewhere, env=env)
    short = run("plan", "-c", config, "--pr", "12", "--json", cwd=elsewhere, env=env)
    assert after.returncode == before.returncode == short.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout) == json.loads(short.stdout)
    assert json.loads(after.stdout)["app"]["name"] == "pr-12-svc"


def test_config_after_the_command_overrides_the_env_var(
    project: Project, env: dict[str, str]
) -> None:
    env = {**env, "PREVIEWCTL_CONFIG": str(project.root / "missing.toml")}
    wrong = run("plan", "--pr", "1", cwd=project.root, env=env)
    assert wrong.returncode == 2
    assert "missing.toml" in wrong.stderr
    right = run("plan", "--pr", "1", "--config", str(project.config), cwd=project.root, env=env)
    assert right.returncode == 0, right.stderr


def test_verbose_after_the_command_shows_the_api_calls(
    project: Project, env: dict[str, str], fly: FlyEmulator, fly_token: str
) -> None:
    env = {**env, "FLY_API_TOKEN": fly_token, "FLY_API_BASE_URL": fly.url}
    quiet = run("status", cwd=project.root, env=env)
    loud = run("status", "-v", cwd=project.root, env=env)
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert "Fly GET /v1/apps" not in quiet.stderr
    assert "Fly GET /v1/apps" in loud.stderr


def test_version_and_short_help(project: Project, env: dict[str, str]) -> None:
    version = run("--version", cwd=project.root, env=env)
    assert version.returncode == 0
    assert version.stdout.strip() == f"previewctl {__version__}"
    for args in (["-h"], ["up", "-h"], ["env", "-h"]):
        result = run(*args, cwd=project.root, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("Usage: previewctl")


def test_bare_previewctl_prints_the_help_and_exits_0(project: Project, env: dict[str, str]) -> None:
    bare = run(cwd=project.root, env=env)
    helped = run("--help", cwd=project.root, env=env)
    assert bare.returncode == 0
    assert bare.stderr == ""
    assert bare.stdout.strip() == helped.stdout.strip()
    assert "Commands:" in bare.stdout


def test_shell_completion_shows_installs_and_completes(tmp_path: Path, env: dict[str, str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**env, "HOME": str(home), "SHELL": "/bin/bash"}

    def in_bash(flag: str) -> subprocess.CompletedProcess[str]:
        # as a person types it in their shell: the shell is detected from the parent
        # (`; true` keeps bash from exec-ing previewctl in its place)
        line = f"{shlex.quote(previewctl_executable())} {flag}; true"
        return subprocess.run(
            ["bash", "-c", line], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
        )

    shown = in_bash("--show-completion")
    assert "_previewctl_completion" in shown.stdout, shown.stderr
    assert "_PREVIEWCTL_COMPLETE" in shown.stdout
    installed = in_bash("--install-completion")
    assert "bash completion installed" in installed.stdout, installed.stderr
    script = home / ".bash_completions" / "previewctl.sh"
    assert "_previewctl_completion" in script.read_text()
    assert "previewctl.sh" in (home / ".bashrc").read_text()
    # what bash asks when the user presses TAB after `previewctl pl` / `previewctl up --`
    ask = {**env, "_PREVIEWCTL_COMPLETE": "complete_bash"}
    words = run(cwd=tmp_path, env={**ask, "COMP_WORDS": "previewctl pl", "COMP_CWORD": "1"})
    assert words.stdout.split() == ["plan"]
    flags = run(cwd=tmp_path, env={**ask, "COMP_WORDS": "previewctl up --", "COMP_CWORD": "2"})
    assert {"--pr", "--branch", "--json", "--config"} <= set(flags.stdout.split())


# ---- help ------------------------------------------------------------------------------------


def test_top_level_help_has_whole_summaries_and_the_env_vars_once(
    project: Project, env: dict[str, str]
) -> None:
    result = run("--help", cwd=project.root, env=env)
    assert result.returncode == 0
    text = result.stdout
    commands = text.split("Commands:", 1)[1].split("Typical flow:", 1)[0]
    assert "..." not in commands
    for name, help in COMMANDS.items():
        line = next(ln for ln in text.splitlines() if re.match(rf"^  {name}\s", ln))
        assert line.split(None, 1)[1] == help.summary, line  # whole, on one line
    environment = text.split("Environment:", 1)[1]
    for var in ENV_VARS:
        assert len(re.findall(rf"^\s+{var}\s", environment, re.M)) == 1, var
    assert "Exit codes:" in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_says_what_it_needs_examples_and_exit_codes(
    project: Project, env: dict[str, str], name: str
) -> None:
    result = run(name, "--help", cwd=project.root, env=env)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    needs = text.split("Needs:", 1)[1].split("Examples:", 1)[0]
    examples = text.split("Examples:", 1)[1].split("Exit codes:", 1)[0]
    assert needs.strip()
    assert f"previewctl {name}" in examples
    assert "Exit codes:" in text
    # the global options are listed too: that is why they work here
    for option in ("--config", "--json", "--verbose"):
        assert option in text
    if name in ("plan", "init"):
        assert "no token, no network" in needs
    else:
        assert "FLY_API_TOKEN" in needs


# ---- --json failures ---------------------------------------------------------------------------


def test_json_usage_error_is_an_object_on_stdout(project: Project, env: dict[str, str]) -> None:
    result = run("plan", "--bogus", "--json", cwd=project.root, env=env)
    assert result.returncode == 2
    error = error_object(result.stdout)
    assert error["exit_code"] == 2
    assert "--bogus" in error["message"]
    assert "previewctl plan --help" in error["hint"]
    assert "--bogus" in result.stderr  # a person still reads it on stderr


def test_json_config_error_is_an_object_on_stdout(project: Project, env: dict[str, str]) -> None:
    project.config.write_text(project.config.read_text().replace("[app]", "[app]\nnmae = 1"))
    result = run("plan", "--pr", "1", "--json", cwd=project.root, env=env)
    assert result.returncode == 2
    error = error_object(result.stdout)
    assert error["exit_code"] == 2
    assert error["title"] == "invalid configuration"
    assert "previewctl.toml" in error["message"]


def test_json_missing_command_and_missing_credentials(
    project: Project, env: dict[str, str]
) -> None:
    missing = run("--json", cwd=project.root, env=env)
    assert missing.returncode == 2
    assert error_object(missing.stdout)["exit_code"] == 2
    no_token = run("--json", "status", cwd=project.root, env=env)
    assert no_token.returncode == 2
    error = error_object(no_token.stdout)
    assert error["exit_code"] == 2
    assert "FLY_API_TOKEN" in error["message"]
    assert error["hint"]


def test_json_api_failure_is_an_object_with_exit_code_1(
    project: Project, env: dict[str, str], fly: FlyEmulator, fly_token: str
) -> None:
    env = {**env, "FLY_API_TOKEN": "fm2_" + "x" * 30, "FLY_API_BASE_URL": fly.url}
    result = run("status", "--json", cwd=project.root, env=env)
    assert result.returncode == 1, result.stderr
    error = error_object(result.stdout)
    assert error["exit_code"] == 1
    assert "401" in error["message"]
    assert fly_token not in result.stdout + result.stderr
