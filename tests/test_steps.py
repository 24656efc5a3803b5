"""Command and HTTP steps: real child processes and signals; HTTP through respx."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
import respx

from previewctl import redact, steps
from previewctl.errors import StepFailedError, TimeoutExceededError
from previewctl.reporter import Reporter
from previewctl.steps import CommandStep, HttpStep, run_command, run_http
from tests.support.processes import is_gone, wait_for
from tests.support.reporting import output


def python_step(
    name: str, code: str, cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 20
) -> CommandStep:
    return CommandStep(
        name=name,
        argv=[sys.executable, "-c", textwrap.dedent(code)],
        env=env or {},
        cwd=cwd,
        timeout=timeout,
    )


def read_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


# ---- commands ---------------------------------------------------------------------------


def test_command_gets_the_rendered_env_over_the_inherited_one(
    tmp_path: Path, reporter: Reporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREVIEWCTL_TEST_INHERITED", "from-parent")
    monkeypatch.setenv("PREVIEWCTL_TEST_OVERRIDDEN", "old")
    out = tmp_path / "out.txt"
    step = python_step(
        "migrate",
        """
        import os, pathlib
        pathlib.Path(os.environ["OUT"]).write_text("|".join([
            os.environ["DATABASE_URL"],
            os.environ["PREVIEWCTL_TEST_INHERITED"],
            os.environ["PREVIEWCTL_TEST_OVERRIDDEN"],
            os.getcwd(),
        ]))
        """,
        tmp_path,
        env={
            "OUT": str(out),
            "DATABASE_URL": "postgresql://u:p@127.0.0.1:15432/db",
            "PREVIEWCTL_TEST_OVERRIDDEN": "new",
        },
    )
    run_command(step, reporter)
    assert out.read_text().split("|") == [
        "postgresql://u:p@127.0.0.1:15432/db",
        "from-parent",
        "new",
        str(tmp_path),
    ]


def test_a_step_never_inherits_previewctls_credentials(
    tmp_path: Path, reporter: Reporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step runs the PR's code: it sees previewctl's env minus the platform tokens,
    and gets one only when its own `env` names it."""
    tokens = {
        name: f"tok-{name.lower()}-{os.urandom(6).hex()}" for name in steps.WITHHELD_FROM_STEPS
    }
    assert set(tokens) == {"FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN"}
    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PREVIEWCTL_TEST_KEPT", "kept")
    dump = tmp_path / "env.json"
    code = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"
    step = CommandStep(
        name="dump",
        argv=[sys.executable, "-c", code, str(dump)],
        env={"GH_TOKEN": tokens["GITHUB_TOKEN"]},  # as `GH_TOKEN = "${env.GITHUB_TOKEN}"` renders
        cwd=tmp_path,
        timeout=20,
    )
    run_command(step, reporter)
    seen = json.loads(dump.read_text())
    assert not set(tokens) & set(seen)
    assert seen["PREVIEWCTL_TEST_KEPT"] == "kept"
    assert seen["GH_TOKEN"] == tokens["GITHUB_TOKEN"]
    others = {k: v for k, v in seen.items() if k != "GH_TOKEN"}
    for value in tokens.values():
        assert value not in json.dumps(others)


