"""The agents-stack stand-ins refuse what the real scripts and services refuse."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.agents_api import AgentsApiStandIn, make_certificates
from tests.fakes.pnpm_standin import install_pnpm
from tests.fakes.spicedb import SpiceDbStandIn

STRONG = "Str0ng!password-xyz"
KEY = "spicedb-key-123456"


@pytest.fixture
def pnpm(tmp_path: Path) -> Path:
    return install_pnpm(tmp_path / "bin")


@pytest.fixture
def spicedb() -> Iterator[SpiceDbStandIn]:
    server = SpiceDbStandIn(unavailable_first=1).start()
    server.boot(KEY)
    yield server
    server.stop()


def run(pnpm: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "HOME": str(cwd), **env}
    return subprocess.run(
        [str(pnpm), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=60
    )


def auth_env(spicedb: SpiceDbStandIn, **extra: str) -> dict[str, str]:
    env = {
        "INKEEP_AGENTS_RUN_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db",
        "INKEEP_AGENTS_MANAGE_UI_USERNAME": "admin@example.com",
        "INKEEP_AGENTS_MANAGE_UI_PASSWORD": STRONG,
        "BETTER_AUTH_SECRET": "x" * 32,
        "INKEEP_AGENTS_API_URL": "https://api.example.com",
        "SPICEDB_ENDPOINT": f"127.0.0.1:{spicedb.port}",
        "SPICEDB_PRESHARED_KEY": KEY,
        "SPICEDB_TLS_ENABLED": "false",
    }
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("password", "violation"),
    [
        ("abcdefghijklmnopqrstuvwxyzABCDEF0123", "One special character"),  # 32 letters+digits
        ("Sh0rt!pass", "At least 15 characters"),
        ("NO-LOWER-CASE-123!", "One lowercase letter"),
        ("no-upper-case-123!", "One uppercase letter"),
        ("No-Digits-At-All!!", "One number"),
    ],
)
def test_auth_init_refuses_a_password_outside_the_policy(
    pnpm: Path, tmp_path: Path, spicedb: SpiceDbStandIn, password: str, violation: str
) -> None:
    done = run(
        pnpm,
        tmp_path,
        "db:auth:init",
        **auth_env(spicedb, INKEEP_AGENTS_MANAGE_UI_PASSWORD=password),
    )
    assert done.returncode == 1
    assert violation in done.stderr
    assert spicedb.requests == []  # refused before it touched anything


def test_auth_init_tries_spicedb_once_and_fails_while_it_does_not_serve(
    pnpm: Path, tmp_path: Path, spicedb: SpiceDbStandIn
) -> None:
    done = run(pnpm, tmp_path, "db:auth:init", **auth_env(spicedb))
    assert done.returncode == 1
    assert "UNAVAILABLE" in done.stderr
    assert [r.answer.split()[0] for r in spicedb.requests] == ["UNAVAILABLE"]


def test_auth_init_uses_tls_for_a_remote_endpoint_unless_switched_off(
    pnpm: Path, tmp_path: Path, spicedb: SpiceDbStandIn
) -> None:
    env = auth_env(spicedb, SPICEDB_ENDPOINT="pr-5-agents.fly.dev:50051")
    del env["SPICEDB_TLS_ENABLED"]
    done = run(pnpm, tmp_path, "db:auth:init", **env)
    assert done.returncode == 1
    assert "tls handshake" in done.stderr


def test_wait_for_spicedb_waits_through_unavailable_and_stops_on_a_bad_key(
    pnpm: Path, tmp_path: Path, spicedb: SpiceDbStandIn
) -> None:
    argv = ("--filter", "@inkeep/agents-core", "exec", "tsx", "src/auth/wait-for-spicedb.ts")
    env = auth_env(spicedb, SPICEDB_READY_INTERVAL_MS="10", SPICEDB_READY_MAX_ATTEMPTS="5")
    done = run(pnpm, tmp_path, *argv, **env)
    assert done.returncode == 0, done.stderr
    assert "ready after 2 attempt(s)" in done.stdout
    bad = run(pnpm, tmp_path, *argv, **{**env, "SPICEDB_PRESHARED_KEY": "wrong-key-value"})
    assert bad.returncode == 1
    assert "configuration error" in bad.stderr
    assert spicedb.requests[-1].answer.startswith("UNAUTHENTICATED")


@pytest.mark.parametrize(
    "token", ["FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN"]
)
def test_any_platform_token_fails_every_command(pnpm: Path, tmp_path: Path, token: str) -> None:
    done = run(pnpm, tmp_path, "db:migrate", **{token: "t0ken"})
    assert done.returncode == 1
    assert f"platform token reached the PR's code: {token}" in done.stderr


def test_migrate_asks_before_a_remote_database_unless_ci(pnpm: Path, tmp_path: Path) -> None:
    remote = "postgresql://u:p@db.example.com:5432/db"
    env = {"INKEEP_AGENTS_MANAGE_DATABASE_URL": remote, "INKEEP_AGENTS_RUN_DATABASE_URL": remote}
    done = run(pnpm, tmp_path, "db:migrate", **env)
    assert done.returncode == 1
    assert "Aborted" in done.stderr


def test_push_needs_the_built_cli_and_json(pnpm: Path, tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{}")
    project = tmp_path / "p"
    project.mkdir()
    (project / "index.ts").write_text("project({ id: 'planner' })")
    (tmp_path / "inkeep.config.ts").write_text("")
    push = ("inkeep", "push", "--project", "p", "--config", "inkeep.config.ts")
    before = run(pnpm, tmp_path, *push, "--json")
    assert before.returncode == 1
    assert "Cannot find module" in before.stderr
    built = run(pnpm, tmp_path, "exec", "turbo", "build", "--filter=@inkeep/agents-cli...")
    assert built.returncode == 0, built.stderr
    no_json = run(pnpm, tmp_path, *push)
    assert no_json.returncode == 1
    assert not (project / "project.json").exists()
    done = run(pnpm, tmp_path, *push, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads((project / "project.json").read_text())["id"] == "planner"


def test_an_unknown_script_is_refused(pnpm: Path, tmp_path: Path) -> None:
    done = run(pnpm, tmp_path, "db:seed")
    assert done.returncode == 1
    assert "ERR_PNPM_NO_SCRIPT" in done.stderr


def test_agents_api_answers_as_the_reference_says(tmp_path: Path) -> None:
    secret = "bypass-secret-value"
    hosts = {"agents-api-abc123.vercel.app": {"INKEEP_AGENTS_MANAGE_API_BYPASS_SECRET": secret}}
    api = AgentsApiStandIn(make_certificates(tmp_path / "tls"), hosts.get).start()
    try:
        verify = ssl.create_default_context(cafile=str(api.ca_file))
        with httpx.Client(proxy=api.proxy_url, verify=verify, trust_env=False) as client:
            url = "https://agents-api-abc123.vercel.app/manage/tenants/default/project-full/p1"

            def put(auth: str, body: object, target: str = url) -> int:
                headers = {"Authorization": auth}
                return client.put(target, headers=headers, json=body).status_code

            assert put("Bearer wrong", {"id": "p1"}) == 401
            assert put(f"Bearer {secret}", {"id": "other"}) == 400
            assert put(f"Bearer {secret}", {"id": "p1"}) == 201
            assert put(f"Bearer {secret}", {"id": "p1"}) == 200
            unknown = url.replace("abc123", "zzz999")
            assert put(f"Bearer {secret}", {"id": "p1"}, unknown) == 404
        assert api.connects[0] == "agents-api-abc123.vercel.app:443"
    finally:
        api.stop()
