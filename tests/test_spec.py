"""PreviewSpec: computed once per command and target, immutable; Values come from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from previewctl.actions import GitHubActions
from previewctl.config import load_config
from previewctl.errors import ConfigError, InputError
from previewctl.ops.runtime import Runtime
from previewctl.reporter import Reporter
from previewctl.spec import PreviewSpec, apply_profiles, build_spec
from previewctl.target import Target

MACHINE = """{
  "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
  "containers": [{"name": "db", "image": "postgres:18",
                  "env": {"POSTGRES_PASSWORD": "${secrets.pg_password}", "APP": "${app.name}"}}]
}"""

TOML = """\
[app]
name = "pr-${pr}-svc"
org = "acme"

[secrets]
generate = ["pg_password"]

[tunnels.db]
remote_port = 5432
local_port = 15432

[[steps]]
name = "migrate"
run = "migrate --db postgresql://app:${secrets.pg_password}@${tunnels.db.host}:${tunnels.db.port}/app"
env = { DATABASE_URL = "postgresql://app:${secrets.pg_password}@${tunnels.db.host}:${tunnels.db.port}/app" }

[vercel.projects.web]
domain = "pr-${pr}-${env.ZONE}"
env = { API = "https://${app.hostname}" }
"""


def _runtime(tmp_path: Path, env: dict[str, str] | None = None) -> Runtime:
    (tmp_path / ".fly").mkdir()
    (tmp_path / ".fly" / "machine-config.json").write_text(MACHINE)
    (tmp_path / "previewctl.toml").write_text(TOML)
    return Runtime(
        env={"ZONE": "preview.example.com", **(env or {})},
        reporter=Reporter(actions=GitHubActions({})),
        config_path=tmp_path / "previewctl.toml",
    )


def _hostname(app: str) -> str:
    return f"{app}.example.net"


def test_the_spec_holds_what_the_preview_should_be(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    spec = build_spec(rt.config, Target(7, "feat"), rt.env, hostname=_hostname)
    assert (spec.pr, spec.branch, spec.app, spec.hostname) == (
        7,
        "feat",
        "pr-7-svc",
        "pr-7-svc.example.net",
    )
    assert spec.profiles == ()
    assert spec.secrets.names == ("pg_password",)
    assert list(spec.tunnels) == ["db"]
    assert [s.name for s in spec.steps] == ["migrate"]
    assert spec.domain_urls() == {"web": "https://pr-7-preview.example.com"}
    assert spec.root == tmp_path


def test_the_spec_and_its_values_cannot_be_changed(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    spec = rt.spec(Target(7, "feat"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.app = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.tunnels["new"] = spec.tunnels["db"]  # type: ignore[index]
    with pytest.raises(TypeError):
        spec.machine_template["guest"] = {}  # type: ignore[index]
    values = spec.values(secrets={"pg_password": "s3cretvalue-for-the-test"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        values.tunnels = {}  # type: ignore[misc]


def test_values_are_built_from_the_spec_and_a_later_moment_is_a_new_values(
    tmp_path: Path,
) -> None:
    rt = _runtime(tmp_path)
    spec = rt.spec(Target(7, "feat"))
    secret = "s3cretvalue-for-the-test"
    before = spec.values(secrets={"pg_password": secret}, vercel_urls=spec.domain_urls())
    after = dataclasses.replace(before, tunnels={"db": ("127.0.0.1", 15432)})
    assert before.tunnels == {}
    assert spec.steps_env(after) == {
        "DATABASE_URL": f"postgresql://app:{secret}@127.0.0.1:15432/app"
    }
    with pytest.raises(ConfigError, match=r"steps\[0\]\.env\.DATABASE_URL"):
        spec.steps_env(before)  # no tunnel open yet: its port has no value
    rendered = spec.render_machine(before)
    assert rendered["containers"][0]["env"] == {"POSTGRES_PASSWORD": secret, "APP": "pr-7-svc"}
    assert spec.machine_template["containers"][0]["env"]["APP"] == "${app.name}"


def test_the_runtime_computes_a_spec_once_per_target(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    first = rt.spec(Target(7, "feat"))
    assert rt.spec(Target(7, "feat")) is first
    other = rt.spec(Target(7, "other"))
    assert other is not first
    assert other.branch == "other"
    assert first.hostname == "pr-7-svc.fly.dev"


def test_profiles_are_an_overlay_no_profile_is_the_base(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    base = build_spec(rt.config, Target(7, "feat"), rt.env, hostname=_hostname)
    assert apply_profiles(base, ()) is base
    with pytest.raises(InputError, match="unknown profile"):
        build_spec(rt.config, Target(7, "feat"), rt.env, hostname=_hostname, profiles=("tracing",))
    assert isinstance(base, PreviewSpec)


def test_a_domain_that_renders_empty_is_bad_input(tmp_path: Path) -> None:
    rt = _runtime(tmp_path, {"ZONE": ""})
    assert rt.spec(Target(7, "feat")).domains() == {"web": "pr-7-"}
    (tmp_path / "previewctl.toml").write_text(TOML.replace("pr-${pr}-${env.ZONE}", "${env.ZONE}"))
    fresh = Runtime(
        env={"ZONE": ""},
        reporter=Reporter(actions=GitHubActions({})),
        config_path=tmp_path / "previewctl.toml",
    )
    with pytest.raises(ConfigError, match="the domain renders empty"):
        fresh.spec(Target(7, "feat")).domains()


def test_load_config_is_what_the_spec_is_built_from(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    config = load_config(tmp_path / "previewctl.toml")
    assert rt.spec(Target(3, None)).steps == tuple(config.model.steps)
