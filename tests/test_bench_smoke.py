"""Every bench in bench/ runs at a tiny scale and reports: no timing is judged here.

A bench that is never run rots: the fakes change under it (bench/workflow.py hung on
the emulator's always-failing compat checks, then handed flyctl the Machines URL as its
GraphQL base) and nobody notices until the figures are needed. So each runs here, as a
script, the way README says to run it, and must get to its report. Verdicts that depend
on timing (startup, up_latency, workflow) may say FAIL at this scale; the ones that
count calls (gc_scale, noop_up) must pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (script and tiny-scale arguments, the line its report ends with, verdict judged here)
BENCHES = [
    (["gc_scale.py", "3", "6"], "Fly calls per preview", True),
    (["noop_up.py"], "SUMMARY noop_up:", True),
    (["startup.py", "--runs", "1"], "SUMMARY startup:", False),
    # Below 0.05 its "fresh container" (the database restarted at boot) races the probe.
    (["up_latency.py", "--scale", "0.05", "--runs", "1", "--quick"], "SUMMARY up_latency:", False),
    (["workflow.py", "--scale", "0.005"], "no-wait well under the boot", False),
]


def run_bench(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / args[0]), *args[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=110,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "report", "verdict_counts"), BENCHES, ids=[b[0][0] for b in BENCHES]
)
def test_the_bench_runs_and_reports(args: list[str], report: str, verdict_counts: bool) -> None:
    done = run_bench(args)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode in ((0,) if verdict_counts else (0, 1)), output
    last = [line for line in done.stdout.splitlines() if line.strip()][-1]
    assert report in last, done.stdout


def test_the_install_bench_says_what_it_needs_without_uv(tmp_path: Path) -> None:
    # Installing from the index takes half a minute and the network: here only that it
    # starts and tells what is missing (README: `install` needs uv on PATH).
    env = {**os.environ, "PATH": str(tmp_path)}
    done = run_bench(["install.py", "--runs", "1"], env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "uv is not on PATH" in done.stdout
