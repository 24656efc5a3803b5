"""Fixtures only: the fakes, a project directory, the CLI in-process or as a subprocess.

The helpers they are built from live in ``tests.support`` (tests and bench import them
from there, never from here).
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from previewctl import redact
from previewctl.reporter import Reporter
from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import Cli, InProcessCli, base_env
from tests.support.project import BASIC_TOML, Project
from tests.support.reporting import quiet_reporter

if TYPE_CHECKING:  # imported by the plugin below first: pytest rewrites its asserts then
    from tests.fakes.postgres import PostgresServer
    from tests.support.stack import Stack

pytest_plugins = ["tests.fakes.postgres", "tests.fakes.flyctl_fixture"]

# Variables that would make a test talk to the real world or change behaviour.
_SCRUB = (
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_EVENT_PATH",
    "GITHUB_REPOSITORY",
    "GITHUB_TOKEN",
    "FLY_API_TOKEN",
    "FLY_ACCESS_TOKEN",
    "FLY_API_BASE_URL",
    "FLY_FLAPS_BASE_URL",
    "VERCEL_TOKEN",
    "VERCEL_API_URL",
    "PREVIEWCTL_PR",
    "PREVIEWCTL_BRANCH",
    "PREVIEWCTL_CONFIG",
    "PREVIEWCTL_FLYCTL",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _SCRUB:
        monkeypatch.delenv(name, raising=False)
    redact.reset_for_tests()
    yield
    redact.reset_for_tests()


_INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PYTHONS = {signal.SIGINT: signal.default_int_handler}


@pytest.fixture(autouse=True)
def _python_signal_handlers() -> Iterator[None]:
    """Each test starts with Python's own handlers for the interrupts and leaves them so:
    previewctl's main() installs its own (and ignores interrupts once interrupted), and a
    test that ran it in-process must not decide whether a later test's Ctrl-C lands."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    for sig in _INTERRUPTS:
        signal.signal(sig, _PYTHONS.get(sig, signal.SIG_DFL))
    yield
    for sig in _INTERRUPTS:
        signal.signal(sig, _PYTHONS.get(sig, signal.SIG_DFL))


@pytest.fixture
def fly_token() -> str:
    return "fm2_" + secrets.token_urlsafe(24)


@pytest.fixture
def fly(fly_token: str) -> Iterator[FlyEmulator]:
    emu = FlyEmulator(token=fly_token, org="acme")
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "repo"
    root.mkdir()
    return Project(root).write(BASIC_TOML)


def _fly_env(fly: FlyEmulator, fly_token: str, tmp_path: Path) -> dict[str, str]:
    env = base_env(tmp_path)
    env.update({"FLY_API_TOKEN": fly_token, "FLY_API_BASE_URL": fly.url})
    return env


@pytest.fixture
def cli(project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path) -> Cli:
    """previewctl's command line run in this process (the in-process tier, tests/ops)."""
    return InProcessCli(project, _fly_env(fly, fly_token, tmp_path))


@pytest.fixture
def stack(
    tmp_path: Path,
    fly: FlyEmulator,
    fly_token: str,
    postgres_server: PostgresServer,
    flyctl_path: Path,
) -> Iterator[Stack]:
    """The stack a workflow step sees: the emulator, the flyctl stand-in forwarding to a
    real PostgreSQL database of its own, and the in-process CLI wired to them."""
    from tests.support.stack import make_stack

    stack = make_stack(tmp_path, fly, fly_token, postgres_server, flyctl_path)
    yield stack
    stack.close()


@pytest.fixture
def reporter() -> Reporter:
    """A reporter writing plain lines into a buffer (read it with ``reporting.output``)."""
    return quiet_reporter()


@pytest.fixture
def console(project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path) -> Cli:
    """The installed console script run as a subprocess (the e2e tier, tests/e2e)."""
    return Cli(project, _fly_env(fly, fly_token, tmp_path))
