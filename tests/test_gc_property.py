"""gc's safety properties over generated orgs, against the Fly emulator and the GitHub fake.

For any mix of managed previews, look-alike names, apps without the marker, apps of
other orgs, machines on a host Fly cannot reach, and PRs that are open (listed, or
opened after the listing), closed, merged or missing, with ages around max_age (the
boundary included), and with random GitHub failures (403, 429, 500 after retries, a
dropped connection) on the follow-up lookups or on the listing itself:

* a preview is destroyed only when it is older than max_age or GitHub SAID its PR is
  closed, merged or missing: so no preview of an open PR that is not older than
  max_age, and no young preview whose PR state could not be learned, is destroyed;
* the preview of a closed, merged or missing PR is destroyed when GitHub says so;
* a preview whose PR state could not be learned is kept and reported "undecided", and
  the sweep exits 1; so is an app with a machine whose config Fly cannot show;
* an app that is not managed is never touched (no DELETE, no stop, still there);
* without a GitHub repository, PR state is unknown and only age destroys (exit 0);
* a dry run sends no mutating request and reports exactly the same decisions.
"""

from __future__ import annotations

import io
import secrets as pysecrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from previewctl.actions import GitHubActions
from previewctl.clients.http import RetryPolicy
from previewctl.ops.gc import Pacer, run_gc
from previewctl.ops.gc_vercel import domain_pattern
from previewctl.ops.runtime import Runtime
from previewctl.reporter import Reporter
from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.support.previews import seed_preview, seed_unmarked
from tests.support.project import Project

ORG = "acme"
REPO = "acme/agents"
MAX_AGE = 7 * 86400

TOML = """
[app]
name = "pr-${pr}-agents"
org = "acme"
region = "iad"

[machine]
config = ".fly/machine-config.json"

[secrets]
generate = ["pg_password", "api_key"]

[gc]
max_age = "7d"
concurrency = 4
"""


# ---- the generated org ---------------------------------------------------------------------

KINDS = ("preview", "lookalike", "unmarked", "mixed", "mismatch", "empty", "foreign", "unknown")
# "open-late": open, but opened after gc's listing, so only the follow-up lookup knows.
PR_STATES = ("open", "open-late", "closed", "merged", "missing")
# How the follow-up GET /pulls/N fails, if it does: "drop" is a lost connection.
GET_FAULTS: tuple[int | str | None, ...] = (None, None, 403, 429, 500, "drop")
# seconds relative to max_age: well inside, just inside, exactly at, just past, far past
AGE_OFFSETS = (-MAX_AGE + 60, -3600, -1, 0, 1, 3600, 30 * 86400)


@dataclass(frozen=True)
class Spec:
    kind: str
    pr_state: str
    age_offset: int
    state: str
    with_last_up: bool
    lookalike: int
    get_fault: int | str | None = None
    host: str = "unreachable"  # for kind "unknown": the machine's host_status
    config_as: str = "omitted"  # for kind "unknown": how Fly leaves the config out

    def app(self, pr: int) -> str:
        if self.kind == "lookalike":
            return [
                f"pr-{pr}-agents-old",
                f"xpr-{pr}-agents",
                f"pr-0{pr}-agents",
                f"pr-{pr}-other",
                f"pr--agents-{pr}",
            ][self.lookalike]
        if self.kind == "foreign":
            return f"pr-{pr + 500}-agents"  # matches the template, but another org owns it
        return f"pr-{pr}-agents"

    @property
    def managed(self) -> bool:
        return self.kind == "preview"


specs = st.builds(
    Spec,
    kind=st.sampled_from(KINDS),
    pr_state=st.sampled_from(PR_STATES),
    age_offset=st.sampled_from(AGE_OFFSETS),
    state=st.sampled_from(("started", "stopped")),
    with_last_up=st.booleans(),
    lookalike=st.integers(0, 4),
    get_fault=st.sampled_from(GET_FAULTS),
    host=st.sampled_from(("unknown", "unreachable")),
    config_as=st.sampled_from(("omitted", "null", "empty")),
)


@dataclass
class Fakes:
    fly: FlyEmulator
    github: GitHubFake
    fly_token: str
    github_token: str
    config: Path


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    fly_token = "fm2_" + pysecrets.token_urlsafe(16)
    gh_token = "ghs_" + pysecrets.token_urlsafe(16)
    root = tmp_path_factory.mktemp("gc-property")
    project = Project(root).write(TOML)
    with FlyEmulator(token=fly_token, org=ORG) as fly, GitHubFake(token=gh_token, repo=REPO) as gh:
        yield Fakes(fly, gh, fly_token, gh_token, project.config)


