"""From PR opened to preview ready, as the workflow runs it: how much does starting the
machine before the runner's set-up (``up --no-wait``) save?

A scaled world (default scale 1/20: 1 s here stands for 20 s in the field; process
start-up and polling are real time, not scaled). In field seconds:

* the runner's set-up: checkout and installing previewctl with uv take 5 s, then the
  repository's tooling (``pnpm install`` in the agents monorepo) 70 s: 75 s in all;
* the machine boots (pulling three images) in 45 s and its checks pass 30 s later:
  boot + health = 75 s, as long as the set-up (``--boot`` changes the boot);
* the steps (migrations, auth-init) take 15 s, through a real tunnel (the flyctl
  stand-in) into a real PostgreSQL, which the emulator re-creates on every boot;
* Vercel (the fake) has two projects; previewctl writes them while the steps run. The
  field runbook ran the Vercel CLI once per var, domain and redeploy, about 1.5 s per
  call: 12 calls, modelled as that fixed cost.

The set-up is the runner's own work, modelled as waiting that long. Four timelines, in
one run, each on a fresh PR:

* **field**: set-up, then the runbook: create the machine, look at it every 5 s until
  its checks pass, open the tunnel and ``sleep 5``, run the steps, then the Vercel CLI
  calls one after another;
* **up after set-up**: set-up, then ``previewctl up`` (today's workflow before this);
* **overlapped**: checkout and install (5 s), ``previewctl up --no-wait``, the rest of the
  set-up while the machine boots, then ``previewctl up`` (the shipped workflow);
* **limit**: max(set-up, boot + health) + steps, what no workflow can beat.

    .venv/bin/python bench/workflow.py [--scale 0.05] [--boot 45]
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from _bench import PYTHON, bytecode_cache, load_note, previewctl_executable, table, verdict
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.flyctl_fixture import install_flyctl
from tests.fakes.postgres import PostgresServer, free_port
from tests.fakes.vercel_api import VercelFake
from tests.support.stack import Stack, make_stack

from previewctl.backends.fly.tunnels import flyctl_env

GOAL_OVERLAP = 0.75  # overlapped / sequential, with set-up and boot of equal length
STEP = """\
import os, time, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS widgets (id serial PRIMARY KEY, name text)")
    conn.execute("INSERT INTO widgets (name) VALUES ('from-migrate')")
time.sleep({work})
"""
VERCEL_TOML = """
[vercel]
redeploy = true

[vercel.projects.api]
domain = "pr-${pr}-api.preview.example.com"

[vercel.projects.api.env]
DATABASE_URL = "postgresql://app:${secrets.pg_password}@${app.hostname}:5432/db"
API_URL = "${vercel.api.url}"

