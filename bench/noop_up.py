"""A repeated ``up`` with nothing changed: which requests does it still make?

The setting of ``tests/e2e/test_vercel_github.py``: the Fly emulator, the Vercel fake
(two projects, a READY preview of the PR's branch each) and the GitHub fake, the
config ``BASIC_TOML`` + its ``[vercel]`` part, the PR taken from a ``pull_request``
event, run as a GitHub Actions step. ``up`` runs twice; the fakes' request logs are
cleared after the first, and the second run's requests are counted by API, method and
endpoint. The design requires no mutating Fly call and no Vercel redeploy.

    .venv/bin/python bench/noop_up.py
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections import Counter
from pathlib import Path

from _bench import clean_env, load_note, table, verdict
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.loopback import LoopbackApi, RecordedRequest
from tests.fakes.vercel_api import VercelFake
from tests.support.cli import Cli
from tests.support.project import BASIC_TOML, Project
from tests.support.workflow import APP, BRANCH, PR, VERCEL_TOML, workflow_env


def endpoint(api: LoopbackApi, request: RecordedRequest) -> str:
    """The fake's route name for a request (its path when no route matched)."""
    adapter = api._url_map.bind("127.0.0.1")
    try:
        name, _ = adapter.match(request.path, method=request.method)
    except Exception:  # no route: show the path itself
        return request.path
    return str(name)


def count(apis: dict[str, LoopbackApi]) -> list[tuple[str, str, str, int, str]]:
    """(api, method, endpoint, count, statuses) rows, most frequent first per API."""
    rows = []
    for label, api in apis.items():
        seen: Counter[tuple[str, str]] = Counter()
        statuses: dict[tuple[str, str], Counter[int]] = {}
        for request in api.calls():
            key = (request.method, endpoint(api, request))
            seen[key] += 1
            statuses.setdefault(key, Counter())[request.status] += 1
        for (method, name), n in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])):
            codes = ", ".join(f"{code}×{k}" for code, k in sorted(statuses[(method, name)].items()))
            rows.append((label, method, name, n, codes))
    return rows


def main() -> int:
    note = load_note()
    fly_token = "fm2_" + secrets.token_urlsafe(24)
    vercel_token, gh_token = secrets.token_hex(16), secrets.token_hex(16)
    fly = FlyEmulator(token=fly_token, org="acme").start()
    vercel = VercelFake(token=vercel_token, build_seconds=0.4).start()
    github = GitHubFake(token=gh_token, repo="acme/agents").start()
    try:
        with tempfile.TemporaryDirectory(prefix="previewctl-bench-") as tmp:
            tmp_path = Path(tmp)
            root = tmp_path / "repo"
            root.mkdir()
            for name in ("api", "web"):
                vercel.add_project(name, branches=("main", BRANCH, "other"))
                vercel.add_deployment(name, BRANCH, state="READY")
            github.add_pr(PR, BRANCH)
            project = Project(root).write(BASIC_TOML + VERCEL_TOML)
            env, _, _, _ = workflow_env(
                clean_env(tmp_path),
                tmp_path,
                fly,
                fly_token,
                vercel,
                vercel_token,
                github,
                gh_token,
            )
            cli = Cli(project, env)
            first = cli.run("up")
            if first.code != 0:
                raise SystemExit(f"first up failed ({first.code}):\n{first.output}")
            first_counts = {n: len(a.calls()) for n, a in (("Fly", fly), ("Vercel", vercel))}
            for api in (fly, vercel, github):
                api.clear_log()
            began = time.perf_counter()
            second = cli.run("up")
            seconds = time.perf_counter() - began
            if second.code != 0:
                raise SystemExit(f"second up failed ({second.code}):\n{second.output}")
    finally:
        fly.stop()
        vercel.stop()
        github.stop()

    apis: dict[str, LoopbackApi] = {"Fly": fly, "Vercel": vercel, "GitHub": github}
    rows = count(apis)
    print(
        table(
            ["API", "method", "endpoint", "count", "statuses"],
            rows,
            title=f"second `up` of PR {PR} ({APP}), nothing changed: {seconds:.2f} s ({note})",
        )
    )
    totals = {label: len(api.calls()) for label, api in apis.items()}
    print(
        "  requests: "
        + ", ".join(f"{k} {v}" for k, v in totals.items())
        + f" (first run: Fly {first_counts['Fly']}, Vercel {first_counts['Vercel']})"
    )
    fly_mutating = fly.mutating_calls()
    redeploys = vercel.redeploys()
    vercel_writes = [r for r in vercel.calls() if r.method != "GET"]
    github_writes = [r for r in github.calls() if r.method != "GET"]
    for label, writes in (("Vercel", vercel_writes), ("GitHub", github_writes)):
        for r in writes:
            print(f"  {label} write: {r.method} {r.path} -> {r.status}")
    print()
    ok_fly, ok_redeploy = not fly_mutating, not redeploys
    print(
        f"SUMMARY noop_up: mutating Fly calls {len(fly_mutating)} (goal 0): {verdict(ok_fly)}; "
        f"Vercel redeploys {len(redeploys)} (goal 0): {verdict(ok_redeploy)}; "
        f"other writes: Vercel {len(vercel_writes)}, GitHub {len(github_writes)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
