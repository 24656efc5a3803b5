"""Hostile use of the command line (issue 13): option placement, --json on every failure
path, exit codes, secrets in errors, GitHub deployments, the tunnel state file behind
`env`, the GitHub branch lookup, connection errors. Each test names the break it found.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from previewctl.clients.github import GitHubClient
from previewctl.clients.http import ApiClient, RetryPolicy, build_http_client
from previewctl.clients.vercel import VercelClient
from previewctl.errors import ConnectionFailedError
from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import Cli, InProcessCli, base_env, previewctl_executable
from tests.support.previews import seed_preview
from tests.support.project import BASIC_TOML, Project
from tests.support.stack import Stack, interrupt, read_until
from tests.support.wiring import VERCEL_TOML, Wired, wire

# ---- helpers ------------------------------------------------------------------------------


def one_json_object(stdout: str) -> dict[str, object]:
    """stdout is exactly one JSON object and nothing else."""
    decoder = json.JSONDecoder()
    text = stdout.strip()
    data, end = decoder.raw_decode(text)
    assert text[end:].strip() == "", f"more than one JSON value on stdout: {stdout!r}"
    assert isinstance(data, dict)
    return data


def closed_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def wired(tmp_path: Path, project: Project, fly: FlyEmulator, fly_token: str) -> Iterator[Wired]:
    w = wire(tmp_path, project, fly, fly_token)
    yield w
    w.close()


# ---- connection errors and API base URLs with credentials ---------------------------------

URL_PASSWORD = "pw-" + secrets.token_hex(8)


def _unreachable_client(kind: type[ApiClient]) -> ApiClient:
    http = build_http_client(f"http://admin:{URL_PASSWORD}@127.0.0.1:{closed_port()}", {})
    retry = RetryPolicy(deadline=5, attempts=2, max_wait=0.01, sleep=lambda _s: None)
    if kind is VercelClient:
        return VercelClient(http, retry=retry)
    if kind is GitHubClient:
        return GitHubClient(http, retry=retry)
    from previewctl.backends.fly.client import FlyClient

    return FlyClient(http, retry=retry)


@pytest.mark.parametrize("kind", ["fly", "vercel", "github"])
def test_connection_error_does_not_print_the_password_of_the_api_url(kind: str) -> None:
    """Break: a connection error names the API's base URL as given, so a password in it
    (FLY_API_BASE_URL=https://user:PASSWORD@proxy) reached stderr, --json and the retry
    lines of every API client."""
    from previewctl.backends.fly.client import FlyClient

    cls = {"fly": FlyClient, "vercel": VercelClient, "github": GitHubClient}[kind]
    client = _unreachable_client(cls)
    retries: list[str] = []
    client.on_retry = retries.append
    with pytest.raises(ConnectionFailedError) as caught:
        client.request("GET", "/v1/apps")
    error = caught.value
    shown = " ".join([str(error), error.hint or "", *retries])
    assert "127.0.0.1" in str(error)  # still names where it tried
    assert retries, "the retry was announced"
    assert URL_PASSWORD not in shown


def test_bad_api_url_error_does_not_print_its_password(
    tmp_path: Path, project: Project, fly_token: str
) -> None:
    """Break: an API base URL that is not http(s) was quoted whole in the exit-2 message,
    password included (stderr and the --json error)."""
    env = {
        **base_env(tmp_path),
        "FLY_API_TOKEN": fly_token,
        "FLY_API_BASE_URL": f"ftp://admin:{URL_PASSWORD}@fly.example/",
    }
    result = Cli(project, env).run("--json", "status", "--pr", "3")
    assert result.code == 2, result.output
    error = one_json_object(result.stdout)["error"]
    assert isinstance(error, dict)
    assert error["exit_code"] == 2
    assert "FLY_API_BASE_URL" in result.stderr or "not an http" in result.stderr
    assert URL_PASSWORD not in result.output


# ---- `env`: one JSON object, and honest about the tunnel state file ------------------------

ENV_TOML = (
    BASIC_TOML
    + """
[tunnels.db]
remote_port = 5432
local_port = 0
check = "tcp"

[[steps]]
name = "migrate"
run = "true"
env = { DATABASE_URL = "postgresql://app:${secrets.pg_password}@${tunnels.db.host}:${tunnels.db.port}/db" }
"""
)


@pytest.fixture
def env_preview(project: Project, fly: FlyEmulator) -> str:
    """PR 5's preview (with its secret), a config whose one tunnel has local_port = 0."""
    project.write(ENV_TOML)
    password = secrets.token_hex(16)
    seed_preview(
        fly,
        "pr-5-svc",
        5,
        branch="feat/x",
        last_up=datetime.now(UTC),
        secrets={"pg_password": password, "api_key": secrets.token_hex(8)},
    )
    return password


def test_json_env_prints_one_object_without_secrets(
    cli: InProcessCli, env_preview: str, tmp_path: Path
) -> None:
    """Break: `previewctl --json env` printed shell `export` lines with the secrets on
    stdout: --json promises one JSON object and never a secret."""
    state = tmp_path / "state"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        _write_state(state, "pr-5-svc", 5, os.getpid(), {"db": port})
        result = cli.run("--json", "env", "--pr", "5", env={"XDG_STATE_HOME": str(state)})
    finally:
        listener.close()
    data = one_json_object(result.stdout)
    assert env_preview not in result.output
    assert "export " not in result.stdout
    assert result.code == 2, result.output
    error = data["error"]
    assert isinstance(error, dict)
    assert "--format json" in str(error["hint"])


def _write_state(directory: Path, app: str, pr: int, pid: int, ports: dict[str, object]) -> Path:
    directory = directory / "previewctl"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"tunnels-{app}-{pid}.json"
    body = {
        "app": app,
        "pr": pr,
        "pid": pid,
        "machine": "m1",
        "started_at": datetime.now(UTC).isoformat(),
        "ports": ports,
    }
    path.write_text(json.dumps(body))
    return path


def _env_exit(cli: InProcessCli, state: Path) -> tuple[int, str]:
    result = cli.run("env", "--pr", "5", env={"XDG_STATE_HOME": str(state)})
    return result.code, result.output


def test_env_ignores_a_state_file_whose_pid_is_another_process(
    cli: InProcessCli, env_preview: str, tmp_path: Path
) -> None:
    """Break: a tunnel killed with SIGKILL leaves its state file; when its PID is reused by
    any other process, `env` printed the dead tunnel's port as where the tunnel listens.
    A live PID is not a listening tunnel: nothing listens on that port."""
    state = tmp_path / "state"
    dead = closed_port()
    _write_state(state, "pr-5-svc", 5, os.getpid(), {"db": dead})  # a live PID, not a tunnel
    code, output = _env_exit(cli, state)
    assert code == 2, output
    assert f"127.0.0.1:{dead}" not in output
    assert f":{dead}/" not in output
    assert env_preview not in output


@pytest.mark.parametrize("bad", [0, -1, 70000, True])
def test_env_ignores_impossible_ports_in_the_state_file(
    cli: InProcessCli, env_preview: str, tmp_path: Path, bad: object
) -> None:
    """Break: a state file with port 0, a negative one, one over 65535 or `true` (read as
    port 1) was taken as where the tunnel listens: `env` printed localhost:0 and exit 0."""
    state = tmp_path / "state"
    _write_state(state, "pr-5-svc", 5, os.getpid(), {"db": bad})
    code, output = _env_exit(cli, state)
    assert code == 2, output
    assert "@127.0.0.1:" not in output


def test_env_ignores_a_state_file_of_another_pr(
    cli: InProcessCli, env_preview: str, tmp_path: Path
) -> None:
    """Break: a state file named for this app but saying it holds another PR's tunnels
    (a forged or mixed-up file) was believed."""
    state = tmp_path / "state"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        _write_state(state, "pr-5-svc", 6, os.getpid(), {"db": port})
        code, output = _env_exit(cli, state)
    finally:
        listener.close()
    assert code == 2, output
    assert f"127.0.0.1:{port}" not in output


def test_env_ignores_a_symlinked_state_file(
    cli: InProcessCli, env_preview: str, tmp_path: Path
) -> None:
    """Break: a state file that is a symlink (to a file someone else wrote, anywhere) was
    read as this user's running tunnel."""
    state = tmp_path / "state"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        elsewhere = _write_state(tmp_path / "elsewhere", "pr-5-svc", 5, os.getpid(), {"db": port})
        link = state / "previewctl" / elsewhere.name
        link.parent.mkdir(parents=True)
        link.symlink_to(elsewhere)
        code, output = _env_exit(cli, state)
    finally:
        listener.close()
    assert code == 2, output
    assert f"127.0.0.1:{port}" not in output


# ---- GitHub deployments ---------------------------------------------------------------------

SHARED_ENV_TOML = BASIC_TOML + VERCEL_TOML + '\n[github]\nenvironment = "previews"\n'


def test_down_leaves_other_prs_deployments_of_a_shared_environment(wired: Wired) -> None:
    """Break: with `[github] environment` naming one environment for all PRs, `down` of one
    PR marked every previewctl deployment of it inactive: the other PRs' too."""
    wired.project.write(SHARED_ENV_TOML)
    wired.github.add_pr(9, "feat/other")
    wired.vercel.add_project("api", branches=("main", wired.branch, "feat/other"))
    wired.without_event()
    other = wired.github
    # PR 9's preview deployment, made by previewctl (as its own `up` records it)
    with other.lock:
        sha = other.prs[9]["head"]["sha"]
        made = other._new_deployment(
            {
                "environment": "previews",
                "payload": {"previewctl": True, "app": "pr-9-svc", "pr": 9},
                "transient_environment": False,
                "production_environment": False,
            },
            "feat/other",
            sha,
        )
        other._add_status(made, {"environment_url": "https://x"}, "success", "")
    result = wired.cli.run("down", "--pr", str(wired.pr))
    assert result.code == 0, result.output
    assert wired.github.state_of(made["id"]) == "success"


# ---- the branch from the GitHub API ---------------------------------------------------------


def test_up_refuses_the_branch_of_a_fork_looked_up_from_github(wired: Wired) -> None:
    """Break: `up --pr N` without an event looked the branch up from the GitHub API and used
    it even when the PR's head is in a fork: the fork's branch name (here the same as a
    branch of this repository) got this repository's Vercel vars and the preview."""
    wired.without_event()
    wired.github.add_pr(11, wired.branch, fork_repo="mallory/agents")
    result = wired.cli.run("--json", "up", "--pr", "11")
    assert result.code == 2, result.output
    error = one_json_object(result.stdout)["error"]
    assert isinstance(error, dict)
    assert "fork" in str(error["message"])
    assert "pr-11-svc" not in wired.fly.apps
    assert not [r for r in wired.vercel.requests if r.method in ("POST", "PATCH", "DELETE")]


def test_up_says_github_failed_when_the_branch_lookup_fails(wired: Wired) -> None:
    """Break: when GitHub could not answer the branch lookup (5xx until the retries gave
    up), `up` exited 2, "bad input: pass --branch", as if the user had given too little;
    nothing the user gave was wrong: GitHub failed (exit 1, GitHub named)."""
    wired.without_event()
    wired.github.inject("GET", r"/pulls/8$", 502, times=50, retry_after="0")
    result = wired.cli.run("--json", "up", "--pr", str(wired.pr))
    assert result.code == 1, result.output
    error = one_json_object(result.stdout)["error"]
    assert isinstance(error, dict)
    assert "GitHub" in str(error["message"])
    assert "pr-8-svc" not in wired.fly.apps


# ---- --json: exactly one object --------------------------------------------------------------


def test_json_mode_is_not_guessed_from_an_options_value(tmp_path: Path, project: Project) -> None:
    """Break: `--branch --json` (the branch's value looks like an option) made a failure
    print a JSON error on stdout though --json was never given: JSON mode was guessed by
    scanning argv for the word."""
    result = Cli(project, base_env(tmp_path)).run("plan", "--pr", "3", "--branch", "--json")
    assert result.code == 2, result.output
    assert result.stdout.strip() == ""


# ---- foreground commands under --json --------------------------------------------------------


@pytest.mark.parametrize("command", ["tunnel", "resume"])
def test_foreground_json_then_ctrl_c_prints_one_object(stack: Stack, command: str) -> None:
    """Break: `tunnel --json` / `resume --json` printed their object (where the tunnels
    listen), then on Ctrl-C (their normal end, exit 130) a second one, the interrupt's
    error: stdout was two JSON objects, which no JSON reader takes."""
    assert stack.cli.run("up", "--pr", "7").code == 0, stack.cli.history[-1].output
    proc = stack.popen("--json", command, "--pr", "7")
    seen: list[str] = []
    assert read_until(proc.stdout, "{", 60, seen), seen
    assert read_until(proc.stderr, "press Ctrl-C", 60, []), "never held"
    code, rest, stderr = interrupt(proc, signal.SIGINT)
    assert code == 130, stderr
    stdout = "".join(seen) + rest
    data = one_json_object(stdout)
    assert "tunnels" in data or "env_keys" in data
    for value in stack.secrets("pr-7-stack").values():
        assert value not in stdout + stderr


# ---- terminals and pipes that are not UTF-8 ---------------------------------------------------


def test_a_non_utf8_stdout_does_not_crash_the_command(tmp_path: Path, project: Project) -> None:
    """Break: on a stdout that cannot encode what is printed (PYTHONIOENCODING=ascii, a
    latin-1 or cp1252 console) a result with a non-ASCII character (a branch `feat/ü`)
    raised UnicodeEncodeError: "a bug in previewctl", exit 1, and no result."""
    env = {**base_env(tmp_path), "PYTHONIOENCODING": "ascii"}
    result = Cli(project, env).run("plan", "--pr", "4", "--branch", "feat/\u00fcn\u00efcode")
    assert result.code == 0, result.output
    assert "a bug in previewctl" not in result.output
    assert "Plan for PR 4" in result.stdout


# ---- option values that are not what they seem ------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_an_empty_config_path_says_it_is_empty(
    tmp_path: Path, project: Project, where: str
) -> None:
    """Break: `--config=` (an empty path, as `--config="$UNSET_VAR"` gives) said "file ''
    is a directory" before the command and "config file not found" for `.` after it."""
    args = ["--config=", "plan"] if where == "before" else ["plan", "--config="]
    proc = subprocess.run(
        [previewctl_executable(), "--json", *args],
        capture_output=True,
        text=True,
        env=base_env(tmp_path),
        cwd=project.root,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    error = one_json_object(proc.stdout)["error"]
    assert isinstance(error, dict)
    assert "empty" in str(error["message"]), error
    assert "directory" not in proc.stderr


def test_an_unknown_option_gets_no_unrelated_suggestion(tmp_path: Path, project: Project) -> None:
    """Break: `plan --nosuch` answered "(Possible options: --branch)": click's did-you-mean
    offers options that share two letters with the typo; a person goes looking for what
    --branch has to do with it. A real typo (`--jsno`) still gets its option."""
    cli = Cli(project, base_env(tmp_path))
    unrelated = cli.run("plan", "--nosuch")
    assert unrelated.code == 2
    assert "--branch" not in unrelated.stderr, unrelated.stderr
    typo = cli.run("plan", "--jsno")
    assert typo.code == 2
    assert "--json" in typo.stderr, typo.stderr


# ---- config errors ----------------------------------------------------------------------------


def test_a_typo_in_a_machine_config_key_is_a_config_error_with_its_line(
    tmp_path: Path, project: Project
) -> None:
    """Break: a container's `"evn": {...}` (for `env`) in .fly/machine-config.json passed
    `plan` and went to Fly, which ignores unknown fields: the container started without its
    env (no database password). A key that is a near-miss of a known one is now a config
    error with file:line and did-you-mean."""
    machine = json.loads(json.dumps(project.machine))
    machine["containers"][0]["evn"] = machine["containers"][0].pop("env")
    project.write(BASIC_TOML, machine=machine)
    result = Cli(project, base_env(tmp_path)).run("--json", "plan", "--pr", "3")
    assert result.code == 2, result.output
    message = str(one_json_object(result.stdout)["error"]["message"])  # type: ignore[index]
    assert "machine-config.json:" in message, message
    assert "'evn'" in message, message
    assert "'env'" in message, message


def test_a_near_miss_secret_name_still_says_how_to_add_one(
    tmp_path: Path, project: Project
) -> None:
    """Break: `${secrets.api_key2}` with `api_key` defined said only "did you mean
    ${secrets.api_key}?": a person who meant a new secret was not told how to add one
    (an unknown secret without a near miss is)."""
    machine = json.loads(json.dumps(project.machine))
    machine["containers"][1]["env"]["SPICEDB_GRPC_PRESHARED_KEY"] = "${secrets.api_key2}"
    project.write(BASIC_TOML, machine=machine)
    result = Cli(project, base_env(tmp_path)).run("plan", "--pr", "3")
    assert result.code == 2, result.output
    assert "did you mean ${secrets.api_key}" in result.stderr, result.stderr
    assert "[secrets] generate" in result.stderr, result.stderr


# ---- the PR comment and the step summary ------------------------------------------------------


def test_an_error_with_backticks_stays_inside_its_code_block(wired: Wired) -> None:
    """Break: the error of a failed `up` goes into a ``` block of the PR comment and the
    step summary; an error text with its own ``` (a step's output, an API's message)
    closed the block, and what followed rendered as Markdown (links, images, HTML)."""
    fence = "```"
    wired.fly.inject(
        "POST",
        r"/machines$",
        422,
        body={"error": f"bad {fence}\n![x](https://evil.example/x.png) <details>", "status": "x"},
    )
    result = wired.cli.run("up")
    assert result.code == 1, result.output
    for text in (wired.summary.read_text(), wired.github.comments_on(wired.pr)[0]["body"]):
        blocks = text.split("**Error**", 1)[1]
        opening = blocks.lstrip().split("\n", 1)[0]
        assert set(opening) == {"`"}, blocks
        assert len(opening) > 3, blocks
        inside, _, after = blocks.lstrip()[len(opening) :].partition("\n" + opening + "\n")
        assert "evil.example" in inside, text
        assert "evil.example" not in after, text


def test_tunnel_holds_when_its_state_file_cannot_be_written(stack: Stack, tmp_path: Path) -> None:
    """Break: `tunnel` announces its ports in a state file for `env`; when that directory
    cannot be made (XDG_STATE_HOME is a file, a read-only home), the tunnels that had
    opened were torn down and the command died as "a bug in previewctl" (exit 1). The
    file is a convenience: the tunnels hold, with a warning."""
    assert stack.cli.run("up", "--pr", "7").code == 0, stack.cli.history[-1].output
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    proc = stack.popen("tunnel", "--pr", "7", env={"XDG_STATE_HOME": str(blocker)})
    seen: list[str] = []
    held = read_until(proc.stderr, "press Ctrl-C", 60, seen)
    code, _out, stderr = interrupt(proc, signal.SIGINT)
    assert held, "".join(seen) + stderr
    assert code == 130, stderr
    assert "a bug in previewctl" not in "".join(seen) + stderr


def test_a_lost_deployment_status_answer_is_not_a_second_status(wired: Wired) -> None:
    """Break: when GitHub recorded the deployment's `success` status but the answer was
    lost, the retry posted it again: two `success` statuses for one `up`, though a
    status is added only when the state or URL changed (a lost create answer was
    already handled; a lost status answer was not)."""
    wired.github.inject("POST", r"/statuses$", drop_after=True)
    result = wired.cli.run("up")
    assert result.code == 0, result.output
    (made,) = wired.github.deployments_in(f"pr-{wired.pr}")
    states = [s["state"] for s in wired.github.statuses_of(made["id"])]
    assert states == ["success"], states


def test_an_unset_env_reference_names_its_file_and_line(
    tmp_path: Path, project: Project, fly: FlyEmulator, fly_token: str
) -> None:
    """Break: `${env.NAME}` unset said only "the config uses environment variables that are
    not set: NAME", with no file:line (every other config error has one): in a config with
    several steps and a machine config, the person had to grep for it."""
    machine = json.loads(json.dumps(project.machine))
    machine["containers"][0]["env"]["LLM"] = "${env.LLM_KEY_UNSET}"
    toml = BASIC_TOML + '\n[[steps]]\nname = "m"\nrun = "true"\nenv = { X = "${env.STEP_UNSET}" }\n'
    project.write(toml, machine=machine)
    env = {**base_env(tmp_path), "FLY_API_TOKEN": fly_token, "FLY_API_BASE_URL": fly.url}
    result = Cli(project, env).run("up", "--pr", "4", "--branch", "feat/x")
    assert result.code == 2, result.output
    step_line = toml.splitlines().index('env = { X = "${env.STEP_UNSET}" }') + 1
    assert f"previewctl.toml:{step_line}" in result.stderr, result.stderr
    assert "machine-config.json:" in result.stderr, result.stderr
    assert "STEP_UNSET" in result.stderr
    assert "LLM_KEY_UNSET" in result.stderr
    assert not fly.apps


def test_a_typo_in_a_profile_machine_file_is_a_config_error_with_its_line(
    tmp_path: Path, project: Project
) -> None:
    """Break: the same near-miss key (`"evn"`) in a profile's machine file (a file the
    config includes) passed too: Fly would have started the profile's container
    without its env."""
    profile = {"containers": [{"name": "collector", "image": "otel/col:1", "evn": {"A": "b"}}]}
    (project.root / ".fly" / "profiles").mkdir(parents=True)
    (project.root / ".fly" / "profiles" / "tracing.json").write_text(json.dumps(profile, indent=2))
    project.write(
        BASIC_TOML
        + '\n[profiles.tracing]\nmachine = ".fly/profiles/tracing.json"\nports = [14318]\n'
    )
    result = Cli(project, base_env(tmp_path)).run("plan", "--pr", "3", "--profile", "tracing")
    assert result.code == 2, result.output
    assert "tracing.json:" in result.stderr, result.stderr
    assert "did you mean 'env'" in result.stderr, result.stderr


def test_env_ignores_a_tunnel_to_the_previews_old_machine(
    cli: InProcessCli, env_preview: str, tmp_path: Path
) -> None:
    """Break: a `tunnel` still running from before the preview was made again (down and
    up: a new machine, new secrets) kept its state file; `env` printed its port, a
    tunnel to a machine that is gone (tunnels go to `MACHINE.vm.APP.internal`), with the
    new preview's password."""
    state = tmp_path / "state"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        _write_state(state, "pr-5-svc", 5, os.getpid(), {"db": port})  # machine "m1": not it
        code, output = _env_exit(cli, state)
    finally:
        listener.close()
    assert code == 2, output
    assert f"127.0.0.1:{port}" not in output


@pytest.mark.parametrize("order", [("--json", "--version"), ("--version", "--json")])
def test_version_under_json_is_one_object(
    tmp_path: Path, project: Project, order: tuple[str, str]
) -> None:
    """Break: `previewctl --json --version` printed `previewctl 0.1.0`: under --json, stdout
    is one JSON object, also for the version (a workflow logs which one it ran)."""
    result = Cli(project, base_env(tmp_path)).run(*order)
    assert result.code == 0, result.output
    data = one_json_object(result.stdout)
    assert isinstance(data["version"], str)
    assert data["version"]
