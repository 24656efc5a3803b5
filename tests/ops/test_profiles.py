"""Profiles end to end in-process: chosen by flag, env, labels or the recorded set, and a
change of set converged (machine, guest, Vercel vars, steps) against the fakes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from previewctl.ops.envcmd import run_env
from previewctl.ops.resume import resumed, tunneled
from previewctl.ops.runtime import Runtime
from tests.fakes.fly_api import FlyEmulator, MachineState
from tests.fakes.vercel_api import VercelFake
from tests.support.checks import assert_no_leak, machine_secrets
from tests.support.cli import InProcessCli
from tests.support.inprocess import InProcess
from tests.support.profiles import (
    TRACING_MACHINE,
    profiles_toml,
    write_labeled_event,
    write_profile_machine,
)
from tests.support.project import BASIC_TOML, MACHINE_CONFIG, Project
from tests.support.workflow import APP, BRANCH, VERCEL_TOML, Wired, wire

BASE_GUEST = MACHINE_CONFIG["guest"]
NO_EVENT = {"GITHUB_EVENT_PATH": ""}  # a run by hand: flags, env or the recorded set
BY_HAND = ("--pr", "8", "--branch", BRANCH)


@pytest.fixture
def wired(
    project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path, flyctl_path: Path
) -> Iterator[Wired]:
    with wire(project, fly, fly_token, tmp_path, InProcessCli) as wired:
        project.write(BASIC_TOML + VERCEL_TOML + profiles_toml(tmp_path / "steps.log"))
        write_profile_machine(project, "tracing", TRACING_MACHINE)
        wired.cli.env["PREVIEWCTL_FLYCTL"] = str(flyctl_path)
        yield wired


def machine(fly: FlyEmulator) -> MachineState:
    live = [m for m in fly.apps[APP].machines.values() if m.state != "destroyed"]
    assert len(live) == 1
    return live[0]


def containers(fly: FlyEmulator) -> list[str]:
    return [c["name"] for c in machine(fly).config["containers"]]


def branch_vars(vercel: VercelFake, project: str) -> dict[str, str]:
    return {e["key"]: e["value"] for e in vercel.envs_for(project, BRANCH)}


def steps_run(tmp_path: Path) -> list[str]:
    log = tmp_path / "steps.log"
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return names


def machine_updates(fly: FlyEmulator) -> list[Any]:
    machine_id = machine(fly).id
    return [r for r in fly.mutating_calls() if r.method == "POST" and r.path.endswith(machine_id)]


def test_added_by_flag_then_kept_by_a_plain_up_with_zero_mutations(
    wired: Wired, tmp_path: Path
) -> None:
    first = wired.cli.run("up", *BY_HAND, "--profile", "tracing", env=NO_EVENT)
    assert first.code == 0, first.output
    assert containers(wired.fly) == ["db", "authz", "collector", "jaeger"]
    config = machine(wired.fly).config
    assert config["guest"] == {"cpu_kind": "shared", "cpus": 4, "memory_mb": 5120}
    assert [s["internal_port"] for s in config["services"]] == [5432, 14318]
    assert config["metadata"]["previewctl_profiles"] == "tracing"
    token = machine_secrets(wired.fly, APP)["otel_token"]
    assert config["containers"][2]["env"]["BEARER"] == token
    api = branch_vars(wired.vercel, "api")
    assert api["OTEL_ENDPOINT"] == f"https://{APP}.fly.dev:14318/v1/traces"
    assert api["OTEL_HEADERS"] == f"Authorization=Bearer {token}"
    assert steps_run(tmp_path) == ["migrate", "tracing-ready"]  # after the base's
    assert "previewctl tunnel --pr 8` opens jaeger" in first.stderr

    wired.fly.clear_log()
    wired.vercel.clear_log()
    again = wired.cli.run("up", *BY_HAND, env=NO_EVENT)
    assert again.code == 0, again.output
    assert wired.fly.mutating_calls() == []
    assert wired.vercel.calls("POST", r"/env$") == []
    assert wired.vercel.calls("DELETE") == []
    assert wired.vercel.redeploys() == []
    assert containers(wired.fly) == ["db", "authz", "collector", "jaeger"]
    assert steps_run(tmp_path) == ["migrate", "tracing-ready"]  # the recorded set's steps


def test_removed_by_an_event_without_the_label_then_added_back_by_one_with_it(
    wired: Wired, tmp_path: Path
) -> None:
    write_labeled_event(wired.event, ["preview:tracing", "bug"])
    assert wired.cli.run("up").code == 0
    assert containers(wired.fly) == ["db", "authz", "collector", "jaeger"]
    token = machine_secrets(wired.fly, APP)["otel_token"]
    wired.vercel.add_env("api", "OTEL_HAND", "x", git_branch=BRANCH)  # not previewctl's
    steps_run(tmp_path)

    write_labeled_event(wired.event, ["bug"], action="unlabeled")
    wired.fly.clear_log()
    wired.vercel.clear_log()
    removed = wired.cli.run("up")
    assert removed.code == 0, removed.output
    assert len(machine_updates(wired.fly)) == 1  # the machine is updated once
    config = machine(wired.fly).config
    assert containers(wired.fly) == ["db", "authz"]
    assert config["guest"] == BASE_GUEST  # memory back down
    assert [s["internal_port"] for s in config["services"]] == [5432]
    assert config["metadata"]["previewctl_profiles"] == ""
    api = branch_vars(wired.vercel, "api")
    assert "OTEL_ENDPOINT" not in api
    assert "OTEL_HEADERS" not in api
    assert api["OTEL_HAND"] == "x"  # only managed vars are removed
    assert {"DATABASE_URL", "API_KEY", "SELF_URL", "LOG_LEVEL"} <= set(api)
    redeployed = {r.body["name"] for r in wired.vercel.redeploys()}
    assert redeployed == {"api"}  # web's vars did not change
    assert steps_run(tmp_path) == ["migrate"]  # the base steps again, the data is new

    write_labeled_event(wired.event, ["preview:tracing"])
    back = wired.cli.run("up")
    assert back.code == 0, back.output
    assert containers(wired.fly) == ["db", "authz", "collector", "jaeger"]
    assert machine(wired.fly).config["guest"]["memory_mb"] == 5120
    assert branch_vars(wired.vercel, "api")["OTEL_HEADERS"] == f"Authorization=Bearer {token}"


def test_a_profile_of_vars_only_records_the_set_and_writes_its_vars(wired: Wired) -> None:
    assert wired.cli.run("up", *BY_HAND, env=NO_EVENT).code == 0
    wired.fly.clear_log()
    wired.vercel.clear_log()
    result = wired.cli.run("up", *BY_HAND, env={**NO_EVENT, "PREVIEWCTL_PROFILES": "nango"})
    assert result.code == 0, result.output
    assert len(machine_updates(wired.fly)) == 1  # its new secrets are stored, once
    assert machine(wired.fly).config["metadata"]["previewctl_profiles"] == "nango"
    assert containers(wired.fly) == ["db", "authz"]
    secrets = machine_secrets(wired.fly, APP)
    web = branch_vars(wired.vercel, "web")
    assert web["NANGO_SECRET_KEY"] == secrets["nango_key"]
    assert web["NANGO_ENCRYPTION_KEY"] == secrets["nango_enc"]
    assert {r.body["name"] for r in wired.vercel.redeploys()} == {"web"}
    assert "OTEL_ENDPOINT" not in branch_vars(wired.vercel, "api")

    write_labeled_event(wired.event, [])  # an event without its label: no profile
    wired.fly.clear_log()
    wired.vercel.clear_log()
    off = wired.cli.run("up")
    assert off.code == 0, off.output
    labels = [(r.method, r.path.rsplit("/", 1)[-1]) for r in wired.fly.mutating_calls()]
    # the set recorded, and the redeploy ledger marked then cleared around web's vars; an
    # empty set or ledger removes its key (an empty metadata value is not documented)
    assert labels == [
        ("DELETE", "previewctl_profiles"),
        ("POST", "previewctl_redeploy"),
        ("DELETE", "previewctl_redeploy"),
    ]
    assert "previewctl_profiles" not in machine(wired.fly).config["metadata"]
    assert "NANGO_SECRET_KEY" not in branch_vars(wired.vercel, "web")
    assert {r.body["name"] for r in wired.vercel.redeploys()} == {"web"}


def test_status_shows_the_set_and_the_cost_of_the_bigger_guest(wired: Wired) -> None:
    from previewctl.backends.fly.pricing import MEMORY_GB_HOUR, SHARED_CPU_HOUR

    assert wired.cli.run("up", *BY_HAND, env=NO_EVENT).code == 0
    base = wired.cli.run("status", "--json")
    assert base.code == 0, base.output
    [row] = base.json()["rows"]
    assert row["profiles"] == []
    assert row["cost_per_day"] == round(24 * (2 * SHARED_CPU_HOUR + 1 * MEMORY_GB_HOUR), 4)

    assert wired.cli.run("up", *BY_HAND, "--profile", "tracing", env=NO_EVENT).code == 0
    listed = wired.cli.run("status", "--json")
    [row] = listed.json()["rows"]
    assert row["profiles"] == ["tracing"]
    assert row["size"] == "shared-cpu-4x 5120MB"
    assert row["cost_per_day"] == round(24 * (4 * SHARED_CPU_HOUR + 5 * MEMORY_GB_HOUR), 4)
    detail = wired.cli.run("status", "--pr", "8")
    assert detail.code == 0, detail.output
    assert "profiles" in detail.stdout
    assert "tracing" in detail.stdout
    table = wired.cli.run("status")
    assert "tracing" in table.stdout
    assert wired.cli.run("status", "--pr", "8", "--json").json()["profiles"] == ["tracing"]

    write_labeled_event(wired.event, ["bug"], action="unlabeled")
    assert wired.cli.run("up").code == 0
    [row] = wired.cli.run("status", "--json").json()["rows"]
    assert row["profiles"] == []
    assert row["size"] == "shared-cpu-2x 1024MB"  # memory back down, and its cost
    assert row["cost_per_day"] == round(24 * (2 * SHARED_CPU_HOUR + 1 * MEMORY_GB_HOUR), 4)


def test_profile_secrets_are_never_printed(wired: Wired) -> None:
    both = ("--profile", "tracing", "--profile", "nango")
    assert wired.cli.run("plan", "--pr", "8", *both).code == 0
    assert wired.cli.run("plan", "--pr", "8", *both, "--json").code == 0
    assert wired.cli.run("up", *BY_HAND, *both, "-v", env=NO_EVENT).code == 0
    assert wired.cli.run("up", *BY_HAND, "--json", env=NO_EVENT).code == 0
    assert wired.cli.run("status", "--pr", "8", "--json").code == 0
    assert wired.cli.run("seed", *BY_HAND, env=NO_EVENT).code == 0
    secrets = machine_secrets(wired.fly, APP)
    values = [secrets[n] for n in ("otel_token", "nango_key", "nango_enc")]
    assert len(secrets["nango_key"]) == 36
    assert secrets["nango_key"][14] == "4"
    assert len(secrets["nango_enc"]) == 44
    assert secrets["nango_enc"].endswith("=")
    printed = wired.everything_printed()
    assert_no_leak(printed, values)
    assert all(f"::add-mask::{value}" in printed for value in values)  # masked, not shown


def test_plan_shows_everything_a_profile_adds_with_secrets_masked(wired: Wired) -> None:
    result = wired.cli.run("plan", "--pr", "8", "--profile", "tracing", "--json")
    assert result.code == 0, result.output
    plan = result.json()
    assert [c["name"] for c in plan["machine"]["containers"]] == [
        "db",
        "authz",
        "collector",
        "jaeger",
    ]
    assert plan["machine"]["containers"][2]["env"]["BEARER"] == "***"
    assert plan["machine"]["guest"]["memory_mb"] == 5120
    assert plan["secrets"]["otel_token"] == "***"
    assert "jaeger" in plan["tunnels"]
    assert [s["name"] for s in plan["steps"]] == ["migrate", "tracing-ready"]
    api_env = plan["vercel"]["projects"]["api"]["env"]
    assert api_env["OTEL_HEADERS"] == "Authorization=Bearer ***"
    tracing = plan["profiles"]["tracing"]
    assert tracing["containers"] == ["collector", "jaeger"]
    assert tracing["ports"] == [14318, 16686]
    assert tracing["secrets"] == {"otel_token": "***"}
    text = wired.cli.run("plan", "--pr", "8", "--profile", "tracing")
    assert text.code == 0, text.output
    assert "Profiles" in text.stdout
    assert "tracing: collector and Jaeger on the preview machine" in text.stdout
    assert "otel_token=***" in text.stdout
    plain = wired.cli.run("plan", "--pr", "8", "--json", env=NO_EVENT).json()
    assert plain["profiles"] == {}
    assert [c["name"] for c in plain["machine"]["containers"]] == ["db", "authz"]


def test_a_recorded_profile_the_config_dropped_is_converged_away(wired: Wired) -> None:
    assert wired.cli.run("up", *BY_HAND, "--profile", "nango", env=NO_EVENT).code == 0
    assert "NANGO_SECRET_KEY" in branch_vars(wired.vercel, "web")
    text = wired.project.config.read_text().replace("[profiles.nango", "[profiles.nango2")
    wired.project.write(text)
    result = wired.cli.run("up", *BY_HAND, env=NO_EVENT)
    assert result.code == 0, result.output
    assert "profile(s) nango recorded on the preview are no longer in the config" in result.stderr
    assert "previewctl_profiles" not in machine(wired.fly).config["metadata"]
    assert "NANGO_SECRET_KEY" not in branch_vars(wired.vercel, "web")


def _tunnel_and_env(rt: Runtime, pr: str) -> tuple[dict[str, tuple[str, int]], dict[str, str]]:
    """`tunnel --pr N` holding its tunnels, and `env --pr N` asked meanwhile."""
    with tunneled(rt, pr) as held:
        return dict(held.tunnels), run_env(rt, pr)


def test_tunnel_env_and_seed_use_the_recorded_set(wired: Wired) -> None:
    assert wired.cli.run("up", *BY_HAND, "--profile", "tracing", env=NO_EVENT).code == 0
    ops = InProcess(wired.project.config, {**wired.cli.env, **NO_EVENT})
    tunnels, env = ops.call(_tunnel_and_env, "8").ok()
    assert list(tunnels) == ["jaeger"]  # the recorded profile's tunnel
    host, port = tunnels["jaeger"]
    assert env["JAEGER_URL"] == f"http://{host}:{port}"  # its step's env, at the live port
    seeded = wired.cli.run("seed", *BY_HAND, env=NO_EVENT)
    assert seeded.code == 0, seeded.output
    plain = wired.cli.run("up", *BY_HAND, env=NO_EVENT)
    assert "profiles recorded on the preview: tracing" in plain.stderr
    without = wired.cli.run("env", "--pr", "8", env=NO_EVENT)  # no tunnel open now
    assert without.code == 2, without.output
    assert "jaeger" in without.stderr


def test_resume_with_another_set_updates_the_machine_to_it(wired: Wired, tmp_path: Path) -> None:
    assert wired.cli.run("up", *BY_HAND, env=NO_EVENT).code == 0
    assert wired.cli.run("stop", "--pr", "8").code == 0
    steps_run(tmp_path)
    ops = InProcess(wired.project.config, {**wired.cli.env, **NO_EVENT})

    def resume_with_tracing(rt: Runtime) -> list[str]:
        with resumed(rt, "8", ("tracing",)) as held:
            return sorted(held.tunnels)

    assert ops.call(resume_with_tracing).ok() == ["jaeger"]
    assert machine(wired.fly).state == "started"
    assert containers(wired.fly) == ["db", "authz", "collector", "jaeger"]
    assert machine(wired.fly).config["metadata"]["previewctl_profiles"] == "tracing"
    assert steps_run(tmp_path) == ["migrate", "tracing-ready"]
    wired.fly.clear_log()

    def resume_plain(rt: Runtime) -> list[str]:
        with resumed(rt, "8") as held:
            return sorted(held.tunnels)

    assert ops.call(resume_plain).ok() == ["jaeger"]  # the recorded set
    assert machine_updates(wired.fly) == []
