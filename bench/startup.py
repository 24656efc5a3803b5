"""Start-up cost of the CLI: bare interpreter vs ``previewctl --help`` vs ``previewctl plan``.

Each command runs ~10 times (round robin, after a warm-up) with the harness's clean,
credential-free environment; the table shows medians and the ratio to the bare
interpreter (``import typer`` alone is the floor any Typer CLI pays), twice: with a
bytecode cache (as an installed wheel runs) and without one (as this checkout runs:
PYTHONDONTWRITEBYTECODE=1 and no ``__pycache__`` in ``src/``).
The goal is judged on the cached column. Then the top import costs of
``import previewctl.cli.main`` (``python -X importtime``, best of 3 runs).

    .venv/bin/python bench/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from _bench import (
    PYTHON,
    ROOT,
    bytecode_cache,
    clean_env,
    load_note,
    median,
    previewctl_executable,
    table,
    timed,
    verdict,
    with_cache,
)

GOAL_HELP_RATIO = 2.0
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def commands() -> dict[str, list[str]]:
    exe = previewctl_executable()
    config = str(ROOT / "previewctl.toml")
    return {
        "python -c pass": [PYTHON, "-c", "pass"],
        "python -c 'import typer'": [PYTHON, "-c", "import typer"],
        "previewctl --help": [exe, "--help"],
        "previewctl plan": [exe, "--config", config, "plan", "--pr", "1"],
    }


def measure(cmds: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for name, argv in cmds.items():  # warm-up: fills the bytecode cache, checks it works
        _, proc = timed(argv, env, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    for _ in range(runs):  # round robin: background load hits every command alike
        for name, argv in cmds.items():
            seconds, _ = timed(argv, env, cwd=ROOT)
            times[name].append(seconds)
    return times


def import_profile(env: dict[str, str], repeats: int = 3) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) for ``import previewctl.cli.main``; per-module min."""
    best: dict[str, tuple[int, int]] = {}
    for _ in range(repeats):
        _, proc = timed([PYTHON, "-X", "importtime", "-c", "import previewctl.cli.main"], env)
        for line in proc.stderr.splitlines():
            match = _IMPORT_LINE.match(line)
            if not match:
                continue
            own, cumulative, name = int(match[1]), int(match[2]), match[4]
            if name in best:
                own, cumulative = min(own, best[name][0]), min(cumulative, best[name][1])
            best[name] = (own, cumulative)
    ranked = sorted(best.items(), key=lambda item: item[1][1], reverse=True)
    return [(name, own, cumulative) for name, (own, cumulative) in ranked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cmds = commands()
    note = load_note()
    with tempfile.TemporaryDirectory(prefix="previewctl-bench-") as home, bytecode_cache() as cache:
        env = clean_env(Path(home))
        cached = measure(cmds, with_cache(env, cache), args.runs)
        uncached = measure(cmds, env, args.runs)
        profile = import_profile(with_cache(env, cache))

    bare_cached = median(cached["python -c pass"])
    bare_uncached = median(uncached["python -c pass"])
    rows = []
    for name in cmds:
        mc, mu = median(cached[name]), median(uncached[name])
        rows.append(
            [
                name,
                f"{mc * 1000:.0f}",
                f"{mc / bare_cached:.1f}×",
                f"{mu * 1000:.0f}",
                f"{mu / bare_uncached:.1f}×",
            ]
        )
    print(
        table(
            ["command", "ms (cached)", "× bare", "ms (no cache)", "× bare"],
            rows,
            title=f"start-up, median of {args.runs} runs each ({note})",
        )
    )
    print()
    print(
        table(
            ["module", "cumulative ms", "self ms"],
            [[name, f"{cum / 1000:.1f}", f"{own / 1000:.1f}"] for name, own, cum in profile[:10]],
            title="top 10 cumulative import costs: "
            'python -X importtime -c "import previewctl.cli.main"',
        )
    )
    by_self = sorted(profile, key=lambda item: item[1], reverse=True)[:10]
    print()
    print(
        table(
            ["module", "self ms", "cumulative ms"],
            [[name, f"{own / 1000:.1f}", f"{cum / 1000:.1f}"] for name, own, cum in by_self],
            title="top 10 by self time (same runs)",
        )
    )
    help_ratio = median(cached["previewctl --help"]) / bare_cached
    typer_ratio = median(cached["python -c 'import typer'"]) / bare_cached
    plan_ratio = median(cached["previewctl plan"]) / bare_cached
    print()
    print(
        f"SUMMARY startup: --help {median(cached['previewctl --help']) * 1000:.0f} ms = "
        f"{help_ratio:.1f}× bare interpreter (goal < {GOAL_HELP_RATIO:.0f}×): "
        f"{verdict(help_ratio < GOAL_HELP_RATIO)} (floor: `import typer` alone is "
        f"{typer_ratio:.1f}×); plan {plan_ratio:.1f}× "
        f"({median(cached['previewctl plan']) * 1000:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
