"""GitHub Actions workflow commands, outputs and step summary."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from previewctl import redact
from previewctl.actions import GitHubActions


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    output = tmp_path / "output"
    summary = tmp_path / "summary"
    output.write_text("")
    summary.write_text("")
    return output, summary


def actions_env(files: tuple[Path, Path]) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(files[0]),
        "GITHUB_STEP_SUMMARY": str(files[1]),
    }


def test_disabled_outside_actions_writes_nothing(files: tuple[Path, Path]) -> None:
    env = actions_env(files)
    del env["GITHUB_ACTIONS"]
    stream = io.StringIO()
    gha = GitHubActions(env, stream)
    assert gha.enabled is False
    gha.add_mask("secret-value")
    gha.start_group("title")
    gha.end_group()
    gha.annotate("error", "boom", title="t")
    gha.set_outputs({"app": "pr-1-agents"})
    gha.append_summary("# hello")
    assert stream.getvalue() == ""
    assert files[0].read_text() == ""
    assert files[1].read_text() == ""


def test_only_the_exact_value_true_enables(files: tuple[Path, Path]) -> None:
    env = {**actions_env(files), "GITHUB_ACTIONS": "1"}
    assert GitHubActions(env, io.StringIO()).enabled is False


def test_add_mask_per_line_of_a_multiline_value(files: tuple[Path, Path]) -> None:
    stream = io.StringIO()
    gha = GitHubActions(actions_env(files), stream)
    gha.add_mask("line-one\nline-two\r\n\n   \nline%three")
    assert stream.getvalue().splitlines() == [
        "::add-mask::line-one",
        "::add-mask::line-two",
        "::add-mask::line%25three",
    ]


def test_add_mask_is_not_scrubbed(files: tuple[Path, Path]) -> None:
    redact.register("already-known")
    stream = io.StringIO()
    GitHubActions(actions_env(files), stream).add_mask("already-known")
    assert stream.getvalue() == "::add-mask::already-known\n"


def test_annotation_escapes_data_and_properties(files: tuple[Path, Path]) -> None:
    stream = io.StringIO()
    gha = GitHubActions(actions_env(files), stream)
    gha.annotate("warning", "100% done\r\nnext: a,b", title="a: b, c%\nd")
    assert stream.getvalue() == ("::warning title=a%3A b%2C c%25%0Ad::100%25 done%0D%0Anext: a,b\n")


def test_annotation_without_title_and_scrubbed(files: tuple[Path, Path]) -> None:
    redact.register("tok-123456")
    stream = io.StringIO()
    gha = GitHubActions(actions_env(files), stream)
    gha.annotate("error", "bad token tok-123456", title="tok-123456")
    gha.annotate("notice", "fine")
    assert stream.getvalue() == "::error title=***::bad token ***\n::notice::fine\n"


def test_groups(files: tuple[Path, Path]) -> None:
    redact.register("pw-abcdef")
    stream = io.StringIO()
    gha = GitHubActions(actions_env(files), stream)
    gha.start_group("step migrate 50% pw-abcdef")
    gha.end_group()
    assert stream.getvalue() == "::group::step migrate 50%25 ***\n::endgroup::\n"


def test_set_outputs_single_line(files: tuple[Path, Path]) -> None:
    gha = GitHubActions(actions_env(files), io.StringIO())
    gha.set_outputs({"app": "pr-12-agents", "pr": "12"})
    gha.set_outputs({"branch": "feature/x"})
    assert files[0].read_text() == "app=pr-12-agents\npr=12\nbranch=feature/x\n"


def test_set_outputs_multiline_uses_a_heredoc(files: tuple[Path, Path]) -> None:
    gha = GitHubActions(actions_env(files), io.StringIO())
    value = "first\nsecond"
    gha.set_outputs({"notes": value})
    text = files[0].read_text()
    match = re.fullmatch(r"notes<<(\S+)\n(.*)\n\1\n", text, flags=re.DOTALL)
    assert match is not None, text
    delimiter = match.group(1)
    assert match.group(2) == value
    assert delimiter not in value


def test_set_outputs_delimiter_never_inside_the_value(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first candidate delimiter occurs in the value: another one must be chosen.
    tokens = iter(["aaaa", "bbbb"])
    monkeypatch.setattr("previewctl.actions.secrets.token_hex", lambda _n: next(tokens))
    value = "x\nghadelimiter_aaaa\ny"
    GitHubActions(actions_env(files), io.StringIO()).set_outputs({"v": value})
    assert files[0].read_text() == f"v<<ghadelimiter_bbbb\n{value}\nghadelimiter_bbbb\n"


def test_outputs_and_summary_are_scrubbed(files: tuple[Path, Path]) -> None:
    redact.register("pw-secret-1")
    gha = GitHubActions(actions_env(files), io.StringIO())
    gha.set_outputs({"url": "postgres://u:pw-secret-1@h", "multi": "a\npw-secret-1"})
    gha.append_summary("## Preview\n\npassword pw-secret-1\n\n\n")
    out = files[0].read_text()
    assert "pw-secret-1" not in out
    assert out.startswith("url=postgres://u:***@h\nmulti<<")
    assert "\na\n***\n" in out
    assert files[1].read_text() == "## Preview\n\npassword ***\n"


def test_summary_appends(files: tuple[Path, Path]) -> None:
    gha = GitHubActions(actions_env(files), io.StringIO())
    gha.append_summary("one")
    gha.append_summary("two\n")
    assert files[1].read_text() == "one\ntwo\n"


def test_enabled_without_files_writes_no_files(tmp_path: Path) -> None:
    gha = GitHubActions({"GITHUB_ACTIONS": "true"}, io.StringIO())
    gha.set_outputs({"a": "b"})
    gha.append_summary("x")
    assert list(tmp_path.iterdir()) == []
