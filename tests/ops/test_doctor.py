"""`previewctl doctor` against the fakes: every check, every problem at once, read-only."""

from __future__ import annotations

import json
import secrets as pysecrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.loopback import LoopbackApi
from tests.fakes.vercel_api import VercelFake
from tests.support.cli import Cli, CliResult
from tests.support.project import BASIC_TOML, Project

TEAM = "team_doctor"
SETUP_TOML = f"""
[tunnels.db]
remote_port = 5432
check = "postgres"

[vercel]
team_id = "{TEAM}"

[vercel.projects.api]
domain = "pr-${{pr}}-api.preview.example.com"
env = {{ DATABASE_URL = "postgresql://app:${{secrets.pg_password}}@${{app.hostname}}:5432/db" }}

[vercel.projects.web]
env = {{ API_URL = "${{vercel.api.url}}" }}
"""


@dataclass
class Doctor:
    fly: FlyEmulator
    vercel: VercelFake
    github: GitHubFake
    cli: Cli
    project: Project
    tokens: list[str]

    def run(self, env: dict[str, str] | None = None) -> tuple[CliResult, dict[str, Any]]:
        result = self.cli.run("--json", "doctor", env=env)
        return result, json.loads(result.stdout)

    def fakes(self) -> list[LoopbackApi]:
        return [self.fly, self.vercel, self.github]


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in data["checks"]}


def assert_read_only(doctor: Doctor) -> None:
    """Not one mutating request reached any fake (and some requests did)."""
    for fake in doctor.fakes():
        assert fake.calls(), f"{fake.name}: doctor asked nothing"
        assert {r.method for r in fake.calls()} == {"GET"}, fake.name
    assert doctor.fly.mutating_calls() == []


@pytest.fixture
def doctor(
    project: Project, fly: FlyEmulator, fly_token: str, flyctl_path: Path, cli: Cli
) -> Iterator[Doctor]:
    vercel_token, gh_token = pysecrets.token_hex(16), pysecrets.token_hex(16)
    with (
        VercelFake(token=vercel_token, team_id=TEAM) as vercel,
        GitHubFake(token=gh_token, repo="acme/agents") as github,
    ):
        for name in ("api", "web"):
            vercel.add_project(name, production_branch="main")
        vercel.team_domains["example.com"] = True
        project.write(BASIC_TOML + SETUP_TOML)
        cli.env.update(
            {
                "VERCEL_TOKEN": vercel_token,
                "VERCEL_API_URL": vercel.url,
                "GITHUB_TOKEN": gh_token,
                "GITHUB_API_URL": github.url,
                "GITHUB_REPOSITORY": "acme/agents",
                "PREVIEWCTL_FLYCTL": str(flyctl_path),
            }
        )
        yield Doctor(fly, vercel, github, cli, project, [fly_token, vercel_token, gh_token])


def test_doctor_passes_a_good_set_up_with_read_only_calls(doctor: Doctor) -> None:
    result, data = doctor.run()
    assert result.code == 0, result.output
    assert data["ok"] is True
    checks = by_name(data)
    assert set(checks) == {
        "config",
        "fly token",
        "fly org",
        "flyctl",
        "vercel project api",
        "vercel project web",
        "vercel domain api",
        "github",
    }
    assert {c["status"] for c in checks.values()} == {"pass"}, checks
    assert "0.3.999" in checks["flyctl"]["detail"]  # the stand-in's `flyctl version`
    assert "production branch main" in checks["vercel project api"]["detail"]
    assert "example.com" in checks["vercel domain api"]["detail"]
    assert doctor.fly.calls("GET", r"^/v1/apps$")[0].query["org_slug"] == ["acme"]
    assert_read_only(doctor)
    text = doctor.cli.run("doctor")
    assert text.code == 0
    assert "all good" in text.stdout
    for token in doctor.tokens:
        assert token not in doctor.cli.all_output()


def test_doctor_names_a_wrong_org_a_missing_project_and_a_missing_flyctl_in_one_run(
    doctor: Doctor,
) -> None:
    doctor.project.write(
        doctor.project.config.read_text().replace('org = "acme"', 'org = "acme-typo"')
    )
    del doctor.vercel.projects["web"]
    result, data = doctor.run(env={"PREVIEWCTL_FLYCTL": "", "PATH": "/nonexistent"})
    assert result.code == 1, result.output
    assert data["ok"] is False
    checks = by_name(data)
    failed = {name for name, c in checks.items() if c["status"] == "fail"}
    assert failed == {"fly org", "vercel project web", "flyctl"}
    assert "acme-typo" in checks["fly org"]["detail"]
    assert "flyctl tokens create org acme-typo" in checks["fly org"]["hint"]
    assert "'web' not found on team team_doctor" in checks["vercel project web"]["detail"]
    assert "flyctl was not found" in checks["flyctl"]["detail"]
    for name in failed:
        assert checks[name]["hint"], name
    assert checks["vercel project api"]["status"] == "pass"  # the good pieces still pass
    assert_read_only(doctor)

    text = doctor.cli.run("doctor", env={"PREVIEWCTL_FLYCTL": "", "PATH": "/nonexistent"})
    assert text.code == 1
    assert "3 problem(s)" in text.stdout
    assert text.stdout.count("hint:") >= 3


