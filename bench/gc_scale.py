"""How `gc` scales: 10, 100 and 500 previews (half of them of closed PRs).

Runs `run_gc` in-process against the Fly emulator with 50 ms latency per request and
Fly's rate limits switched on, and the GitHub fake. Prints, per size: wall time, Fly
calls by kind, the 429s the emulator produced, and the failures that reached the user
(429s the client's retries did not absorb). The last line checks that calls grow
linearly (calls per preview roughly constant).

    python bench/gc_scale.py              # 10 100 500
    python bench/gc_scale.py 10 50        # other sizes
    python bench/gc_scale.py --unpaced    # without gc's app-deletion pacing

App deletions are paced below Fly's documented 100 per minute (see
previewctl.ops.gc.DELETE_RATE): with many closed PRs that pacing, not the emulator,
sets the wall time. The emulator does not model that limit itself.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake

from previewctl.actions import GitHubActions
from previewctl.ops.gc import DELETE_BURST, DELETE_RATE, Pacer, run_gc
from previewctl.ops.runtime import Runtime
from previewctl.reporter import Reporter

ORG = "acme"
REPO = "acme/agents"
LATENCY = 0.05
TOML = """
[app]
name = "pr-${pr}-agents"
org = "acme"
region = "iad"

[machine]
config = "machine.json"

[gc]
max_age = "7d"
"""
MACHINE = {"guest": {"cpu_kind": "shared", "cpus": 4, "memory_mb": 4096}, "image": "postgres:18"}


def iso(when: datetime) -> str:
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def seed(fly: FlyEmulator, github: GitHubFake, previews: int) -> None:
    now = datetime.now(UTC)
    for pr in range(1, previews + 1):
        app = f"pr-{pr}-agents"
        fly.add_app(app)
        metadata = {
            "previewctl": "1",
            "previewctl_pr": str(pr),
            "previewctl_branch": f"feature/{pr}",
            "previewctl_created_at": iso(now - timedelta(days=1)),
            "previewctl_last_up": iso(now - timedelta(hours=1)),
            "previewctl_secrets": json.dumps({"pg_password": secrets.token_hex(8)}),
        }
        fly.add_machine(app, {**MACHINE, "metadata": metadata})
        github.add_pr(pr, f"feature/{pr}", state="closed" if pr % 2 == 0 else "open")


def kind(method: str, path: str) -> str:
    if path == "/v1/apps":
        return "list apps"
    if re.fullmatch(r"/v1/apps/[^/]+/machines", path) and method == "GET":
        return "list machines"
    if re.fullmatch(r"/v1/apps/[^/]+", path) and method == "DELETE":
        return "delete app"
    return f"{method} other"


def run(previews: int, root: Path, *, paced: bool) -> dict[str, object]:
    fly_token = "fm2_" + secrets.token_urlsafe(16)
    gh_token = "ghs_" + secrets.token_urlsafe(16)
    with (
        FlyEmulator(token=fly_token, org=ORG, latency=LATENCY, rate_limits=True) as fly,
        GitHubFake(token=gh_token, repo=REPO) as github,
    ):
        seed(fly, github, previews)
        rt = Runtime(
            env={
                "FLY_API_TOKEN": fly_token,
                "FLY_API_BASE_URL": fly.url,
                "GITHUB_REPOSITORY": REPO,
                "GITHUB_TOKEN": gh_token,
                "GITHUB_API_URL": github.url,
            },
            reporter=Reporter(actions=GitHubActions({}), stream=io.StringIO()),
            config_path=root / "previewctl.toml",
        )
        pacer = Pacer(DELETE_RATE, DELETE_BURST) if paced else Pacer(1e9, 1e9)
        started = time.monotonic()
        result = run_gc(rt, None, False, pacer=pacer)
        wall = time.monotonic() - started
        calls = Counter(kind(r.method, r.path) for r in fly.calls())
        destroyed = sum(1 for r in result.rows if r.ok and r.action == "destroy")
        return {
            "previews": previews,
            "wall": wall,
            "calls": calls,
            "fly_total": sum(calls.values()),
            "github": len(github.calls()),
            "429s": fly.rate_limited,
            "failures": sum(1 for r in result.rows if not r.ok),
            "destroyed": destroyed,
            "left": len(fly.apps),
        }


def main(argv: list[str]) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    paced = "--unpaced" not in argv
    sizes = [int(a) for a in argv if a.isdigit()] or [10, 100, 500]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "previewctl.toml").write_text(TOML)
        (root / "machine.json").write_text(json.dumps(MACHINE))
        pacing = f"{DELETE_RATE}/s, burst {DELETE_BURST:.0f}" if paced else "off"
        print(f"gc over the Fly emulator: latency {LATENCY * 1000:.0f} ms, rate limits on, ")
        print(f"half the PRs closed, concurrency 4, app-deletion pacing {pacing}")
        print()
        header = (
            f"{'previews':>8} {'wall s':>7} {'list apps':>9} {'list mach':>9} {'delete':>6} "
            f"{'other':>5} {'fly/prev':>8} {'github':>6} {'429 made':>8} {'failures':>8} "
            f"{'destroyed':>9}"
        )
        print(header)
        print("-" * len(header))
        rows = []
        for size in sizes:
            row = run(size, root, paced=paced)
            rows.append(row)
            calls: Counter[str] = row["calls"]  # type: ignore[assignment]
            other = sum(v for k, v in calls.items() if k.endswith("other"))
            per = int(row["fly_total"]) / size  # type: ignore[call-overload]
            print(
                f"{size:>8} {row['wall']:>7.1f} {calls['list apps']:>9} "
                f"{calls['list machines']:>9} {calls['delete app']:>6} {other:>5} "
                f"{per:>8.2f} {row['github']:>6} {row['429s']:>8} {row['failures']:>8} "
                f"{row['destroyed']:>9}",
                flush=True,
            )
    ratios = [int(r["fly_total"]) / int(r["previews"]) for r in rows]  # type: ignore[call-overload]
    spread = max(ratios) / min(ratios) if ratios else 1.0
    failures = sum(int(r["failures"]) for r in rows)  # type: ignore[call-overload]
    linear = spread < 1.25
    print()
    print(
        f"Fly calls per preview {min(ratios):.2f}..{max(ratios):.2f} "
        f"({'linear' if linear else 'NOT linear'}); "
        f"{failures} failure(s) surfaced to the user"
    )
    return 0 if linear and failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
