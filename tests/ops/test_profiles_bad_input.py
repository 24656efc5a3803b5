"""Profiles' bad input: unknown names, ports used twice, duplicates; exit 2 with zero
requests, found by plan and by up's preflight before anything is created."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import CliResult, InProcessCli
from tests.support.profiles import TRACING_MACHINE, profiles_toml, write_profile_machine
from tests.support.project import BASIC_TOML, Project
from tests.support.workflow import BRANCH, VERCEL_TOML, Wired, wire

BY_HAND = ("--pr", "8", "--branch", BRANCH)
NO_EVENT = {"GITHUB_EVENT_PATH": ""}


@pytest.fixture
def wired(
    project: Project, fly: FlyEmulator, fly_token: str, tmp_path: Path, flyctl_path: Path
) -> Iterator[Wired]:
    with wire(project, fly, fly_token, tmp_path, InProcessCli) as wired:
        wired.cli.env["PREVIEWCTL_FLYCTL"] = str(flyctl_path)
        yield wired


def configure(wired: Wired, tmp_path: Path, extra: str = "", **machines: Any) -> None:
    wired.project.write(BASIC_TOML + VERCEL_TOML + profiles_toml(tmp_path / "log") + extra)
    write_profile_machine(wired.project, "tracing", machines.pop("tracing", TRACING_MACHINE))
    for name, machine in machines.items():
        write_profile_machine(wired.project, name, machine)


def assert_refused(wired: Wired, result: CliResult, *needles: str) -> None:
    assert result.code == 2, result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert wired.fly.requests == []
    assert wired.vercel.requests == []
    assert wired.github.requests == []


def test_unknown_names_exit_2_with_zero_requests(wired: Wired, tmp_path: Path) -> None:
    configure(wired, tmp_path)
    for args, env in (
        (("up", *BY_HAND, "--profile", "tracnig"), NO_EVENT),
        (("up", *BY_HAND), {**NO_EVENT, "PREVIEWCTL_PROFILES": "nango, nope"}),
        (("plan", "--pr", "8", "--profile", "nope"), NO_EVENT),
        (("resume", "--pr", "8", "--profile", "nope"), NO_EVENT),
    ):
        result = wired.cli.run(*args, env=env)
        assert_refused(wired, result, "unknown profile", "defined: tracing, nango")


def test_unknown_name_is_reported_with_the_other_bad_input(wired: Wired, tmp_path: Path) -> None:
    configure(wired, tmp_path)
    result = wired.cli.run("up", *BY_HAND, "--profile", "nope", env={"FLY_API_TOKEN": ""})
    assert_refused(wired, result, "unknown profile", "FLY_API_TOKEN")


def test_a_label_no_profile_has_turns_nothing_on(wired: Wired, tmp_path: Path) -> None:
    configure(wired, tmp_path)
    plan = wired.cli.run("plan", "--json")  # the event's PR, with no label of a profile
    assert plan.code == 0, plan.output
    assert plan.json()["profiles"] == {}


@pytest.mark.parametrize(
    ("ports", "user"),
    [
        ("[5432]", "a service's internal_port"),  # also the base's health check and tunnel
        ("[16686, 16686]", "listed twice"),
    ],
)
def test_a_port_the_base_uses_or_listed_twice_exits_2(
    wired: Wired, tmp_path: Path, ports: str, user: str
) -> None:
    configure(wired, tmp_path, f"\n[profiles.extra]\nports = {ports}\n")
    for args in (("plan", "--pr", "8"), ("up", *BY_HAND)):
        result = wired.cli.run(*args, env=NO_EVENT)
        assert_refused(wired, result, user)


def test_health_check_and_tunnel_ports_of_the_base_are_taken(wired: Wired, tmp_path: Path) -> None:
    machine = json.loads(json.dumps(wired.project.machine))
    machine["containers"][1]["healthchecks"] = [{"name": "grpc", "tcp": {"port": 50051}}]
    extra = "\n[tunnels.admin]\nremote_port = 8443\n\n[profiles.extra]\nports = [50051, 8443]\n"
    configure(wired, tmp_path, extra)
    wired.project.write(wired.project.config.read_text(), machine)
    result = wired.cli.run("plan", "--pr", "8", env=NO_EVENT)
    assert_refused(
        wired, result, "port 50051, which container authz's health check uses", "tunnel admin"
    )


def test_two_active_profiles_on_one_port_exit_2_each_alone_is_fine(
    wired: Wired, tmp_path: Path
) -> None:
    configure(wired, tmp_path, "\n[profiles.jaeger2]\nports = [16686]\n")
    assert wired.cli.run("plan", "--pr", "8", "--profile", "jaeger2", env=NO_EVENT).code == 0
    assert wired.cli.run("plan", "--pr", "8", "--profile", "tracing", env=NO_EVENT).code == 0
    both = wired.cli.run(
        "up", *BY_HAND, "--profile", "tracing", "--profile", "jaeger2", env=NO_EVENT
    )
    assert_refused(wired, both, "profile jaeger2 listens on port 16686, which profile tracing")


def test_duplicate_container_tunnel_service_or_var_exits_2(wired: Wired, tmp_path: Path) -> None:
    dup = {
        "containers": [{"name": "db", "image": "postgres:18"}],
        "services": [{"protocol": "tcp", "internal_port": 5432}],
    }
    extra = (
        '\n[profiles.dup]\nmachine = ".fly/profiles/dup.json"\n'
        "[profiles.dup.tunnels.jaeger]\nremote_port = 16687\n"
        '[profiles.dup.vercel.projects.api]\nenv = { LOG_LEVEL = "x" }\n'
    )
    configure(wired, tmp_path, extra, dup=dup)
    result = wired.cli.run("plan", "--pr", "8", env=NO_EVENT)
    assert_refused(wired, result, "adds container db", "service on port 5432", "api var LOG_LEVEL")
    assert "tunnel jaeger" not in result.stderr  # tracing's: a clash only when both are on


def test_two_active_profiles_with_one_tunnel_name_exit_2(wired: Wired, tmp_path: Path) -> None:
    configure(wired, tmp_path, "\n[profiles.dup.tunnels.jaeger]\nremote_port = 16687\n")
    assert wired.cli.run("plan", "--pr", "8", "--profile", "dup", env=NO_EVENT).code == 0
    both = wired.cli.run("up", *BY_HAND, "--profile", "dup", "--profile", "tracing", env=NO_EVENT)
    assert_refused(wired, both, "profile dup adds tunnel jaeger")


def test_a_guest_past_flys_largest_exits_2(wired: Wired, tmp_path: Path) -> None:
    configure(wired, tmp_path, tracing={**TRACING_MACHINE, "guest": {"memory_mb": 32768}})
    result = wired.cli.run("plan", "--pr", "8", env=NO_EVENT)
    assert_refused(wired, result, "more than Fly's largest shared guest")


def test_a_profile_service_on_a_taken_port_exits_2_even_when_not_listed(
    wired: Wired, tmp_path: Path
) -> None:
    edge = {
        "services": [
            {"protocol": "tcp", "internal_port": 8443, "ports": [{"port": 5432}]},
        ]
    }
    extra = '\n[tunnels.admin]\nremote_port = 8443\n\n[profiles.edge]\nmachine = ".fly/profiles/edge.json"\n'
    configure(wired, tmp_path, extra, edge=edge)
    result = wired.cli.run("plan", "--pr", "8", env=NO_EVENT)
    assert_refused(
        wired, result, "profile edge listens on port 8443, which tunnel admin", "public port 5432"
    )
