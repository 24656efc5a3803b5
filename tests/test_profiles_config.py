"""[profiles.NAME] in previewctl.toml: the section's checks (file, key, line), the merge
by type, the guest within Fly's limits, and selection by flag, env and label."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from previewctl.config import load_config
from previewctl.errors import ConfigError, InputError
from previewctl.profiles import fit_guest
from previewctl.selection import choose
from previewctl.spec import build_spec
from previewctl.target import Target, resolve_target

MACHINE: dict[str, Any] = {
    "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
    "containers": [{"name": "db", "image": "postgres:18", "env": {"PW": "${secrets.pg_password}"}}],
}
BASE = """\
[app]
name = "pr-${pr}-svc"
org = "acme"

[secrets]
generate = ["pg_password"]

[vercel.projects.api]
env = { DB = "postgresql://u:${secrets.pg_password}@${app.hostname}/db" }
"""
TRACING = """
[profiles.tracing]
labels = ["preview:tracing"]
machine = ".fly/tracing.json"
secrets = ["otel_token"]
ports = [4318]

[profiles.tracing.tunnels.jaeger]
remote_port = 16686

[profiles.tracing.vercel.projects.api]
env = { OTEL = "https://${app.hostname}:4318?t=${secrets.otel_token}" }

[[profiles.tracing.steps]]
name = "check"
run = "true ${tunnels.jaeger.port} ${secrets.otel_token}"
"""
TRACING_MACHINE = {
    "guest": {"memory_mb": 5120},
    "containers": [{"name": "collector", "image": "otel/collector:1", "env": {"T": "x"}}],
}


def write(tmp_path: Path, toml: str, profile_machine: Any = TRACING_MACHINE) -> Path:
    (tmp_path / ".fly").mkdir(exist_ok=True)
    (tmp_path / ".fly" / "machine-config.json").write_text(json.dumps(MACHINE))
    (tmp_path / ".fly" / "tracing.json").write_text(json.dumps(profile_machine, indent=2))
    path = tmp_path / "previewctl.toml"
    path.write_text(textwrap.dedent(toml))
    return path


def problems_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_a_profile_merges_over_the_base_by_type(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE + TRACING))
    base = build_spec(config, Target(3, "b"), {}, hostname=lambda a: f"{a}.fly.dev")
    spec = build_spec(
        config, Target(3, "b"), {}, hostname=lambda a: f"{a}.fly.dev", profiles=("tracing",)
    )
    assert base.profiles == ()
    assert spec.profiles == ("tracing",)
    assert [c["name"] for c in spec.machine_template["containers"]] == ["db", "collector"]
    assert spec.machine_template["guest"] == {"cpu_kind": "shared", "cpus": 4, "memory_mb": 5120}
    assert base.machine_template["guest"] == MACHINE["guest"]
    assert spec.secrets.names == ("pg_password", "otel_token")
    assert list(spec.tunnels) == ["jaeger"]
    assert [s.name for s in spec.steps] == ["check"]
    assert set(spec.vercel_projects["api"].env) == {"DB", "OTEL"}
    assert set(base.vercel_projects["api"].env) == {"DB"}  # the base is not changed


@pytest.mark.parametrize(
    ("base", "asks", "want"),
    [
        ({"cpus": 2, "memory_mb": 4096}, [{"memory_mb": 5120}], (4, 5120)),  # CPUs follow memory
        ({"cpus": 4, "memory_mb": 4096}, [{"memory_mb": 6144}], (4, 6144)),
        ({"cpus": 1, "memory_mb": 256}, [{"cpus": 2}], (2, 512)),  # memory follows CPUs
        ({"cpus": 4, "memory_mb": 8192}, [{"memory_mb": 1024}], (4, 8192)),  # never lowered
        ({"cpus": 2, "memory_mb": 1024}, [{"memory_mb": 5120}, {"memory_mb": 6144}], (4, 6144)),
        ({"cpus": 1, "memory_mb": 2048}, [{"memory_mb": 12288}], (6, 12288)),  # Fly's sizes
    ],
)
def test_the_guest_is_the_largest_asked_for_within_flys_limits(
    base: dict[str, Any], asks: list[dict[str, Any]], want: tuple[int, int]
) -> None:
    guest = fit_guest({"cpu_kind": "shared", **base}, asks)
    assert (guest["cpus"], guest["memory_mb"]) == want
    assert 256 * guest["cpus"] <= guest["memory_mb"] <= 2048 * guest["cpus"]


def test_performance_guest_and_past_the_largest() -> None:
    perf = fit_guest(
        {"cpu_kind": "shared", "cpus": 2, "memory_mb": 1024}, [{"cpu_kind": "performance"}]
    )
    assert perf == {"cpu_kind": "performance", "cpus": 2, "memory_mb": 4096}
    with pytest.raises(ConfigError, match="more than Fly's largest shared guest"):
        fit_guest({"cpus": 1, "memory_mb": 256}, [{"memory_mb": 20480}])


@pytest.mark.parametrize(
    ("toml", "machine", "needles"),
    [
        (
            TRACING.replace("ports = [4318]", "ports = [4318]\nimage = 'x'"),
            TRACING_MACHINE,
            ["image"],
        ),
        (TRACING, {**TRACING_MACHINE, "image": "nginx"}, ["tracing.json", "image"]),
        (TRACING, {"guest": {"memory_mb": 1000}}, ["multiple of 256"]),
        (TRACING.replace("projects.api]", "projects.web]"), TRACING_MACHINE, ["project web"]),
        (
            TRACING.replace('"otel_token"', '"pg_password"'),
            TRACING_MACHINE,
            ["generates pg_password"],
        ),
        (
            TRACING.replace("[profiles.tracing]\n", "[profiles.Tracing]\n"),
            TRACING_MACHINE,
            ["lowercase"],
        ),
        (
            TRACING.replace("https://${app.hostname}", "http://localhost"),
            TRACING_MACHINE,
            ["localhost"],
        ),
        (
            TRACING.replace("${tunnels.jaeger.port}", "${tunnels.nope.port}"),
            TRACING_MACHINE,
            ["nope"],
        ),
        (
            TRACING.replace("remote_port = 16686", "remote_port = 16686\nlocal_port = 15432")
            + "\n[tunnels.db]\nremote_port = 5432\nlocal_port = 15432\n",
            TRACING_MACHINE,
            ["db and jaeger all use local_port 15432"],
        ),
        (TRACING.replace("tunnels.jaeger]", 'tunnels."a b"]'), TRACING_MACHINE, ["'a b'"]),
    ],
)
def test_bad_profiles_are_config_errors_naming_where(
    tmp_path: Path, toml: str, machine: Any, needles: list[str]
) -> None:
    message = problems_of(write(tmp_path, BASE + toml, machine))
    for needle in needles:
        assert needle in message


def test_a_missing_profile_machine_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + TRACING)
    (tmp_path / ".fly" / "tracing.json").unlink()
    message = problems_of(path)
    line = BASE.count("\n") + TRACING.split("\n").index('machine = ".fly/tracing.json"') + 1
    assert f"previewctl.toml:{line} [profiles.tracing.machine]" in message


def test_the_base_may_not_use_a_profiles_secret_or_tunnel(tmp_path: Path) -> None:
    toml = BASE.replace("${secrets.pg_password}@", "${secrets.otel_token}@") + TRACING
    assert "otel_token" in problems_of(write(tmp_path, toml))


def test_profile_secrets_take_the_formats_of_secrets(tmp_path: Path) -> None:
    toml = BASE + TRACING + '\n[secrets.format.otel_token]\nkind = "uuid4"\n'
    config = load_config(write(tmp_path, toml))
    spec = build_spec(config, Target(3, "b"), {}, hostname=str, profiles=("tracing",))
    assert spec.secrets.formats["otel_token"].kind == "uuid4"
    orphan = BASE + '\n[secrets.format.nope]\nkind = "uuid4"\n'
    assert "(or to a profile's secrets)" in problems_of(write(tmp_path, orphan))


def test_selection_flags_then_env_then_labels_then_recorded(tmp_path: Path) -> None:
    defined = load_config(write(tmp_path, BASE + TRACING + "\n[profiles.nango]\n")).model.profiles
    pick = {"defined": defined}
    assert choose(**pick, env={}, flags=["nango", "tracing"], labels=None) == ("tracing", "nango")
    assert choose(**pick, env={"PREVIEWCTL_PROFILES": " nango "}, flags=[], labels=()) == ("nango",)
    assert choose(**pick, env={}, flags=[], labels=("preview:tracing", "bug")) == ("tracing",)
    assert choose(**pick, env={}, flags=[], labels=()) == ()
    assert choose(**pick, env={"PREVIEWCTL_PROFILES": ""}, flags=[], labels=None) is None
    with pytest.raises(InputError, match="unknown profile"):
        choose(**pick, env={"PREVIEWCTL_PROFILES": "tracing,nope"}, flags=[], labels=None)


def test_the_event_gives_the_prs_labels_only_for_its_own_pr(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    pull = {"number": 5, "head": {"ref": "b"}, "labels": [{"name": "x"}, {"id": 3}, "junk"]}
    event.write_text(json.dumps({"pull_request": pull}))
    env = {"GITHUB_EVENT_PATH": str(event)}
    own = resolve_target(None, None, env)
    assert own is not None
    assert own.labels == ("x",)
    other = resolve_target("6", "c", env)
    assert other is not None
    assert other.labels is None
