"""Attacks on the adoption features: `init`, `doctor`, `up --no-wait` and action.yml.

Each test drives the installed console script (or the action's own `run:` scripts in
bash) against the loopback fakes, made hostile where the attack needs it (see
tests/attack/hostile.py), and asserts the outcome the contract promises.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from previewctl.ops.init import template_files
from tests.attack import hostile, rigs
from tests.attack.hostile import HostileFly


@pytest.fixture(scope="session")
def postgres_init(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`init --template postgres` run once; each doctor test gets a copy of what it wrote."""
    return rigs.postgres_template_repo(tmp_path_factory.mktemp("postgres-init"))


@pytest.fixture
def doctor(tmp_path: Path, postgres_init: Path) -> Iterator[rigs.Doctor]:
    rig = rigs.Doctor(tmp_path, postgres_init)
    yield rig
    rig.stop()


@pytest.fixture
def early(tmp_path: Path) -> Iterator[rigs.Early]:
    rig = rigs.Early(tmp_path)
    yield rig
    rig.fly.stop()


@pytest.fixture
def installed(tmp_path: Path) -> dict[str, str]:
    """A runner temp directory whose venv holds a previewctl that records its argv."""
    venv_bin = tmp_path / "runner-temp" / "previewctl-venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "previewctl").write_text(rigs.RECORDER)
    (venv_bin / "previewctl").chmod(0o755)
    return {
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "ARGV_LOG": str(tmp_path / "argv.log"),
    }


# ---- init -------------------------------------------------------------------------------


def test_init_with_a_file_where_a_directory_goes_writes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".fly").parent.mkdir()
    (repo / ".fly").write_text("not a directory\n")
    result = rigs.init_repo(tmp_path, "--template", "postgres", str(repo))
    assert result.code == 2, result.output
    assert rigs.BUG not in result.output
    assert ".fly" in result.stderr
    assert rigs.tree(repo) == [".fly"]


def test_init_below_a_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x\n")
    result = rigs.init_repo(tmp_path, str(tmp_path / "afile" / "repo"))
    assert result.code == 2, result.output
    assert rigs.BUG not in result.output
    assert (tmp_path / "afile").read_text() == "x\n"


