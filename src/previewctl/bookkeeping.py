"""previewctl's marker and bookkeeping on a preview's machine (the rule built on it:
:mod:`previewctl.managed`).

The marker and the preview's bookkeeping (PR, branch, config hash, times, and the
generated secrets, so that anyone with the same credentials can recover them) are
string labels on the machine, which the backend stores (Fly: its ``config.metadata``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from previewctl import redact, secretgen
from previewctl.config_profiles import PROFILE_NAME_RE
from previewctl.repository import Repository
from previewctl.secretgen import SecretFormat

MARKER_KEY = "previewctl"
MARKER_VALUE = "1"
KEY_PR = "previewctl_pr"
KEY_BRANCH = "previewctl_branch"
KEY_HASH = "previewctl_config_hash"
KEY_CREATED = "previewctl_created_at"
KEY_LAST_UP = "previewctl_last_up"
KEY_SECRETS = "previewctl_secrets"
KEY_REPO = "previewctl_repo"  # owner/name of the repository the preview is for
KEY_REPO_ID = "previewctl_repo_id"  # its GitHub id: the same after a rename or transfer
KEY_PROFILES = "previewctl_profiles"  # the active profiles, comma-separated
# Vercel projects whose vars changed since their last redeploy (comma-separated): a
# redeploy that failed after the writes is made by the next `up`, which sees no change.
KEY_REDEPLOY = "previewctl_redeploy"
# Touch last_up at most this often, so a repeated `up` makes no mutating call.
LAST_UP_REFRESH = 3600.0

# Exactly what build_metadata writes (str of a positive int). "08", "٨" or "８" name no PR:
# previewctl never wrote them, and int() would read them as 8.
_PR_TEXT = re.compile(r"[1-9][0-9]{0,9}")


class Labelled(Protocol):
    """A machine with previewctl's labels: a backend's own record, or an Instance."""

    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> str | None: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def partial_labels(self) -> Mapping[str, str]: ...


L = TypeVar("L", bound=Labelled)


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # In UTC, or not at all: year 1 at +01:00 is before datetime.min in UTC.
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def carries_marker(machine: Labelled) -> bool:
    """One of the rule's conditions; whether an app is managed is managed.py's call."""
    return machine.labels.get(MARKER_KEY) == MARKER_VALUE


def read_secrets(machine: Labelled) -> dict[str, str]:
    return _secrets_in(machine.labels)


def register_secrets(machine: Labelled) -> None:
    """Make every secret the backend returned unprintable, also from labels it calls partial."""
    _secrets_in(machine.labels)
    _secrets_in(machine.partial_labels)


def _secrets_in(metadata: Mapping[str, str]) -> dict[str, str]:
    raw = metadata.get(KEY_SECRETS)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    # Only strings: a null or a number someone wrote there is no secret (not "None").
    found = (
        {str(k): v for k, v in data.items() if isinstance(v, str) and v}
        if isinstance(data, dict)
        else {}
    )
    for value in found.values():
        redact.register(value)
    return found


def complete_secrets(
    existing: dict[str, str],
    names: Iterable[str],
    length: int,
    formats: Mapping[str, SecretFormat] | None = None,
) -> dict[str, str]:
    """Keep what exists (no churn in Vercel), generate the missing ones (and any whose
    ``[secrets.format]`` changed so that the stored value no longer fits)."""
    return secretgen.complete(existing, list(names), default_length=length, formats=formats)


@dataclass(frozen=True)
class PreviewInfo:
    """A managed machine's bookkeeping, read back from its metadata."""

    pr: int | None
    branch: str | None
    config_hash: str | None
    created_at: datetime | None
    last_up: datetime | None
    profiles: tuple[str, ...] = ()
    repo: str | None = None
    repo_id: str | None = None

    @property
    def repository(self) -> Repository | None:
        """The repository the marker names, if it names one."""
        return Repository.make(self.repo, self.repo_id)

    @classmethod
    def of(cls, machine: Labelled) -> PreviewInfo:
        meta = machine.labels
        pr_text = meta.get(KEY_PR, "")
        return cls(
            pr=int(pr_text) if _PR_TEXT.fullmatch(pr_text) else None,
            branch=meta.get(KEY_BRANCH) or None,
            config_hash=meta.get(KEY_HASH) or None,
            created_at=parse_time(meta.get(KEY_CREATED)) or parse_time(machine.created_at),
            last_up=parse_time(meta.get(KEY_LAST_UP)),
            profiles=parse_profiles(meta.get(KEY_PROFILES)),
            repo=meta.get(KEY_REPO) or None,
            repo_id=meta.get(KEY_REPO_ID) or None,
        )


def parse_profiles(value: str | None) -> tuple[str, ...]:
    """The recorded set (names as previewctl writes them; anything else is left out)."""
    return tuple(n for n in names_in(value) if PROFILE_NAME_RE.fullmatch(n))


def names_in(value: str | None) -> list[str]:
    """The names of a comma-separated label, once each, in order."""
    names = (part.strip() for part in (value or "").split(","))
    return list(dict.fromkeys(n for n in names if n))


def profiles_label(names: Sequence[str]) -> str:
    return ",".join(names)


def build_metadata(
    base: Mapping[str, str],
    *,
    pr: int,
    branch: str | None,
    config_hash: str,
    created_at: str,
    last_up: str,
    secrets: dict[str, str],
    profiles: Sequence[str] = (),
    repo: Repository | str | None = None,
) -> dict[str, str]:
    """previewctl's metadata over ``base``; what a run does not know of its repository
    keeps what is recorded (a laptop run keeps the workflow's)."""
    meta = dict(base)
    known = Repository.of(repo)
    if known and known.name:
        meta[KEY_REPO] = known.name
    if known and known.id:
        meta[KEY_REPO_ID] = known.id
    meta.update(
        {
            MARKER_KEY: MARKER_VALUE,
            KEY_PR: str(pr),
            KEY_BRANCH: branch or "",
            KEY_HASH: config_hash,
            KEY_CREATED: created_at,
            KEY_LAST_UP: last_up,
            KEY_SECRETS: json.dumps(secrets, sort_keys=True),
            KEY_PROFILES: profiles_label(profiles),
        }
    )
    return meta


def pick_survivor(machines: Sequence[L]) -> L:
    """When a race made two machines, every racer keeps the same one: the oldest."""
    return min(machines, key=lambda m: (m.created_at or "", m.id))
