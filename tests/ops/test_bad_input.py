"""Bad input exits 2 with a message naming the problem, before any remote call."""

from __future__ import annotations

import copy
import json
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake
from tests.support.cli import Cli
from tests.support.project import BASIC_TOML, Project


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
    project: Project, tmp_path: Path, fly: FlyEmulator
) -> None:
    from tests.support.cli import base_env

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
    from tests.support.cli import base_env

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


# ---- the table: every kind of bad input, refused before the first change -----------------
READS = frozenset({"GET", "HEAD"})
VERCEL_WEB = """
[vercel.projects.web]
env = { API_URL = "https://${app.hostname}" }
"""


def deep_env(depth: int) -> Callable[[dict[str, Any]], None]:
    def patch(machine: dict[str, Any]) -> None:
        nested: Any = "x"
        for _ in range(depth):
            nested = {"a": nested}
        machine["containers"][0]["env"] = {"DEEP": nested}

    return patch


def guest(cpu_kind: str, cpus: int, memory_mb: int) -> Callable[[dict[str, Any]], None]:
    def patch(machine: dict[str, Any]) -> None:
        machine["guest"] = {"cpu_kind": cpu_kind, "cpus": cpus, "memory_mb": memory_mb}

    return patch


@dataclass(frozen=True)
class Bad:
    """One bad input: how to make it, and what the refusal must name."""

    id: str
    args: tuple[str, ...]
    needles: tuple[str, ...]
    replace: tuple[tuple[str, str], ...] = ()  # edits of BASIC_TOML
    extra: str = ""  # appended to BASIC_TOML; BUSY_PORT becomes a port that is taken
    machine: Callable[[dict[str, Any]], None] | None = None
    event: Any = None  # the pull_request event at GITHUB_EVENT_PATH
    github: bool = False  # GITHUB_TOKEN and GITHUB_REPOSITORY point at the GitHub fake
    reads: bool = False  # the check itself is a read-only lookup (GET) at the fakes


def pr_event(number: int, head: Any) -> dict[str, Any]:
    return {"number": number, "pull_request": {"number": number, "head": head}}