def test_init_does_not_write_through_a_dangling_symlink(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside.toml"
    repo.mkdir()
    (repo / "previewctl.toml").symlink_to(outside)
    result = rigs.init_repo(tmp_path, str(repo))
    assert result.code == 2, result.output
    assert not outside.exists()
    assert rigs.tree(repo) == ["previewctl.toml"]
    forced = rigs.init_repo(tmp_path, "--force", str(repo))
    assert forced.code == 0, forced.output
    assert not outside.exists(), "--force replaces the link, not what it points to"
    assert not (repo / "previewctl.toml").is_symlink()


def test_init_does_not_write_outside_the_directory_through_a_symlinked_folder(
    tmp_path: Path,
) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "elsewhere"
    repo.mkdir()
    outside.mkdir()
    (repo / ".fly").symlink_to(outside, target_is_directory=True)
    for extra in ([], ["--force"]):
        result = rigs.init_repo(tmp_path, *extra, str(repo))
        assert result.code == 2, result.output
        assert "outside" in result.stderr
        assert list(outside.iterdir()) == []
        assert rigs.tree(repo) == [".fly"]


def test_init_into_a_symlinked_directory_writes_where_it_points(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target, target_is_directory=True)
    result = rigs.init_repo(tmp_path, "--template", "postgres", str(tmp_path / "link"))
    assert result.code == 0, result.output
    assert (target / "previewctl.toml").is_file()


def test_init_that_fails_half_way_leaves_nothing_half_written(tmp_path: Path) -> None:
    """A full disk (a file size limit) in the middle of the writes: all or nothing."""
    sizes = {k: len(v.encode()) for k, v in template_files("postgres").items()}
    limit = max(sizes["previewctl.toml"], sizes[".fly/machine-config.json"]) + 1
    assert sizes[".github/workflows/preview.yml"] > limit  # the third file cannot be written
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("mine\n")
    result = rigs.init_repo(
        tmp_path, "--template", "postgres", str(repo), preexec=rigs.limit_file_size(limit)
    )
    assert result.code == 1, result.output
    assert rigs.BUG not in result.output
    assert "nothing was written" in result.stderr
    assert rigs.tree(repo) == ["README.md"]
    assert (repo / "README.md").read_text() == "mine\n"


def test_init_force_that_fails_half_way_keeps_the_old_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert rigs.init_repo(tmp_path, "--template", "agents", str(repo)).code == 0
    before = {p: (repo / p).read_bytes() for p in rigs.tree(repo) if (repo / p).is_file()}
    sizes = {k: len(v.encode()) for k, v in template_files("postgres").items()}
    limit = max(sizes["previewctl.toml"], sizes[".fly/machine-config.json"]) + 1
    result = rigs.init_repo(
        tmp_path,
        "--force",
        "--template",
        "postgres",
        str(repo),
        preexec=rigs.limit_file_size(limit),
    )
    assert result.code == 1, result.output
    after = {p: (repo / p).read_bytes() for p in rigs.tree(repo) if (repo / p).is_file()}
    assert after == before


@pytest.mark.parametrize(
    "action",
    [
        "*a/b@c",
        "a/b@x:",
        "{a/b@c",
        "!a/b@c",
        "&a/b@c",
        "a/b@${{secrets.X}}",
        "'a/b@c'",
        "a/b@c\x7f",
    ],
)
def test_init_refuses_an_action_that_breaks_the_workflow_yaml(tmp_path: Path, action: str) -> None:
    result = rigs.init_repo(tmp_path, "--action", action, str(tmp_path / "repo"))
    assert result.code == 2, result.output
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("action", ["acme/previewctl@v1", "acme/tools/previewctl@0123abcd"])
def test_init_writes_the_action_it_was_given_as_valid_yaml(tmp_path: Path, action: str) -> None:
    repo = tmp_path / "repo"
    assert rigs.init_repo(tmp_path, "--action", action, str(repo)).code == 0
    flow = yaml.safe_load((repo / ".github/workflows/preview.yml").read_text())
    uses = [s.get("uses") for s in flow["jobs"]["up"]["steps"]]
    assert action in uses


def test_init_some_files_present_writes_nothing_and_keeps_them(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / ".github/workflows/preview.yml").write_text("mine\n")
    result = rigs.init_repo(tmp_path, str(repo))
    assert result.code == 2, result.output
    assert rigs.tree(repo) == [".github", ".github/workflows", ".github/workflows/preview.yml"]
    assert (repo / ".github/workflows/preview.yml").read_text() == "mine\n"


def test_init_unknown_template_writes_nothing(tmp_path: Path) -> None:
    result = rigs.init_repo(tmp_path, "--template", "nope", str(tmp_path / "repo"))
    assert result.code == 2, result.output
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("template", ["agents", "postgres"])
def test_plan_passes_on_what_init_wrote_into_an_odd_directory_name(
    tmp_path: Path, template: str
) -> None:
    repo = tmp_path / "my repo\nwith a line break"
    assert rigs.init_repo(tmp_path, "--template", template, str(repo)).code == 0
    env = hostile.base_env(tmp_path)
    planned = hostile.run(["plan", "--pr", "3", "--branch", "feature"], env, repo)
    assert planned.code == 0, planned.output


# ---- doctor -----------------------------------------------------------------------------


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def _assert_hints(report: dict[str, Any]) -> None:
    for check in report["checks"]:
        if check["status"] in ("fail", "warn"):
            assert check["hint"], f"no hint for {check}"


def test_doctor_all_good_is_exit_0(doctor: rigs.Doctor) -> None:
    result, report = doctor.run()
    assert result.code == 0, result.output
    assert [c["name"] for c in report["checks"]] == rigs.ALL_CHECKS
    assert {c["status"] for c in report["checks"]} == {"pass"}


@pytest.mark.parametrize(
    "answer",
    [
        hostile.body("{not json"),
        hostile.body("<html><body>Welcome to the hotel wifi</body></html>", 200, "text/html"),
        hostile.body("[1, 2, 3]"),
        hostile.body(""),
        hostile.body('"just a string"'),
    ],
    ids=["garbage-json", "html-200", "a-list", "empty-200", "a-string"],
)
def test_doctor_reports_every_check_when_apis_answer_garbage(
    doctor: rigs.Doctor, answer: hostile.Answer
) -> None:
    doctor.broke_everywhere(answer)
    result, report = doctor.run()
    assert result.code == 1, result.output
    checks = _by_name(report)
    assert list(checks) == rigs.ALL_CHECKS
    for name in ("fly org", "vercel project web", "vercel domain web", "github"):
        assert checks[name]["status"] == "fail", checks[name]
    assert checks["flyctl"]["status"] == "pass"
    _assert_hints(report)


@pytest.mark.parametrize(
    "answer",
    [
        hostile.body('{"error": "internal"}', 500),
        hostile.body('{"error": "slow down"}', 429),
        hostile.body("<html><body>502 Bad Gateway</body></html>", 502, "text/html"),
    ],
    ids=["500", "429", "html-502"],
)
def test_doctor_reports_every_check_with_a_hint_when_apis_fail(
    doctor: rigs.Doctor, answer: hostile.Answer
) -> None:
    doctor.broke_everywhere(answer)
    result, report = doctor.run()
    assert result.code == 1, result.output
    assert [c["name"] for c in report["checks"]] == rigs.ALL_CHECKS
    _assert_hints(report)


@pytest.mark.parametrize(
    ("status", "template", "content_type"),
    [
        (400, '{{"error": "bad request: you sent Authorization: {auth}"}}', "application/json"),
        (401, "<html><body>denied for {auth}</body></html>", "text/html"),
        (403, '{{"error": {{"code": "bad", "message": "token {auth} is malformed"}}}}', "a/json"),
        (500, "upstream said: {auth}", "text/plain"),
    ],
)
def test_doctor_never_prints_a_token_an_api_echoes(
    doctor: rigs.Doctor, status: int, template: str, content_type: str
) -> None:
    doctor.broke_everywhere(hostile.echo_authorization(status, template, content_type))
    result, report = doctor.run()  # run() asserts that no token is in the output
    assert result.code == 1, result.output
    assert [c["name"] for c in report["checks"]] == rigs.ALL_CHECKS


def test_doctor_reports_every_check_when_nothing_answers(doctor: rigs.Doctor) -> None:
    closed = "http://127.0.0.1:9"  # discard port: connection refused
    result, report = doctor.run(
        FLY_API_BASE_URL=closed, VERCEL_API_URL=closed, GITHUB_API_URL=closed
    )
    assert result.code == 1, result.output
    assert [c["name"] for c in report["checks"]] == rigs.ALL_CHECKS
    _assert_hints(report)


@pytest.mark.parametrize("blank", ["   ", "\t", "\n"])
def test_doctor_a_blank_token_is_a_failed_token_check(doctor: rigs.Doctor, blank: str) -> None:
    result, report = doctor.run(FLY_API_TOKEN=blank, VERCEL_TOKEN=blank, GITHUB_TOKEN=blank)
    assert result.code == 1, result.output
    checks = _by_name(report)
    assert checks["fly token"]["status"] == "fail"
    assert checks["fly org"]["status"] == "skip"
    assert checks["vercel token"]["status"] == "fail"
    assert checks["github"]["status"] == "fail"
    assert doctor.fly.calls() == []
    assert doctor.vercel.calls() == []
    _assert_hints(report)


def test_doctor_a_token_with_a_line_break_inside_is_a_failed_token_check(
    doctor: rigs.Doctor,
) -> None:
    token = doctor.tokens["FLY_API_TOKEN"]
    broken = token[:10] + "\n" + token[10:]
    result = hostile.run(["doctor"], doctor.env(FLY_API_TOKEN=broken), doctor.repo)
    assert result.code == 1, result.output
    assert token[10:] not in result.output
    assert token[:10] not in result.output
    assert doctor.fly.calls() == []


def test_doctor_a_fly_token_pasted_with_its_scheme_works(doctor: rigs.Doctor) -> None:
    token = doctor.tokens["FLY_API_TOKEN"]
    result, report = doctor.run(FLY_API_TOKEN=f"FlyV1 {token}")
    assert result.code == 0, result.output
    assert "macaroon" in _by_name(report)["fly token"]["detail"]


def test_doctor_flyctl_that_prints_the_tokens_never_shows_them(doctor: rigs.Doctor) -> None:
    flyctl = rigs.fake_flyctl(
        doctor.tmp, 'echo "garbage $FLY_API_TOKEN $FLY_ACCESS_TOKEN $VERCEL_TOKEN $GITHUB_TOKEN"\n'
    )
    _, report = doctor.run(PREVIEWCTL_FLYCTL=str(flyctl))
    check = _by_name(report)["flyctl"]
    assert check["status"] == "warn"
    assert check["hint"]


def test_doctor_flyctl_that_fails_is_a_failed_check(doctor: rigs.Doctor) -> None:
    flyctl = rigs.fake_flyctl(doctor.tmp, 'echo "Error: cannot open config" >&2\nexit 1\n')
    result, report = doctor.run(PREVIEWCTL_FLYCTL=str(flyctl))
    assert result.code == 1, result.output
    check = _by_name(report)["flyctl"]
    assert check["status"] == "fail"
    assert check["hint"]
    assert "cannot open config" in check["detail"]


def test_doctor_flyctl_that_hangs_is_ended_with_all_it_started(doctor: rigs.Doctor) -> None:
    pidfile = doctor.tmp / "child.pid"
    flyctl = rigs.fake_flyctl(doctor.tmp, f'sleep 600 &\necho $! > "{pidfile}"\nwait\n')
    try:
        result, report = doctor.run(PREVIEWCTL_FLYCTL=str(flyctl))
        assert result.code == 1, result.output
        check = _by_name(report)["flyctl"]
        assert check["status"] == "fail"
        assert check["hint"]
        assert [c["name"] for c in report["checks"]] == rigs.ALL_CHECKS
        pid = int(pidfile.read_text())
        assert rigs.gone(pid), "flyctl's child outlived doctor"
    finally:
        if pidfile.exists() and rigs.alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


# ---- up --no-wait -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["   ", "fm2_abcdef\nghijklmnop", "fm2_abc\tdefghijkl", "fm2_tökenvalue123"],
    ids=["blank", "line-break", "tab", "non-ascii"],
)
def test_no_wait_an_unusable_token_is_bad_input_before_any_request(
    early: rigs.Early, token: str
) -> None:
    result = early.run(rigs.NO_WAIT, FLY_API_TOKEN=token)
    assert result.code == 2, result.output
    assert rigs.BUG not in result.output
    assert early.fly.calls() == []
    for part in token.split():
        assert part not in result.output


