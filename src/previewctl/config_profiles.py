"""``[profiles.NAME]``: optional services a PR turns on (tracing, Nango, ...).

A profile is an overlay over the base config: its machine file's containers and services
are added to the machine, its guest raises the base guest, its secrets join the preview's
store, its tunnels, Vercel vars and steps are added by name. How they are merged (and
what collides) is :mod:`previewctl.profiles`; which are active is chosen per run
(:mod:`previewctl.ops.selection`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from previewctl.config_sections import StrictModel, TunnelSection, secret_names, vercel_keys
from previewctl.configfile import json_line, read_text, validation_problems
from previewctl.errors import ConfigError, Problems
from previewctl.machine_config import (
    MAX_MACHINE_DEPTH,
    MachineContainer,
    machine_json_depth_ok,
    near_miss_keys,
)
from previewctl.step_kinds import StepConfig

# Names travel in a comma-separated env var and a metadata label: no commas or spaces.
PROFILE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
TUNNEL_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
Port = Annotated[int, Field(ge=1, le=65535)]


class ProfileVercelProject(StrictModel):
    """Vars a profile adds to a project of ``[vercel.projects]``."""

    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        return vercel_keys(value)


class ProfileVercel(StrictModel):
    projects: dict[str, ProfileVercelProject] = Field(default_factory=dict)


class ProfileSection(StrictModel):
    description: str = ""
    labels: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)
    machine: str | None = None
    """A JSON file: its containers and services are added, its guest raises the base's."""
    secrets: list[str] = Field(default_factory=list)
    ports: list[Port] = Field(default_factory=list)
    """The ports its containers listen on (the machine is one network namespace)."""
    tunnels: dict[str, TunnelSection] = Field(default_factory=dict)
    vercel: ProfileVercel | None = None
    steps: list[StepConfig] = Field(default_factory=list)

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        return secret_names(value)

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, value: list[int]) -> list[int]:
        twice = sorted({p for p in value if value.count(p) > 1})
        if twice:
            raise ValueError(f"port {twice[0]} is listed twice")
        return value

    @field_validator("tunnels")
    @classmethod
    def _tunnel_names(cls, value: dict[str, TunnelSection]) -> dict[str, TunnelSection]:
        for name in value:
            if not TUNNEL_NAME_RE.fullmatch(name):
                raise ValueError(f"tunnel name {name!r} must be letters, digits, _ and -")
        return value

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, value: list[str]) -> list[str]:
        if len({label.casefold() for label in value}) != len(value):
            raise ValueError("labels must be unique (GitHub ignores their case)")
        return value

    @property
    def vercel_env(self) -> dict[str, dict[str, str]]:
        """Project -> the vars this profile adds to it."""
        if self.vercel is None:
            return {}
        return {name: dict(p.env) for name, p in self.vercel.projects.items()}


def check_profile_names(value: dict[str, ProfileSection]) -> dict[str, ProfileSection]:
    for name in value:
        if not PROFILE_NAME_RE.fullmatch(name):
            raise ValueError(
                f"profile name {name!r} must be lowercase letters, digits, _ and - "
                "(at most 32, starting with a letter or digit)"
            )
    return value


# ---- a profile's machine file --------------------------------------------------------------


class _ProfileGuest(BaseModel):
    """What a profile asks of the guest: at least this much (merged by max)."""

    model_config = ConfigDict(extra="forbid")
    cpu_kind: str | None = Field(default=None, pattern="^(shared|performance)$")
    cpus: int | None = Field(default=None, ge=1, le=16)
    memory_mb: int | None = Field(default=None, ge=256, le=131072)

    @field_validator("memory_mb")
    @classmethod
    def _multiple(cls, value: int | None) -> int | None:
        if value is not None and value % 256:
            raise ValueError("memory_mb must be a multiple of 256")
        return value


class _ProfileService(BaseModel):
    model_config = ConfigDict(extra="allow")
    protocol: str = Field(pattern="^(tcp|udp)$")
    internal_port: Port


class _ProfileMachine(BaseModel):
    """Only what a profile may add: containers, services, and a bigger guest."""

    model_config = ConfigDict(extra="forbid")
    guest: _ProfileGuest | None = None
    containers: list[MachineContainer] = Field(default_factory=list)
    services: list[_ProfileService] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> _ProfileMachine:
        # Merged by name and by internal port: a second one would silently replace the first.
        names = [c.name for c in self.containers]
        ports = [s.internal_port for s in self.services]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"container {twice[0]} is listed twice: names must be unique")
        busy = sorted({p for p in ports if ports.count(p) > 1})
        if busy:
            raise ValueError(f"two services use internal_port {busy[0]}: give each its own port")
        return self


@dataclass(frozen=True)
class Profile:
    """One ``[profiles.NAME]`` with its machine file loaded."""

    name: str
    section: ProfileSection
    machine: dict[str, Any]  # {} without a machine file
    machine_file: str | None  # as the config names it, for errors


def load_profile_machine(
    root: Path, name: str, ref: str, config_file: str, line: int | None, problems: Problems
) -> dict[str, Any]:
    """The profile's machine file; problems of its shape go to ``problems``."""
    path = (root / ref).resolve()
    if not path.is_file():
        raise ConfigError(
            f"machine file {ref} of profile {name} not found",
            file=config_file,
            key=f"profiles.{name}.machine",
            line=line,
        )
    text = read_text(path, f"profile {name}'s machine file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    except RecursionError:
        data = None
    if not isinstance(data, dict) or not machine_json_depth_ok(data):
        raise ConfigError(
            f"a profile's machine file must be a JSON object at most {MAX_MACHINE_DEPTH} "
            "levels deep",
            file=str(path),
        )
    try:
        _ProfileMachine.model_validate(data)
    except ValidationError as exc:
        validation_problems(
            exc,
            str(path),
            None,
            problems,
            root=_ProfileMachine,
            find_line=lambda key: json_line(text, key),
        )
    near_miss_keys(data, text, str(path), problems)
    return data