def build_runtime(fakes: Fakes, *, github: bool) -> Runtime:
    env = {"FLY_API_TOKEN": fakes.fly_token, "FLY_API_BASE_URL": fakes.fly.url}
    if github:
        env.update(
            {
                "GITHUB_REPOSITORY": REPO,
                "GITHUB_TOKEN": fakes.github_token,
                "GITHUB_API_URL": fakes.github.url,
            }
        )
    return Runtime(
        env=env,
        reporter=Reporter(actions=GitHubActions({}), stream=io.StringIO()),
        config_path=fakes.config,
        retry=RetryPolicy(max_wait=0.01, multiplier=0.001, deadline=5),
    )


def seed(
    fakes: Fakes, plan: list[Spec], now: datetime, *, listing_fault: bool = False
) -> dict[str, Spec]:
    fly, gh = fakes.fly, fakes.github
    with fly.lock:
        fly.apps.clear()
        fly.faults.clear()
    with gh.lock:
        gh.prs.clear()
        gh.comments.clear()
        gh.faults.clear()
        gh.unlisted.clear()
    fly.clear_log()
    gh.clear_log()
    if listing_fault:  # more than the client's attempts: the listing fails for good
        gh.inject("GET", r"/pulls$", 500, times=1000)
    apps: dict[str, Spec] = {}
    for index, spec in enumerate(plan):
        pr = index + 1
        app = spec.app(pr)
        apps[app] = spec
        if spec.pr_state != "missing":
            gh.add_pr(
                pr,
                f"feature/{pr}",
                state="open" if spec.pr_state.startswith("open") else "closed",
                merged=spec.pr_state == "merged",
            )
        if spec.pr_state == "open-late":
            gh.hide_from_listing(pr)
        if spec.get_fault == "drop":
            gh.inject("GET", rf"/pulls/{pr}$", drop=True, times=1000)
        elif isinstance(spec.get_fault, int):
            gh.inject("GET", rf"/pulls/{pr}$", spec.get_fault, times=1000)
        last_up = now - timedelta(seconds=MAX_AGE + spec.age_offset)
        created = last_up - timedelta(hours=1)
        kwargs: dict[str, Any] = {
            "branch": f"feature/{pr}",
            "last_up": last_up if spec.with_last_up else None,
            "created_at": created if spec.with_last_up else last_up,
            "state": spec.state,
        }
        if spec.kind in ("preview", "lookalike"):
            seed_preview(fly, app, pr, **kwargs)
        elif spec.kind == "unknown":  # ours, but on a host Fly cannot show right now
            mid = seed_preview(fly, app, pr, **kwargs)
            fly.set_host_status(app, mid, spec.host, config_as=spec.config_as)
        elif spec.kind == "foreign":
            seed_preview(fly, app, pr + 500, org="other", **kwargs)
        elif spec.kind == "unmarked":
            seed_unmarked(fly, app, state=spec.state)
        elif spec.kind == "mixed":  # a preview machine plus one someone added by hand
            seed_preview(fly, app, pr, **kwargs)
            seed_unmarked(fly, app)
        elif spec.kind == "mismatch":  # the marker names another PR than the app name
            seed_preview(fly, app, pr + 1000, **kwargs)
        elif spec.kind == "empty":
            fly.add_app(app)
    return apps


def expected_actions(
    apps: dict[str, Spec], *, github: bool, listing_fault: bool = False
) -> dict[str, str]:
    """What gc must decide per app: destroy, undecided, keep or skip (not managed)."""
    out: dict[str, str] = {}
    for app, spec in apps.items():
        if spec.kind == "unknown":
            out[app] = "undecided"
        elif not spec.managed:
            out[app] = "skip"
        elif spec.age_offset > 0:  # older than max_age: age alone decides
            out[app] = "destroy"
        elif not github:  # PR state unknown by choice: age alone decides
            out[app] = "keep"
        elif listing_fault:  # GitHub never told us anything
            out[app] = "undecided"
        elif spec.pr_state == "open":  # listed open
            out[app] = "keep"
        elif spec.get_fault is not None:  # not listed, and the lookup failed
            out[app] = "undecided"
        elif spec.pr_state == "open-late":
            out[app] = "keep"  # the lookup found it open
        else:
            out[app] = "destroy"  # GitHub said: closed, merged or missing
    return out