@pytest.mark.parametrize("url", ["not a url", "ftp://api.machines.dev", "http://"])
def test_no_wait_an_unusable_base_url_is_bad_input(early: rigs.Early, url: str) -> None:
    result = early.run(rigs.NO_WAIT, FLY_API_BASE_URL=url)
    assert result.code == 2, result.output
    assert "FLY_API_BASE_URL" in result.stderr


def _lose(fly: HostileFly, path: str) -> None:
    fly.lose_answer("POST", path)


def _flaky(fly: HostileFly, path: str) -> None:
    fly.inject("POST", path, 503, times=2)


@pytest.mark.parametrize("fault", [_lose, _flaky], ids=["answer-lost", "503-twice"])
@pytest.mark.parametrize(
    "path",
    [r"^/v1/apps$", r"^/v1/apps/[^/]+/machines$", r"/ip_assignments$"],
    ids=["create-app", "create-machine", "allocate-ip"],
)
def test_no_wait_makes_each_thing_once_when_fly_answers_badly(
    early: rigs.Early, fault: Any, path: str
) -> None:
    fault(early.fly, path)
    first = early.run(rigs.NO_WAIT)
    assert first.code == 0, first.output
    assert len(early.machines()) == 1
    assert early.ip_kinds() == ["v4", "v6"]
    early.fly.clear_log()
    again = early.run(rigs.NO_WAIT)
    assert again.code == 0, again.output
    later = early.run(rigs.UP)
    assert later.code == 0, later.output
    assert early.fly.mutating_calls() == [], "a later up changed what --no-wait made"
    assert len(early.machines()) == 1
    assert early.ip_kinds() == ["v4", "v6"]


