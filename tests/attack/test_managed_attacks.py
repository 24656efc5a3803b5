"""Hostile answers and odd input against the promise of `down` and `gc`.

The promise (DESIGN.md): down and gc destroy only what previewctl made (the one rule
of previewctl/managed.py) and gc destroys only what it KNOWS is done. Each test drives the
installed console script against the loopback fakes with one hostile answer (Fly,
GitHub, Vercel), one race or one odd input, and asserts what the contract demands:
nothing that is not provably previewctl's is destroyed, no "bug in previewctl", exit
codes 0/1/2/130 only, and no secret in any output.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from previewctl import bookkeeping
from previewctl.ops.gc_vercel import domain_pattern
from previewctl.vercel_sync import managed_comment
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake
from tests.support.checks import assert_no_leak
from tests.support.cli import Cli, CliResult, previewctl_executable
from tests.support.previews import feature_branch as branch
from tests.support.previews import iso
from tests.support.project import Project

pytestmark = pytest.mark.e2e

REPO = "acme/agents"
PR = 8
APP = f"pr-{PR}-agents"
GUEST = {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512}
TOML = """
[app]
name = "pr-${pr}-agents"
org = "acme"
region = "iad"

[machine]
config = ".fly/machine-config.json"

[secrets]
generate = ["pg_password"]
"""
VERCEL_TOML = (
    TOML
    + """
[vercel.projects.web]
env = { DB = "postgresql://app:${secrets.pg_password}@${app.hostname}:5432/app" }
"""
)


def recent() -> str:
    """An `up` an hour ago: age alone never condemns it, only its PR's state can."""
    return iso(datetime.now(UTC) - timedelta(hours=1))


def machine_config(pr_text: str, *, secret: str, last_up: str | None = None) -> dict[str, Any]:
    """A machine as `up` leaves it, except that its marker names the PR as ``pr_text``."""
    when = last_up or recent()
    meta = bookkeeping.build_metadata(
        {},
        pr=PR,
        branch=branch(PR),
        config_hash="0123456789abcdef",
        created_at=when,
        last_up=when,
        secrets={"pg_password": secret},
    )
    meta[bookkeeping.KEY_PR] = pr_text
    return {
        "guest": dict(GUEST),
        "containers": [{"name": "db", "image": "postgres:18"}],
        "metadata": meta,
    }


MACHINE = {"guest": dict(GUEST), "containers": [{"name": "db", "image": "postgres:18"}]}
FOREIGN = {"guest": dict(GUEST), "image": "nginx:1", "metadata": {"owner": "someone"}}