def known_done(spec: Spec, *, github: bool, listing_fault: bool) -> bool:
    """The property itself: old enough, or GitHub answered that the PR is not open."""
    told = github and not listing_fault and spec.get_fault is None
    return spec.age_offset > 0 or (told and spec.pr_state in ("closed", "merged", "missing"))


def _s(kind: str, pr_state: str, offset: int, *, lookalike: int = 0) -> Spec:
    return Spec(kind, pr_state, offset, "started", True, lookalike)


def _f(pr_state: str, offset: int, fault: int | str | None) -> Spec:
    return Spec("preview", pr_state, offset, "started", True, 0, fault)


# Every kind of failed lookup, for PRs opened after the listing and for closed ones,
# young and old; and machines on troubled hosts, each way Fly leaves the config out.
FAULTS = [
    *(_f(state, -3600, fault) for state in ("open-late", "closed") for fault in GET_FAULTS[2:]),
    _f("open-late", 3600, 500),  # old: age alone destroys it
    _f("open-late", -3600, None),  # the lookup answers: open, kept
    _f("missing", -3600, None),
    *(
        Spec("unknown", "closed", 30 * 86400, "started", True, 0, None, host, config_as)
        for host, config_as in (("unknown", "omitted"), ("unreachable", "null"))
    ),
    Spec("unknown", "open", -3600, "stopped", True, 0, None, "unreachable", "empty"),
]

# Every kind once, and open PRs exactly at, just inside and just past max_age.
BOUNDARY = [
    _s("preview", "open", 0),
    _s("preview", "open", -1),
    _s("preview", "open", 1),
    _s("preview", "closed", -MAX_AGE + 60),
    _s("preview", "merged", -MAX_AGE + 60),
    _s("preview", "missing", -MAX_AGE + 60),
    *(_s("lookalike", "closed", 30 * 86400, lookalike=i) for i in range(5)),
    _s("unmarked", "closed", 30 * 86400),
    _s("mixed", "closed", 30 * 86400),
    _s("mismatch", "closed", 30 * 86400),
    _s("empty", "closed", 30 * 86400),
    _s("foreign", "closed", 30 * 86400),
]