def test_no_wait_failure_of_any_kind_is_reported_by_the_later_up(early: rigs.Early) -> None:
    html = hostile.body("<html><body>proxy error</body></html>", 200, "text/html")
    early.fly.answer_raw("POST", r"^/v1/apps/[^/]+/machines$", html, times=1)
    failed = early.run(rigs.NO_WAIT)
    assert failed.code == 1, failed.output
    later = early.run(rigs.UP)
    assert later.code == 0, later.output
    assert "the early `up --no-wait` of this job failed" in later.stderr
    assert len(early.machines()) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", rf"^/v1/apps/{rigs.APP}$"),
        ("POST", r"^/v1/apps/[^/]+/machines$"),
        ("POST", r"/ip_assignments$"),
    ],
    ids=["get-app", "create-machine", "allocate-ip"],
)
def test_no_wait_a_garbage_answer_is_not_called_a_bug(
    early: rigs.Early, method: str, path: str
) -> None:
    html = hostile.body("<html><body>proxy error</body></html>", 200, "text/html")
    early.fly.answer_raw(method, path, html)
    result = early.run(rigs.NO_WAIT)
    assert result.code == 1, result.output
    assert rigs.BUG not in result.output
    assert "not what the Machines API documents" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_no_wait_interrupted_mid_create_exits_130_and_removes_its_app(
    early: rigs.Early, signum: int
) -> None:
    release = threading.Event()
    late = hostile.body('{"error": "too late"}', 503)
    early.fly.answer_raw("POST", r"/machines$", hostile.held_until(release, late), times=1)
    proc = subprocess.Popen(
        [hostile.previewctl(), *rigs.NO_WAIT],
        env=early.env(),
        cwd=early.repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not early.fly.calls("POST", r"/machines$") and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert rigs.BUG not in err
    assert rigs.APP not in early.fly.apps, "the app this run created is left without a machine"


# ---- action.yml -------------------------------------------------------------------------


def test_action_expands_no_expression_inside_a_script() -> None:
    for step in rigs.ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ("--no-wait", ["--no-wait"]),
        ("", []),
        ("--pr 5; touch pwned", ["--pr", "5;", "touch", "pwned"]),
        ("$(touch pwned) `touch pwned`", ["$(touch", "pwned)", "`touch", "pwned`"]),
        ("--branch 'a b'", ["--branch", "'a", "b'"]),
        ('--branch "x" *', ["--branch", '"x"', "*"]),
        ("--pr\t5   --dry-run", ["--pr", "5", "--dry-run"]),
    ],
)
def test_action_passes_hostile_args_as_literal_words(
    tmp_path: Path, installed: dict[str, str], args: str, words: list[str]
) -> None:
    env = {**installed, "COMMAND": "up", "ARGS": args, "CONFIG": "conf dir/$(x).toml"}
    result = rigs.run_script(tmp_path, "run", env)
    assert result.code == 0, result.output
    assert rigs.argv_log(installed) == [["--config", "conf dir/$(x).toml", "up", *words]]
    assert not (tmp_path / "pwned").exists()


