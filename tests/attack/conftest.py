"""Fixtures the attack modules share (the root conftest's ``stack`` is theirs too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attack.harness import ActionsStage, actions_stage
from tests.support.stack import Stack


@pytest.fixture
def stage(stack: Stack, tmp_path: Path) -> Iterator[ActionsStage]:
    """A GitHub Actions step around the stack: output, summary and event files."""
    st = actions_stage(stack, tmp_path)
    yield st
    st.stop()
