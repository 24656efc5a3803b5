"""How close does ``previewctl up`` get to the critical path, and how does it compare with
the field runbook (``sleep 30`` after the machine start, ``sleep 5`` after the tunnels)?

A scaled world (default scale 3/10: 1 s here stands for 3.3 s in the field; fixed
costs such as process start are not scaled, so a smaller scale overstates them):

* the Fly emulator boots a machine in 6 s; its containers turn healthy 6/9/3 s after
  the start (postgres, doltgres, spicedb); the API answers in 0.1 s;
* the database (a real PostgreSQL, re-created on every boot by the emulator's boot
  hook) accepts connections 2 s after its container reports healthy: the hook stops
  the server and a timer thread starts it again at that moment;
* the runbook's Vercel calls each cost 1.5 s more: it ran the Vercel CLI once per var,
  domain and redeploy (previewctl sends one batched request per project, while the
  steps run);
* ``flyctl proxy`` (the stand-in) needs 1.5 s to set up a tunnel;
* the migrate step connects through the tunnel, creates a table and works for 10 s;
* Vercel (the fake) has two projects, so the Vercel phase runs too.

The critical path is what no implementation can avoid: process start (the median wall
time of ``previewctl --help``) + machine boot + the later of "all checks pass" and "the
database accepts" + the migrate step run on its own (measured). ``previewctl up`` runs
``--runs`` times on fresh PRs after one unmeasured warm-up; the baseline follows the
runbook with the same world: start the machine, ``sleep 30``, start the tunnel in the
background, ``sleep 5``, migrate (again after another ``sleep 5`` if the database was
not there yet), then the Vercel calls one at a time. Child interpreters share a
bytecode cache (as an installed wheel would have); polling intervals and process
start-up are real time, not scaled. ``--quick`` (the test command's smoke run) skips the
warm-ups and measures each side part once: its figures are rough.

    .venv/bin/python bench/up_latency.py [--scale 0.3] [--runs 3] [--no-vercel] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _bench import (
    PYTHON,
    bytecode_cache,
    load_note,
    median,
    previewctl_executable,
    table,
    timed,
    verdict,
    with_cache,
)
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.flyctl_fixture import install_flyctl
from tests.fakes.postgres import PostgresServer, free_port
from tests.fakes.vercel_api import VercelFake
from tests.support.processes import wait_gone
from tests.support.stack import Stack, make_stack

from previewctl.backends.fly.tunnels import flyctl_env
from previewctl.probes import Ping, pg_ping

GOAL_OVERHEAD = 0.10
GOAL_SPEEDUP = 2.0
RUNBOOK_SLEEP_AFTER_START = 30.0  # field seconds
RUNBOOK_SLEEP_AFTER_PROXY = 5.0
DB_CONTAINER = "postgres"

MIGRATE = """\
import time

T0 = time.monotonic()  # CLOCK_MONOTONIC: comparable with the bench's own clock
import json, os, psycopg

with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS widgets (id serial PRIMARY KEY, name text)")
    conn.execute("INSERT INTO widgets (name) VALUES ('from-migrate')")
time.sleep({work})
with open(os.environ["BENCH_MIGRATE_LOG"], "a") as log:
    log.write(json.dumps({{"start": T0, "end": time.monotonic()}}) + "\\n")
print("migrated", flush=True)
"""

VERCEL_TOML = """
[vercel]
redeploy = true

[vercel.projects.api]
domain = "pr-${pr}-api.preview.example.com"

[vercel.projects.api.env]
DATABASE_URL = "postgresql://app:${secrets.pg_password}@${app.hostname}:5432/db?sslmode=require"
BYPASS_SECRET = "${secrets.bypass}"
API_URL = "${vercel.api.url}"
UI_URL = "${vercel.ui.url}"

