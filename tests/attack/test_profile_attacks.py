"""Hostile runs of the installed console script against the profiles feature (issue 12):
each test names a break that an attack found, and asserts the right outcome."""

from __future__ import annotations

import copy
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attack.profile_rig import BRANCH, PR, Stage, stage
from tests.fakes.fly_api import FlyEmulator
from tests.support.profiles import TRACING_MACHINE
from tests.support.project import Project

# A run on a laptop: no event, so the set recorded on the preview decides.
PLAIN = {"GITHUB_EVENT_PATH": "", "PREVIEWCTL_PR": str(PR), "PREVIEWCTL_BRANCH": BRANCH}


@pytest.fixture
def st(
    project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path, flyctl_path: Path
) -> Iterator[Stage]:
    with stage(project, fly, fly_token, tmp_path, flyctl_path) as s:
        yield s


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tracing(change: dict[str, object] | None = None) -> dict[str, object]:
    machine = copy.deepcopy(TRACING_MACHINE)
    machine.update(change or {})
    return machine


# ---- Vercel: a lost redeploy ------------------------------------------------------------------


def test_a_redeploy_lost_after_the_vars_changed_is_made_by_the_next_up(st: Stage) -> None:
    """Break: the label goes, `up` removes the profile's vars, then the redeploy fails.
    The next `up` saw nothing left to change and never redeployed: the preview kept
    serving the removed collector's OTEL vars."""
    st.label("preview:tracing")
    assert st.up().code == 0
    st.label(action="unlabeled")
    st.wired.vercel.inject("POST", r"^/v13/deployments", 400)
    failed = st.up()
    assert failed.code == 1, failed.output
    assert "OTEL_ENDPOINT" not in st.vars("api")  # the vars went before the redeploy failed

    again = st.up()
    assert again.code == 0, again.output
    newest = st.wired.vercel.deployments_for("api", BRANCH)[0]
    built_with = st.wired.vercel.deployment_env(newest["uid"])
    assert "DATABASE_URL" in built_with
    assert "OTEL_ENDPOINT" not in built_with, "the live preview still has the profile's vars"

    st.forget_requests()
    assert st.up().code == 0
    assert st.mutations() == [], "once redeployed, a repeated up redeploys nothing"


# ---- a profile's machine file ---------------------------------------------------------------


def test_a_profile_naming_one_container_twice_is_a_config_error(st: Stage) -> None:
    """Break: a profile machine file with two containers named `collector` was merged
    silently: one of them was dropped from the machine."""
    twice = _tracing()
    twice["containers"] = [*TRACING_MACHINE["containers"], {"name": "collector", "image": "x:1"}]
    st.profile_machine("tracing", twice)
    for args in (["plan"], ["up"]):
        result = st.run(*args, "--profile", "tracing")
        assert result.code == 2, result.output
        assert "collector" in result.output
    assert st.requests() == 0


def test_a_profile_with_two_services_on_one_port_is_a_config_error(st: Stage) -> None:
    """Break: two services of one profile on internal port 14318 were merged silently:
    the first was dropped (with its public port)."""
    twice = _tracing()
    other = {"protocol": "tcp", "internal_port": 14318, "ports": [{"port": 443}]}
    twice["services"] = [*TRACING_MACHINE["services"], other]
    st.profile_machine("tracing", twice)
    result = st.run("up", "--profile", "tracing")
    assert result.code == 2, result.output
    assert "14318" in result.output
    assert st.requests() == 0


def _check_on(port: int) -> dict[str, object]:
    jaeger = {
        "name": "jaeger",
        "image": "jaegertracing/jaeger:2.11.0",
        "healthchecks": [{"name": "ui", "tcp": {"port": port}}],
    }
    return _tracing({"containers": [TRACING_MACHINE["containers"][0], jaeger]})


def test_a_profile_health_check_on_a_base_port_is_a_collision(st: Stage) -> None:
    """Break: the base's health-check ports count as used, but a profile's own did not:
    a profile container checked (so listening) on the base's 5432 passed `plan`."""
    st.profile_machine("tracing", _check_on(5432))
    result = st.run("plan", "--profile", "tracing")
    assert result.code == 2, result.output
    assert "5432" in result.output


def test_a_profile_health_check_on_another_profiles_port_is_a_collision(st: Stage) -> None:
    """Break: tracing's container checked on 3003, nango's port: both active passed
    `plan` and `up`, and would fight over 3003 in the machine's one network namespace."""
    st.profile_machine("tracing", _check_on(3003))
    for args in (["plan"], ["up"]):
        result = st.run(*args, "--profile", "tracing", "--profile", "nango")
        assert result.code == 2, result.output
        assert "3003" in result.output
    assert st.requests() == 0


# ---- selection -------------------------------------------------------------------------------


def test_a_label_matches_its_profile_whatever_its_case(st: Stage) -> None:
    """Break: GitHub label names are case-insensitive (and the workflow's startsWith
    starts the job for `Preview:Tracing`), but previewctl compared them exactly: the job
    ran and turned nothing on."""
    st.label("Preview:Tracing")
    plan = st.run("--json", "plan")
    assert plan.code == 0, plan.output
    assert list(plan.json()["profiles"]) == ["tracing"]
    assert st.up().code == 0
    assert "collector" in st.containers()


# ---- the recorded set's tunnels are checked before anything changes --------------------------


