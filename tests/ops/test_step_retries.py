"""`retries` of a step: a failed attempt is run again, up to the limit, then it fails."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.fakes.fly_api import FlyEmulator
from tests.support.inprocess import InProcess
from tests.support.previews import seed_preview
from tests.support.project import BASIC_TOML, Project

PR, BRANCH, APP = "5", "feat/retry", "pr-5-svc"

# Fails until it has been run `succeed_on` times; every run leaves a line in the log.
FLAKY = """
import pathlib, sys
log = pathlib.Path(sys.argv[1])
runs = len(log.read_text().splitlines()) + 1 if log.exists() else 1
log.write_text("run\\n" * runs)
print(f"attempt {runs}", flush=True)
sys.exit(0 if runs >= int(sys.argv[2]) else 3)
"""


def seed_toml(tmp_path: Path, *, retries: int | None, succeed_on: int) -> str:
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY)
    line = "" if retries is None else f"retries = {retries}\n"
    return BASIC_TOML + (
        "\n[[seed]]\n"
        'name = "flaky"\n'
        f'run = ["{sys.executable}", "{script}", "{tmp_path / "runs.log"}", "{succeed_on}"]\n'
        + line
    )


def runs(tmp_path: Path) -> int:
    log = tmp_path / "runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def with_preview(fly: FlyEmulator) -> None:
    seed_preview(fly, APP, int(PR), branch=BRANCH, last_up=datetime.now(UTC))


def test_a_step_that_fails_once_is_run_again_and_succeeds(
    ops: InProcess, project: Project, fly: FlyEmulator, tmp_path: Path
) -> None:
    with_preview(fly)
    project.write(seed_toml(tmp_path, retries=2, succeed_on=2))
    result = ops.seed(PR, BRANCH)
    assert result.code == 0, result.output
    assert runs(tmp_path) == 2
    assert "flaky failed (attempt 1/3); retrying" in result.stderr
    assert "attempt 2" in result.stderr
    assert ops.sleep.calls == [1.0]  # one backoff, between the two attempts


def test_a_step_that_keeps_failing_stops_after_its_retries(
    ops: InProcess, project: Project, fly: FlyEmulator, tmp_path: Path
) -> None:
    with_preview(fly)
    project.write(seed_toml(tmp_path, retries=1, succeed_on=99))
    result = ops.seed(PR, BRANCH)
    assert result.code == 1
    assert runs(tmp_path) == 2  # the first try and one retry, no more
    assert "flaky failed (attempt 1/2); retrying" in result.stderr
    assert "attempt 2/2" not in result.stderr  # the last failure is the error, not a retry
    assert "step flaky failed with exit code 3" in result.stderr
    assert ops.sleep.calls == [1.0]


def test_without_retries_a_failed_step_is_run_once(
    ops: InProcess, project: Project, fly: FlyEmulator, tmp_path: Path
) -> None:
    with_preview(fly)
    project.write(seed_toml(tmp_path, retries=None, succeed_on=2))
    result = ops.seed(PR, BRANCH)
    assert result.code == 1
    assert runs(tmp_path) == 1
    assert "retrying" not in result.stderr
    assert ops.sleep.calls == []
