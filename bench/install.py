"""How long does installing previewctl take, the way the workflows did it and the way the
action does it now?

* ``pip``: a fresh venv and ``python -m pip install .`` (the workflows before the action);
* ``uv, cold``: what the action runs, ``uv venv`` + ``uv pip install --constraint
  constraints.txt .``, with an empty uv cache (a first run, or a changed pyproject);
* ``uv, warm``: the same with the cache a previous run left (what the action's
  setup-uv cache restores).

Each is run ``--runs`` times; the median is shown. uv must be on PATH (``pip install uv``
in a scratch venv will do). The package index is whatever this machine's pip and uv
reach, so absolute times depend on the network; the ratios carry over better.

    .venv/bin/python bench/install.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _bench import ROOT, load_note, median, table, timed


def pip_install(tmp: Path) -> float:
    venv = tmp / "pip-venv"
    shutil.rmtree(venv, ignore_errors=True)
    took, proc = timed([sys.executable, "-m", "venv", str(venv)], env=_env(), timeout=300)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    more, proc = timed(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)],
        env=_env(),
        timeout=600,
    )
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return took + more


def uv_install(uv: str, tmp: Path, cache: Path) -> float:
    venv = tmp / "uv-venv"
    shutil.rmtree(venv, ignore_errors=True)
    env = {**_env(), "UV_CACHE_DIR": str(cache)}
    took, proc = timed([uv, "venv", "-q", "--python", sys.executable, str(venv)], env, timeout=300)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    argv = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
    argv += ["--constraint", str(ROOT / "constraints.txt"), str(ROOT)]
    more, proc = timed(argv, env, timeout=600)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    if not (venv / "bin" / "previewctl").exists():
        raise SystemExit("uv installed no previewctl console script")
    return took + more


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    uv = shutil.which("uv")
    if uv is None:
        print("uv is not on PATH: `pip install uv` into a scratch venv and put it on PATH")
        return 2
    with tempfile.TemporaryDirectory(prefix="previewctl-install-") as tmp_name:
        tmp = Path(tmp_name)
        pip = [pip_install(tmp) for _ in range(runs)]
        cold = []
        for i in range(runs):
            cold.append(uv_install(uv, tmp, tmp / f"cold-cache-{i}"))
        warm_cache = tmp / "warm-cache"
        uv_install(uv, tmp, warm_cache)  # fills the cache, as a previous run would
        warm = [uv_install(uv, tmp, warm_cache) for _ in range(runs)]
    base = median(pip)
    rows = [
        ("pip (fresh venv)", f"{base:.1f}", "1.00"),
        ("uv, cold cache", f"{median(cold):.1f}", f"{median(cold) / base:.2f}"),
        ("uv, warm cache", f"{median(warm):.1f}", f"{median(warm) / base:.2f}"),
    ]
    print(f"median of {runs} runs; {load_note()}")
    print(table(["install", "seconds", "÷ pip"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
