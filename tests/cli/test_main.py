"""The one place errors become messages and exit codes."""

from __future__ import annotations

import importlib

import pytest

from previewctl import redact
from previewctl.errors import ApiError, ConfigError

# the package re-exports main(), which shadows the module name: import it by path
cli_main = importlib.import_module("previewctl.cli.main")


def run_main(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr("sys.argv", ["previewctl", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main()
    code = exit_info.value.code
    return int(code) if isinstance(code, int) else 0


def boom_with(exc: BaseException):  # type: ignore[no-untyped-def]
    def build_plan(*_args: object, **_kwargs: object) -> None:
        raise exc

    return build_plan


def test_unexpected_error_is_scrubbed_and_has_no_locals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cr3t-" + "x" * 20
    redact.register(secret)
    monkeypatch.setattr(
        "previewctl.ops.plan.build_plan", boom_with(RuntimeError(f"db url has {secret} in it"))
    )
    code = run_main(monkeypatch, ["plan"])
    err = capsys.readouterr().err
    assert code == 1
    assert "unexpected error (a bug in previewctl)" in err
    assert secret not in err
    assert "***" in err


def test_verbose_traceback_is_scrubbed_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "t0ken-" + "y" * 20
    redact.register(secret)
    monkeypatch.setattr(
        "previewctl.ops.plan.build_plan", boom_with(ValueError(f"bad value {secret}"))
    )
    code = run_main(monkeypatch, ["-v", "plan"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" in err
    assert secret not in err


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConfigError("unknown key 'x'", file="previewctl.toml", key="app.x", line=3), 2),
        (ApiError("Fly", "boom", status=500, request_id="req-1"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_exit_codes(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    code: int,
) -> None:
    monkeypatch.setattr("previewctl.ops.plan.build_plan", boom_with(exc))
    assert run_main(monkeypatch, ["plan"]) == code
    err = capsys.readouterr().err
    if code == 2:
        assert "previewctl.toml:3 [app.x]: unknown key 'x'" in err
    if code == 1:
        assert "req-1" in err
    if code == 130:
        assert "interrupted" in err


def test_errors_become_annotations_in_actions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setattr(
        "previewctl.ops.plan.build_plan", boom_with(ApiError("Fly", "line one\nline two"))
    )
    assert run_main(monkeypatch, ["plan"]) == 1
    err = capsys.readouterr().err
    assert "::error title=API error::Fly: line one%0Aline two" in err