def test_action_passes_every_line_of_args(tmp_path: Path, installed: dict[str, str]) -> None:
    """`args: |` on several lines is whitespace too: no line may be dropped silently."""
    env = {**installed, "COMMAND": "up", "ARGS": "--no-wait\n--pr 5\n", "CONFIG": "p.toml"}
    result = rigs.run_script(tmp_path, "run", env)
    assert result.code == 0, result.output
    assert rigs.argv_log(installed) == [["--config", "p.toml", "up", "--no-wait", "--pr", "5"]]


@pytest.mark.parametrize(
    "command", ["up;touch pwned", "x\n::warning title=pwned::injected", "x%0A::notice::y", "init"]
)
def test_action_refuses_an_unknown_command_without_a_workflow_command_in_it(
    tmp_path: Path, installed: dict[str, str], command: str
) -> None:
    env = {**installed, "COMMAND": command, "ARGS": "", "CONFIG": "p.toml"}
    result = rigs.run_script(tmp_path, "run", env)
    assert result.code == 2, result.output
    assert rigs.argv_log(installed) == []
    assert not (tmp_path / "pwned").exists()
    commands = [line for line in result.output.splitlines() if line.startswith("::")]
    assert len(commands) == 1, commands
    assert commands[0].startswith("::error title=previewctl::unknown command")