[vercel.projects.ui]
domain = "pr-${pr}-ui.preview.example.com"
env = { API_URL = "${vercel.api.url}" }
"""


@dataclass(frozen=True)
class World:
    """The scenario in field seconds, and the scale that maps them to bench seconds."""

    scale: float = 0.3
    boot: float = 6.0
    health: tuple[tuple[str, float], ...] = (
        ("postgres", 6.0),
        ("doltgres", 9.0),
        ("spicedb", 3.0),
    )
    db_late: float = 2.0
    migrate: float = 10.0
    tunnel_setup: float = 1.5
    api_latency: float = 0.1
    # The runbook wrote Vercel vars with the Vercel CLI: one Node process per call.
    vercel_cli: float = 1.5
    vercel: bool = True

    def s(self, field_seconds: float) -> float:
        return field_seconds * self.scale

    @property
    def health_seconds(self) -> dict[str, float]:
        return {name: self.s(seconds) for name, seconds in self.health}

    @property
    def db_accepts_after(self) -> float:
        """Bench seconds from machine create until the database accepts connections."""
        return self.s(self.boot) + self.health_seconds[DB_CONTAINER] + self.s(self.db_late)

    @property
    def ready_after(self) -> float:
        """Bench seconds from machine create until every check passes and the DB accepts."""
        return max(self.s(self.boot) + max(self.health_seconds.values()), self.db_accepts_after)

    def machine_config(self) -> dict[str, Any]:
        ports = {"postgres": 5432, "doltgres": 5433, "spicedb": 50051}
        images = {
            "postgres": "postgres:18",
            "doltgres": "dolthub/doltgresql:0.54.10",
            "spicedb": "authzed/spicedb:v1.49.1",
        }
        containers: list[dict[str, Any]] = []
        for name, _ in sorted(self.health, key=lambda item: item[0] != DB_CONTAINER):
            container: dict[str, Any] = {
                "name": name,
                "image": images.get(name, "alpine:3.19"),
                "healthchecks": [{"name": "tcp", "tcp": {"port": ports.get(name, 8080)}}],
            }
            if name == DB_CONTAINER:  # first: the boot hook reads its password there
                container["env"] = {"POSTGRES_PASSWORD": "${secrets.pg_password}"}
            containers.append(container)
        return {
            "guest": {"cpu_kind": "shared", "cpus": 4, "memory_mb": 4096},
            "containers": containers,
        }


@dataclass
class Boot:
    app: str
    created_at: float
    accepting_at: float | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None


def restart_and_time(server: PostgresServer) -> float:
    """Start the (stopped) server; the moment it first answered a ping."""
    seen: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            result, _ = pg_ping(server.host, server.port, 0.5)
            if result == Ping.OK:
                seen.append(time.monotonic())
                return
            time.sleep(0.005)

    poller = threading.Thread(target=poll, name="bench-db-poll", daemon=True)
    poller.start()
    try:
        server.start()
        poller.join(5)
    finally:
        stop.set()
    return seen[0] if seen else time.monotonic()


def stop_server(server: PostgresServer) -> None:
    server._running = False  # as test_database_accepting_late_is_waited_for does
    server._shutdown()


class LateDatabase:
    """The emulator's boot hook: a fresh database that accepts connections late.

    Everything runs in a thread so the create request is not slowed down; the server is
    started ``start_cost`` early so that it accepts at the configured moment.
    """

    def __init__(self, stack: Stack, server: PostgresServer, accepts_after: float) -> None:
        self.stack = stack
        self.server = server
        self.accepts_after = accepts_after
        self.start_cost = 0.0
        self.boots: list[Boot] = []

    def calibrate(self, cycles: int = 2) -> float:
        costs = []
        for _ in range(cycles):
            stop_server(self.server)
            began = time.monotonic()
            costs.append(restart_and_time(self.server) - began)
        self.start_cost = median(costs)
        return self.start_cost

    def on_boot(self, app: str, config: dict[str, Any]) -> None:
        boot = Boot(app, time.monotonic())
        boot.thread = threading.Thread(
            target=self._cycle, args=(boot, config), name="bench-late-db", daemon=True
        )
        self.boots.append(boot)
        boot.thread.start()

    def _cycle(self, boot: Boot, config: dict[str, Any]) -> None:
        try:
            self.stack.recreate_database(boot.app, config)
            stop_server(self.server)
            wake = boot.created_at + self.accepts_after - self.start_cost
            time.sleep(max(0.0, wake - time.monotonic()))
            boot.accepting_at = restart_and_time(self.server)
        except BaseException as exc:
            boot.error = exc

    def join(self) -> None:
        for boot in self.boots:
            if boot.thread is not None:
                boot.thread.join(30)
        if not self.server.running:  # never leave the next run without a database
            self.server.start()


@dataclass
class UpRun:
    pr: int
    launch: float
    exited: float
    first_request: float
    create: float
    db_accepting: float
    migrate_start: float
    migrate_end: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.exited - self.launch

    def segments(self) -> list[float]:
        return [
            self.first_request - self.launch,
            self.create - self.first_request,
            self.db_accepting - self.create,
            self.migrate_end - self.db_accepting,
            self.exited - self.migrate_end,
        ]


@dataclass
class Bench:
    world: World
    root: Path
    fly: FlyEmulator
    vercel: VercelFake | None
    server: PostgresServer
    stack: Stack
    late: LateDatabase
    flyctl: Path
    env: dict[str, str]
    migrate_log: Path

    def branch(self, pr: int) -> str:
        return f"feat/pr-{pr}"

    def prepare_vercel(self, pr: int) -> None:
        if self.vercel is None:
            return
        for name in ("api", "ui"):
            self.vercel.add_branch(name, self.branch(pr))
            self.vercel.add_deployment(name, self.branch(pr), state="READY")

    def last_migrate(self) -> dict[str, float]:
        lines = [line for line in self.migrate_log.read_text().splitlines() if line]
        return dict(json.loads(lines[-1]))

    def run_up(self, pr: int) -> UpRun:
        self.prepare_vercel(pr)
        app = f"pr-{pr}-stack"
        argv = [previewctl_executable(), "--config", str(self.stack.project.config), "--json"]
        argv += ["up", "--pr", str(pr), "--branch", self.branch(pr)]
        boots_before = len(self.late.boots)
        launch = time.monotonic()
        proc = subprocess.run(
            argv,
            env=self.env,
            cwd=self.stack.project.root,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=90,
            check=False,
        )
        exited = time.monotonic()
        self.late.join()
        if proc.returncode != 0:
            raise SystemExit(f"previewctl up --pr {pr} failed ({proc.returncode}):\n{proc.stderr}")
        if self.stack.tables() != ["widgets"]:
            raise SystemExit(f"up --pr {pr}: the migrate step left no table")
        boots = self.late.boots[boots_before:]
        if len(boots) != 1 or boots[0].accepting_at is None:
            raise SystemExit(f"up --pr {pr}: expected one boot, saw {boots}")
        requests = [r for r in self.fly.calls() if r.at >= launch]
        create = next(
            r.at for r in requests if r.method == "POST" and r.path == f"/v1/apps/{app}/machines"
        )
        migrate = self.last_migrate()
        out = json.loads(proc.stdout)
        return UpRun(
            pr=pr,
            launch=launch,
            exited=exited,
            first_request=min(r.at for r in requests),
            create=create,
            db_accepting=boots[0].accepting_at,
            migrate_start=migrate["start"],
            migrate_end=migrate["end"],
            timings=dict(out.get("timings") or {}),
        )

    # ---- the runbook -----------------------------------------------------------------
    def run_baseline(self, pr: int) -> tuple[float, dict[str, float], int]:
        """The field runbook, scaled; returns (total, parts, migrate attempts)."""
        self.prepare_vercel(pr)
        world, app, branch = self.world, f"pr-{pr}-stack", self.branch(pr)
        password, bypass = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        config = json.loads(
            json.dumps(world.machine_config()).replace("${secrets.pg_password}", password)
        )
        port = free_port()
        fly = httpx.Client(
            base_url=self.fly.url,
            headers={"Authorization": f"FlyV1 {self.env['FLY_API_TOKEN']}"},
            timeout=30,
        )
        tunnel: subprocess.Popen[bytes] | None = None
        parts: dict[str, float] = {}
        attempts = 0
        try:
            began = time.monotonic()
            # 1. flyctl apps create (which waits until Fly shows the app), machine start
            fly.post(
                "/v1/apps", params={"wait": "true"}, json={"name": app, "org_slug": "acme"}
            ).raise_for_status()
            shown_by = time.monotonic() + 60  # flyctl's WaitForApp: up to a minute
            while fly.get(f"/v1/apps/{app}").status_code in (401, 404):
                assert time.monotonic() < shown_by, f"{app} never became visible"
                time.sleep(0.1)
            fly.post(
                f"/v1/apps/{app}/machines",
                json={"region": "iad", "name": f"{app}-preview", "config": config},
            ).raise_for_status()
            parts["machine start (API)"] = time.monotonic() - began
            time.sleep(world.s(RUNBOOK_SLEEP_AFTER_START))  # sleep 30
            # 2. flyctl proxy 15432:5432 -a APP &  then  sleep 5
            tunnel = subprocess.Popen(
                [str(self.flyctl), "proxy", f"{port}:5432", "-a", app],
                env=flyctl_env(self.env),  # FLY_API_BASE_URL is flyctl's GraphQL base
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            time.sleep(world.s(RUNBOOK_SLEEP_AFTER_PROXY))
            parts["sleep 30 + proxy & + sleep 5"] = time.monotonic() - began - sum(parts.values())
            # 3. pnpm db:migrate (re-run after another sleep 5 while the DB is not there)
            url = (
                f"postgresql://{self.stack.role}:{password}@127.0.0.1:{port}/"
                f"{self.stack.dbname}?sslmode=disable"
            )
            migrate_env = {**self.env, "DATABASE_URL": url, "BENCH_MIGRATE_LOG": os.devnull}
            mark = time.monotonic()
            while True:
                attempts += 1
                _, proc = timed([PYTHON, "migrate.py"], migrate_env, cwd=self.stack.project.root)
                if proc.returncode == 0:
                    break
                if attempts >= 10:
                    raise SystemExit(f"baseline migrate never succeeded:\n{proc.stderr}")
                time.sleep(world.s(RUNBOOK_SLEEP_AFTER_PROXY))
            parts["migrate"] = time.monotonic() - mark
            # 4. Vercel: one var, one domain, one redeploy at a time
            mark = time.monotonic()
            if self.vercel is not None:
                self._baseline_vercel(pr, app, branch, password, bypass)
            parts["Vercel calls"] = time.monotonic() - mark
            total = time.monotonic() - began
        finally:
            fly.close()
            if tunnel is not None:
                end_tunnel(tunnel)
        self.late.join()
        return total, parts, attempts

    def _baseline_vercel(self, pr: int, app: str, branch: str, password: str, bypass: str) -> None:
        assert self.vercel is not None
        api_url, ui_url = (
            f"https://pr-{pr}-api.preview.example.com",
            f"https://pr-{pr}-ui.preview.example.com",
        )
        wanted = {
            "api": (
                {
                    "DATABASE_URL": f"postgresql://app:{password}@{app}.fly.dev:5432/db?sslmode=require",
                    "BYPASS_SECRET": bypass,
                    "API_URL": api_url,
                    "UI_URL": ui_url,
                },
                api_url,
            ),
            "ui": ({"API_URL": api_url}, ui_url),
        }
        with httpx.Client(
            base_url=self.vercel.url,
            headers={"Authorization": f"Bearer {self.env['VERCEL_TOKEN']}"},
            timeout=30,
        ) as client:
            cli = self.world.s(self.world.vercel_cli)
            for project, (variables, url) in wanted.items():
                for key, value in variables.items():
                    time.sleep(cli)  # `vercel env add KEY preview BRANCH`
                    client.post(
                        f"/v10/projects/{project}/env",
                        params={"upsert": "true"},
                        json={
                            "key": key,
                            "value": value,
                            "type": "encrypted",
                            "target": ["preview"],
                            "gitBranch": branch,
                        },
                    ).raise_for_status()
                time.sleep(cli)  # `vercel domains add`
                client.post(
                    f"/v10/projects/{project}/domains",
                    json={"name": url.removeprefix("https://"), "gitBranch": branch},
                ).raise_for_status()
                listed = client.get(
                    "/v6/deployments",
                    params={
                        "projectId": project,
                        "target": "preview",
                        "limit": 1,
                        "meta-githubCommitRef": branch,
                    },
                )
                listed.raise_for_status()
                newest = listed.json()["deployments"][0]
                time.sleep(cli)  # `vercel redeploy`
                client.post(
                    "/v13/deployments",
                    params={"forceNew": "1"},
                    json={"deploymentId": newest["uid"], "name": project},
                ).raise_for_status()


def end_tunnel(proc: subprocess.Popen[bytes]) -> None:
    """End a tunnel the bench started (its own process group), by PID."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def parse_args() -> tuple[World, int, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = World()
    parser.add_argument("--scale", type=float, default=default.scale, help="bench s per field s")
    parser.add_argument("--boot", type=float, default=default.boot, help="field seconds")
    parser.add_argument(
        "--health",
        default=",".join(f"{s:g}" for _, s in default.health),
        help="field seconds after start for postgres,doltgres,spicedb",
    )
    parser.add_argument("--db-late", type=float, default=default.db_late)
    parser.add_argument("--migrate", type=float, default=default.migrate)
    parser.add_argument("--tunnel-setup", type=float, default=default.tunnel_setup)
    parser.add_argument("--api-latency", type=float, default=default.api_latency)
    parser.add_argument("--no-vercel", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="no warm-ups, each side measurement once (the smoke test: rough figures)",
    )
    args = parser.parse_args()
    names = [name for name, _ in default.health]
    values = [float(v) for v in args.health.split(",")]
    world = World(
        scale=args.scale,
        boot=args.boot,
        health=tuple(zip(names, values, strict=True)),
        db_late=args.db_late,
        migrate=args.migrate,
        tunnel_setup=args.tunnel_setup,
        api_latency=args.api_latency,
        vercel=not args.no_vercel,
    )
    return world, args.runs, args.quick