@dataclass
class Org:
    """The Fly org, the repository's GitHub and the config previewctl runs with."""

    cli: Cli
    fly: FlyEmulator
    github: GitHubFake
    project: Project
    secret: str

    def seed(self, app: str = APP, pr_text: str = str(PR), **kw: Any) -> str:
        if app not in self.fly.apps:
            self.fly.add_app(app)
        return self.fly.add_machine(app, machine_config(pr_text, secret=self.secret, **kw)).id

    def gc(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        return sane(self.cli.run("--json", "gc", *args, env=env))

    def deletes(self) -> list[str]:
        return [r.path for r in self.fly.calls("DELETE")]

    def tokens(self) -> list[str]:
        return [self.cli.env["FLY_API_TOKEN"], self.cli.env["GITHUB_TOKEN"], self.secret]


def sane(result: CliResult) -> CliResult:
    """What every run must be, whatever the APIs answered."""
    assert result.code in (0, 1, 2, 130), result.output
    assert "bug in previewctl" not in result.output, result.output
    assert "Traceback" not in result.output, result.output
    return result


def only_row(result: CliResult) -> dict[str, Any]:
    rows = result.json()["rows"]
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


@pytest.fixture
def org(cli: Cli, fly: FlyEmulator, project: Project) -> Iterator[Org]:
    project.write(TOML, machine=MACHINE)
    token = "ghs_" + pysecrets.token_urlsafe(24)
    with GitHubFake(token=token, repo=REPO) as github:
        cli.env.update(
            {"GITHUB_REPOSITORY": REPO, "GITHUB_TOKEN": token, "GITHUB_API_URL": github.url}
        )
        yield Org(cli, fly, github, project, "pgpw" + pysecrets.token_hex(12))


@pytest.fixture
def vercel(org: Org) -> Iterator[VercelFake]:
    org.project.write(VERCEL_TOML)
    token = "vc_" + pysecrets.token_urlsafe(24)
    with VercelFake(token=token) as fake:
        fake.add_project("web", branches=[branch(PR), branch(9)])
        org.cli.env.update({"VERCEL_TOKEN": token, "VERCEL_API_URL": fake.url})
        yield fake


def html(_request: Request, _body: Any, **_kw: Any) -> Response:
    return Response("<html>maintenance</html>", status=200, content_type="text/html")


# ---- the marker: only the PR number previewctl writes names the PR ----------------------


@pytest.mark.parametrize(
    "pr_text",
    ["08", "\u0668", "\uff18", "\u00b2", " 8", "8\n", "+8", "8.0"],
    ids=["leading-zero", "arabic-indic-8", "fullwidth-8", "superscript-2", "space", "newline",
         "plus", "float"],
)  # fmt: skip
def test_a_marker_pr_previewctl_never_writes_is_not_managed(org: Org, pr_text: str) -> None:
    org.seed(pr_text=pr_text)
    org.github.add_pr(PR, branch(PR), state="closed")

    result = org.gc()
    assert result.code == 0
    row = only_row(result)
    assert row["action"] == "skip", row
    assert "not managed" in row["reason"]
    assert APP in org.fly.apps
    assert org.deletes() == []
    status = sane(org.cli.run("--json", "status"))
    assert status.code == 0
    assert [r["standing"] for r in status.json()["rows"]] == ["not managed"]


def test_down_refuses_an_app_whose_marker_says_08(org: Org) -> None:
    org.seed(pr_text="08")
    result = sane(org.cli.run("down", "--pr", str(PR)))
    assert result.code == 1
    assert "not managed" in result.stderr
    assert org.fly.mutating_calls() == []


# ---- names and orgs as the listing gives them ------------------------------------------


def test_a_listed_name_with_a_trailing_newline_is_not_a_preview(org: Org) -> None:
    org.seed(app=APP + "\n")
    org.github.add_pr(PR, branch(PR), state="closed")
    result = org.gc()
    assert result.code == 0
    assert result.json()["rows"] == []
    assert org.deletes() == []
    assert sane(org.cli.run("status")).code == 0


def test_an_app_the_listing_places_in_another_org_is_not_destroyed(org: Org) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    listing = {"total_apps": 1, "apps": [{"name": APP, "organization": {"slug": "other"}}]}
    org.fly.inject("GET", r"^/v1/apps$", 200, body=listing)
    result = org.gc()
    assert result.code == 0
    row = only_row(result)
    assert row["action"] == "skip", row
    assert "organization" in row["reason"]
    assert org.deletes() == []


def test_an_app_listed_twice_is_destroyed_and_counted_once(org: Org) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    org.fly.inject("GET", r"^/v1/apps$", 200, body={"apps": [{"name": APP}, {"name": APP}]})
    result = org.gc()
    assert result.code == 0
    assert only_row(result)["action"] == "destroy"
    assert result.json()["totals"]["destroyed"] == 1
    assert org.deletes() == [f"/v1/apps/{APP}"]


def test_a_domain_with_a_trailing_newline_is_not_the_templates() -> None:
    pattern = domain_pattern("pr-${pr}-web.example.com", branch(PR), {})
    assert pattern is not None
    assert pattern.match("pr-8-web.example.com")
    assert pattern.match("pr-8-web.example.com\n") is None


# ---- Fly answers 200 with something that is not what the API documents -------------------


@pytest.mark.parametrize(
    "body",
    [[], "garbage", {"apps": {"name": APP}}, {"apps": [{"id": "x"}]}, {"apps": [{"name": 8}]}],
    ids=["list", "string", "apps-not-a-list", "app-without-name", "name-not-a-string"],
)
def test_a_garbage_app_listing_is_a_failure_not_a_crash(org: Org, body: Any) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    org.fly.inject("GET", r"^/v1/apps$", 200, body=body, times=20)
    result = sane(org.cli.run("gc"))
    assert result.code == 1
    assert "Fly GET /v1/apps" in result.stderr
    assert org.deletes() == []


def test_an_app_listing_that_is_not_json_is_a_failure_not_a_crash(org: Org) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    org.fly.on_list_apps = html  # type: ignore[method-assign,assignment,unused-ignore]
    result = sane(org.cli.run("gc"))
    assert result.code == 1
    assert "Fly GET /v1/apps" in result.stderr
    assert org.deletes() == []


GARBAGE_MACHINES = [
    {"machines": []},
    [{"state": "started"}],
    "x",
    [{"id": "m1", "config": ["x"]}],
    [{"id": "m1", "state": None, "config": {}}],
    [{"id": "m1", "host_status": 5, "config": {}}],
]


@pytest.mark.parametrize(
    "body",
    GARBAGE_MACHINES,
    ids=["dict", "no-id", "string", "config-list", "state-null", "host-status-int"],
)
def test_a_garbage_machine_listing_keeps_the_app(org: Org, body: Any) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    org.fly.inject("GET", r"/machines$", 200, body=body, times=50)

    result = org.gc()
    assert result.code == 1
    row = only_row(result)
    assert row["ok"] is False, row
    assert "Fly GET" in row["error"]
    assert sane(org.cli.run("status")).code in (0, 1)
    down = sane(org.cli.run("down", "--pr", str(PR)))
    assert down.code == 1
    assert org.fly.mutating_calls() == []
    assert APP in org.fly.apps


def test_a_machine_listing_that_is_not_json_keeps_the_app(org: Org) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    org.fly.on_list_machines = html  # type: ignore[method-assign,assignment,unused-ignore]
    result = org.gc()
    assert result.code == 1
    assert only_row(result)["ok"] is False
    assert sane(org.cli.run("down", "--pr", str(PR))).code == 1
    assert org.fly.mutating_calls() == []


@pytest.mark.parametrize("body", [[], {"id": "x"}, "x"], ids=["list", "no-name", "string"])
def test_down_with_a_garbage_app_answer_changes_nothing(org: Org, body: Any) -> None:
    org.seed()
    org.fly.inject("GET", rf"^/v1/apps/{APP}$", 200, body=body, times=20)
    result = sane(org.cli.run("down", "--pr", str(PR)))
    assert result.code == 1
    assert f"Fly GET /v1/apps/{APP}" in result.stderr
    assert org.fly.mutating_calls() == []


# ---- GitHub answers that are not what was asked -------------------------------------------


def _pull(number: int, state: str) -> dict[str, Any]:
    return {
        "number": number,
        "state": state,
        "merged": False,
        "head": {"ref": branch(number), "repo": {"full_name": REPO}},
    }


def test_an_answer_about_another_pr_does_not_close_this_one(org: Org) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR))
    org.github.hide_from_listing(PR)  # so gc asks for it by number
    org.github.inject("GET", rf"/pulls/{PR}$", 200, body=_pull(PR + 1, "closed"), times=5)
    result = org.gc()
    assert result.code == 1
    assert only_row(result)["action"] == "undecided"
    assert org.deletes() == []


