"""previewctl.toml: the whole file as one strict model, loaded with its machine config
template and checked (its tables: config_sections; the checks across them:
config_checks; the step kinds: step_kinds).

Everything here runs before any remote call, so that bad input exits 2 with the
file, the key and (where it can be found) the line.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from previewctl import config_checks, template
from previewctl.config_profiles import (
    Profile,
    ProfileSection,
    check_profile_names,
    load_profile_machine,
)
from previewctl.config_sections import (
    AppSection,
    GcSection,
    GitHubSection,
    MachineSection,
    PricingSection,
    SecretsSection,
    StrictModel,
    TimeoutsSection,
    TunnelSection,
    VercelSection,
)
from previewctl.configfile import (
    key_path,
    line_of,
    read_text,
    validation_problems,
)
from previewctl.errors import ConfigError, Problems
from previewctl.machine_config import load_machine_config
from previewctl.step_kinds import StepConfig
from previewctl.template import Known, TemplateError

# Patterns are used with fullmatch: `$` would also accept a trailing newline.
APP_NAME_RE = re.compile(r"[a-z0-9-]{1,63}")
_TUNNEL_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


class ConfigModel(StrictModel):
    app: AppSection
    machine: MachineSection = Field(default_factory=MachineSection)
    secrets: SecretsSection = Field(default_factory=SecretsSection)
    tunnels: dict[str, TunnelSection] = Field(default_factory=dict)
    steps: list[StepConfig] = Field(default_factory=list)
    seed: list[StepConfig] = Field(default_factory=list)
    vercel: VercelSection | None = None
    gc: GcSection = Field(default_factory=GcSection)
    timeouts: TimeoutsSection = Field(default_factory=TimeoutsSection)
    github: GitHubSection = Field(default_factory=GitHubSection)
    pricing: PricingSection = Field(default_factory=PricingSection)
    profiles: dict[str, ProfileSection] = Field(default_factory=dict)

    @field_validator("profiles")
    @classmethod
    def _profile_names(cls, value: dict[str, ProfileSection]) -> dict[str, ProfileSection]:
        return check_profile_names(value)

    @field_validator("tunnels")
    @classmethod
    def _tunnel_names(cls, value: dict[str, TunnelSection]) -> dict[str, TunnelSection]:
        for name in value:
            if not _TUNNEL_NAME_RE.fullmatch(name):
                raise ValueError(f"tunnel name {name!r} must be letters, digits, _ and -")
        by_port: dict[int, list[str]] = {}
        for name, tunnel in value.items():
            if tunnel.local_port:
                by_port.setdefault(tunnel.local_port, []).append(name)
        for port, names in sorted(by_port.items()):
            if len(names) > 1:
                raise ValueError(
                    f"tunnels {' and '.join(names)} all use local_port {port}: each needs "
                    "its own port (0 = any free port)"
                )
        return value


# ---- the loaded config --------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """A validated previewctl.toml plus its machine config template."""

    path: Path
    model: ConfigModel
    machine_template: dict[str, Any]
    text: str
    profile_machines: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def profiles(self) -> dict[str, Profile]:
        """Every ``[profiles.NAME]``, its machine file loaded."""
        return {
            name: Profile(name, section, self.profile_machines.get(name, {}), section.machine)
            for name, section in self.model.profiles.items()
        }

    @property
    def known(self) -> Known:
        vercel = self.model.vercel
        return Known(
            secrets=frozenset(self.model.secrets.generate),
            tunnels=frozenset(self.model.tunnels),
            vercel_projects=frozenset(vercel.projects) if vercel else frozenset(),
        )

    @property
    def name_pattern(self) -> re.Pattern[str]:
        return template.name_pattern(self.model.app.name)

    def app_name(self, pr: int) -> str:
        where = {"file": str(self.path), "key": "app.name"}
        line = line_of(self.text, ["app", "name"])
        try:
            name = template.render(self.model.app.name, template.Values(pr=pr))
        except TemplateError as exc:
            raise ConfigError(str(exc), **where, line=line) from None
        if not APP_NAME_RE.fullmatch(name):
            raise ConfigError(
                f"app name {name!r} is invalid: use a-z, 0-9 and '-', at most 63 characters",
                **where,
                line=line,
            )
        return name

    def env_refs(self, *, seed: bool = False, profiles: tuple[str, ...] = ()) -> set[str]:
        """The ``${env.NAME}`` a command will render, so a run can check them up front.

        ``seed`` renders [[seed]] (and the domains); every other command the rest, with
        the strings of the active ``profiles``.
        """
        names: set[str] = set()
        strings = list(config_checks.all_strings(self))
        if not seed:
            strings += config_checks.profile_strings(self, profiles)
        for key, text in strings:
            both = key.endswith(".domain") or key.startswith("tunnels.")
            if key.startswith("seed[") != seed and not both:
                continue
            for ref in template.refs(text):
                if ref.namespace == "env" and ref.default is None:
                    names.add(ref.parts[1])
        return names

    def line_of(self, key: str) -> int | None:
        """The line of ``key`` (``seed[2].http.body_file``) in previewctl.toml, if found."""
        return line_of(self.text, key_path(key))


def config_hash(machine_config: dict[str, Any], region: str) -> str:
    """Stable fingerprint of what the machine should be (metadata excluded)."""
    body = {k: v for k, v in machine_config.items() if k != "metadata"}
    canonical = json.dumps(
        {"region": region, "config": body}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # `lineno` exists from Python 3.14; before, the line is only in the message
        line = getattr(exc, "lineno", None)
        if line is None:
            found = re.search(r"at line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
        raise ConfigError(f"not valid TOML: {exc}", file=str(path), line=line) from None
    except RecursionError:
        raise ConfigError("not valid TOML: nested far too deep", file=str(path)) from None


def load_config(path: Path) -> Config:
    """Read and validate a config file and its machine config.

    Every problem found is raised together (a ConfigError, or InputProblems of them).
    """
    if not path.is_file():
        raise ConfigError(
            "config file not found",
            file=str(path),
            hint="pass --config PATH or set PREVIEWCTL_CONFIG",
        )
    text = read_text(path, "the config file")
    data = _parse_toml(text, path)
    problems = Problems()
    model: ConfigModel | None = None
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as exc:
        validation_problems(exc, str(path), text, problems, ConfigModel)
    machine_ref = model.machine.config if model else _raw_machine_path(data)
    machine_template: dict[str, Any] | None = None
    if machine_ref is not None:
        with problems.check():
            machine_template = load_machine_config(
                (path.parent / machine_ref).resolve(),
                str(path),
                line=line_of(text, ["machine", "config"]),
                problems=problems,
            )
    config: Config | None = None
    profile_machines = _load_profile_machines(path, text, model, problems)
    if model is not None and machine_template is not None and profile_machines is not None:
        config = Config(
            path=path,
            model=model,
            machine_template=machine_template,
            text=text,
            profile_machines=profile_machines,
        )
        with problems.check():
            config_checks.check_secret_formats(config)
        with problems.check():
            config_checks.check_profiles(config)
        with problems.check():
            config_checks.check_templates(config)
        if not any(getattr(p, "key", None) == "app.name" for p in problems.found):
            with problems.check():
                config.app_name(99999)  # the longest plausible name must be valid too
    problems.raise_if_any()
    assert config is not None  # no problems means every part was loaded
    return config


def _load_profile_machines(
    path: Path, text: str, model: ConfigModel | None, problems: Problems
) -> dict[str, dict[str, Any]] | None:
    """Each profile's machine file (None when one could not be read or is malformed)."""
    if model is None:
        return None
    found = Problems()
    machines: dict[str, dict[str, Any]] = {}
    for name, profile in model.profiles.items():
        if profile.machine is None:
            continue
        line = line_of(text, ["profiles", name, "machine"])
        with found.check():
            machines[name] = load_profile_machine(
                path.parent, name, profile.machine, str(path), line, found
            )
    for problem in found.found:
        problems.add(problem)
    return None if found else machines


def _raw_machine_path(data: dict[str, Any]) -> str | None:
    """The machine config path of a config that did not validate, when it can be read."""
    section = data.get("machine", {})
    ref = section.get("config", MachineSection().config) if isinstance(section, dict) else None
    return ref if isinstance(ref, str) else None
