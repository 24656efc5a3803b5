"""Which PR and branch a command is about: flags, then env, then the Actions event."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from previewctl.errors import InputError

_BRANCH_RE = re.compile(r"^[^\s~^:?*\[\\]+$")


@dataclass(frozen=True)
class Target:
    pr: int
    branch: str | None
    head_repo: str | None = None
    repo: str | None = None
    from_event: bool = False

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


def _check_branch(branch: str) -> str:
    if not branch or not _BRANCH_RE.match(branch) or branch.startswith("-"):
        raise InputError(f"invalid branch name {branch!r}")
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


def resolve_target(
    pr: str | None, branch: str | None, env: Mapping[str, str], *, need_pr: bool = True
) -> Target | None:
    """Flags win, then PREVIEWCTL_PR/PREVIEWCTL_BRANCH, then the pull_request event."""
    pr_text = pr if pr is not None else env.get("PREVIEWCTL_PR") or None
    branch_text = branch if branch is not None else env.get("PREVIEWCTL_BRANCH") or None
    try:
        event = _read_event(env)
    except InputError:
        if pr_text is None or branch_text is None:
            raise
        event = None  # flags said everything; a broken event file does not matter
    from_event = False
    head_repo: str | None = None
    if event is not None and event.get("number") is not None:
        event_pr = str(event["number"])
        # The event only speaks for its own PR: never mix its branch into another one.
        if pr_text is None or pr_text.strip() == event_pr:
            pr_text = pr_text or event_pr
            from_event = True
            head = event.get("head") or {}
            if branch_text is None and head.get("ref"):
                branch_text = str(head["ref"])
            repo = head.get("repo")
            head_repo = repo.get("full_name") if isinstance(repo, dict) else None
    if pr_text is None:
        if need_pr:
            raise InputError(
                "no PR number: pass --pr N, set PREVIEWCTL_PR, or run on a pull_request event"
            )
        return None
    number = parse_pr(pr_text)
    return Target(
        pr=number,
        branch=_check_branch(branch_text) if branch_text else None,
        head_repo=head_repo,
        repo=env.get("GITHUB_REPOSITORY") or None,
        from_event=from_event,
    )


def require_target(pr: str | None, branch: str | None, env: Mapping[str, str]) -> Target:
    """:func:`resolve_target` for commands that cannot run without a PR."""
    target = resolve_target(pr, branch, env)
    assert target is not None  # need_pr=True raises instead of returning None
    return target