def test_output_is_streamed_to_the_reporter_while_the_command_runs(
    tmp_path: Path, reporter: Reporter
) -> None:
    go = tmp_path / "go"
    step = python_step(
        "seed",
        f"""
        import pathlib, sys, time
        print("first line", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        deadline = time.monotonic() + 10
        while not pathlib.Path({str(go)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        print("after go", flush=True)
        """,
        tmp_path,
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_command(step, reporter)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    # The child blocks until "go" exists: seeing its first lines now proves streaming.
    assert wait_for(lambda: "to stderr" in output(reporter), timeout=10)
    assert "after go" not in output(reporter)
    go.touch()
    thread.join(15)
    assert not thread.is_alive()
    assert errors == []
    lines = output(reporter).splitlines()
    assert lines == ["  │ first line", "  │ to stderr", "  │ after go"]


def test_failure_names_the_exit_code_and_shows_the_last_lines_scrubbed(
    tmp_path: Path, reporter: Reporter
) -> None:
    secret = "s3cr3t-password-value"
    redact.register(secret)
    step = python_step(
        "migrate",
        f"""
        import sys
        for i in range(30):
            print(f"line {{i}}")
        print("connecting with {secret}")
        sys.exit(3)
        """,
        tmp_path,
    )
    with pytest.raises(StepFailedError) as info:
        run_command(step, reporter)
    message = str(info.value)
    assert message.startswith("step migrate failed with exit code 3; last output:")
    assert "line 29" in message
    assert "line 10\n" not in message  # only the last 20 lines
    assert "line 11" in message
    assert "connecting with ***" in message
    assert secret not in message
    assert secret not in output(reporter)


def test_a_missing_executable_is_a_clear_step_failure(tmp_path: Path, reporter: Reporter) -> None:
    step = CommandStep("migrate", ["pnpm-does-not-exist", "db:migrate"], {}, tmp_path, 10)
    with pytest.raises(StepFailedError, match="step migrate: command not found: pnpm-does-not"):
        run_command(step, reporter)


def test_a_missing_working_directory_is_a_clear_step_failure(
    tmp_path: Path, reporter: Reporter
) -> None:
    step = CommandStep("migrate", ["true"], {}, tmp_path / "nope", 10)
    with pytest.raises(StepFailedError, match=r"working directory .* does not exist"):
        run_command(step, reporter)


def test_timeout_kills_the_child_and_its_grandchildren(tmp_path: Path, reporter: Reporter) -> None:
    pids = tmp_path / "pids"
    script = (
        f"sleep 60 & echo $! >> {pids}; sleep 60 & echo $! >> {pids}; "
        f"echo $$ >> {pids}; echo started; wait"
    )
    step = CommandStep("slow", ["sh", "-c", script], {}, tmp_path, timeout=1)
    started = time.monotonic()
    with pytest.raises(TimeoutExceededError) as info:
        run_command(step, reporter)
    assert time.monotonic() - started < 4
    assert str(info.value).startswith("step slow timed out after 1s; last output:\n  started")
    recorded = read_pids(pids)
    assert len(recorded) == 3
    assert wait_for(lambda: all(is_gone(pid) for pid in recorded), timeout=3)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, reporter: Reporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps, "_TERM_GRACE", 0.5)
    pids = tmp_path / "pids"
    script = f"trap '' TERM; sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait; wait"
    step = CommandStep("stubborn", ["sh", "-c", script], {}, tmp_path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TimeoutExceededError):
        run_command(step, reporter)
    assert time.monotonic() - started < 3
    assert wait_for(lambda: all(is_gone(pid) for pid in read_pids(pids)), timeout=3)


def test_processes_left_behind_by_a_successful_step_are_ended(
    tmp_path: Path, reporter: Reporter
) -> None:
    pids = tmp_path / "pids"
    step = CommandStep(
        "daemonish", ["sh", "-c", f"sleep 60 & echo $! > {pids}; exit 0"], {}, tmp_path, 10
    )
    started = time.monotonic()
    run_command(step, reporter)
    assert time.monotonic() - started < 3
    assert wait_for(lambda: all(is_gone(pid) for pid in read_pids(pids)), timeout=3)


def test_ctrl_c_while_a_step_runs_kills_its_processes_and_propagates(
    tmp_path: Path, reporter: Reporter
) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    step = CommandStep("migrate", ["sh", "-c", script], {}, tmp_path, timeout=60)
    assert threading.current_thread() is threading.main_thread()

    sent = threading.Event()

    def interrupt_when_started() -> None:
        # Generous: under a loaded machine the shell may take seconds to write its pids.
        if wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, timeout=25):
            sent.set()
            os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt_when_started, daemon=True)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run_command(step, reporter)
    timer.join(5)
    assert sent.is_set(), "the step's shell never wrote both pids: no Ctrl-C was sent"
    assert wait_for(lambda: all(is_gone(pid) for pid in read_pids(pids)), timeout=3)


# ---- HTTP ---------------------------------------------------------------------------------

API = "https://agents-api.example.test"


def http_step(method: str, path: str = "/manage/project", **kwargs: object) -> HttpStep:
    return HttpStep(
        name="seed",
        method=method,
        url=f"{API}{path}",
        headers={"Authorization": "Bearer token-value-1234", "Content-Type": "application/json"},
        body=b'{"id": "demo"}' if method in ("PUT", "POST") else None,
        timeout=kwargs.get("timeout", 7.5),  # type: ignore[arg-type]
    )