def test_doctor_finds_a_domain_whose_parent_is_not_on_the_team(doctor: Doctor) -> None:
    doctor.vercel.team_domains.clear()
    doctor.vercel.team_domains["other.dev"] = True
    result, data = doctor.run()
    assert result.code == 1
    check = by_name(data)["vercel domain api"]
    assert check["status"] == "fail"
    assert "pr-1-api.preview.example.com" in check["detail"]
    assert "preview.example.com, example.com" in check["detail"]
    asked = [r.path for r in doctor.vercel.calls("GET", r"^/v5/domains/")]
    assert asked == ["/v5/domains/preview.example.com", "/v5/domains/example.com"]
    assert {r.query["teamId"][0] for r in doctor.vercel.calls("GET", r"^/v5/domains/")} == {TEAM}


def test_doctor_warns_on_an_unverified_domain(doctor: Doctor) -> None:
    doctor.vercel.team_domains["example.com"] = False
    result, data = doctor.run()
    assert result.code == 0  # a warning is not a failure
    assert by_name(data)["vercel domain api"]["status"] == "warn"


def test_doctor_reports_missing_tokens_and_a_rejected_fly_token(doctor: Doctor) -> None:
    result, data = doctor.run(env={"VERCEL_TOKEN": "", "FLY_API_TOKEN": "fm2_not-the-token"})
    assert result.code == 1
    checks = by_name(data)
    assert checks["fly token"]["status"] == "pass"  # present...
    assert checks["fly org"]["status"] == "fail"  # ...but rejected
    assert "rejected" in checks["fly org"]["detail"]
    assert checks["vercel token"]["status"] == "fail"
    assert doctor.vercel.calls() == []
    assert "fm2_not-the-token" not in result.output


@pytest.mark.parametrize(
    ("permissions", "repo", "status", "needle"),
    [
        (None, "acme/agents", "pass", "pull-requests: write"),  # an installation token
        ({"pull": True, "push": True}, "acme/agents", "pass", "can write"),
        ({"pull": True, "push": False}, "acme/agents", "fail", "not write"),
        (None, "acme/elsewhere", "fail", "not visible"),
    ],
)
def test_doctor_checks_the_github_token(
    doctor: Doctor, permissions: dict[str, bool] | None, repo: str, status: str, needle: str
) -> None:
    doctor.github.token_permissions = permissions
    result, data = doctor.run(env={"GITHUB_REPOSITORY": repo})
    check = by_name(data)["github"]
    assert check["status"] == status, check
    assert needle in check["detail"]
    assert result.code == (0 if status == "pass" else 1)
    assert {r.method for r in doctor.github.calls()} == {"GET"}


def test_doctor_reports_a_broken_config_and_still_checks_the_rest(
    doctor: Doctor, tmp_path: Path
) -> None:
    doctor.project.config.write_text('[app]\nname = "no-pr-here"\norg = "acme"\n')
    result, data = doctor.run()
    assert result.code == 1
    checks = by_name(data)
    assert checks["config"]["status"] == "fail"
    assert "${pr}" in checks["config"]["detail"]
    assert checks["fly token"]["status"] == "pass"
    assert checks["fly org"]["status"] == "skip"
    assert checks["flyctl"]["status"] == "pass"
    assert checks["github"]["status"] == "pass"


def test_doctor_bad_command_line_is_exit_2(doctor: Doctor) -> None:
    result = doctor.cli.run("doctor", "--bogus")
    assert result.code == 2
    for fake in doctor.fakes():
        assert fake.calls() == []


def test_doctor_never_hands_flyctl_the_machines_url_as_its_graphql_base(
    doctor: Doctor, tmp_path: Path
) -> None:
    """flyctl reads FLY_API_BASE_URL as its GraphQL base; `flyctl version` gets the flaps name."""
    log = tmp_path / "flyctl.jsonl"
    result, data = doctor.run(env={"FAKE_FLYCTL_LOG": str(log)})
    assert result.code == 0, result.output
    assert by_name(data)["flyctl"]["status"] == "pass"
    [start] = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "start"]
    assert start["argv"] == ["flyctl", "version"]
    assert start["base_urls"] == {"FLY_FLAPS_BASE_URL": doctor.fly.url}