def main() -> int:
    world, runs, quick = parse_args()
    token = "fm2_" + secrets.token_urlsafe(24)
    vercel_token = secrets.token_hex(16)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="previewctl-bench-") as tmp, bytecode_cache() as cache:
        tmp_path = Path(tmp)
        server = PostgresServer(port=free_port()).start()
        fly = FlyEmulator(
            token=token,
            org="acme",
            boot_seconds=world.s(world.boot),
            health_seconds=world.health_seconds,
            latency=world.s(world.api_latency),
        ).start()
        vercel = VercelFake(token=vercel_token, latency=world.s(world.api_latency)).start()
        stack: Stack | None = None
        try:
            for name in ("api", "ui"):
                vercel.add_project(name, branches=("main",))
            flyctl = install_flyctl(tmp_path / "bin")
            extra = VERCEL_TOML if world.vercel else ""
            stack = make_stack(tmp_path, fly, token, server, flyctl, extra_toml=extra)
            stack.project.write(stack.project.config.read_text(), machine=world.machine_config())
            migrate = MIGRATE.format(work=world.s(world.migrate))
            (stack.project.root / "migrate.py").write_text(migrate)
            late = LateDatabase(stack, server, world.db_accepts_after)
            fly.on_boot = late.on_boot
            migrate_log = tmp_path / "migrate.log"
            env = with_cache(stack.cli.env, cache)
            env.update(
                {
                    "BENCH_MIGRATE_LOG": str(migrate_log),
                    "FAKE_FLYCTL_READY_DELAY": f"{world.s(world.tunnel_setup):.3f}",
                    "VERCEL_TOKEN": vercel_token,
                    "VERCEL_API_URL": vercel.url,
                }
            )
            bench = Bench(
                world,
                tmp_path,
                fly,
                vercel if world.vercel else None,
                server,
                stack,
                late,
                flyctl,
                env,
                migrate_log,
            )
            report(bench, runs, started, quick=quick)
        finally:
            if stack is not None:  # previewctl ends its tunnels itself: check it did
                left = wait_gone(stack.flyctl_pids(), timeout=5)
                if left:
                    print(f"WARNING: flyctl stand-ins still running: {sorted(left)}")
            fly.stop()
            vercel.stop()
            server.stop()
    return 0


