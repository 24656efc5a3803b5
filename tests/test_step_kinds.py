"""Step kinds: one tagged union, and everything that reads a step asks the kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from previewctl.config import load_config
from previewctl.errors import ConfigError, StepFailedError
from previewctl.step_kinds import (
    HttpStepConfig,
    PreparedCommand,
    PreparedRequest,
    RunStepConfig,
    StepConfig,
    kind_of,
    plan_lines,
)

STEP: TypeAdapter[RunStepConfig | HttpStepConfig] = TypeAdapter(StepConfig)


def _render(text: str, _key: str) -> str:
    return text.replace("${pr}", "7")


def test_the_key_of_the_step_picks_its_kind() -> None:
    run = STEP.validate_python({"name": "m", "run": ["echo", "${pr}"], "creates": ["out"]})
    http = STEP.validate_python({"name": "h", "http": {"url": "https://x/${pr}"}})
    assert isinstance(run, RunStepConfig)
    assert isinstance(http, HttpStepConfig)
    assert (kind_of(run), kind_of(http)) == ("run", "http")
    assert kind_of({"run": "x"}) == "run"
    assert kind_of({"run": "x", "http": {}}) is None
    assert kind_of({"name": "neither"}) is None


@pytest.mark.parametrize(
    "data", [{"name": "a"}, {"name": "a", "run": "x", "http": {"url": "u"}}, "run"]
)
def test_no_kind_or_two_kinds_is_one_clear_error(data: object) -> None:
    with pytest.raises(ValidationError) as caught:
        STEP.validate_python(data)
    (error,) = caught.value.errors()
    assert error["loc"] == ()
    assert error["msg"] == "a step needs exactly one of `run` or `http`"


def test_each_kind_lists_its_templated_strings_in_file_order() -> None:
    run = STEP.validate_python(
        {"name": "m", "run": ["a", "b"], "env": {"X": "1"}, "creates": ["f"]}
    )
    assert [(t.key, t.path) for t in run.templated()] == [
        ("run[0]", False),
        ("run[1]", False),
        ("env.X", False),
        ("creates[0]", True),
    ]
    http = STEP.validate_python(
        {
            "name": "h",
            "env": {"Y": "2"},
            "http": {"url": "u", "headers": {"A": "b"}, "body_file": "p.json"},
        }
    )
    assert [(t.key, t.path) for t in http.templated()] == [
        ("env.Y", False),
        ("http.url", False),
        ("http.headers.A", False),
        ("http.body_file", True),
    ]


def test_files_a_step_writes_and_reads() -> None:
    run = STEP.validate_python({"name": "m", "run": "gen", "creates": ["out/${pr}.json"]})
    http = STEP.validate_python({"name": "h", "http": {"url": "u", "body_file": "out/${pr}.json"}})
    assert run.files_created(_render) == ["out/7.json"]
    assert run.files_needed(_render) == []
    assert http.files_created(_render) == []
    (needed,) = http.files_needed(_render)
    assert (needed.key, needed.what, needed.path) == ("http.body_file", "body_file", "out/7.json")


def test_build_fills_placeholders_and_plan_shows_them(tmp_path: Path) -> None:
    run = STEP.validate_python({"name": "m", "run": "echo pr-${pr}", "creates": ["made"]})
    prepared = run.build(_render, tmp_path)
    assert isinstance(prepared, PreparedCommand)
    assert prepared.command.argv == ["echo", "pr-7"]
    assert prepared.creates == (("made", (tmp_path / "made").resolve()),)
    planned = run.describe(_render)
    assert planned["run"] == ["echo", "pr-7"]
    assert plan_lines(planned) == ["  m: echo pr-7", "      creates: made"]

    (tmp_path / "body.json").write_text('{"pr": 1}')
    http = STEP.validate_python(
        {"name": "h", "http": {"method": "put", "url": "https://x/${pr}", "body_file": "body.json"}}
    )
    request = http.build(_render, tmp_path)
    assert isinstance(request, PreparedRequest)
    assert (request.request.method, request.request.url) == ("PUT", "https://x/7")
    assert request.request.body == b'{"pr": 1}'
    assert plan_lines(http.describe(_render)) == ["  h: PUT https://x/7"]


def test_an_unreadable_body_file_at_run_time_is_a_step_failure(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()  # an earlier step left a directory where a file was due
    http = STEP.validate_python({"name": "h", "http": {"url": "u", "body_file": "dir.json"}})
    with pytest.raises(StepFailedError, match="cannot read body_file"):
        http.build(_render, tmp_path)


def test_a_config_error_inside_a_kind_names_the_key_as_written(tmp_path: Path) -> None:
    """pydantic puts the kind's tag in the error's location; the key a person reads has
    none (``seed[0].http.method``, not ``seed[0].http.http.method``)."""
    (tmp_path / "machine.json").write_text('{"image": "postgres:18"}')
    (tmp_path / "previewctl.toml").write_text(
        '[app]\nname = "pr-${pr}"\norg = "acme"\n[machine]\nconfig = "machine.json"\n'
        '[[seed]]\nname = "s"\nhttp = { method = "FETCH", url = "https://x" }\n'
        '[[steps]]\nname = "m"\nrun = "x"\ntimeout = "soon"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "previewctl.toml")
    text = str(caught.value)
    assert "[seed[0].http.method]" in text
    assert "previewctl.toml:8 [seed[0].http.method]" in text
    assert "previewctl.toml:12 [steps[0].timeout]" in text
    assert ".run." not in text
    assert ".http.http" not in text