@pytest.mark.parametrize("state", ["OPEN", "", "draft", "merged"])
def test_a_pr_state_github_never_sends_is_undecided(org: Org, state: str) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR))
    org.github.hide_from_listing(PR)
    org.github.inject("GET", rf"/pulls/{PR}$", 200, body=_pull(PR, state), times=5)
    result = org.gc()
    assert result.code == 1
    assert only_row(result)["action"] == "undecided"
    assert org.deletes() == []


@pytest.mark.parametrize(
    "body",
    [{"message": "Moved"}, [1, "x"], [_pull(9, "open"), "x"]],
    ids=["object", "not-objects", "one-not-an-object"],
)
def test_an_open_pr_listing_that_is_not_a_list_sweeps_no_vercel_var(
    org: Org, vercel: VercelFake, body: Any
) -> None:
    org.github.add_pr(9, branch(9))
    vercel.add_env("web", "DB", "x", git_branch=branch(9), comment=managed_comment("DB", "x"))
    org.github.inject("GET", r"/pulls$", 200, body=body, times=5)
    result = org.gc()
    assert result.code == 1
    assert result.json()["lookup_error"]
    assert [e["key"] for e in vercel.envs_for("web", branch(9))] == ["DB"]


# ---- races: the app changes between the verdict and the deletion ----------------------------


def test_a_foreign_machine_added_while_gc_asks_github_is_not_destroyed(org: Org) -> None:
    ours = org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    served = org.github.on_get_pull
    added: list[str] = []

    def meanwhile(request: Request, body: Any, **kw: Any) -> Response:
        if not added:  # someone puts their own machine into the app right now
            added.append(org.fly.add_machine(APP, FOREIGN).id)
        return served(request, body, **kw)

    org.github.on_get_pull = meanwhile  # type: ignore[method-assign,assignment,unused-ignore]
    result = org.gc()
    assert added, "gc never asked GitHub"
    assert org.deletes() == []
    assert set(org.fly.apps[APP].machines) == {ours, added[0]}
    row = only_row(result)
    assert row["action"] == "skip", row
    assert "not managed" in row["reason"]


def test_machines_fly_cannot_list_again_before_the_deletion_keep_the_app(org: Org) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    served = org.github.on_get_pull

    def meanwhile(request: Request, body: Any, **kw: Any) -> Response:
        org.fly.inject("GET", r"/machines$", 503, times=100)  # after the scan: Fly is down
        return served(request, body, **kw)

    org.github.on_get_pull = meanwhile  # type: ignore[method-assign,assignment,unused-ignore]
    result = org.gc()
    assert result.code == 1
    row = only_row(result)
    assert row["ok"] is False, row
    assert "not judged again before the deletion" in row["reason"]
    assert org.deletes() == []


