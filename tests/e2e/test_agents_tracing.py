"""Issue 12's "done means", with the SHIPPED config: a reviewer adds the label
`preview:tracing`, and the next workflow run adds the collector and Jaeger, points
agents-api and manage-ui at them and says how to open Jaeger; removing the label takes
them away again.

The installed console script runs `up` as the workflow does (the event file says which
labels the PR carries) against the Fly emulator, the Vercel and GitHub fakes, the
`flyctl` stand-in and two real PostgreSQL servers (tests/support/agents_stack.py).
"""

from __future__ import annotations

import json
import secrets as pysecrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.fakes.agents_api import make_certificates
from tests.fakes.postgres import PostgresServer
from tests.support.agents_stack import (
    BRANCH,
    PR,
    AgentsStack,
    make_agents_stack,
    shipped_ports,
    start_databases,
    stop_agents_stack,
)
from tests.support.checks import assert_no_leak

pytestmark = pytest.mark.e2e
JAEGER_UI = 16686  # the jaeger tunnel's fixed local port
TRACING = ("otel-collector", "jaeger")
OTEL_VARS = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}
OTEL_VARS |= {"OTEL_SERVICE_NAME"}


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    manage, run = start_databases()
    yield manage, run
    manage.stop()
    run.stop()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def jaeger_ui() -> Iterator[int]:
    """What the jaeger tunnel reaches on the machine: a listener that accepts and keeps
    the connection open, as a serving UI does (the tunnel's check is a TCP connect that
    the far end does not close at once)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def stack(
    tmp_path: Path,
    databases: tuple[PostgresServer, PostgresServer],
    certificates: tuple[Path, Path, Path],
    flyctl_path: Path,
    jaeger_ui: int,
) -> Iterator[AgentsStack]:
    tokens = {
        "FLY_API_TOKEN": "fm2_" + pysecrets.token_urlsafe(24),
        "VERCEL_TOKEN": pysecrets.token_hex(16),
        "GITHUB_TOKEN": "ghs_" + pysecrets.token_hex(16),
    }
    with shipped_ports():
        with socket.socket() as probe:  # the jaeger tunnel binds it: it must be free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", JAEGER_UI))
            except OSError:
                pytest.fail(f"port {JAEGER_UI} (the jaeger tunnel's) is in use on this host")
        stack = make_agents_stack(tmp_path, databases, certificates, flyctl_path, tokens)
        targets = json.loads(stack.cli.env["FAKE_FLYCTL_TARGETS"])
        targets[str(JAEGER_UI)] = f"127.0.0.1:{jaeger_ui}"
        stack.cli.env["FAKE_FLYCTL_TARGETS"] = json.dumps(targets)
        try:
            yield stack
        finally:
            stop_agents_stack(stack)


def label_event(stack: AgentsStack, action: str, labels: list[str], label: str) -> None:
    """The event GitHub sends when a label is added or removed (its `labels` are the
    PR's labels after the change)."""
    Path(stack.cli.env["GITHUB_EVENT_PATH"]).write_text(
        json.dumps(
            {
                "action": action,
                "number": PR,
                "label": {"name": label},
                "pull_request": {
                    "number": PR,
                    "state": "open",
                    "head": {"ref": BRANCH, "repo": {"full_name": "inkeep/agents"}},
                    "labels": [{"name": name} for name in labels],
                },
            }
        )
    )


def containers(stack: AgentsStack) -> list[str]:
    return [c["name"] for c in stack.machine_config()["containers"]]


def test_the_tracing_label_adds_the_collector_and_jaeger_and_removing_it_takes_them_away(
    stack: AgentsStack,
) -> None:
    # ---- a reviewer adds preview:tracing -------------------------------------------
    label_event(stack, "labeled", ["preview:tracing"], "preview:tracing")
    up = stack.cli.run("up", timeout=240)
    assert up.code == 0, up.output
    assert [n for n in containers(stack) if n in TRACING] == list(TRACING)
    config = stack.machine_config()
    assert config["guest"]["memory_mb"] == 5120
    collector = next(c for c in config["containers"] if c["name"] == "otel-collector")
    token = stack.secrets()["otel_token"]
    assert collector["env"]["OTEL_BEARER_TOKEN"] == token
    public = {s["internal_port"]: s["ports"] for s in config["services"]}
    assert public[14318] == [{"port": 14318, "handlers": ["tls", "http"]}]

    for project, service in (("agents-api", "agents-api"), ("manage-ui", "manage-ui")):
        env = stack.branch_vars(project)
        assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == (
            "https://pr-5-agents.fly.dev:14318/v1/traces"
        )
        header = env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"]
        assert unquote(header) == f"Authorization=Bearer {token}"  # what the collector wants
        assert env["OTEL_SERVICE_NAME"] == service

    # how to open Jaeger, in the job's log
    assert f"profile tracing: `previewctl tunnel --pr {PR}` opens jaeger on localhost:16686" in (
        up.output
    )

    # ---- ... and removes it --------------------------------------------------------
    label_event(stack, "unlabeled", [], "preview:tracing")
    down = stack.cli.run("up", timeout=240)
    assert down.code == 0, down.output
    assert not [n for n in containers(stack) if n in TRACING]
    assert stack.machine_config()["guest"]["memory_mb"] == 4096
    assert 14318 not in {s["internal_port"] for s in stack.machine_config()["services"]}
    for project in ("agents-api", "manage-ui"):
        assert not OTEL_VARS & set(stack.branch_vars(project))
    assert stack.branch_vars("agents-api")["ENVIRONMENT"] == "production"  # the base stays

    assert_no_leak(stack.everything_printed(), [token])