[vercel.projects.ui]
env = { API_URL = "${vercel.api.url}" }
"""


@dataclass(frozen=True)
class World:
    scale: float = 0.05
    install: float = 5.0  # checkout + previewctl with uv, before `up --no-wait`
    tooling: float = 70.0  # pnpm install
    boot: float = 45.0
    health: float = 30.0
    steps: float = 15.0
    vercel_calls: int = 12
    vercel_cli: float = 1.5
    poll: float = 5.0  # the runbook's look every 5 s
    proxy_sleep: float = 5.0

    def s(self, field_seconds: float) -> float:
        return field_seconds * self.scale

    @property
    def setup(self) -> float:
        return self.install + self.tooling

    @property
    def limit(self) -> float:
        return self.s(max(self.setup, self.boot + self.health) + self.steps)


@dataclass
class Bench:
    world: World
    fly: FlyEmulator
    vercel: VercelFake
    stack: Stack
    env: dict[str, str]
    pr: int = 100

    def next_pr(self) -> int:
        self.pr += 1
        branch = f"feat/pr-{self.pr}"
        for name in ("api", "ui"):
            self.vercel.add_branch(name, branch)
            self.vercel.add_deployment(name, branch, state="READY")
        return self.pr

    def previewctl(self, pr: int, *args: str) -> float:
        """Run one previewctl command; the moment it exited."""
        argv = [previewctl_executable(), "--config", str(self.stack.project.config), "up"]
        argv += ["--pr", str(pr), "--branch", f"feat/pr-{pr}", *args]
        proc = subprocess.run(
            argv,
            env=self.env,
            cwd=self.stack.project.root,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[3:])} failed ({proc.returncode}):\n{proc.stderr}")
        return time.monotonic()

    def check_migrated(self, label: str) -> None:
        if self.stack.tables() != ["widgets"]:
            raise SystemExit(f"{label}: the step left no table")

    # ---- the timelines ------------------------------------------------------------------
    def up_after_setup(self) -> float:
        pr, w = self.next_pr(), self.world
        t0 = time.monotonic()
        time.sleep(w.s(w.setup))
        end = self.previewctl(pr)
        self.check_migrated("up after set-up")
        return end - t0

    def overlapped(self) -> tuple[float, float, int]:
        """Total, the no-wait run's own time, and the later up's mutating Fly calls."""
        pr, w = self.next_pr(), self.world
        t0 = time.monotonic()
        time.sleep(w.s(w.install))
        started = time.monotonic()
        accepted = self.previewctl(pr, "--no-wait")
        no_wait = accepted - started
        time.sleep(max(0.0, w.s(w.setup) - (accepted - t0)))
        later = time.monotonic()
        end = self.previewctl(pr)
        mutations = [r for r in self.fly.mutating_calls() if r.at >= later]
        self.check_migrated("overlapped")
        return end - t0, no_wait, len(mutations)

    def field(self) -> float:
        pr, w = self.next_pr(), self.world
        t0 = time.monotonic()
        time.sleep(w.s(w.setup))
        self.previewctl(pr, "--no-wait")  # stands for the runbook's machine create
        app = f"pr-{pr}-stack"
        deadline = time.monotonic() + 120
        while not self._healthy(app):
            if time.monotonic() > deadline:
                raise SystemExit(f"field: {app} never turned healthy")
            time.sleep(w.s(w.poll))
        self._runbook_steps(app)
        time.sleep(w.s(w.vercel_calls * w.vercel_cli))  # the Vercel CLI, call by call
        self.check_migrated("field")
        return time.monotonic() - t0

    def _healthy(self, app: str) -> bool:
        token = self.env["FLY_API_TOKEN"]
        machines = httpx.get(
            f"{self.fly.url}/v1/apps/{app}/machines",
            headers={"Authorization": f"FlyV1 {token}"},
            timeout=10,
        ).json()
        # Fly's bg_deployments_compat* checks say nothing about the machine (fly-go drops
        # them before judging health); they never pass.
        return bool(machines) and all(
            m["state"] == "started"
            and all(
                c.get("status") == "passing"
                for c in m.get("checks") or []
                if not str(c.get("name", "")).startswith("bg_deployments_compat")
            )
            for m in machines
        )

    def _runbook_steps(self, app: str) -> None:
        machine_id = next(iter(self.fly.apps[app].machines))
        flyctl = self.env["PREVIEWCTL_FLYCTL"]
        port = free_port()
        host = f"{machine_id}.vm.{app}.internal"
        tunnel = subprocess.Popen(
            [flyctl, "proxy", f"{port}:5432", host, "-a", app],
            env=flyctl_env(self.env),  # FLY_API_BASE_URL is flyctl's GraphQL base
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        try:
            time.sleep(self.world.s(self.world.proxy_sleep))
            _wait_listening(port)  # at a small scale the sleep is shorter than its start-up
            password = self.stack.secrets(app)["pg_password"]
            url = f"postgresql://{self.stack.role}:{password}@127.0.0.1:{port}/{self.stack.dbname}"
            subprocess.run(
                [PYTHON, "step.py"],
                env={**self.env, "DATABASE_URL": url},
                cwd=self.stack.project.root,
                check=True,
                timeout=120,
            )
        finally:
            tunnel.terminate()
            tunnel.wait(timeout=10)


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the runbook's tunnel never listened on {port}") from None
            time.sleep(0.02)


def parse_args() -> World:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=World.scale)
    parser.add_argument("--boot", type=float, default=World.boot, help="field seconds")
    args = parser.parse_args()
    return World(scale=args.scale, boot=args.boot)


def setup_stack(world: World, tmp: Path, server: PostgresServer) -> Bench:
    token = "fm2_" + secrets.token_urlsafe(24)
    vercel_token = secrets.token_hex(16)
    fly = FlyEmulator(
        token=token,
        org="acme",
        boot_seconds=world.s(world.boot),
        health_seconds=world.s(world.health),
    ).start()
    vercel = VercelFake(token=vercel_token).start()
    for name in ("api", "ui"):
        vercel.add_project(name, branches=("main",))
    flyctl = install_flyctl(tmp / "bin")
    stack = make_stack(tmp, fly, token, server, flyctl, extra_toml=VERCEL_TOML)
    text = stack.project.config.read_text()
    # One step: the migration that also does the steps' work (no second connection).
    text = text.replace('run = ["' + PYTHON + '", "migrate.py"]', f'run = ["{PYTHON}", "step.py"]')
    stack.project.write(text)
    (stack.project.root / "step.py").write_text(STEP.format(work=world.s(world.steps)))
    env = dict(stack.cli.env)
    env.update({"VERCEL_TOKEN": vercel_token, "VERCEL_API_URL": vercel.url})
    return Bench(world, fly, vercel, stack, env)


def main() -> int:
    world = parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="previewctl-bench-") as tmp,
        bytecode_cache() as cache,
        PostgresServer(port=free_port()) as server,
    ):
        bench = setup_stack(world, Path(tmp), server)
        bench.env = {k: v for k, v in bench.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        bench.env.update(cache)
        try:
            bench.up_after_setup()  # warm-up: bytecode cache, first connections
            today = bench.up_after_setup()
            overlapped, no_wait, mutations = bench.overlapped()
            field = bench.field()
        finally:
            with contextlib.suppress(Exception):
                bench.fly.stop()
                bench.vercel.stop()
        report(world, field, today, overlapped, no_wait, mutations)
        ok = overlapped <= GOAL_OVERLAP * today and mutations == 0
        ok = ok and no_wait < 0.5 * world.s(world.boot)
        print(
            f"\n{verdict(ok)}: overlapped <= {GOAL_OVERLAP} of up after set-up, "
            "no-wait well under the boot, the later up made no Fly mutation"
        )
        return 0 if ok else 1


def report(
    world: World, field: float, today: float, overlapped: float, no_wait: float, mutations: int
) -> None:
    limit = world.limit
    rows = [
        ("field (sequential runbook)", f"{field / field:.2f}", f"{field / limit:.2f}"),
        ("up after set-up", f"{today / field:.2f}", f"{today / limit:.2f}"),
        (
            "overlapped (up --no-wait first)",
            f"{overlapped / field:.2f}",
            f"{overlapped / limit:.2f}",
        ),
        ("limit: max(set-up, boot+health)+steps", f"{limit / field:.2f}", "1.00"),
    ]
    print(
        f"scale {world.scale} (1 s here = {1 / world.scale:.0f} s in the field); set-up "
        f"{world.setup:.0f} s, boot {world.boot:.0f} s + health {world.health:.0f} s, "
        f"steps {world.steps:.0f} s (field seconds); {load_note()}"
    )
    print(table(["timeline", "÷ field", "÷ limit"], rows))
    print(f"\noverlapped ÷ up after set-up: {overlapped / today:.2f} (goal <= {GOAL_OVERLAP})")
    print(f"up --no-wait returned in {no_wait / world.s(world.boot):.2f} of the boot time")
    print(f"Fly mutations by the later up: {mutations}")


if __name__ == "__main__":
    sys.exit(main())