def test_a_foreign_machine_added_while_down_cleans_vercel_is_not_destroyed(
    org: Org, vercel: VercelFake
) -> None:
    ours = org.seed()
    vercel.add_env("web", "DB", "x", git_branch=branch(PR), comment=managed_comment("DB", "x"))
    served = vercel.on_delete_env
    added: list[str] = []

    def meanwhile(request: Request, body: Any, **kw: Any) -> Response:
        if not added:
            added.append(org.fly.add_machine(APP, FOREIGN).id)
        return served(request, body, **kw)

    vercel.on_delete_env = meanwhile  # type: ignore[method-assign,assignment,unused-ignore]
    vercel.on_batch_delete_env = meanwhile  # type: ignore[method-assign,assignment,unused-ignore]
    result = sane(org.cli.run("down", "--pr", str(PR)))
    assert added, "down never removed a Vercel var"
    assert result.code == 1
    assert "not managed" in result.stderr
    assert org.deletes() == []
    assert set(org.fly.apps[APP].machines) == {ours, added[0]}


# ---- bookkeeping Fly stores for us, read back -----------------------------------------------


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"], ids=["year-0", "year-10k"]
)
def test_a_last_up_out_of_range_does_not_crash_status_or_gc(org: Org, when: str) -> None:
    org.seed(last_up=when)
    org.github.add_pr(PR, branch(PR))
    assert org.gc("--dry-run").code == 0
    assert sane(org.cli.run("status")).code == 0
    assert sane(org.cli.run("--json", "status", "--pr", str(PR))).code == 0


# ---- secrets in what the APIs echo back ------------------------------------------------------


def _echo_fly_token(org: Org, vercel: VercelFake) -> None:
    token = org.cli.env["FLY_API_TOKEN"]
    org.fly.inject("DELETE", r"^/v1/apps/", 500, body={"error": f"bad FlyV1 {token}"}, times=50)


def _echo_github_token(org: Org, vercel: VercelFake) -> None:
    token = org.cli.env["GITHUB_TOKEN"]
    org.github.inject("GET", r"/pulls$", 422, body={"message": f"token {token} is odd"}, times=5)


def _echo_vercel_token(org: Org, vercel: VercelFake) -> None:
    token = org.cli.env["VERCEL_TOKEN"]
    error = {"error": {"code": "forbidden", "message": f"token {token} cannot"}}
    vercel.inject("GET", r"/env$", 403, body=error, times=5)


@pytest.mark.parametrize(
    "echo",
    [_echo_fly_token, _echo_github_token, _echo_vercel_token],
    ids=["fly", "github", "vercel"],
)
def test_a_token_an_api_echoes_back_is_never_printed(
    org: Org, vercel: VercelFake, tmp_path: Path, echo: Any
) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    echo(org, vercel)
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    runs = [sane(org.cli.run("gc", env=env)), org.gc(env=env)]
    runs.append(sane(org.cli.run("down", "--pr", str(PR), env=env)))
    assert runs[0].code == 1
    values = [*org.tokens(), org.cli.env["VERCEL_TOKEN"]]
    assert_no_leak("".join(r.output for r in runs) + summary.read_text(), values)


# ---- found here, fixed in other lanes (secrets, input) ------------------------------------------


def test_a_secret_fly_echoes_before_previewctl_read_it_is_never_printed(org: Org) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR), state="closed")
    echo = {"error": f"metadata previewctl_secrets={json.dumps({'pg_password': org.secret})}"}
    org.fly.inject("GET", r"/machines$", 500, body=echo, times=50)
    runs = [org.gc(), sane(org.cli.run("gc")), sane(org.cli.run("status"))]
    assert runs[0].code == 1
    assert_no_leak("".join(r.output for r in runs), [org.secret])


def test_sighup_mid_sweep_exits_130(org: Org) -> None:
    for pr in range(1, 9):
        app = f"pr-{pr}-agents"
        org.fly.add_app(app)
        org.fly.add_machine(app, machine_config(str(pr), secret=org.secret))
        org.github.add_pr(pr, branch(pr), state="closed")
    first_delete = threading.Event()
    served = org.fly.on_delete_app

    def slow_delete(request: Request, body: Any, **kw: Any) -> Response:
        first_delete.set()
        return served(request, body, **kw)

    org.fly.on_delete_app = slow_delete  # type: ignore[method-assign,assignment,unused-ignore]
    org.fly.latency = 0.2
    proc = subprocess.Popen(
        [previewctl_executable(), "--config", str(org.project.config), "gc"],
        env=org.cli.env,
        cwd=org.project.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first_delete.wait(60), "gc never deleted"
        proc.send_signal(signal.SIGHUP)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130


def test_a_max_age_too_long_for_a_float_is_bad_input(org: Org) -> None:
    org.seed()
    org.github.add_pr(PR, branch(PR))
    result = sane(org.cli.run("--json", "gc", "--max-age", "9" * 400 + "d"))
    assert result.code == 2
    assert org.fly.requests == []
    assert org.github.requests == []
