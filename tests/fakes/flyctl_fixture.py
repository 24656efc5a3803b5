"""Put the ``flyctl`` stand-in (:mod:`tests.fakes.flyctl_standin`) on disk as an executable.

``install_flyctl(dir)`` writes ``dir/flyctl``, a ``/bin/sh`` shim that ``exec``s the
stand-in with this interpreter, so the PID previewctl sees is the Python process itself
(signals reach it directly). ``flyctl_path`` is a session-scoped fixture doing the same
in a temporary directory; register this module with ``pytest_plugins``.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

STANDIN = Path(__file__).resolve().with_name("flyctl_standin.py")


def install_flyctl(dir: Path) -> Path:
    """Write an executable ``flyctl`` shim in ``dir`` and return its path."""
    dir.mkdir(parents=True, exist_ok=True)
    shim = dir / "flyctl"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    mode = shim.stat().st_mode
    shim.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


@pytest.fixture(scope="session")
def flyctl_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of an executable ``flyctl`` stand-in (its directory holds nothing else)."""
    return install_flyctl(tmp_path_factory.mktemp("flyctl-bin"))
