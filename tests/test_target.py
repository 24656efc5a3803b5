"""Which PR and branch: flags, then env, then the pull_request event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from previewctl.errors import InputError
from previewctl.target import Target, parse_pr, resolve_target

REPO = "acme/agents"


def event_file(
    tmp_path: Path,
    *,
    number: Any = 42,
    ref: str | None = "feature/event",
    head_repo: Any = REPO,
    raw: str | None = None,
) -> str:
    path = tmp_path / "event.json"
    if raw is not None:
        path.write_text(raw)
        return str(path)
    repo: Any = {"full_name": head_repo} if isinstance(head_repo, str) else head_repo
    pr: dict[str, Any] = {"number": number, "head": {"ref": ref, "repo": repo}}
    path.write_text(json.dumps({"action": "opened", "number": number, "pull_request": pr}))
    return str(path)


def resolve(pr: str | None, branch: str | None, env: dict[str, str]) -> Target:
    target = resolve_target(pr, branch, env)
    assert target is not None
    return target


# ---- precedence -------------------------------------------------------------------------
def test_flags_win_over_env_and_event(tmp_path: Path) -> None:
    env = {
        "PREVIEWCTL_PR": "7",
        "PREVIEWCTL_BRANCH": "from-env",
        "GITHUB_EVENT_PATH": event_file(tmp_path),
        "GITHUB_REPOSITORY": REPO,
    }
    target = resolve("3", "from-flag", env)
    assert (target.pr, target.branch, target.from_event) == (3, "from-flag", False)


def test_env_wins_over_event(tmp_path: Path) -> None:
    env = {
        "PREVIEWCTL_PR": "7",
        "PREVIEWCTL_BRANCH": "from-env",
        "GITHUB_EVENT_PATH": event_file(tmp_path),
    }
    target = resolve(None, None, env)
    assert (target.pr, target.branch, target.from_event) == (7, "from-env", False)


def test_event_fills_what_flags_and_env_leave_out(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_PATH": event_file(tmp_path), "GITHUB_REPOSITORY": REPO}
    target = resolve(None, None, env)
    assert target == Target(
        pr=42, branch="feature/event", head_repo=REPO, repo=REPO, from_event=True
    )
    assert target.is_fork is False
    # the event speaks only for its own PR: another PR given by flag gets nothing from it
    other = resolve("5", None, env)
    assert (other.pr, other.branch, other.from_event) == (5, None, False)
    # the same PR given by flag is still completed by its event
    same = resolve("42", None, env)
    assert (same.pr, same.branch, same.from_event) == (42, "feature/event", True)


def test_empty_env_values_count_as_unset(tmp_path: Path) -> None:
    env = {
        "PREVIEWCTL_PR": "",
        "PREVIEWCTL_BRANCH": "",
        "GITHUB_EVENT_PATH": event_file(tmp_path),
    }
    target = resolve(None, None, env)
    assert (target.pr, target.branch) == (42, "feature/event")


def test_event_not_read_when_flags_give_everything(tmp_path: Path) -> None:
    missing = str(tmp_path / "does-not-exist.json")
    target = resolve("9", "b", {"GITHUB_EVENT_PATH": missing})
    assert (target.pr, target.branch) == (9, "b")


def test_branch_is_optional() -> None:
    assert resolve("4", None, {}).branch is None


# ---- PR numbers -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["0", "-1", "abc", "1.5", "", " ", "+3", "1e3", "²", "1234567890"]
)
def test_invalid_pr_numbers(value: str) -> None:
    with pytest.raises(InputError, match="PR number must be a positive integer") as info:
        resolve_target(value, None, {})
    assert info.value.exit_code == 2


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5"])
def test_invalid_pr_from_env(value: str) -> None:
    with pytest.raises(InputError, match="PR number"):
        resolve_target(None, None, {"PREVIEWCTL_PR": value})


def test_parse_pr_accepts_padding_and_ints() -> None:
    assert parse_pr(" 12 ") == 12
    assert parse_pr(12) == 12


def test_invalid_pr_number_in_event(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="PR number"):
        resolve_target(None, None, {"GITHUB_EVENT_PATH": event_file(tmp_path, number=0)})


def test_invalid_branch_is_rejected() -> None:
    for branch in ("has space", "-rf", "a:b", "a~1"):
        with pytest.raises(InputError, match="invalid branch name"):
            resolve_target("1", branch, {})


# ---- forks ------------------------------------------------------------------------------
def test_fork_detected_from_the_event(tmp_path: Path) -> None:
    env = {
        "GITHUB_EVENT_PATH": event_file(tmp_path, head_repo="someone/agents"),
        "GITHUB_REPOSITORY": REPO,
    }
    target = resolve(None, None, env)
    assert target.head_repo == "someone/agents"
    assert target.is_fork is True


def test_deleted_fork_counts_as_fork(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_PATH": event_file(tmp_path, head_repo=None), "GITHUB_REPOSITORY": REPO}
    target = resolve(None, None, env)
    assert target.head_repo is None
    assert target.is_fork is True


def test_fork_judged_only_for_the_events_own_pr(tmp_path: Path) -> None:
    env = {
        "GITHUB_EVENT_PATH": event_file(tmp_path, head_repo="someone/agents"),
        "GITHUB_REPOSITORY": REPO,
    }
    # naming the event's own PR explicitly does not bypass the fork check
    assert resolve("42", None, env).is_fork is True
    assert resolve(None, None, {**env, "PREVIEWCTL_PR": "42"}).is_fork is True
    # another PR than the event's is not judged by that event
    assert resolve("43", None, env).is_fork is False


def test_no_fork_without_github_repository(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_PATH": event_file(tmp_path, head_repo="someone/agents")}
    assert resolve(None, None, env).is_fork is False


# ---- event file problems and need_pr ----------------------------------------------------
def test_unreadable_event_file(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_PATH": str(tmp_path / "missing.json")}
    with pytest.raises(InputError, match="cannot read the GitHub event") as info:
        resolve_target(None, None, env)
    assert info.value.exit_code == 2


def test_event_file_not_json(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_PATH": event_file(tmp_path, raw="{not json")}
    with pytest.raises(InputError, match="cannot read the GitHub event"):
        resolve_target(None, None, env)


def test_event_without_pull_request_needs_a_pr(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_PATH": event_file(tmp_path, raw='{"schedule": "0 3 * * *"}')}
    with pytest.raises(InputError, match="no PR number"):
        resolve_target(None, None, env)
    assert resolve_target(None, None, env, need_pr=False) is None


def test_need_pr_false_returns_none_without_any_source() -> None:
    assert resolve_target(None, None, {}, need_pr=False) is None
    assert resolve_target(None, "some-branch", {}, need_pr=False) is None


def test_need_pr_false_still_resolves_a_given_pr() -> None:
    target = resolve_target("8", None, {}, need_pr=False)
    assert target is not None
    assert target.pr == 8


def test_no_pr_anywhere_is_input_error() -> None:
    with pytest.raises(InputError, match="pass --pr N, set PREVIEWCTL_PR"):
        resolve_target(None, None, {})


# ---- branch names: git check-ref-format ---------------------------------------------------
@pytest.mark.parametrize(
    ("branch", "reason"),
    [
        ("a..b", "'..'"),
        ("a/", "ends with '/'"),
        ("/a", "starts or ends with '/'"),
        ("a//b", "'//'"),
        ("x.lock", "'.lock'"),
        ("a/b.lock/c", "'.lock'"),
        ("a@{b", "'@{'"),
        ("@", "'@'"),
        ("HEAD", "HEAD"),
        (".hidden", "starts with '.'"),
        ("a/.b", "starts with '.'"),
        ("a.", "ends with '.'"),
        ("feat\n", "'\\n'"),
        ("tab\there", "'\\t'"),
        ("del\x7f", "'\\x7f'"),
        ("a\\b", "'\\\\'"),
    ],
)
def test_branch_names_follow_git_check_ref_format(branch: str, reason: str) -> None:
    with pytest.raises(InputError, match="invalid branch name") as info:
        resolve_target("1", branch, {})
    assert reason in info.value.message


@pytest.mark.parametrize(
    "branch", ["feat/login", "ok.lock2", "a@b", "dependabot/npm_and_yarn/x-1.2.3", "é"]
)
def test_valid_branch_names_pass(branch: str) -> None:
    assert resolve("1", branch, {}).branch == branch


# ---- the branch belongs to the PR: the event ------------------------------------------------
def test_branch_flag_contradicting_the_events_own_pr_is_refused(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_PATH": event_file(tmp_path, ref="feat/42")}
    with pytest.raises(InputError, match="not the head branch of PR #42") as info:
        resolve_target("42", "feat/8", env)
    assert "'feat/42'" in info.value.message
    with pytest.raises(InputError, match="not the head branch"):
        resolve_target(None, None, {**env, "PREVIEWCTL_BRANCH": "feat/8"})


def test_branch_matching_the_event_is_confirmed(tmp_path: Path) -> None:
    env = {"GITHUB_EVENT_PATH": event_file(tmp_path, ref="feat/42")}
    assert resolve(None, None, env).branch_confirmed is True
    assert resolve("42", "feat/42", env).branch_confirmed is True
    # another PR: the event does not speak for it, so nothing is confirmed
    other = resolve("7", "feat/7", env)
    assert (other.branch_confirmed, other.event_branch) == (False, None)


@pytest.mark.parametrize("head", ["feat", 3, ["feat"], True])
def test_event_head_that_is_not_an_object_is_bad_input(tmp_path: Path, head: Any) -> None:
    raw = json.dumps({"number": 42, "pull_request": {"number": 42, "head": head}})
    env = {"GITHUB_EVENT_PATH": event_file(tmp_path, raw=raw)}
    with pytest.raises(InputError, match=r"pull_request\.head is not an object"):
        resolve_target(None, None, env)


def test_event_head_ref_that_is_not_a_string_is_bad_input(tmp_path: Path) -> None:
    raw = json.dumps({"number": 42, "pull_request": {"number": 42, "head": {"ref": {"x": 1}}}})
    with pytest.raises(InputError, match=r"head\.ref is not a string"):
        resolve_target(None, None, {"GITHUB_EVENT_PATH": event_file(tmp_path, raw=raw)})


def test_every_target_problem_is_reported_at_once() -> None:
    with pytest.raises(InputError) as info:
        resolve_target("abc", "a..b", {})
    assert "PR number must be a positive integer" in info.value.message
    assert "invalid branch name 'a..b'" in info.value.message
    assert info.value.message.startswith("2 problems")
