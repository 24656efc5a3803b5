"""Fixtures of the in-process tier: ops run here, against the same fakes as e2e."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import base_env
from tests.support.inprocess import InProcess
from tests.support.project import Project


@pytest.fixture
def ops(project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path) -> InProcess:
    env = base_env(tmp_path)
    env.update({"FLY_API_TOKEN": fly_token, "FLY_API_BASE_URL": fly.url})
    return InProcess(project.config, env)