def report(bench: Bench, runs: int, started: float, *, quick: bool = False) -> None:
    world, env = bench.world, bench.env
    exe = previewctl_executable()
    note = load_note()
    # ---- the unavoidable parts, measured on their own ------------------------------------
    start_cost = bench.late.calibrate(1 if quick else 2)
    direct = {
        **env,
        "DATABASE_URL": bench.server.admin_dsn(bench.stack.dbname),
        "BENCH_MIGRATE_LOG": os.devnull,
    }
    warm_ups = 0 if quick else 1  # the first run of each fills caches: not counted
    root = bench.stack.project.root
    migrate_runs = warm_ups + (1 if quick else 3)
    migrate = [timed([PYTHON, "migrate.py"], direct, cwd=root)[0] for _ in range(migrate_runs)]
    migrate_alone = median(migrate[warm_ups:])
    helps = [timed([exe, "--help"], env)[0] for _ in range(warm_ups + (1 if quick else 7))]
    help_time = median(helps[warm_ups:])
    critical = help_time + world.ready_after + migrate_alone

    # ---- previewctl up ------------------------------------------------------------------
    if not quick:
        bench.run_up(100)  # warm-up: fills the bytecode cache, checks that everything works
    results = [bench.run_up(101 + i) for i in range(runs)]
    up_times = [r.total for r in results]
    up_median = median(up_times)
    typical = sorted(results, key=lambda r: r.total)[len(results) // 2]

    # ---- the runbook --------------------------------------------------------------------
    baseline, parts, attempts = bench.run_baseline(200)

    # ---- report ---------------------------------------------------------------------------
    health = ", ".join(f"{n} {s:g}" for n, s in world.health)
    print(
        f"up latency: scale {world.scale:g} (1 s here = {1 / world.scale:g} s in the field)\n"
        f"world in field seconds: boot {world.boot:g}; healthy after start: {health}; "
        f"db accepts {world.db_late:g} later; migrate {world.migrate:g}; tunnel setup "
        f"{world.tunnel_setup:g}; API latency {world.api_latency:g}; Vercel "
        f"{'2 projects' if world.vercel else 'off'}\n({note} at the start)\n"
    )
    names = [
        "process start -> first Fly request",
        "Fly calls before machine create",
        "machine create -> db accepting",
        "db accepting -> migrate done",
        "migrate done -> exit (tunnel close, Vercel)",
    ]
    unavoidable = [help_time, 0.0, world.ready_after, migrate_alone, 0.0]
    seg = [median([r.segments()[i] for r in results]) for i in range(len(names))]
    rows = [
        [n, f"{s:.2f}", f"{u:.2f}", f"{s - u:+.2f}"]
        for n, s, u in zip(names, seg, unavoidable, strict=True)
    ]
    rows.append(["total", f"{up_median:.2f}", f"{critical:.2f}", f"{up_median - critical:+.2f}"])
    print(
        table(
            ["where the time goes (median per segment, s)", "up", "unavoidable", "extra"],
            rows,
        )
    )
    print(
        f"  unavoidable: process start = `previewctl --help` ({help_time:.3f} s); machine = "
        f"configured {world.ready_after:.2f} s (db accepted after "
        f"{median([r.db_accepting - r.create for r in results]):.2f} s measured, server start "
        f"{start_cost:.2f} s pre-compensated); migrate = migrate.py run alone "
        f"({migrate_alone:.2f} s incl. interpreter start)"
    )
    print(
        "  migrate started "
        f"{median([r.migrate_start - r.db_accepting for r in results]):.2f} s after the db "
        f"accepted (in the typical run: {typical.migrate_start - typical.db_accepting:.2f} s)"
    )
    phase_names = list(dict.fromkeys(n for r in results for n in r.timings))
    phases = ", ".join(
        f"{n} {median([r.timings.get(n, 0.0) for r in results]):.2f}" for n in phase_names
    )
    print(f"  phases reported by `up --json` (median s): {phases}\n")

    overhead = up_median / critical - 1
    speedup = baseline / up_median
    best = baseline / critical
    print(
        table(
            ["measure", "value"],
            [
                ["critical path", f"{critical:.2f} s"],
                ["previewctl up (median)", f"{up_median:.2f} s"],
                ["  runs", ", ".join(f"{t:.2f}" for t in up_times)],
                ["up / critical path", f"{up_median / critical:.2f}×"],
                ["baseline (runbook)", f"{baseline:.2f} s"],
                ["  parts", ", ".join(f"{k} {v:.2f}" for k, v in parts.items())],
                ["  migrate attempts", str(attempts)],
                ["speed-up baseline / up", f"{speedup:.2f}×"],
                ["best possible (baseline / critical path)", f"{best:.2f}×"],
            ],
        )
    )
    print(f"  (bench wall time {time.monotonic() - started:.0f} s)\n")
    print(
        f"SUMMARY up_latency: up {up_median:.2f} s vs critical path {critical:.2f} s = "
        f"{overhead:+.0%} overhead (goal ≤ {GOAL_OVERHEAD:.0%}): "
        f"{verdict(overhead <= GOAL_OVERHEAD)}; {speedup:.2f}× faster than the runbook "
        f"baseline {baseline:.2f} s (goal ≥ {GOAL_SPEEDUP:g}×): "
        f"{verdict(speedup >= GOAL_SPEEDUP)}; best possible with these delays {best:.2f}×"
    )


if __name__ == "__main__":
    raise SystemExit(main())
