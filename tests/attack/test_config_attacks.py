"""Hostile input against the config extensions (secret formats, optional env, `creates`,
withheld tokens), driven through the installed console script against the loopback
fakes, a real PostgreSQL and the flyctl stand-in.

Each test names the outcome the contract asks for: bad input is exit 2 before any
remote call, a run that fails after changes is exit 1, a value reaches its destination
exactly as generated, and no generated value (nor its percent-encoded form) is printed.
"""

from __future__ import annotations

import json
import re
import string
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psycopg
import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.vercel_api import VercelFake
from tests.support.checks import assert_no_leak
from tests.support.cli import Cli
from tests.support.net import free_port
from tests.support.project import Project
from tests.support.stack import Stack, stack_toml

pytestmark = pytest.mark.e2e
PR = "7"
APP = "pr-7-stack"
SYMBOLS_FORMAT = """
[secrets.format.pg_password]
length = 40
require = ["lower", "upper", "digit", "symbol"]
[secrets.format.bypass]
length = 24
require = ["symbol"]
"""


@dataclass
class Recorder:
    """A loopback HTTP server that records what an `http` step sends."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            rec.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": body.decode()}
            )
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_port}"
    yield rec
    server.shutdown()
    server.server_close()


def _write(stack: Stack, extra: str) -> None:
    stack.project.write(stack_toml(stack.dbname, stack.role, extra=extra))


def _forms(values: list[str]) -> list[str]:
    """Every value as generated and as it appears percent-encoded inside a URL."""
    return sorted({f for v in values for f in (v, quote(v, safe=""))})


def _live_machine(stack: Stack) -> Any:
    return next(m for m in stack.fly.apps[APP].machines.values() if m.state != "destroyed")


# ---- ${env.NAME:-DEFAULT}: a default is literal text ----------------------------------


def _plan_var(cli: Cli, project: Project, value: str) -> Any:
    (project.root / "previewctl.toml").write_text(
        project.config.read_text()
        + '\n[vercel.projects.api]\ndomain = "pr-${pr}.example.com"\n'
        + f"env = {{ V = {json.dumps(value)} }}\n"
    )
    return cli.run("--json", "plan", "--pr", PR, "--branch", "feat")


@pytest.mark.parametrize(
    "value",
    [
        "${env.OPT:-${secrets.api_key}}",
        "${env.OPT:-${env.OTHER}}",
        "https://h/${env.OPT:-${pr}}",
    ],
)
def test_placeholder_inside_a_default_is_a_config_error(
    cli: Cli, project: Project, fly: FlyEmulator, value: str
) -> None:
    # It used to render the literal text "${secrets.api_key}" into the Vercel var.
    result = _plan_var(cli, project, value)
    assert result.code == 2, result.output
    assert "[vercel.projects.api.env.V]" in result.stderr
    assert "cannot hold another placeholder" in result.stderr
    assert fly.requests == []


def test_dollar_escape_applies_inside_a_default(cli: Cli, project: Project) -> None:
    # `$$` is a literal `$` everywhere, also after `:-` (it used to stay `$$`).
    result = _plan_var(cli, project, "${env.OPT:-pa$$word}")
    assert result.code == 0, result.output
    assert result.json()["vercel"]["projects"]["api"]["env"]["V"] == "pa$word"


# ---- secrets inside and next to URLs ---------------------------------------------------


def test_secret_next_to_a_url_in_a_compact_json_body_is_sent_as_generated(
    stack: Stack, recorder: Recorder
) -> None:
    body = '{"cb":"https://hooks.example.com/cb","key":"${secrets.bypass}"}'
    _write(
        stack,
        SYMBOLS_FORMAT
        + "[[steps]]\n"
        + 'name = "register"\n'
        + 'http = { method = "PUT", url = '
        + json.dumps(recorder.url + "/x/${secrets.bypass}?k=${secrets.bypass}")
        + f", body = {json.dumps(body)}, headers = {{ Authorization = "
        + '"Bearer ${secrets.bypass}", X-Callback = "https://u:${secrets.bypass}@h/" } }\n',
    )
    result = stack.cli.run("--json", "up", "--pr", PR)
    assert result.code == 0, result.output
    secrets = stack.secrets(APP)
    key = secrets["bypass"]
    assert set(key) & set("!#%*+-.:=?@^_~"), "the format must give the secret symbols"
    (sent,) = recorder.requests
    # JSON: the value as generated (it used to arrive percent-encoded: "https://" came
    # earlier in the same whitespace-free word).
    assert json.loads(sent["body"]) == {"cb": "https://hooks.example.com/cb", "key": key}
    # URL path and query, and a URL in a header: percent-encoded, decoding to the value.
    path = urlsplit(sent["path"])
    assert unquote(path.path) == f"/x/{key}"
    assert path.path == f"/x/{quote(key, safe='')}"
    assert path.query == f"k={quote(key, safe='')}"
    assert sent["headers"]["X-Callback"] == f"https://u:{quote(key, safe='')}@h/"
    assert sent["headers"]["Authorization"] == f"Bearer {key}"
    assert_no_leak(stack.cli.all_output(), _forms(list(secrets.values())))


def test_symbol_secrets_round_trip_through_urls_steps_and_env_output(stack: Stack) -> None:
    """A password with symbols: the migrate step logs in through a URL (real libpq),
    `env --format shell` evaluates in bash to the same URL, and nothing prints it."""
    # a fixed local port: `env` prints only ports where a tunnel would really listen
    stack.project.write(
        stack_toml(stack.dbname, stack.role, local_port=free_port(), extra=SYMBOLS_FORMAT)
    )
    up = stack.cli.run("--json", "up", "--pr", PR)
    assert up.code == 0, up.output
    assert stack.widgets() == 1  # the step connected with the encoded password
    secrets = stack.secrets(APP)
    password = secrets["pg_password"]
    assert len(password) == 40
    assert set(password) - set(string.ascii_letters + string.digits)

    shell = stack.cli.run("env", "--pr", PR, "--format", "shell")
    assert shell.code == 0, shell.output
    evaluated = subprocess.run(
        ["bash", "-c", shell.stdout + 'printf %s "$DATABASE_URL"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert unquote(urlsplit(evaluated).password or "") == password
    dotenv = stack.cli.run("env", "--pr", PR, "--format", "dotenv")
    line = next(x for x in dotenv.stdout.splitlines() if x.startswith("DATABASE_URL="))
    assert line == f'DATABASE_URL="{evaluated}"'

    plan = stack.cli.run("--json", "plan", "--pr", PR)
    assert plan.code == 0
    # `env` prints them by design, on stdout only; everything else never does.
    printed = up.output + plan.output + shell.stderr + dotenv.stderr
    assert_no_leak(printed, _forms(list(secrets.values())))


# ---- names and characters no process, shell or HTTP request can carry -----------------


@pytest.mark.parametrize(
    "name",
    ["A=B", "", "X=1; touch pwned; Y", "9LIVES", "HAS SPACE", "FLY_API_TOKEN "],
)
def test_step_env_name_that_is_not_an_env_name_is_exit_2_before_any_call(
    stack: Stack, name: str
) -> None:
    # "A=B" crashed in execve after the machine was made ("a bug in previewctl"); an
    # `export X=1; touch pwned; Y=...` line let `eval "$(previewctl env)"` run commands.
    _write(stack, f'[[steps]]\nname = "s"\nrun = "true"\nenv = {{ {json.dumps(name)} = "v" }}\n')
    for command in (("up", "--pr", PR), ("plan", "--pr", PR)):
        result = stack.cli.run(*command)
        assert result.code == 2, result.output
        assert "env name" in result.stderr
        assert "bug in previewctl" not in result.output
    assert stack.fly.requests == []
    assert not (stack.project.root / "pwned").exists()


def test_vercel_env_name_that_is_not_an_env_name_is_exit_2(stack: Stack) -> None:
    _write(stack, '[vercel.projects.api]\nenv = { "BAD=KEY" = "x" }\n')
    result = stack.cli.run("up", "--pr", PR, "--branch", "feat")
    assert result.code == 2, result.output
    assert "[vercel.projects.api.env]" in result.stderr
    assert stack.fly.requests == []


@pytest.mark.parametrize(
    "extra",
    [
        '[[steps]]\nname = "s"\nrun = "true"\nenv = { A = "x\\u0000y" }\n',
        '[[steps]]\nname = "s"\nrun = ["true", "a\\u0000b"]\n',
        '[[steps]]\nname = "s"\nrun = "true"\ncreates = ["a\\u0000b"]\n',
        '[[steps]]\nname = "s"\nhttp = { url = "http://127.0.0.1:9/", body_file = "a\\u0000b" }\n',
    ],
    ids=["env-value", "run-arg", "creates", "body_file"],
)
def test_nul_character_in_a_config_string_is_exit_2_before_any_call(
    stack: Stack, extra: str
) -> None:
    # Each crashed with "ValueError: embedded null byte" (a bug in previewctl), the
    # env value and run arg only after the app and machine were created.
    _write(stack, extra)
    result = stack.cli.run("up", "--pr", PR)
    assert result.code == 2, result.output
    assert "NUL" in result.stderr
    assert "bug in previewctl" not in result.output
    assert stack.fly.requests == []


def test_http_header_name_that_is_not_a_token_is_exit_2_before_any_call(stack: Stack) -> None:
    _write(
        stack,
        '[[steps]]\nname = "s"\nhttp = { url = "http://127.0.0.1:9/", '
        'headers = { "Bad Header" = "x" } }\n',
    )
    result = stack.cli.run("up", "--pr", PR)
    assert result.code == 2, result.output
    assert "header name" in result.stderr
    assert stack.fly.requests == []


# ---- a stored secret someone changed in the machine's metadata ------------------------

TAMPERED: dict[str, Any] = {
    "null": None,  # became the password "None"
    "number": 12345678,  # became "12345678"
    "too-short-to-redact": "ab",
    "control-characters": "abc\u0000defgh\nijklmnopqrst",  # Fly refused the update: exit 1
    "huge": "a" * 100_000,
    "non-ascii": "pässwörd-pässwörd-pässwörd",
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_stored_secret_is_replaced_on_the_next_up(stack: Stack, case: str) -> None:
    assert stack.cli.run("up", "--pr", PR).code == 0
    before = stack.secrets(APP)
    machine = _live_machine(stack)
    machine.config["metadata"]["previewctl_secrets"] = json.dumps(
        {"pg_password": TAMPERED[case], "bypass": before["bypass"]}
    )
    result = stack.cli.run("up", "--pr", PR)
    assert result.code == 0, result.output
    after = stack.secrets(APP)
    assert after["bypass"] == before["bypass"]  # an intact one stays: no churn
    password = after["pg_password"]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password), password[:40]
    assert password != before["pg_password"]
    env = _live_machine(stack).config["containers"][0]["env"]
    assert env["POSTGRES_PASSWORD"] == password
    with psycopg.connect(
        host="127.0.0.1",
        port=stack.server.port,
        user=stack.role,
        password=password,
        dbname=stack.dbname,
    ) as conn:
        assert conn.execute("SELECT count(*) FROM widgets").fetchone() == (1,)
    assert_no_leak(stack.cli.all_output(), _forms(list(after.values())))


# ---- `creates`: what an earlier step leaves behind -----------------------------------


def test_created_path_that_is_a_directory_fails_the_run_exit_1(
    stack: Stack, recorder: Recorder
) -> None:
    # The machine exists by then: exit 2 ("bad input, nothing changed") was a lie.
    _write(
        stack,
        '[[steps]]\nname = "mk"\nrun = ["mkdir", "-p", "out/project.json"]\n'
        'creates = ["out/project.json"]\n'
        '[[steps]]\nname = "put"\n'
        f'http = {{ method = "PUT", url = "{recorder.url}/p", body_file = "out/project.json" }}\n',
    )
    result = stack.cli.run("up", "--pr", PR)
    assert result.code == 1, result.output
    assert "step put: cannot read body_file" in result.stderr
    assert "Is a directory" in result.stderr
    assert recorder.requests == []
    assert stack.fly.apps[APP].machines  # it was a change: the machine is there


# ---- steps never inherit previewctl's credentials -------------------------------------


def test_a_step_that_dumps_its_environment_sees_no_platform_token(
    stack: Stack, fly_token: str
) -> None:
    tokens = {"VERCEL_TOKEN": "vt_" + "k" * 20, "GITHUB_TOKEN": "ghs_" + "g" * 20}
    _write(
        stack,
        '[[steps]]\nname = "dump"\nrun = ["sh", "-c", "env > step-env.txt"]\n'
        'env = { fly_api_token = "lower-case-is-another-name" }\n',
    )
    result = stack.cli.run("up", "--pr", PR, env=tokens)
    assert result.code == 0, result.output
    seen = (stack.project.root / "step-env.txt").read_text()
    names = {line.split("=", 1)[0] for line in seen.splitlines() if "=" in line}
    assert names.isdisjoint({"FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN"})
    for value in (fly_token, *tokens.values()):
        assert value not in seen
    assert "fly_api_token=lower-case-is-another-name" in seen


# ---- a Vercel domain that renders empty --------------------------------------------


def test_domain_that_renders_empty_is_exit_2_before_any_call(stack: Stack) -> None:
    # `${vercel.api.url}` used to become "https://" (the step got "https:///hook").
    _write(
        stack,
        '[vercel.projects.api]\ndomain = "${env.API_DOMAIN:-}"\n'
        '[[steps]]\nname = "hook"\nrun = ["true", "${vercel.api.url}/hook"]\n',
    )
    token = "vt_" + "x" * 20
    with VercelFake(token=token) as vercel:
        vercel.add_project("api", branches=("main", "feat"))
        env = {"VERCEL_TOKEN": token, "VERCEL_API_URL": vercel.url}
        for command in (("up", "--pr", PR, "--branch", "feat"), ("plan", "--pr", PR)):
            result = stack.cli.run(*command, env=env)
            assert result.code == 2, result.output
            assert "[vercel.projects.api.domain]" in result.stderr
            assert "renders empty" in result.stderr
        assert vercel.calls("POST") == []
        assert vercel.calls("PATCH") == []
    assert stack.fly.mutating_calls() == []
    ok = stack.cli.run("plan", "--pr", PR, env={**env, "API_DOMAIN": "pr-7.example.com"})
    assert ok.code == 0, ok.output
    assert "https://pr-7.example.com/hook" in ok.stdout
