"""The GitHub repository previewctl runs for, as the marker records it (managed-rule 5).

The name (``GITHUB_REPOSITORY``, owner/name) changes when the repository is renamed or
transferred; GitHub's numeric id (``GITHUB_REPOSITORY_ID``, set in every Actions run)
does not. So a preview is another repository's when both ids are known and differ, or,
without both ids, when both names are known and differ (GitHub's names ignore case).
Every command reads the environment through ``from_env``, so all judge alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Repository:
    name: str | None = None  # owner/name, as given
    id: str | None = None  # GitHub's repository id (digits)

    @classmethod
    def make(cls, name: str | None, id_: str | None = None) -> Repository | None:
        """The repository these say, or None when they say nothing usable."""
        clean = (name or "").strip() or None
        ident = (id_ or "").strip()
        repo = cls(clean, ident if ident.isascii() and ident.isdigit() else None)
        return repo if repo.name or repo.id else None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Repository | None:
        return cls.make(env.get("GITHUB_REPOSITORY"), env.get("GITHUB_REPOSITORY_ID"))

    @classmethod
    def of(cls, value: Repository | str | None) -> Repository | None:
        return value if isinstance(value, Repository) or value is None else cls.make(value)

    @property
    def unknown(self) -> bool:
        return not self.name and not self.id

    def other_than(self, recorded: Repository) -> bool:
        """Whether ``recorded`` (a marker's) is another repository than this one; for
        UNKNOWN, any recorded repository may be another."""
        if self.unknown:
            return not recorded.unknown
        if self.id and recorded.id:
            return self.id != recorded.id
        if self.name and recorded.name:
            return self.name.lower() != recorded.name.lower()
        return False


# What gc's sweep judges with when the run does not know its repository: over a whole
# org it cannot tell its previews from another repository's, so it leaves every preview
# that records one (a command for one PR passes, as the user named that PR).
UNKNOWN_REPO = Repository()