UP = ("up", "--pr", "3")
BAD: list[Bad] = [
    # the production branch, and branches that are not the PR's
    Bad(
        "production-branch",
        ("up", "--pr", "3", "--branch", "main"),
        ("'main' is the production branch of Vercel project web",),
        extra=VERCEL_WEB,
        reads=True,
    ),
    Bad(
        "branch-not-the-events",
        ("up", "--pr", "10", "--branch", "feat/8"),
        ("'feat/8' is not the head branch of PR #10", "event says 'feat/10'"),
        extra=VERCEL_WEB,
        event=pr_event(10, {"ref": "feat/10", "repo": {"full_name": "acme/agents"}}),
    ),
    Bad(
        "branch-not-the-github-apis",
        ("up", "--pr", "10", "--branch", "feat/8"),
        ("'feat/8' is not the head branch of PR #10", "the GitHub API says 'feat/10'"),
        extra=VERCEL_WEB,
        github=True,
        reads=True,
    ),
    Bad(
        "down-branch-not-the-github-apis",
        ("down", "--pr", "10", "--branch", "feat/8"),
        ("'feat/8' is not the head branch of PR #10", "the GitHub API says 'feat/10'"),
        extra=VERCEL_WEB,
        github=True,
        reads=True,
    ),
    Bad(
        "pr-that-does-not-exist",
        ("up", "--pr", "77", "--branch", "feat/77"),
        ("PR #77 is not a pull request of acme/agents",),
        github=True,
        reads=True,
    ),
    # tunnel ports
    Bad(
        "two-tunnels-one-port",
        UP,
        ("tunnels db and cache all use local_port 15432",),
        extra="[tunnels.db]\nremote_port = 5432\nlocal_port = 15432\n"
        "[tunnels.cache]\nremote_port = 6379\nlocal_port = 15432\n",
    ),
    Bad(
        "fixed-port-taken",
        UP,
        ("tunnel db: local port BUSY_PORT is already in use on this machine",),
        extra="[tunnels.db]\nremote_port = 5432\nlocal_port = BUSY_PORT\n",
    ),
    # what crashed with "a bug in previewctl"
    Bad("nan-duration", UP, ("[timeouts.machine]", "finite"), replace=(('"30s"', "nan"),)),
    Bad(
        "inf-duration",
        UP,
        ("[timeouts.ready]", "finite"),
        replace=(('ready = "20s"', "ready = inf"),),
    ),
    Bad(
        "inf-step-timeout",
        UP,
        ("[steps[0].timeout]", "finite"),
        extra='[[steps]]\nname = "migrate"\nrun = "true"\ntimeout = inf\n',
    ),
    Bad(
        "empty-vercel-key",
        UP,
        ("Vercel env key '' is invalid",),
        extra='[vercel.projects.web]\nenv = { "" = "x" }\n',
    ),
    Bad("machine-500-deep", UP, ("nests more than 32 levels deep",), machine=deep_env(500)),
    Bad(
        "app-name-newline",
        UP,
        ("app name 'pr-99999-svc\\n' is invalid",),
        replace=(('"pr-${pr}-svc"', '"pr-${pr}-svc\\n"'),),
    ),
    Bad(
        "event-head-not-an-object",
        ("up",),
        ("pull_request.head is not an object",),
        event=pr_event(3, "feat/3"),
    ),
    # what was accepted
    Bad("empty-org", UP, ("org '' is not a Fly organization slug",), replace=(('"acme"', '""'),)),
    Bad(
        "malformed-org",
        UP,
        ("org 'Acme Inc' is not a Fly organization slug",),
        replace=(('"acme"', '"Acme Inc"'),),
    ),
    Bad("empty-region", UP, ("region '' is not a Fly region code",), replace=(('"iad"', '""'),)),
    Bad(
        "memory-beyond-shared-limit",
        UP,
        ("memory_mb 8192 is outside Fly's limits for 2 shared CPU(s): 512-4096 MB",),
        machine=guest("shared", 2, 8192),
    ),
    Bad(
        "memory-below-performance-limit",
        UP,
        ("memory_mb 1024 is outside Fly's limits for 1 performance CPU(s)",),
        machine=guest("performance", 1, 1024),
    ),
    Bad("gc-max-age-nan", ("gc",), ("[gc.max_age]", "finite"), extra="[gc]\nmax_age = nan\n"),
    Bad("gc-flag-max-age-nan", ("gc", "--max-age", "nan"), ("--max-age: 'nan' is not a duration",)),
    *(
        Bad(f"branch-{name}", ("up", "--pr", "3", "--branch", branch), (repr(branch), reason))
        for name, branch, reason in [
            ("dotdot", "a..b", "'..'"),
            ("trailing-slash", "a/", "ends with '/'"),
            ("lock", "x.lock", "'.lock'"),
            ("at-brace", "a@{b", "'@{'"),
        ]
    ),
]


