"""Bad input exits 2 with a message naming the problem, before any remote call."""

from __future__ import annotations

import json

import pytest

from tests.conftest import BASIC_TOML, Cli, Project
from tests.fakes.fly_api import FlyEmulator


def assert_refused(result, fly: FlyEmulator, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.code == 2, result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert fly.requests == [], [r.path for r in fly.requests]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("pr", ["0", "abc", "-3", "1.5"])
def test_bad_pr_number(cli: Cli, fly: FlyEmulator, pr: str) -> None:
    assert_refused(cli.run("up", "--pr", pr), fly, "PR number", pr)


def test_missing_token(cli: Cli, fly: FlyEmulator) -> None:
    env = dict(cli.env)
    del env["FLY_API_TOKEN"]
    cli.env = env
    assert_refused(cli.run("up", "--pr", "3"), fly, "FLY_API_TOKEN")


def test_malformed_toml(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    project.config.write_text(BASIC_TOML + "\n[tunnels.db\nremote_port = 1\n")
    assert_refused(cli.run("up", "--pr", "3"), fly, "previewctl.toml", "not valid TOML")


def test_unknown_key(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    project.config.write_text(BASIC_TOML.replace('region = "iad"', 'region = "iad"\nregoin = "x"'))
    assert_refused(cli.run("up", "--pr", "3"), fly, "unknown key 'regoin'", "app.regoin", ":6")


def test_unknown_placeholder(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    project.machine["containers"][0]["env"]["X"] = "${secrets.nope}"
    project.write(BASIC_TOML)
    assert_refused(cli.run("up", "--pr", "3"), fly, "${secrets.nope}", "machine-config.json")


def test_invalid_app_name(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    project.config.write_text(BASIC_TOML.replace('name = "pr-${pr}-svc"', 'name = "PR_${pr}"'))
    assert_refused(cli.run("up", "--pr", "3"), fly, "app name", "app.name")


def test_invalid_machine_json(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    (project.root / ".fly" / "machine-config.json").write_text('{"containers": [}')
    assert_refused(cli.run("up", "--pr", "3"), fly, "machine-config.json", "not valid JSON")


def test_vercel_value_pointing_at_a_tunnel_is_refused(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    project.config.write_text(
        BASIC_TOML
        + """
[tunnels.db]
remote_port = 5432

[vercel.projects.web]
env = { DATABASE_URL = "postgresql://u:${secrets.pg_password}@${tunnels.db.host}:${tunnels.db.port}/db" }
"""
    )
    result = cli.run("up", "--pr", "3", "--branch", "b", env={"VERCEL_TOKEN": "t" * 24})
    assert_refused(result, fly, "vercel.projects.web.env.DATABASE_URL", "not allowed")


def test_vercel_value_pointing_at_localhost_is_refused(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    project.config.write_text(
        BASIC_TOML
        + """
[vercel.projects.web]
env = { API_URL = "http://localhost:3002" }
"""
    )
    result = cli.run("plan")
    assert result.code == 2
    assert "localhost" in result.stderr


def test_plan_needs_no_credentials_and_never_shows_secrets(
    project: Project, tmp_path, fly: FlyEmulator
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import base_env

    cli = Cli(project, base_env(tmp_path))
    result = cli.run("--json", "plan", "--pr", "12", "--branch", "feat")
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    assert data["app"]["name"] == "pr-12-svc"
    assert data["machine"]["containers"][0]["env"]["POSTGRES_PASSWORD"] == "***"
    assert data["secrets"] == {"pg_password": "***", "api_key": "***"}
    text = cli.run("plan", "--pr", "12").stdout
    assert "pr-12-svc" in text
    assert "POSTGRES_PASSWORD" in text


def test_help_of_every_command_is_there(project: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import base_env

    cli = Cli(project, base_env(tmp_path))
    top = cli.run("--help")
    assert top.code == 0
    for command in (
        "plan",
        "up",
        "seed",
        "down",
        "gc",
        "status",
        "stop",
        "resume",
        "tunnel",
        "env",
    ):
        assert command in top.stdout
        sub = cli.run(command, "--help")
        assert sub.code == 0, sub.output
        assert "Usage" in sub.stdout
