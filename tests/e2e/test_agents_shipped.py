"""The SHIPPED previewctl.toml and .fly/machine-config.json, run as the workflow runs them.

`plan`, `up`, `seed`, and `up` again without ANTHROPIC_API_KEY, by the installed
console script, in a checkout of the agents repository (see tests/support/agents_stack.py),
with a `pnpm` stand-in that enforces what the real scripts enforce. This is the test
that catches a default config that cannot pass auth-init, has no project to seed,
leaves the run API open or hands the platform tokens to PR code.
"""

from __future__ import annotations

import hashlib
import json
import secrets as pysecrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.fakes.agents_api import make_certificates
from tests.fakes.pnpm_standin import policy_violations
from tests.fakes.postgres import PostgresServer
from tests.support.agents_stack import (
    BRANCH,
    DB,
    PROJECT_DIR,
    AgentsStack,
    make_agents_stack,
    shipped_ports,
    start_databases,
    stop_agents_stack,
)
from tests.support.checks import assert_no_leak

pytestmark = pytest.mark.e2e
SEED_PATH = "/manage/tenants/default/project-full/activities-planner"
STEPS = ["db:migrate", "--filter @inkeep/agents-core exec tsx src/auth/wait-for-spicedb.ts"]
STEPS += ["db:auth:init"]
SEEDS = ["exec turbo build --filter=@inkeep/agents-cli...", "inkeep push"]


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """Doltgres (manage, 5432) and Postgres (run, 5433): two real servers, so that a
    step pointed at the wrong tunnel fails."""
    manage, run = start_databases()
    yield manage, run
    manage.stop()
    run.stop()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def stack(
    tmp_path: Path,
    databases: tuple[PostgresServer, PostgresServer],
    certificates: tuple[Path, Path, Path],
    flyctl_path: Path,
) -> Iterator[AgentsStack]:
    tokens = {
        "FLY_API_TOKEN": "fm2_" + pysecrets.token_urlsafe(24),
        "VERCEL_TOKEN": pysecrets.token_hex(16),
        "GITHUB_TOKEN": "ghs_" + pysecrets.token_hex(16),
    }
    with shipped_ports():
        stack = make_agents_stack(tmp_path, databases, certificates, flyctl_path, tokens)
        try:
            yield stack
        finally:
            stop_agents_stack(stack)


def run_ok(stack: AgentsStack, *args: str, env: dict[str, str] | None = None) -> str:
    result = stack.cli.run(*args, env=env, timeout=240)
    assert result.code == 0, result.output
    return result.stderr


def commands_run(stack: AgentsStack) -> list[str]:
    return [" ".join(call["argv"]) for call in stack.pnpm_calls()]


def assert_no_platform_token_reached_a_step(stack: AgentsStack) -> None:
    for call in stack.pnpm_calls():
        env = call["env"]
        assert not {"FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN"} & set(env)
        for token in stack.tokens.values():
            assert token not in json.dumps(env), call["argv"]


def check_command(config: dict[str, object], container: str) -> list[str]:
    containers = {c["name"]: c for c in config["containers"]}  # type: ignore[attr-defined]
    (check,) = containers[container]["healthchecks"]
    assert check["kind"] == "readiness"
    return list(check["exec"]["command"])


def run_db_check(command: list[str], remote: int, server: PostgresServer) -> None:
    """Run the machine's own psql check against the real server standing in for it."""
    argv = [a.replace(f"127.0.0.1:{remote}/", f"127.0.0.1:{server.port}/") for a in command]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


