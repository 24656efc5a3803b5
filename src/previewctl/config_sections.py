"""The tables of previewctl.toml, as strict models (the whole file: previewctl.config)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from previewctl.backends import words
from previewctl.durations import parse_duration
from previewctl.secretgen import SecretFormat

# Patterns are used with fullmatch: `$` would also accept a trailing newline.
SECRET_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ORG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_REGION_RE = re.compile(r"[a-z]{3}")
# Vercel: letters, digits and _, not starting with a digit.
_VERCEL_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class StrictModel(BaseModel):
    """A table of previewctl.toml: an unknown key is an error, and nothing changes it later."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def as_duration(value: Any) -> float:
    """Seconds of a config duration (``90s``, ``5m``, ``7d`` or a number)."""
    # bool is an int: without this, `timeout = true` would mean one second
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration such as 90s, 5m, 7d")


class AppSection(StrictModel):
    name: str = Field(description="App name template; must contain ${pr}")
    org: str
    region: str = "iad"
    ips: list[Literal["v6", "v4", "shared_v4"]] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _has_pr(cls, value: str) -> str:
        if "${pr}" not in value.replace(" ", ""):
            raise ValueError("the app name must contain ${pr} so that each PR gets its own app")
        return value

    @field_validator("org")
    @classmethod
    def _org_slug(cls, value: str) -> str:
        if not _ORG_RE.fullmatch(value):
            raise ValueError(
                f"org {value!r} is not a Fly organization slug (a-z, 0-9 and '-', as "
                f"{words.ORG_HINT})"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region_code(cls, value: str) -> str:
        if not _REGION_RE.fullmatch(value):
            raise ValueError(
                f"region {value!r} is not a Fly region code (three letters such as iad, "
                f"ams, syd: {words.REGION_HINT})"
            )
        return value


class MachineSection(StrictModel):
    config: str = ".fly/machine-config.json"


def secret_names(value: list[str]) -> list[str]:
    """Secret names as [secrets] generate and a profile's secrets take them."""
    for name in value:
        if not SECRET_NAME_RE.fullmatch(name):
            raise ValueError(f"secret name {name!r} must be letters, digits and _")
    if len(set(value)) != len(value):
        raise ValueError("secret names must be unique")
    return value


class SecretsSection(StrictModel):
    generate: list[str] = Field(default_factory=list)
    length: int = Field(default=32, ge=16, le=128)
    format: dict[str, SecretFormat] = Field(default_factory=dict)

    @field_validator("generate")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return secret_names(value)


class PgLoginSection(StrictModel):
    """Credentials for a ``postgres`` check that logs in (placeholders allowed)."""

    user: str = Field(min_length=1)
    password: str = ""
    database: str = Field(min_length=1)


class TunnelSection(StrictModel):
    remote_port: int = Field(ge=1, le=65535)
    local_port: int = Field(default=0, ge=0, le=65535)
    check: Literal["postgres", "tcp", "none"] = "tcp"
    # With a login, the postgres check proves that this database accepts it, not only
    # that a server answers (Doltgres listens before it has created its database).
    login: PgLoginSection | None = None

    @model_validator(mode="after")
    def _login_needs_postgres(self) -> TunnelSection:
        if self.login is not None and self.check != "postgres":
            raise ValueError('`login` is for check = "postgres"')
        return self


def vercel_keys(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not _VERCEL_KEY_RE.fullmatch(key):
            raise ValueError(
                f"Vercel env key {key!r} is invalid: use letters, digits and _, "
                "not starting with a digit"
            )
    return value


class VercelProjectSection(StrictModel):
    domain: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    env_type: Literal["encrypted", "sensitive"] = "encrypted"

    @field_validator("env")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        return vercel_keys(value)


class VercelSection(StrictModel):
    team_id: str | None = None
    redeploy: bool = True
    deployment_timeout: Annotated[float, Field(gt=0)] = 900.0
    projects: dict[str, VercelProjectSection] = Field(default_factory=dict)

    @field_validator("deployment_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return as_duration(value)


# gc destroys a preview whose last `up` is older than max_age, open PR or not: a shorter
# one would take previews that are only waiting for their next push. gc refuses it (the
# config still loads: a [gc] value must not stop `down` when a PR closes).
MIN_MAX_AGE = 3600.0


def as_max_age(value: Any) -> float:
    seconds = as_duration(value)
    if seconds < MIN_MAX_AGE:
        raise ValueError(
            "the shortest max age is 1h: gc destroys every preview whose last up is older, "
            "open PRs' too (to remove one preview now, use `previewctl down --pr N`)"
        )
    return seconds


class GcSection(StrictModel):
    max_age: float = 7 * 86400.0
    stop_after: float | None = None
    concurrency: int = Field(default=4, ge=1, le=32)

    @field_validator("max_age", "stop_after", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float | None:
        return None if value is None else as_duration(value)


class TimeoutsSection(StrictModel):
    machine: Annotated[float, Field(gt=0)] = 300.0
    ready: Annotated[float, Field(gt=0)] = 180.0
    tunnel: Annotated[float, Field(gt=0)] = 90.0

    @field_validator("machine", "ready", "tunnel", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return as_duration(value)


class GitHubSection(StrictModel):
    comment: bool = True
    deployments: bool = True
    """Record each preview as a GitHub deployment (the PR shows "View deployment")."""
    environment: str = Field(default="pr-${pr}", min_length=1)
    """The deployment's environment; ${pr} and ${branch} may be used."""


class PricingSection(StrictModel):
    """Overrides of the built-in price table (USD); see previewctl.backends.fly.pricing."""

    shared_cpu_hour: float | None = None
    performance_cpu_hour: float | None = None
    memory_gb_hour: float | None = None
    rootfs_gb_month: float | None = None