def test_action_installs_from_its_own_path_whatever_it_holds(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text(rigs.RECORDER)
    (bin_dir / "uv").chmod(0o755)
    (bin_dir / "python").symlink_to(Path(sys.executable))
    action_path = tmp_path / "the action's $(touch pwned) `path`"
    action_path.mkdir()
    (tmp_path / "runner-temp").mkdir()
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "ACTION_PATH": str(action_path),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "ARGV_LOG": str(tmp_path / "argv.log"),
    }
    assert rigs.run_script(tmp_path, "found", env).code == 0
    assert not (tmp_path / "output").exists()  # nothing installed yet
    installed = rigs.run_script(tmp_path, "Install previewctl", env)
    assert installed.code == 0, installed.output
    venv_calls, pip_calls = rigs.argv_log(env)
    assert venv_calls[0] == "venv"
    assert pip_calls[-1] == str(action_path), "installs from the action's own source"
    assert f"{action_path}/constraints.txt" in pip_calls
    assert not (tmp_path / "pwned").exists()
    assert rigs.run_script(tmp_path, "found", env).code == 0
    assert (tmp_path / "output").read_text() == "installed=true\n"


def test_action_outputs_are_the_run_steps() -> None:
    assert "run" in rigs.STEPS
    for name, output in rigs.ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


# ---- a config that is not text ----------------------------------------------------------


@pytest.mark.parametrize("file", ["previewctl.toml", ".fly/machine-config.json"])
def test_doctor_reports_a_config_that_is_not_utf8_and_checks_the_rest(
    doctor: rigs.Doctor, file: str
) -> None:
    (doctor.repo / file).write_bytes(b"\xff\xfe not utf-8")
    result, report = doctor.run()
    assert result.code == 1, result.output
    checks = _by_name(report)
    assert checks["config"]["status"] == "fail"
    assert checks["config"]["hint"]
    assert checks["fly token"]["status"] == "pass"
    assert checks["github"]["status"] == "pass"


def test_plan_a_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert rigs.init_repo(tmp_path, "--template", "postgres", str(repo)).code == 0
    (repo / "previewctl.toml").write_bytes(b"\xff\xfe not utf-8")
    result = hostile.run(["plan", "--pr", "1", "--branch", "x"], hostile.base_env(tmp_path), repo)
    assert result.code == 2, result.output
    assert rigs.BUG not in result.output
