"""The agents monorepo around the SHIPPED previewctl.toml and .fly/machine-config.json.

A temporary checkout of "the agents repository" whose ``previewctl.toml`` and
``.fly/machine-config.json`` are symlinks to this repository's own files (so what is
tested is exactly what ships), with the files its scripts need, a ``pnpm`` stand-in on
``PATH``, and the environment of a ``pull_request`` workflow step pointing at the
fakes: the Fly emulator (org ``inkeep``, as shipped), the flyctl stand-in forwarding
5432/5433 to two real PostgreSQL servers and 50051 to a SpiceDB stand-in, Vercel,
GitHub, and agents-api behind its deployment's ``*.vercel.app`` host.

The machine "runs" as a fresh one would: on every boot the emulator's hook gives the
databases the password from the machine config, and the Doltgres one creates its
database only a moment later (it listens before it has one); SpiceDB forgets its
schema and does not serve at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from tests.fakes.agents_api import AgentsApiStandIn
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.pnpm_standin import install_pnpm
from tests.fakes.postgres import PostgresServer
from tests.fakes.spicedb import SpiceDbStandIn
from tests.fakes.vercel_api import VercelFake
from tests.support.cli import Cli, base_env
from tests.support.project import Project

REPO = Path(__file__).resolve().parents[2]
SHIPPED: tuple[str, ...] = ("previewctl.toml", ".fly/machine-config.json")
SHIPPED += tuple(
    f".fly/profiles/{n}" for n in ("tracing.json", "otel-collector.yaml", "nango.json")
)
ORG, PR, BRANCH, APP = "inkeep", 5, "feat/planner", "pr-5-agents"
DB, USER = "inkeep_agents", "appuser"
TEMPLATE = "agents-cookbook/template-projects"
PROJECT_DIR = f"{TEMPLATE}/activities-planner"
SHIPPED_PORTS = (15432, 15433, 15051)  # the shipped tunnels' fixed local ports
DOLTGRES_CREATES_DB_AFTER = 1.0


def write_checkout(root: Path) -> None:
    """The agents repository as far as the shipped steps and seed touch it."""
    (root / ".fly" / "profiles").mkdir(parents=True)
    for name in SHIPPED:
        (root / name).symlink_to(REPO / name)
    (root / "package.json").write_text(json.dumps({"name": "agents", "private": True}))
    (root / PROJECT_DIR).mkdir(parents=True)
    (root / PROJECT_DIR / "index.ts").write_text(
        "export const activitiesPlanner = project({\n  id: 'activities-planner',\n});\n"
    )
    (root / TEMPLATE / "inkeep.config.ts").write_text("export default defineConfig({});\n")


@contextlib.contextmanager
def shipped_ports() -> Iterator[None]:
    """The shipped tunnels use fixed local ports: one such run at a time on this host
    (parallel test workers, other checkouts), and the ports must be free."""
    lock = Path(tempfile.gettempdir()) / "previewctl-shipped-tunnel-ports.lock"
    with lock.open("w") as handle:
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "another run holds the shipped ports"
                time.sleep(0.2)
        for port in SHIPPED_PORTS:
            with socket.socket() as probe:
                # as flyctl binds (Go sets SO_REUSEADDR): TIME_WAIT leftovers do not count
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise AssertionError(f"port {port} of the shipped tunnels is in use") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class AgentsStack:
    root: Path
    fly: FlyEmulator
    vercel: VercelFake
    github: GitHubFake
    api: AgentsApiStandIn
    spicedb: SpiceDbStandIn
    manage_pg: PostgresServer
    run_pg: PostgresServer
    cli: Cli
    pnpm_log: Path
    output: Path
    summary: Path
    tokens: dict[str, str]
    timers: list[threading.Thread] = field(default_factory=list)

    # ---- what the machine does when it boots ------------------------------------------
    def boot(self, app: str, config: dict[str, Any]) -> None:
        env = {c["name"]: c.get("env", {}) for c in config["containers"]}
        _fresh_database(self.run_pg, env["postgres"]["POSTGRES_PASSWORD"], create=True)
        _fresh_database(self.manage_pg, env["doltgres"]["DOLTGRES_PASSWORD"], create=False)
        timer = threading.Timer(DOLTGRES_CREATES_DB_AFTER, _create_doltgres_db, [self.manage_pg])
        timer.start()
        self.timers.append(timer)
        self.spicedb.boot(env["spicedb"]["SPICEDB_GRPC_PRESHARED_KEY"])

    # ---- reading the outcome ---------------------------------------------------------
    def machine_config(self) -> dict[str, Any]:
        machines = [m for m in self.fly.apps[APP].machines.values() if m.state != "destroyed"]
        assert len(machines) == 1
        return machines[0].config

    def secrets(self) -> dict[str, str]:
        return dict(json.loads(self.machine_config()["metadata"]["previewctl_secrets"]))

    def branch_vars(self, project: str) -> dict[str, str]:
        return {e["key"]: e["value"] for e in self.vercel.envs_for(project, BRANCH)}

    def pnpm_calls(self) -> list[dict[str, Any]]:
        if not self.pnpm_log.exists():
            return []
        return [json.loads(line) for line in self.pnpm_log.read_text().splitlines()]

    def rows(self, server: PostgresServer, query: str) -> list[tuple[Any, ...]]:
        with server.admin_connect(DB) as conn:
            return list(conn.execute(query).fetchall())

    def tables(self, server: PostgresServer) -> set[str]:
        found = self.rows(server, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in found}

    def everything_printed(self) -> str:
        comments = "".join(c["body"] for c in self.github.comments_on(PR))
        summary = self.summary.read_text() if self.summary.exists() else ""
        return self.cli.all_output() + self.output.read_text() + summary + comments


def _fresh_database(server: PostgresServer, password: str, *, create: bool) -> None:
    with server.admin_connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(USER), sql.Literal(password))
        )
    if create:
        server.create_database(DB, USER)


def _create_doltgres_db(server: PostgresServer) -> None:
    server.create_database(DB, USER)
    with server.admin_connect(DB) as conn:  # Doltgres' own system table, for its check
        conn.execute("CREATE VIEW dolt_status AS SELECT ''::text AS table_name WHERE false")
        conn.execute("GRANT SELECT ON dolt_status TO PUBLIC")


def start_databases() -> tuple[PostgresServer, PostgresServer]:
    servers = (PostgresServer().start(), PostgresServer().start())
    for server in servers:
        server.create_role(USER, "replaced-at-boot")
    return servers


def make_agents_stack(
    tmp_path: Path,
    databases: tuple[PostgresServer, PostgresServer],
    certificates: tuple[Path, Path, Path],
    flyctl_path: Path,
    tokens: dict[str, str],
) -> AgentsStack:
    root = tmp_path / "agents"
    write_checkout(root)
    fly = FlyEmulator(token=tokens["FLY_API_TOKEN"], org=ORG)
    fly.start()
    vercel = VercelFake(token=tokens["VERCEL_TOKEN"], build_seconds=0.4).start()
    for name in ("agents-api", "manage-ui"):
        vercel.add_project(name, branches=("main", BRANCH), repo="inkeep/agents")
        vercel.add_deployment(name, BRANCH, state="READY")
    github = GitHubFake(token=tokens["GITHUB_TOKEN"], repo="inkeep/agents").start()
    github.add_pr(PR, BRANCH)
    spicedb = SpiceDbStandIn(unavailable_first=1).start()

    def env_for_host(host: str) -> dict[str, str] | None:
        deployment = vercel.deployment(host)
        return None if deployment is None else vercel.deployment_env(deployment["uid"])

    api = AgentsApiStandIn(certificates, env_for_host).start()
    manage_pg, run_pg = databases
    env, output, summary = _workflow_env(tmp_path, fly, vercel, github, tokens)
    bin_dir = tmp_path / "bin"
    install_pnpm(bin_dir)
    env.update(
        {
            "PATH": f"{bin_dir}:{env['PATH']}",
            "PREVIEWCTL_FLYCTL": str(flyctl_path),
            "FAKE_FLYCTL_TARGETS": json.dumps(
                {
                    "5432": f"127.0.0.1:{manage_pg.port}",
                    "5433": f"127.0.0.1:{run_pg.port}",
                    "50051": f"127.0.0.1:{spicedb.port}",
                }
            ),
            "FAKE_FLYCTL_LOG": str(tmp_path / "flyctl.log"),
            "FAKE_PNPM_LOG": str(tmp_path / "pnpm.log"),
            "HTTPS_PROXY": api.proxy_url,
            "SSL_CERT_FILE": str(api.ca_file),
        }
    )
    project = Project(root)
    stack = AgentsStack(
        root, fly, vercel, github, api, spicedb, manage_pg, run_pg, Cli(project, env),
        tmp_path / "pnpm.log", output, summary, tokens,
    )  # fmt: skip
    fly.on_boot = stack.boot
    return stack


def _workflow_env(
    tmp_path: Path, fly: FlyEmulator, vercel: VercelFake, github: GitHubFake, tokens: dict[str, str]
) -> tuple[dict[str, str], Path, Path]:
    """What .github/workflows/preview.yml gives a previewctl step, pointing at the fakes."""
    output, summary, event = tmp_path / "out", tmp_path / "summary.md", tmp_path / "event.json"
    output.touch()
    event.write_text(
        json.dumps(
            {
                "action": "synchronize",
                "number": PR,
                "pull_request": {
                    "number": PR,
                    "head": {"ref": BRANCH, "repo": {"full_name": "inkeep/agents"}},
                },
            }
        )
    )
    env = base_env(tmp_path)
    env.update(tokens)
    env.update(
        {
            "FLY_API_BASE_URL": fly.url,
            "VERCEL_API_URL": vercel.url,
            "GITHUB_API_URL": github.url,
            "GITHUB_REPOSITORY": "inkeep/agents",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
    )
    return env, output, summary


def stop_agents_stack(stack: AgentsStack) -> None:
    for timer in stack.timers:
        timer.join()
    stack.fly.on_boot = None
    stack.api.stop()
    stack.spicedb.stop()
    stack.vercel.stop()
    stack.github.stop()
    stack.fly.stop()
