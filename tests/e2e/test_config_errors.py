"""Config errors as a person writes them, through the console script: no library
prefixes, "did you mean", and file:line everywhere (the machine config JSON too)."""

from __future__ import annotations

import json
import re

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import Cli
from tests.support.project import BASIC_TOML, Project

pytestmark = pytest.mark.e2e

TUNNEL = """
[tunnels.db]
remote_port = 5432
check = "postgres"
"""


def refused(cli: Cli, fly: FlyEmulator, *args: str) -> str:
    result = cli.run(*args)
    assert result.code == 2, result.output
    assert fly.requests == []
    assert "Traceback" not in result.stderr
    assert "Value error" not in result.stderr
    assert "Assertion failed" not in result.stderr
    return result.stderr


def line_number(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_unknown_key_gets_a_did_you_mean_and_its_line(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    toml = BASIC_TOML.replace('region = "iad"', 'region = "iad"\nregoin = "x"') + TUNNEL.replace(
        "remote_port", "remote_prot = 1\nremote_port"
    )
    project.config.write_text(toml)
    err = refused(cli, fly, "up", "--pr", "3")
    first = line_number(toml, "regoin")
    second = line_number(toml, "remote_prot")
    assert (
        f"previewctl.toml:{first} [app.regoin]: unknown key 'regoin' (did you mean 'region'?)"
        in (err)
    )
    assert (
        f"previewctl.toml:{second} [tunnels.db.remote_prot]: unknown key 'remote_prot' "
        "(did you mean 'remote_port'?)" in err
    )


def test_a_wrong_choice_gets_a_did_you_mean(cli: Cli, fly: FlyEmulator, project: Project) -> None:
    toml = BASIC_TOML + TUNNEL.replace('"postgres"', '"postgress"')
    project.config.write_text(toml)
    err = refused(cli, fly, "plan", "--pr", "3")
    line = line_number(toml, "postgress")
    assert f"previewctl.toml:{line} [tunnels.db.check]:" in err
    assert "(did you mean 'postgres'?)" in err


def test_value_errors_read_without_the_library_prefix(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    toml = BASIC_TOML.replace('name = "pr-${pr}-svc"', 'name = "fixed-svc"')
    project.config.write_text(toml)
    err = refused(cli, fly, "plan")
    assert re.search(
        r"previewctl\.toml:3 \[app\.name\]: the app name must contain \$\{pr\}", err
    ), err


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("${secrets.pg_pasword}", "${secrets.pg_password}"),
        ("${tunnel.db.port}", "${tunnels.db.port}"),
        ("${tunnels.bd.port}", "${tunnels.db.port}"),
        ("${tunnels.db.prot}", "${tunnels.db.port}"),
        ("${app.hostnme}", "${app.hostname}"),
    ],
)
def test_a_misspelt_placeholder_gets_a_did_you_mean(
    cli: Cli, fly: FlyEmulator, project: Project, written: str, meant: str
) -> None:
    toml = (
        BASIC_TOML
        + TUNNEL
        + f'\n[[steps]]\nname = "migrate"\nrun = "true"\nenv = {{ URL = "{written}" }}\n'
    )
    project.config.write_text(toml)
    err = refused(cli, fly, "plan", "--pr", "3")
    line = line_number(toml, written)
    assert f"previewctl.toml:{line} [steps[0].env.URL]" in err
    assert f"(did you mean {meant}?)" in err


def test_an_unknown_secret_in_the_machine_config_names_its_json_line(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    project.machine["containers"][1]["env"]["EXTRA"] = "${secrets.api_kye}"
    project.write(BASIC_TOML)
    text = (project.root / ".fly" / "machine-config.json").read_text()
    line = line_number(text, "${secrets.api_kye}")
    err = refused(cli, fly, "up", "--pr", "3")
    assert f"machine-config.json:{line} [containers[1].env.EXTRA]" in err
    assert "(did you mean ${secrets.api_key}?)" in err


def test_a_machine_config_shape_error_names_its_json_line(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    project.machine["guest"]["memory_mb"] = 1000
    project.write(BASIC_TOML)
    text = (project.root / ".fly" / "machine-config.json").read_text()
    line = line_number(text, '"memory_mb": 1000')
    err = refused(cli, fly, "plan")
    assert f"machine-config.json:{line} [guest.memory_mb]: memory_mb must be a multiple of 256" in (
        err
    )


def test_config_errors_under_json_carry_every_problem(
    cli: Cli, fly: FlyEmulator, project: Project
) -> None:
    toml = BASIC_TOML.replace('org = "acme"', "org = 5").replace('region = "iad"', "region = 7")
    project.config.write_text(toml)
    result = cli.run("plan", "--json")
    assert result.code == 2
    message = json.loads(result.stdout)["error"]["message"]
    assert "[app.org]" in message
    assert "[app.region]" in message
