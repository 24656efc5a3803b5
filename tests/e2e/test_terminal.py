"""What a person sees on a terminal: `up` under a pseudo-terminal shows waits live (the
elapsed time counts up while Fly's wait endpoint blocks) and ends with the preview's
URLs and the next step; with CI=true the same run is plain lines, no control sequences."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import base_env, previewctl_executable
from tests.support.project import Project

pytestmark = pytest.mark.e2e

BOOT_SECONDS = 3.5  # long enough for the counter to show 1s, 2s, 3s
ESC = "\x1b"


@pytest.fixture
def slow_fly(fly_token: str) -> Iterator[FlyEmulator]:
    emu = FlyEmulator(token=fly_token, org="acme", boot_seconds=BOOT_SECONDS)
    emu.start()
    yield emu
    emu.stop()


def run_on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run with stdout and stderr on one pseudo-terminal; return (code, all it drew)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [previewctl_executable(), *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
        cwd=cwd,
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal's slave side is closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode("utf-8", "replace")


def counts(text: str, label: str) -> set[int]:
    """The elapsed seconds shown for a wait whose line contains ``label``."""
    found = re.findall(re.escape(label) + r"[^\r\n(]*\((\d+)s\)", text)
    return {int(s) for s in found}


def up_env(tmp_path: Path, fly: FlyEmulator, fly_token: str) -> dict[str, str]:
    return {**base_env(tmp_path), "FLY_API_TOKEN": fly_token, "FLY_API_BASE_URL": fly.url}


def test_a_terminal_shows_the_wait_counting_up_and_the_result(
    project: Project, slow_fly: FlyEmulator, fly_token: str, tmp_path: Path
) -> None:
    env = up_env(tmp_path, slow_fly, fly_token)
    code, shown = run_on_a_terminal(
        ["--config", str(project.config), "up", "--pr", "3"], env, project.root
    )
    assert code == 0, shown
    assert ESC in shown  # a live display, redrawn in place
    seconds = counts(shown, "waiting for state 'started'")
    assert {1, 2, 3} <= seconds, shown  # the counter moved while Fly's wait endpoint blocked
    assert "preview for PR #3 is ready in" in shown
    assert "pr-3-svc.fly.dev" in shown
    assert "`previewctl tunnel --pr 3`" in shown
    assert "`previewctl resume --pr 3`" in shown


def test_ci_on_a_terminal_gets_plain_lines_without_control_sequences(
    project: Project, slow_fly: FlyEmulator, fly_token: str, tmp_path: Path
) -> None:
    env = {**up_env(tmp_path, slow_fly, fly_token), "CI": "true"}
    code, shown = run_on_a_terminal(
        ["--config", str(project.config), "up", "--pr", "3"], env, project.root
    )
    assert code == 0, shown
    assert ESC not in shown, repr(shown[:500])
    assert "\r\x1b" not in shown
    lines = shown.replace("\r\n", "\n").splitlines()
    assert any(line.startswith("… machine ") for line in lines), shown
    assert any("waiting for state 'started' (0s)" in line for line in lines), shown
    assert "✓ preview for PR #3 is ready in" in shown