def _recorded_tracing_on_a_fixed_port(st: Stage) -> int:
    """A preview that records `tracing`, whose jaeger tunnel has a fixed local port, and a
    config change that `up` would apply to the machine."""
    port = _free_port()
    st.replace_toml("local_port = 0\ncheck", f"local_port = {port}\ncheck")
    st.label("preview:tracing")
    assert st.up().code == 0
    st.profile_machine("tracing", _tracing({"guest": {"memory_mb": 6144}}))
    st.forget_requests()
    return port


def test_a_recorded_profiles_taken_tunnel_port_is_bad_input_before_any_change(st: Stage) -> None:
    """Break: with the set recorded on the preview (no flag, no event), its tunnels' ports
    were not checked up front: `up` updated the machine, then failed at the taken port
    (exit 1); `--profile tracing` said exit 2 before anything."""
    port = _recorded_tracing_on_a_fixed_port(st)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = st.up(**PLAIN)
    assert result.code == 2, result.output
    assert f"local port {port}" in result.output
    assert st.fly.mutating_calls() == []
    assert st.machine()["guest"]["memory_mb"] == 5120


def test_a_recorded_profiles_missing_tunnel_tool_is_bad_input_before_any_change(
    st: Stage,
) -> None:
    """Break: a recorded profile's tunnel needs flyctl, but only the base's tunnels were
    checked for it: `up` updated the machine before it found flyctl missing."""
    _recorded_tracing_on_a_fixed_port(st)
    result = st.up(**PLAIN, PREVIEWCTL_FLYCTL="/nonexistent/flyctl")
    assert result.code == 2, result.output
    assert "PREVIEWCTL_FLYCTL" in result.output
    assert st.fly.mutating_calls() == []


def test_resume_checks_the_recorded_profiles_tunnel_ports_before_it_starts(st: Stage) -> None:
    """Break: `resume` checked only the base's tunnels: it started the stopped machine,
    then failed (exit 1) at the recorded profile's taken tunnel port."""
    port = _recorded_tracing_on_a_fixed_port(st)
    assert st.run("stop", "--pr", str(PR), **PLAIN).code == 0
    st.forget_requests()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = st.run("resume", "--pr", str(PR), **PLAIN)
    assert result.code == 2, result.output
    assert f"local port {port}" in result.output
    assert st.fly.mutating_calls() == []
    assert st.fly.apps["pr-8-svc"].live_machines()[0].state == "stopped"


def test_an_empty_profile_flag_is_bad_input_not_none(st: Stage) -> None:
    """Break: `--profile ""` (a script's unset variable) was read as "no profiles" and
    won over the PR's labels: `up` took the labelled profile's containers away."""
    st.label("preview:tracing")
    assert st.up().code == 0
    st.forget_requests()
    for args in (["plan", "--profile", ""], ["up", "--profile", " "]):
        result = st.run(*args)
        assert result.code == 2, result.output
        assert "--profile" in result.output
    assert st.requests() == 0
    assert "collector" in st.containers()


def test_a_forged_recorded_set_is_read_once_each_and_changes_nothing(st: Stage) -> None:
    """Break: a recorded set naming a profile twice (metadata someone edited) was shown
    twice by `status`; names previewctl never writes are left out, and a plain `up`
    with the same real set makes no mutating call."""
    assert st.up("--profile", "nango").code == 0
    live = st.fly.apps["pr-8-svc"].live_machines()[0]
    live.config["metadata"]["previewctl_profiles"] = "nango,nango,Tracing,../x,nango\ntracing"
    status = st.run("--json", "status", "--pr", str(PR), **PLAIN)
    assert status.code == 0, status.output
    assert status.json()["profiles"] == ["nango"]
    st.forget_requests()
    again = st.up(**PLAIN)
    assert again.code == 0, again.output
    assert st.mutations() == []


def test_resume_checks_the_recorded_profiles_env_vars_before_it_starts(st: Stage) -> None:
    """Break: a recorded profile's step uses `${env.TRACE_LEVEL}`; `resume` on a laptop
    without it started the stopped machine, then failed at the step (a plain `up` said
    so before anything)."""
    st.replace_toml(
        'env = { JAEGER_URL = "', 'env = { LEVEL = "${env.TRACE_LEVEL}", JAEGER_URL = "'
    )
    st.label("preview:tracing")
    assert st.up(TRACE_LEVEL="debug").code == 0
    assert st.run("stop", "--pr", str(PR), **PLAIN).code == 0
    st.forget_requests()
    result = st.run("resume", "--pr", str(PR), **PLAIN)
    assert result.code == 2, result.output
    assert "TRACE_LEVEL" in result.output
    assert st.fly.mutating_calls() == []
    assert st.fly.apps["pr-8-svc"].live_machines()[0].state == "stopped"


def test_labelling_a_closed_pr_does_not_bring_its_preview_back(st: Stage) -> None:
    """Break: `up` on the `labeled` event of a closed PR (a workflow without the shipped
    one's `state == 'open'` guard) made a whole new preview, profile and all, for a PR
    that is gone; it is skipped with a notice, as a fork's is."""
    st.event(
        {
            "action": "labeled",
            "number": PR,
            "label": {"name": "preview:tracing"},
            "pull_request": {
                "number": PR,
                "state": "closed",
                "labels": [{"name": "preview:tracing"}],
                "head": {"ref": BRANCH, "repo": {"full_name": "acme/agents"}},
            },
        }
    )
    for args in (["up", "--no-wait"], ["up"]):
        result = st.run(*args)
        assert result.code == 0, result.output
        assert "closed" in result.output
    assert "pr-8-svc" not in st.fly.apps
    assert st.wired.vercel.envs_for("api", BRANCH) == []