# No shrink phase: a generated org has at most 10 apps, readable as it is, while shrinking
# through HTTP fakes can take Hypothesis' full five-minute shrink budget.
@settings(
    max_examples=25,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(plan=BOUNDARY, github=True, dry_run=False, listing_fault=False)
@example(plan=BOUNDARY, github=False, dry_run=False, listing_fault=False)
@example(plan=BOUNDARY, github=True, dry_run=True, listing_fault=False)
@example(plan=FAULTS, github=True, dry_run=False, listing_fault=False)
@example(plan=FAULTS, github=True, dry_run=True, listing_fault=False)
@example(plan=FAULTS, github=True, dry_run=False, listing_fault=True)
@given(
    plan=st.lists(specs, min_size=1, max_size=10),
    github=st.booleans(),
    dry_run=st.booleans(),
    listing_fault=st.sampled_from((False, False, False, True)),
)
def test_gc_only_destroys_what_it_owns_and_knows_is_done(
    fakes: Fakes, plan: list[Spec], github: bool, dry_run: bool, listing_fault: bool
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    listing_fault = listing_fault and github
    apps = seed(fakes, plan, now, listing_fault=listing_fault)
    before = set(fakes.fly.apps)
    rt = build_runtime(fakes, github=github)

    result = run_gc(rt, None, dry_run, now=now, pacer=Pacer(1000.0, 1000.0))

    assert not result.failed, result.to_json()
    fly = fakes.fly
    want = expected_actions(apps, github=github, listing_fault=listing_fault)
    expected = {app for app, action in want.items() if action == "destroy"}
    got = {r.app: r.action.removeprefix("would ") for r in result.rows}
    assert got == {app: want[app] for app in got}, result.to_json()
    decided = {app for app, action in got.items() if action == "destroy"}
    assert decided == expected, result.to_json()
    # the property: nothing is destroyed that gc does not KNOW is done
    for app in decided:
        assert known_done(apps[app], github=github, listing_fault=listing_fault), app
    undecided = {app for app, action in got.items() if action == "undecided"}
    assert result.undecided == len(undecided)
    assert result.exit_code == (1 if undecided or listing_fault else 0), result.to_json()
    for row in result.rows:
        if row.action == "undecided":
            assert row.reason, row  # says why
    remaining = set(fly.apps)

    if dry_run:
        assert fly.mutating_calls() == []
        assert remaining == before
        assert all(
            r.action.startswith("would ")
            for r in result.rows
            if r.action not in ("keep", "skip", "undecided")
        )
        return

    for app, spec in apps.items():
        touched = [r for r in fly.mutating_calls() if r.path.startswith(f"/v1/apps/{app}")]
        if app not in expected:
            # kept, undecided or not managed: never destroyed, stopped or otherwise changed
            assert app in remaining, (app, spec)
            assert touched == [], (app, spec)
        else:
            assert app not in remaining, (app, spec)
    # foreign apps are not even listed, let alone asked about
    for app, spec in apps.items():
        if spec.kind == "foreign":
            assert fly.calls(None, rf"^/v1/apps/{app}(/|$)") == []
    assert remaining == before - expected
    # the open PRs were listed once, whatever the number of previews
    if github and not listing_fault:
        assert len(fakes.github.calls("GET", r"/pulls$")) == 1


# ---- stopping idle previews (deterministic) ------------------------------------------------


def stop_runtime(fakes: Fakes, tmp_path: Path) -> Runtime:
    project = Project(tmp_path).write(
        TOML.replace('max_age = "7d"', 'max_age = "7d"\nstop_after = "1d"')
    )
    rt = build_runtime(fakes, github=True)
    rt.config_path = project.config
    return rt


def test_idle_previews_are_stopped_not_destroyed(fakes: Fakes, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seed(fakes, [], now)
    fly, gh = fakes.fly, fakes.github
    for pr in (1, 2, 3, 4):
        gh.add_pr(pr, f"feature/{pr}")
    idle = seed_preview(fly, "pr-1-agents", 1, branch="feature/1", last_up=now - timedelta(days=2))
    seed_preview(fly, "pr-2-agents", 2, branch="feature/2", last_up=now - timedelta(hours=2))
    seed_preview(
        fly, "pr-3-agents", 3, branch="feature/3", last_up=now - timedelta(days=2), state="stopped"
    )
    busy = seed_preview(fly, "pr-4-agents", 4, branch="feature/4", last_up=now - timedelta(days=2))
    fly.hold_lease("pr-4-agents", busy)

    dry = run_gc(stop_runtime(fakes, tmp_path), None, True, now=now)
    assert {r.app: r.action for r in dry.rows} == {
        "pr-1-agents": "would stop",
        "pr-2-agents": "keep",
        "pr-3-agents": "keep",
        "pr-4-agents": "would stop",
    }
    assert fly.mutating_calls() == []
    assert dry.saved_per_day > 0

    result = run_gc(stop_runtime(fakes, tmp_path), None, False, now=now)
    assert not result.failed, result.to_json()
    actions = {r.app: (r.action, r.reason) for r in result.rows}
    assert actions["pr-1-agents"][0] == "stop"
    assert actions["pr-4-agents"][0] == "keep"
    assert "leased by another run" in actions["pr-4-agents"][1]
    assert fly.machine("pr-1-agents", idle).target_state == "stopped"
    assert fly.machine("pr-1-agents", idle).held_lease() is None  # released again
    assert fly.machine("pr-4-agents", busy).target_state == "started"
    assert set(fly.apps) == {"pr-1-agents", "pr-2-agents", "pr-3-agents", "pr-4-agents"}
    stops = fly.calls("POST", r"/stop$")
    assert [r.path.split("/")[3] for r in stops] == ["pr-1-agents"]
    stopped_row = next(r for r in result.rows if r.app == "pr-1-agents")
    assert result.saved_per_day == stopped_row.saved_per_day > 0


def test_domain_pattern_only_matches_the_template() -> None:
    pattern = domain_pattern("pr-${pr}-web.example.com", "feature/x", {})
    assert pattern is not None
    assert pattern.match("pr-12-web.example.com")
    assert not pattern.match("pr-012-web.example.com")
    assert not pattern.match("staging.example.com")
    assert not pattern.match("pr-12-web.example.com.evil.io")
    by_branch = domain_pattern("${branch}.${env.ZONE}", "fix-1", {"ZONE": "pre.example.com"})
    assert by_branch is not None
    assert by_branch.match("fix-1.pre.example.com")
    assert not by_branch.match("fix-2.pre.example.com")
    assert domain_pattern("${pr}.${env.UNSET}", "b", {}) is None


def test_pacer_spaces_calls_after_the_burst() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    pacer = Pacer(2.0, 3.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(7):
        pacer.take()
    assert slept == pytest.approx([0.5, 0.5, 0.5, 0.5])
    assert clock[0] == pytest.approx(2.0)