def test_shipped_config_up_and_seed_as_the_workflow_runs_them(stack: AgentsStack) -> None:
    llm_key = "sk-ant-" + pysecrets.token_hex(20)
    with_key = {"ANTHROPIC_API_KEY": llm_key}

    # ---- plan: all of it, secrets as *** ---------------------------------------------
    plan = stack.cli.run("plan", env=with_key)
    assert plan.code == 0, plan.output
    shown = plan.stdout
    for line in (
        "ENVIRONMENT=production",
        "NODE_ENV=production",
        "LOG_LEVEL=info",
        "POSTGRES_POOL_SIZE=5",
        "INKEEP_ANON_JWT_SECRET=***",
        "INKEEP_AGENTS_MANAGE_UI_PASSWORD=***",
        "ANTHROPIC_API_KEY=***",
        "INKEEP_AGENTS_MANAGE_UI_URL=https://pr-5-ui.preview.example.com",
        "TENANT_ID=default",
        f"creates: {PROJECT_DIR}/project.json",
        "(postgres: logs in to inkeep_agents as appuser)",
        '"/usr/local/bin/grpc_health_probe"',
        '"postgresql://appuser:***@127.0.0.1:5432/inkeep_agents?sslmode=disable"',
        '"SPICEDB_METRICS_ENABLED": "false"',
    ):
        assert line in shown, line
    assert_no_leak(plan.output, [llm_key])
    order = [
        shown.index(f"  {name}: pnpm") for name in ("migrate", "wait-for-spicedb", "auth-init")
    ]
    assert order == sorted(order)

    # ---- up --------------------------------------------------------------------------
    up = run_ok(stack, "up", env=with_key)
    assert commands_run(stack) == STEPS
    assert "SpiceDB not ready yet (attempt 1/60)" in up  # the wait was needed, and waited
    secrets = stack.secrets()
    admin = secrets["admin_password"]
    assert policy_violations(admin) == []
    assert {"projects", "agents"} <= stack.tables(stack.manage_pg)
    assert {"conversations", "organization", "auth_user"} <= stack.tables(stack.run_pg)
    assert stack.rows(stack.run_pg, "SELECT email, password_sha256 FROM auth_user") == [
        ("admin@example.com", hashlib.sha256(admin.encode()).hexdigest())
    ]
    assert stack.rows(stack.run_pg, "SELECT tenant_id, origin FROM playground_app") == [
        ("default", "https://pr-5-ui.preview.example.com")
    ]
    key = secrets["spicedb_key"]
    assert stack.spicedb.schema is not None
    assert {r.key for r in stack.spicedb.requests} == {key}

    api = stack.branch_vars("agents-api")
    assert api["ENVIRONMENT"] == "production"
    assert api["NODE_ENV"] == "production"
    assert api["LOG_LEVEL"] == "info"
    assert api["POSTGRES_POOL_SIZE"] == "5"
    assert api["INKEEP_ANON_JWT_SECRET"] == secrets["anon_jwt_secret"]
    assert len(api["INKEEP_ANON_JWT_SECRET"]) >= 32
    assert api["INKEEP_AGENTS_MANAGE_UI_PASSWORD"] == admin  # the one auth-init set
    assert api["INKEEP_AGENTS_MANAGE_API_BYPASS_SECRET"] == secrets["bypass_secret"]
    assert api["ANTHROPIC_API_KEY"] == llm_key
    assert api["SPICEDB_PRESHARED_KEY"] == key
    assert stack.branch_vars("manage-ui")["INKEEP_AGENTS_API_URL"] == (
        "https://pr-5-api.preview.example.com"
    )

    config = stack.machine_config()
    doltgres = check_command(config, "doltgres")
    assert doltgres[-1] == "SELECT count(*) FROM dolt_status"
    assert f"appuser:{secrets['pg_password']}@127.0.0.1:5432/{DB}" in doltgres[1]
    run_db_check(doltgres, 5432, stack.manage_pg)
    postgres = check_command(config, "postgres")
    assert f"@127.0.0.1:5433/{DB}" in postgres[1]
    run_db_check(postgres, 5433, stack.run_pg)
    assert check_command(config, "spicedb") == [
        "/usr/local/bin/grpc_health_probe",
        "-addr=127.0.0.1:50051",
    ]
    spicedb_env = next(c for c in config["containers"] if c["name"] == "spicedb")["env"]
    assert spicedb_env["SPICEDB_TELEMETRY_ENDPOINT"] == ""
    assert spicedb_env["SPICEDB_METRICS_ENABLED"] == "false"
    assert spicedb_env["SPICEDB_GRPC_PRESHARED_KEY"] == key

    # ---- seed ------------------------------------------------------------------------
    run_ok(stack, "seed")  # the workflow gives seed no LLM key
    assert commands_run(stack) == [*STEPS, SEEDS[0], commands_run(stack)[-1]]
    assert commands_run(stack)[-1].startswith(SEEDS[1])
    generated = (stack.root / PROJECT_DIR / "project.json").read_bytes()
    (put,) = stack.api.puts
    ready = stack.vercel.deployments_for("agents-api", BRANCH)[0]
    assert ready["readyState"] == "READY"
    assert (put.host, put.path, put.status) == (ready["url"], SEED_PATH, 201)
    assert put.body == generated
    assert put.authorization == f"Bearer {secrets['bypass_secret']}"
    assert stack.api.connects == [f"{ready['url']}:443"]
    assert_no_platform_token_reached_a_step(stack)

    # ---- up without the LLM key (a team without one, Dependabot) ---------------------
    assert "ANTHROPIC_API_KEY" not in stack.cli.env
    again = run_ok(stack, "up")
    assert "ANTHROPIC_API_KEY" not in stack.branch_vars("agents-api")
    assert "ENVIRONMENT" in stack.branch_vars("agents-api")
    notices = [line for line in again.splitlines() if line.startswith("::notice")]
    assert any("ANTHROPIC_API_KEY rendered empty" in line for line in notices), notices
    assert stack.secrets() == secrets  # stable across runs

    # ---- no secret anywhere ----------------------------------------------------------
    values = [*secrets.values(), llm_key, *stack.tokens.values()]
    values += [quote(v, safe="") for v in secrets.values()]
    assert_no_leak(stack.everything_printed(), values)
