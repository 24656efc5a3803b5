"""The one place errors become messages and exit codes."""

from __future__ import annotations

import importlib
import signal
import sys
import threading

import pytest

from previewctl import redact
from previewctl.errors import ApiError, ConfigError

# the package re-exports main(), which shadows the module name: import it by path
cli_main = importlib.import_module("previewctl.cli.main")


def run_main(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr("sys.argv", ["previewctl", *argv])
    # main() installs process-wide hooks and handlers: pytest gets its own back after
    monkeypatch.setattr("sys.excepthook", sys.excepthook)
    monkeypatch.setattr("threading.excepthook", threading.excepthook)
    handlers = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli_main.main()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
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


def test_unexpected_error_hides_secrets_no_one_registered_and_every_local(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unexpected error that quotes an API answer: the env, metadata and URL password
    in it are masked although no value was registered, and the frames' local variables
    are never shown, not even with -v."""
    unknown, local_only = "n0t-registered-" + "z" * 12, "l0cal-only-" + "w" * 12
    answer = {
        "id": "m1",
        "config": {"env": {"GREETING": unknown}, "metadata": {"k": unknown}},
        "url": f"postgresql://app:{unknown}@db/x",
    }

    def build_plan(*_args: object, **_kwargs: object) -> None:
        held = local_only  # a local that a traceback with locals would print
        raise RuntimeError(f"cannot use the answer {answer!r} ({len(held)})")

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setattr("previewctl.ops.plan.build_plan", build_plan)
    for argv in (["plan"], ["-v", "plan"]):
        assert run_main(monkeypatch, argv) == 1
        err = capsys.readouterr().err
        assert "unexpected error (a bug in previewctl)" in err
        assert "::error title=unexpected error" in err
        assert "'GREETING': '***'" in err
        assert unknown not in err
        assert local_only not in err
    assert "Traceback" in err  # the -v run


def test_an_api_answer_that_does_not_parse_is_not_quoted() -> None:
    """pydantic quotes the input of a failed validation (cut in the middle, so a part
    of a value would survive any redaction): the API models never do."""
    from pydantic import ValidationError

    from previewctl.backends.fly.models import Machine

    unknown = "n0t-registered-" + "q" * 40
    with pytest.raises(ValidationError) as info:
        Machine.model_validate({"config": {"env": {"A": unknown}}})  # no id
    assert "id" in str(info.value)
    assert "qqqq" not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "code", "title"),
    [
        (RuntimeError("boom"), 1, "unexpected error"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (
            ConfigError("unknown key 'x'", file="previewctl.toml", line=3),
            2,
            "invalid configuration",
        ),
    ],
)
def test_every_failure_under_json_is_one_error_object_on_stdout(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    code: int,
    title: str,
) -> None:
    import json

    monkeypatch.setattr("previewctl.ops.plan.build_plan", boom_with(exc))
    assert run_main(monkeypatch, ["plan", "--json"]) == code
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data == {
        "error": {
            "title": title,
            "message": data["error"]["message"],
            "hint": data["error"]["hint"],
            "exit_code": code,
        }
    }
    assert data["error"]["message"]
