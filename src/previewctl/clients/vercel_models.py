"""What the Vercel API answers and takes, as models (the client: clients/vercel.py).

Answers are read leniently (a field Vercel adds later is ignored); an env var to write
cannot be built without a branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_TYPES = frozenset({"plain", "encrypted", "sensitive"})
READY = "READY"
# States a deployment never leaves for READY (@vercel/sdk's readyState enum), and why.
FINAL_STATES = {
    "ERROR": "its build failed",
    "CANCELED": "it was canceled",
    "BLOCKED": "Vercel blocked it (a deployment protection rule, a seat or plan limit)",
    "DELETED": "it was deleted",
}
FAILED_STATES = frozenset(FINAL_STATES)
REDEPLOY_KEY = "previewctlRedeploy"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)


class VercelProject(_Lenient):
    id: str
    name: str
    production_branch: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_link(cls, data: Any) -> Any:
        if isinstance(data, dict) and "production_branch" not in data:
            link = data.get("link")
            if isinstance(link, dict) and link.get("productionBranch"):
                return {**data, "production_branch": link["productionBranch"]}
        return data


class EnvVar(_Lenient):
    """An env var as Vercel lists it. ``value`` is ciphertext for encrypted/sensitive vars."""

    id: str
    key: str
    type: str = "plain"
    target: list[str] = Field(default_factory=list)
    git_branch: str | None = Field(default=None, alias="gitBranch")
    comment: str | None = None
    value: str | None = Field(default=None, repr=False)

    @field_validator("target", mode="before")
    @classmethod
    def _target_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):  # older API versions answer a bare string
            return [value]
        return value

    @field_validator("git_branch", "comment", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None


class Deployment(_Lenient):
    uid: str = Field(validation_alias=AliasChoices("uid", "id"))
    url: str | None = None
    name: str | None = None
    ready_state: str | None = Field(
        default=None, validation_alias=AliasChoices("readyState", "ready_state", "state")
    )
    created_at: int | None = Field(
        default=None, validation_alias=AliasChoices("createdAt", "created_at", "created")
    )
    branch: str | None = None
    target: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict, repr=False)

    @field_validator("meta", mode="before")
    @classmethod
    def _meta_object(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}

    @model_validator(mode="before")
    @classmethod
    def _branch_from_meta(cls, data: Any) -> Any:
        if isinstance(data, dict) and "branch" not in data:
            meta = data.get("meta")
            if isinstance(meta, dict) and meta.get("githubCommitRef"):
                return {**data, "branch": meta["githubCommitRef"]}
        return data

    @property
    def https_url(self) -> str | None:
        if not self.url:
            return None
        return self.url if "://" in self.url else f"https://{self.url}"

    def describe(self) -> str:
        return f"{self.uid} ({self.https_url})" if self.url else self.uid


class Domain(_Lenient):
    name: str
    git_branch: str | None = Field(default=None, alias="gitBranch")
    project_id: str | None = Field(default=None, alias="projectId")
    verified: bool | None = None


@dataclass(frozen=True)
class EnvInput:
    """One branch-scoped preview var to write. There is no way to build one without a branch."""

    key: str
    value: str = field(repr=False)
    git_branch: str
    comment: str | None = None
    type: str = "encrypted"

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("an env var needs a key")
        if not isinstance(self.git_branch, str) or not self.git_branch.strip():
            raise ValueError(f"env var {self.key}: previewctl only writes branch-scoped vars")
        if self.type not in ENV_TYPES:
            raise ValueError(
                f"env var {self.key}: type {self.type!r} is not one of {sorted(ENV_TYPES)}"
            )

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "key": self.key,
            "value": self.value,
            "type": self.type,
            "target": ["preview"],
            "gitBranch": self.git_branch,
        }
        if self.comment is not None:
            item["comment"] = self.comment
        return item