@pytest.fixture
def remotes(tmp_path: Path) -> Iterator[tuple[VercelFake, GitHubFake, dict[str, str]]]:
    vercel_token, gh_token = secrets.token_hex(16), secrets.token_hex(16)
    vercel = VercelFake(token=vercel_token).start()
    github = GitHubFake(token=gh_token, repo="acme/agents").start()
    vercel.add_project("web", production_branch="main", branches=("feat/3", "feat/10"))
    github.add_pr(10, "feat/10")
    env = {
        "VERCEL_TOKEN": vercel_token,
        "VERCEL_API_URL": vercel.url,
        "GITHUB_TOKEN": gh_token,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": "acme/agents",
    }
    yield vercel, github, env
    vercel.stop()
    github.stop()


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_bad_input_is_refused_before_any_change(
    bad: Bad,
    cli: Cli,
    fly: FlyEmulator,
    project: Project,
    remotes: tuple[VercelFake, GitHubFake, dict[str, str]],
    flyctl_path: Path,
    tmp_path: Path,
) -> None:
    vercel, github, remote_env = remotes
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        toml = BASIC_TOML
        for old, new in bad.replace:
            assert old in toml, old
            toml = toml.replace(old, new, 1)
        machine = copy.deepcopy(project.machine)
        if bad.machine is not None:
            bad.machine(machine)
        project.write(toml + "\n" + bad.extra.replace("BUSY_PORT", port), machine)
        env = {k: v for k, v in remote_env.items() if bad.github or not k.startswith("GITHUB")}
        env["PREVIEWCTL_FLYCTL"] = str(flyctl_path)
        if bad.event is not None:
            event = tmp_path / "event.json"
            event.write_text(json.dumps(bad.event))
            env["GITHUB_EVENT_PATH"] = str(event)
        result = cli.run(*bad.args, env=env)
    needles = [n.replace("BUSY_PORT", port) for n in bad.needles]
    assert result.code == 2, result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "a bug in previewctl" not in result.stderr
    for fake in (fly, vercel, github):
        seen = [(r.method, r.path) for r in fake.requests]
        if bad.reads:
            assert all(method in READS for method, _ in seen), seen
        else:
            assert seen == [], seen


def test_several_problems_are_reported_in_one_message(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    """One run names every problem; nothing is asked of Fly."""
    toml = BASIC_TOML.replace('region = "iad"', 'region = ""').replace('"30s"', "nan") + (
        "[tunnels.db]\nremote_port = 5432\nlocal_port = 15432\n"
        "[tunnels.cache]\nremote_port = 6379\nlocal_port = 15432\n"
        '[vercel.projects.web]\nenv = { "" = "x" }\n'
    )
    machine = copy.deepcopy(project.machine)
    guest("shared", 1, 4096)(machine)
    project.write(toml, machine)
    result = cli.run("up", "--pr", "3", "--branch", "a..b", env={"FLY_API_TOKEN": ""})
    assert result.code == 2, result.output
    assert result.stderr.count("error: ") == 1, result.stderr
    assert "7 problems, found before anything was changed" in result.stderr
    for needle in (
        "FLY_API_TOKEN",
        "invalid branch name 'a..b'",
        "[app.region]",
        "[timeouts.machine]",
        "all use local_port 15432",
        "Vercel env key '' is invalid",
        "outside Fly's limits",
    ):
        assert needle in result.stderr, result.stderr
    assert fly.requests == []


def test_problems_of_a_valid_config_are_reported_together(
    cli: Cli,
    fly: FlyEmulator,
    project: Project,
    remotes: tuple[VercelFake, GitHubFake, dict[str, str]],
) -> None:
    """Beyond the config: the production branch, a taken port, flyctl, an unset env var,
    a missing body_file."""
    vercel, github, remote_env = remotes
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        project.write(
            BASIC_TOML
            + f"[tunnels.db]\nremote_port = 5432\nlocal_port = {port}\n"
            + '[vercel.projects.web]\nenv = { LEVEL = "${env.PREVIEW_LEVEL}" }\n'
            + '[[steps]]\nname = "load"\nhttp = { url = "https://x.example", body_file = "nope.json" }\n'
        )
        env = {k: v for k, v in remote_env.items() if not k.startswith("GITHUB")}
        env["PREVIEWCTL_FLYCTL"] = "/nonexistent/flyctl"
        result = cli.run("up", "--pr", "3", "--branch", "main", env=env)
    assert result.code == 2, result.output
    assert result.stderr.count("error: ") == 1, result.stderr
    for needle in (
        "5 problems",
        "body_file",
        "PREVIEW_LEVEL",
        "PREVIEWCTL_FLYCTL=/nonexistent/flyctl is not an executable file",
        f"tunnel db: local port {port} is already in use",
        "'main' is the production branch of Vercel project web",
    ):
        assert needle in result.stderr, result.stderr
    for fake in (fly, vercel, github):
        assert all(r.method in READS for r in fake.requests), fake.requests
