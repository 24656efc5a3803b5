"""Which PR and branch a command is about: flags, then env, then the Actions event."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from previewctl.errors import InputError, Problems

# git check-ref-format: no control characters, space, ~ ^ : ? * [ or backslash
_REF_FORBIDDEN = frozenset(" ~^:?*[\\\x7f") | {chr(c) for c in range(32)}


@dataclass(frozen=True)
class Target:
    pr: int
    branch: str | None
    head_repo: str | None = None
    repo: str | None = None
    from_event: bool = False
    event_branch: str | None = field(default=None, compare=False)
    """The PR's head branch as its own ``pull_request`` event says (None: no event for it)."""
    profiles: tuple[str, ...] | None = None
    """The active profiles (None: not chosen by this run, so the preview's recorded set)."""
    labels: tuple[str, ...] | None = field(default=None, compare=False)
    """The PR's labels as its own ``pull_request`` event says (None: no event for it)."""
    closed: bool = field(default=False, compare=False)
    """The PR's own event says it is closed (a label added after the merge, say)."""

    @property
    def branch_confirmed(self) -> bool:
        """The branch is the one the PR's own event names: nothing more to check."""
        return self.branch is not None and self.branch == self.event_branch

    @property
    def is_fork(self) -> bool:
        """A PR whose head lives in another repository gets no secrets: skip it."""
        return bool(self.from_event and self.repo and self.head_repo != self.repo)


def parse_pr(value: str | int) -> int:
    text = str(value).strip()
    # isascii: str.isdigit() also accepts '²', which int() then rejects with a ValueError
    if not (text.isascii() and text.isdigit()) or int(text) <= 0 or len(text) > 9:
        raise InputError(f"PR number must be a positive integer, got {str(value)!r}")
    return int(text)


def branch_name_problem(branch: str) -> str | None:
    """Why ``branch`` is not a valid branch name (git check-ref-format --branch), or None."""
    bad = sorted({ch for ch in branch if ch in _REF_FORBIDDEN})
    checks = [
        (not branch, "it is empty"),
        (branch == "@", "it is '@'"),
        (branch == "HEAD", "HEAD is not a branch"),
        (branch.startswith("-"), "it starts with '-'"),
        (bool(bad), "it contains " + ", ".join(repr(ch) for ch in bad)),
        (".." in branch, "it contains '..'"),
        ("@{" in branch, "it contains '@{'"),
        (branch.startswith("/") or branch.endswith("/"), "it starts or ends with '/'"),
        ("//" in branch, "it contains '//'"),
        (branch.endswith("."), "it ends with '.'"),
        (any(p.startswith(".") for p in branch.split("/")), "a part starts with '.'"),
        (any(p.endswith(".lock") for p in branch.split("/")), "a part ends with '.lock'"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def _check_branch(branch: str) -> str:
    reason = branch_name_problem(branch)
    if reason is not None:
        raise InputError(f"invalid branch name {branch!r}: {reason} (see git check-ref-format)")
    return branch


def _read_event(env: Mapping[str, str]) -> dict[str, Any] | None:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the GitHub event at GITHUB_EVENT_PATH: {exc}") from None
    pr = data.get("pull_request") if isinstance(data, dict) else None
    return pr if isinstance(pr, dict) else None


def _event_head(event: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(head.ref, head.repo.full_name) of a pull_request event, checked for shape."""
    head = event.get("head")
    if head is None:
        return None, None
    if not isinstance(head, dict):
        raise InputError(
            "the GitHub event's pull_request.head is not an object "
            f"(it is {type(head).__name__}): is GITHUB_EVENT_PATH a pull_request event?"
        )
    ref = head.get("ref")
    if ref is not None and not isinstance(ref, str):
        raise InputError("the GitHub event's pull_request.head.ref is not a string")
    repo = head.get("repo")
    full_name = repo.get("full_name") if isinstance(repo, dict) else None
    return ref or None, full_name if isinstance(full_name, str) else None


@dataclass(frozen=True)
class _EventSays:
    """What the pull_request event says about the command's PR (nothing: not its PR)."""

    from_event: bool = False
    branch: str | None = None
    head_repo: str | None = None
    labels: tuple[str, ...] | None = None
    closed: bool = False


def _from_event(
    event: dict[str, Any], pr_text: str | None, branch_text: str | None, problems: Problems
) -> tuple[str | None, str | None, _EventSays]:
    """The PR and branch with the event's filled in, when the event is about that PR."""
    event_pr = str(event["number"])
    # The event only speaks for its own PR: never mix its branch into another one.
    if pr_text is not None and pr_text.strip() != event_pr:
        return pr_text, branch_text, _EventSays()
    pr_text = pr_text or event_pr
    event_branch: str | None = None
    head_repo: str | None = None
    with problems.check():
        event_branch, head_repo = _event_head(event)
    if branch_text is None:
        branch_text = event_branch
    elif event_branch is not None and branch_text != event_branch:
        problems.add(
            InputError(
                f"branch {branch_text!r} is not the head branch of PR #{pr_text.strip()}: "
                f"its pull_request event says {event_branch!r}",
                hint="drop --branch/PREVIEWCTL_BRANCH to use the event's branch",
            )
        )
    closed = event.get("state") == "closed"
    return pr_text, branch_text, _EventSays(True, event_branch, head_repo, _labels(event), closed)


def _labels(event: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of ``pull_request.labels`` (entries without a string name are skipped)."""
    labels = event.get("labels")
    if not isinstance(labels, list):
        return ()
    names = (label.get("name") for label in labels if isinstance(label, dict))
    return tuple(name for name in names if isinstance(name, str) and name)


def resolve_target(
    pr: str | None, branch: str | None, env: Mapping[str, str], *, need_pr: bool = True
) -> Target | None:
    """Flags win, then PREVIEWCTL_PR/PREVIEWCTL_BRANCH, then the pull_request event.

    A branch given by flag or env for the event's own PR must be the event's branch.
    Every problem found is reported at once.
    """
    pr_text = pr if pr is not None else env.get("PREVIEWCTL_PR") or None
    branch_text = branch if branch is not None else env.get("PREVIEWCTL_BRANCH") or None
    problems = Problems()
    try:
        event = _read_event(env)
    except InputError:
        if pr_text is None or branch_text is None:
            raise
        event = None  # flags said everything; a broken event file does not matter
    seen = _EventSays()
    if event is not None and event.get("number") is not None:
        pr_text, branch_text, seen = _from_event(event, pr_text, branch_text, problems)
    from_event, head_repo, event_branch = seen.from_event, seen.head_repo, seen.branch
    if pr_text is None:
        if branch_text:
            with problems.check():
                _check_branch(branch_text)
        if need_pr:
            problems.add(
                InputError(
                    "no PR number: pass --pr N, set PREVIEWCTL_PR, or run on a pull_request event"
                )
            )
        problems.raise_if_any()
        return None
    number = 0
    with problems.check():
        number = parse_pr(pr_text)
    checked: str | None = None
    if branch_text:
        with problems.check():
            checked = _check_branch(branch_text)
    problems.raise_if_any()
    return Target(
        pr=number,
        branch=checked,
        head_repo=head_repo,
        repo=env.get("GITHUB_REPOSITORY") or None,
        from_event=from_event,
        event_branch=event_branch,
        labels=seen.labels,
        closed=seen.closed,
    )


def require_target(pr: str | None, branch: str | None, env: Mapping[str, str]) -> Target:
    """:func:`resolve_target` for commands that cannot run without a PR."""
    target = resolve_target(pr, branch, env)
    assert target is not None  # need_pr=True raises instead of returning None
    return target
