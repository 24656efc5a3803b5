"""Helpers shared by the bench scripts: repo paths, the CLI's environment, timing, tables.

The scripts run as ``.venv/bin/python bench/NAME.py``; importing this module puts the
repository root on ``sys.path`` so that ``tests.*`` (the fakes) can be imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable

# The fakes serve with werkzeug, which logs every request to stderr.
logging.getLogger("werkzeug").setLevel(logging.ERROR)


def previewctl_executable() -> str:
    """The console script installed next to this interpreter (what a workflow runs)."""
    from tests.support.cli import previewctl_executable as installed

    return installed()


def clean_env(home: Path) -> dict[str, str]:
    """The harness's minimal environment (tests.support.cli.base_env): no credentials."""
    from tests.support.cli import base_env

    return base_env(home)


@contextlib.contextmanager
def bytecode_cache() -> Iterator[dict[str, str]]:
    """Env entries giving child interpreters a private bytecode cache.

    This checkout runs with PYTHONDONTWRITEBYTECODE=1 and has no ``__pycache__`` in
    ``src/``, so every run would compile previewctl's modules again. An installed wheel
    has its bytecode compiled at install time; a cache under a temporary
    PYTHONPYCACHEPREFIX gives the same effect without writing into the repository.
    Remove ``PYTHONDONTWRITEBYTECODE`` from the env these entries are merged into.
    """
    prefix = tempfile.mkdtemp(prefix="previewctl-bench-pycache-")
    try:
        yield {"PYTHONPYCACHEPREFIX": prefix}
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def with_cache(env: dict[str, str], cache: dict[str, str]) -> dict[str, str]:
    merged = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    merged.update(cache)
    return merged


def timed(
    argv: Sequence[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time of one run, and its result (output captured)."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    return time.perf_counter() - start, proc


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """A plain fixed-width table; numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            row[i].rjust(widths[i]) if numeric[i] else row[i].ljust(widths[i])
            for i in range(len(row))
        ]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def _is_number(text: str) -> bool:
    stripped = text.rstrip("%×xs ").lstrip("+-")
    try:
        float(stripped)
    except ValueError:
        return text in ("", "-", "n/a")
    return True


def load_note() -> str:
    """Wall times depend on what else runs here: say how busy the machine was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"
