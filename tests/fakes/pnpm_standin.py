"""A stand-in for ``pnpm`` in the agents monorepo: the commands previewctl's shipped
config runs, enforcing what the real scripts enforce (../shared/reference/agents-stack.md).

``install_pnpm(dir)`` writes ``dir/pnpm``, a ``/bin/sh`` shim that runs this module with
the test interpreter (it needs psycopg). Every invocation appends one JSON line
``{"argv", "cwd", "env"}`` to ``$FAKE_PNPM_LOG`` first, then:

``pnpm db:migrate``
    Needs ``INKEEP_AGENTS_MANAGE_DATABASE_URL`` and ``INKEEP_AGENTS_RUN_DATABASE_URL``;
    asks for confirmation (and, with no terminal, fails) for a non-localhost URL unless
    ``CI=true``. Creates the manage tables in one database and the run/auth tables in
    the other.
``pnpm --filter @inkeep/agents-core exec tsx src/auth/wait-for-spicedb.ts``
    The ``readSchema`` loop: ``SPICEDB_READY_MAX_ATTEMPTS`` (20) tries
    ``SPICEDB_READY_INTERVAL_MS`` (2000) apart; "no schema has been defined" counts as
    ready, an authentication or TLS error fails at once.
``pnpm db:auth:init``
    Needs its env; refuses an admin password without >= 15 characters, a lower-case
    and an upper-case letter, a digit and a special character; TLS to SpiceDB is on for
    a non-localhost endpoint unless ``SPICEDB_TLS_ENABLED=false``; writes the SpiceDB
    schema in ONE try (SpiceDB must already serve); creates org ``$TENANT_ID``
    (``default``), the admin user and the playground app, whose allowed origin is
    ``INKEEP_AGENTS_MANAGE_UI_URL`` (localhost only without it).
``pnpm exec turbo build --filter=@inkeep/agents-cli...``
    Builds the CLI: writes ``agents-cli/dist/index.js``.
``pnpm inkeep push --project DIR --config CONFIG --json``
    Needs the built CLI, ``DIR/index.ts`` and ``CONFIG``; writes ``DIR/project.json``
    (``id`` from the project's ``index.ts``). Without ``--json`` it would push with a
    session the fresh API does not know, so it fails.

Any command fails when one of previewctl's platform tokens is in its environment:
steps run the PR's code and must never see them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

PLATFORM_TOKENS = ("FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN")
POLICY_SPECIALS = "!@#$%^&*()_+-=[]{};':\"\\|,.<>/?`~"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
CLI_BUILD = Path("agents-cli") / "dist" / "index.js"
SPICEDB_SCHEMA = "definition user {} definition organization { relation admin: user }"
WAIT_ARGV = ["--filter", "@inkeep/agents-core", "exec", "tsx", "src/auth/wait-for-spicedb.ts"]
BUILD_ARGV = ["exec", "turbo", "build", "--filter=@inkeep/agents-cli..."]


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(code)


def need(*names: str) -> list[str]:
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        fail(f"Error: missing required environment variables: {', '.join(missing)}")
    return [os.environ[n] for n in names]


def connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=5, autocommit=True)
    except psycopg.Error as exc:
        fail(f"Error: cannot connect to {urlsplit(url).hostname}: {str(exc).strip()}")


# ---- db:migrate -------------------------------------------------------------------------


def migrate() -> None:
    manage, run = need("INKEEP_AGENTS_MANAGE_DATABASE_URL", "INKEEP_AGENTS_RUN_DATABASE_URL")
    remote = [u for u in (manage, run) if urlsplit(u).hostname not in LOCAL_HOSTS]
    if remote and os.environ.get("CI") != "true":
        fail("? Run migrations against a non-localhost database? (y/N) Aborted: no TTY")
    with connect(manage) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS projects (tenant_id text, id text, body jsonb)")
        conn.execute("CREATE TABLE IF NOT EXISTS agents (tenant_id text, id text)")
    with connect(run) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS conversations (id text PRIMARY KEY)")
        conn.execute("CREATE TABLE IF NOT EXISTS organization (id text PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS auth_user (email text PRIMARY KEY, password_sha256 text)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS playground_app (tenant_id text PRIMARY KEY, origin text)"
        )
    print("manage and run migrations applied", flush=True)


# ---- SpiceDB ----------------------------------------------------------------------------


def spicedb_call(method: str, arg: str = "") -> str:
    endpoint, key = need("SPICEDB_ENDPOINT", "SPICEDB_PRESHARED_KEY")
    host, _, port = endpoint.rpartition(":")
    flag = os.environ.get("SPICEDB_TLS_ENABLED")
    tls = flag == "true" if flag is not None else host not in LOCAL_HOSTS
    if tls:
        fail(f"Error: 14 UNAVAILABLE: tls handshake with {endpoint} failed (it speaks plaintext)")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(f"{key} {method} {arg}".strip().encode() + b"\n")
            answer = sock.makefile("rb").readline().decode().strip()
    except OSError as exc:
        return f"UNAVAILABLE {exc.strerror or exc}"
    return answer or "UNAVAILABLE connection closed"


def wait_for_spicedb() -> None:
    attempts = int(os.environ.get("SPICEDB_READY_MAX_ATTEMPTS") or 20)
    interval = int(os.environ.get("SPICEDB_READY_INTERVAL_MS") or 2000) / 1000
    for attempt in range(1, attempts + 1):
        answer = spicedb_call("READ_SCHEMA")
        if answer.startswith("OK") or "no schema has been defined" in answer:
            print(f"SpiceDB schema API ready after {attempt} attempt(s).", flush=True)
            return
        if re.search(r"(?i)unauthenticated|permission denied|invalid token|tls", answer):
            fail(f"SpiceDB readiness failed due to configuration error: {answer}")
        print(f"SpiceDB not ready yet (attempt {attempt}/{attempts}): {answer}", flush=True)
        if attempt < attempts:
            time.sleep(interval)
    fail(f"SpiceDB schema API was not reachable after {attempts} attempts")


# ---- db:auth:init -----------------------------------------------------------------------


def policy_violations(password: str) -> list[str]:
    rules: list[tuple[str, Callable[[str], bool]]] = [
        ("At least 15 characters", lambda p: len(p) >= 15),
        ("One lowercase letter", lambda p: re.search(r"[a-z]", p) is not None),
        ("One uppercase letter", lambda p: re.search(r"[A-Z]", p) is not None),
        ("One number", lambda p: re.search(r"\d", p) is not None),
        ("One special character", lambda p: any(c in POLICY_SPECIALS for c in p)),
    ]
    return [label for label, ok in rules if not ok(password)]


def auth_init() -> None:
    run_url, username, password, _auth, _api = need(
        "INKEEP_AGENTS_RUN_DATABASE_URL",
        "INKEEP_AGENTS_MANAGE_UI_USERNAME",
        "INKEEP_AGENTS_MANAGE_UI_PASSWORD",
        "BETTER_AUTH_SECRET",
        "INKEEP_AGENTS_API_URL",
    )
    violations = policy_violations(password)
    if violations:
        fail(
            "Error: the admin password does not meet the password policy: " + "; ".join(violations)
        )
    answer = spicedb_call("WRITE_SCHEMA", SPICEDB_SCHEMA)
    if answer != "OK":
        fail(f"Error: writing the SpiceDB schema failed: {answer}")
    tenant = os.environ.get("TENANT_ID") or "default"
    origin = os.environ.get("INKEEP_AGENTS_MANAGE_UI_URL") or "http://localhost:3000"
    digest = hashlib.sha256(password.encode()).hexdigest()
    with connect(run_url) as conn:
        conn.execute("INSERT INTO organization VALUES (%s) ON CONFLICT DO NOTHING", (tenant,))
        conn.execute(
            "INSERT INTO auth_user VALUES (%s, %s) ON CONFLICT (email) DO UPDATE"
            " SET password_sha256 = EXCLUDED.password_sha256",
            (username, digest),
        )
        conn.execute(
            "INSERT INTO playground_app VALUES (%s, %s) ON CONFLICT (tenant_id) DO UPDATE"
            " SET origin = EXCLUDED.origin",
            (tenant, origin),
        )
    print(f"auth initialised: org {tenant}, admin {username}, playground origin {origin}")


# ---- the CLI ----------------------------------------------------------------------------


def build_cli() -> None:
    if not Path("package.json").is_file():
        fail("ERR_PNPM_NO_IMPORTER_MANIFEST_FOUND  No package.json was found in " + os.getcwd())
    CLI_BUILD.parent.mkdir(parents=True, exist_ok=True)
    CLI_BUILD.write_text("// built by the pnpm stand-in\n")
    print("@inkeep/agents-cli:build: cache miss, executing", flush=True)


def _option(args: list[str], name: str) -> str:
    if name not in args or args.index(name) + 1 >= len(args):
        fail(f"error: required option '{name} <path>' not specified")
    return args[args.index(name) + 1]


def inkeep_push(args: list[str]) -> None:
    if not CLI_BUILD.is_file():
        fail(
            f"Error: Cannot find module '{Path.cwd() / CLI_BUILD}' (build @inkeep/agents-cli first)"
        )
    project = Path(_option(args, "--project"))
    config = Path(_option(args, "--config"))
    if not config.is_file():
        fail(f"Error: config file not found: {config}")
    index = project / "index.ts"
    if not index.is_file():
        fail(f"Error: no index.ts in project directory {project}")
    if "--json" not in args:
        fail("Error: push needs a logged-in session; the API rejects it (401)")
    found = re.search(r"\bid:\s*['\"]([^'\"]+)['\"]", index.read_text())
    if found is None:
        fail(f"Error: {index} exports no project id")
    body = {
        "id": found.group(1),
        "name": found.group(1).replace("-", " ").title(),
        "agents": {"planner": {"id": "planner", "prompt": "Plan activities."}},
        "generated": secrets.token_hex(8),
    }
    (project / "project.json").write_text(json.dumps(body, indent=2))
    print(f"Project data saved to {project / 'project.json'}", flush=True)


# ---- entry ------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    log = os.environ.get("FAKE_PNPM_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(
                json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}) + "\n"
            )
    leaked = [name for name in PLATFORM_TOKENS if name in os.environ]
    if leaked:
        fail(f"pnpm stand-in: a platform token reached the PR's code: {', '.join(leaked)}")
    if argv == ["db:migrate"]:
        migrate()
    elif argv == WAIT_ARGV:
        wait_for_spicedb()
    elif argv == ["db:auth:init"]:
        auth_init()
    elif argv == BUILD_ARGV:
        build_cli()
    elif argv[:2] == ["inkeep", "push"]:
        inkeep_push(argv[2:])
    else:
        fail(f"ERR_PNPM_NO_SCRIPT  Missing script: {' '.join(argv)}")


def install_pnpm(directory: Path) -> Path:
    """Write an executable ``pnpm`` shim in ``directory`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "pnpm"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


if __name__ == "__main__":
    main(sys.argv[1:])