@pytest.fixture
def client() -> httpx.Client:
    return httpx.Client(timeout=1.0)


def test_put_is_retried_on_503_then_succeeds(client: httpx.Client, reporter: Reporter) -> None:
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.put("/manage/project").mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": "0"}, text="busy"),
                httpx.Response(200, json={"ok": True}),
            ]
        )
        response = run_http(http_step("PUT"), client, reporter)
    assert response.status_code == 200
    assert route.call_count == 2
    sent = route.calls[0].request
    assert sent.content == b'{"id": "demo"}'
    assert sent.headers["Authorization"] == "Bearer token-value-1234"
    assert sent.extensions["timeout"]["read"] == 7.5  # the step's timeout, not the client's
    text = output(reporter)
    assert "→ 503, retrying in 0.0s (attempt 2/4)" in text
    assert text.endswith("seed: 200\n")


def test_post_is_never_retried(client: httpx.Client, reporter: Reporter) -> None:
    with respx.mock(base_url=API) as mock:
        route = mock.post("/manage/project").mock(
            return_value=httpx.Response(503, headers={"Retry-After": "0"}, text="busy")
        )
        with pytest.raises(StepFailedError) as info:
            run_http(http_step("POST"), client, reporter)
    assert route.call_count == 1
    assert str(info.value) == f"step seed: POST {API}/manage/project → 503: busy"


def test_post_connection_error_is_not_retried(client: httpx.Client, reporter: Reporter) -> None:
    with respx.mock(base_url=API) as mock:
        route = mock.post("/manage/project").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(StepFailedError, match="failed: refused"):
            run_http(http_step("POST"), client, reporter)
    assert route.call_count == 1


def test_get_connection_error_is_retried(client: httpx.Client, reporter: Reporter) -> None:
    with respx.mock(base_url=API) as mock:
        route = mock.get("/health").mock(
            side_effect=[httpx.ConnectError("refused"), httpx.Response(204)]
        )
        response = run_http(http_step("GET", "/health"), client, reporter)
    assert response.status_code == 204
    assert route.call_count == 2


def test_server_error_after_all_attempts_fails_with_status_and_a_redacted_body(
    client: httpx.Client, reporter: Reporter
) -> None:
    secret = "bypass-secret-abcdef"
    redact.register(secret)
    body = f"internal error: bad token {secret} " + "x" * 400
    with respx.mock(base_url=API) as mock:
        route = mock.put(f"/manage/project?key={secret}").mock(
            return_value=httpx.Response(500, headers={"Retry-After": "0"}, text=body)
        )
        with pytest.raises(StepFailedError) as info:
            run_http(http_step("PUT", f"/manage/project?key={secret}"), client, reporter)
    assert route.call_count == 4
    message = str(info.value)
    assert message.startswith(
        f"step seed: PUT {API}/manage/project?key=*** → 500: internal error: bad token ***"
    )
    assert secret not in message
    assert secret not in output(reporter)
    shown_body = message.split(" → 500: ", 1)[1]
    assert len(shown_body) == 300


def test_a_client_error_is_not_retried(client: httpx.Client, reporter: Reporter) -> None:
    with respx.mock(base_url=API) as mock:
        route = mock.delete("/manage/project").mock(
            return_value=httpx.Response(401, json={"error": "unauthorized"})
        )
        with pytest.raises(StepFailedError, match=r"→ 401: .*unauthorized"):
            run_http(http_step("DELETE"), client, reporter)
    assert route.call_count == 1


def test_retry_after_is_honoured(client: httpx.Client, reporter: Reporter) -> None:
    with respx.mock(base_url=API) as mock:
        mock.get("/slow").mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "1"}),
                httpx.Response(200),
            ]
        )
        started = time.monotonic()
        run_http(http_step("GET", "/slow"), client, reporter)
    assert 0.9 <= time.monotonic() - started < 2.5
    assert "→ 429, retrying in 1.0s" in output(reporter)


def test_a_long_retry_after_is_capped(
    client: httpx.Client, reporter: Reporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps, "_RETRY_AFTER_MAX", 0.2)
    with respx.mock(base_url=API) as mock:
        mock.get("/slow").mock(
            side_effect=[httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(200)]
        )
        started = time.monotonic()
        run_http(http_step("GET", "/slow"), client, reporter)
    assert time.monotonic() - started < 1.5
    assert "retrying in 0.2s" in output(reporter)
