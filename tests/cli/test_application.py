"""The CLI's state is one Application object per run, handed to click as ``ctx.obj``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from previewctl.cli.application import Application
from previewctl.cli.main import app

MACHINE = '{"image": "postgres:18"}'
TOML = '[app]\nname = "pr-${pr}-svc"\norg = "acme"\n[machine]\nconfig = "machine.json"\n'


def _project(tmp_path: Path) -> Path:
    (tmp_path / "machine.json").write_text(MACHINE)
    path = tmp_path / "previewctl.toml"
    path.write_text(TOML)
    return path


def test_options_before_and_after_the_command_land_on_the_run_s_application(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project(tmp_path)
    first = Application()
    app(["plan", "--pr", "4", "--json", "-c", str(config)], standalone_mode=False, obj=first)
    assert (first.json, first.config) == (True, config)
    assert json.loads(capsys.readouterr().out)["app"]["name"] == "pr-4-svc"

    second = Application()
    app(["--config", str(config), "plan", "--pr", "5"], standalone_mode=False, obj=second)
    assert (second.json, second.config) == (False, config)
    out = capsys.readouterr().out
    assert out.startswith("Plan for PR 5")  # text: nothing of the first run's --json is left
    assert first.json  # and the first run's object is its own
