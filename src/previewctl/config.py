"""previewctl.toml: strict models, static checks and the machine config template.

Everything here runs before any remote call, so that bad input exits 2 with the
file, the key and (where it can be found) the line.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from previewctl import template
from previewctl.config_sections import StrictModel, as_duration
from previewctl.configfile import (
    json_line,
    key_path,
    line_of,
    read_text,
    validation_problems,
)
from previewctl.errors import ConfigError, Problems
from previewctl.machine_config import load_machine_config
from previewctl.secretgen import SecretFormat
from previewctl.step_kinds import StepConfig
from previewctl.template import Known, Namespace, TemplateError

DEFAULT_CONFIG = "previewctl.toml"
# Patterns are used with fullmatch: `$` would also accept a trailing newline.
APP_NAME_RE = re.compile(r"[a-z0-9-]{1,63}")
_SECRET_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TUNNEL_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
_ORG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_REGION_RE = re.compile(r"[a-z]{3}")
# Vercel: letters, digits and _, not starting with a digit.
_VERCEL_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOCAL_HOSTS = re.compile(r"(?i)(localhost|127\.0\.0\.1|\[?::1\]?(?=[:/]|$)|0\.0\.0\.0)")

# Which placeholders each part of the config may use.
NS_NAME = frozenset({Namespace.PR})
NS_BASIC = frozenset({Namespace.PR, Namespace.BRANCH, Namespace.ENV})
NS_MACHINE = frozenset(
    {Namespace.PR, Namespace.BRANCH, Namespace.APP, Namespace.SECRETS, Namespace.ENV}
)
NS_GITHUB = frozenset({Namespace.PR, Namespace.BRANCH})
NS_VERCEL = NS_MACHINE | {Namespace.VERCEL}
NS_STEPS = NS_VERCEL | {Namespace.TUNNELS}
NS_SEED = NS_STEPS


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
                "`flyctl orgs list` shows it)"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region_code(cls, value: str) -> str:
        if not _REGION_RE.fullmatch(value):
            raise ValueError(
                f"region {value!r} is not a Fly region code (three letters such as iad, "
                "ams, syd: `flyctl platform regions`)"
            )
        return value


class MachineSection(StrictModel):
    config: str = ".fly/machine-config.json"


class SecretsSection(StrictModel):
    generate: list[str] = Field(default_factory=list)
    length: int = Field(default=32, ge=16, le=128)
    format: dict[str, SecretFormat] = Field(default_factory=dict)

    @field_validator("generate")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _SECRET_NAME_RE.fullmatch(name):
                raise ValueError(f"secret name {name!r} must be letters, digits and _")
        if len(set(value)) != len(value):
            raise ValueError("secret names must be unique")
        return value


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


class VercelProjectSection(StrictModel):
    domain: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    env_type: Literal["encrypted", "sensitive"] = "encrypted"

    @field_validator("env")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _VERCEL_KEY_RE.fullmatch(key):
                raise ValueError(
                    f"Vercel env key {key!r} is invalid: use letters, digits and _, "
                    "not starting with a digit"
                )
        return value


class VercelSection(StrictModel):
    team_id: str | None = None
    redeploy: bool = True
    deployment_timeout: Annotated[float, Field(gt=0)] = 900.0
    projects: dict[str, VercelProjectSection] = Field(default_factory=dict)

    @field_validator("deployment_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return as_duration(value)


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

    @property
    def root(self) -> Path:
        return self.path.parent

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

    def env_refs(self, *, seed: bool = False) -> set[str]:
        """The ``${env.NAME}`` a command will render, so a run can check them up front.

        ``seed`` renders [[seed]] (and the domains); every other command the rest.
        """
        names: set[str] = set()
        for key, text in _all_strings(self):
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

    def machine_has_services(self) -> bool:
        return bool(self.machine_template.get("services"))


def config_hash(machine_config: dict[str, Any], region: str) -> str:
    """Stable fingerprint of what the machine should be (metadata excluded)."""
    body = {k: v for k, v in machine_config.items() if k != "metadata"}
    canonical = json.dumps(
        {"region": region, "config": body}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _all_strings(config: Config) -> Iterator[tuple[str, str]]:
    """(key path, string) for every templated string, with the scope each key has."""
    for key, text, _ in _templated(config):
        yield key, text


def _templated(config: Config) -> Iterator[tuple[str, str, frozenset[Namespace]]]:
    m = config.model
    yield "app.name", m.app.name, NS_NAME
    yield "github.environment", m.github.environment, NS_GITHUB
    for path, text in template.strings_in(config.machine_template):
        yield f"{m.machine.config}:{path}", text, NS_MACHINE
    for name, tunnel in m.tunnels.items():
        if tunnel.login is not None:
            for field, text in tunnel.login.model_dump().items():
                yield f"tunnels.{name}.login.{field}", text, NS_MACHINE
    for section, steps, scope in (("steps", m.steps, NS_STEPS), ("seed", m.seed, NS_SEED)):
        for i, step in enumerate(steps):
            for found in step.templated():
                yield f"{section}[{i}].{found.key}", found.text, NS_BASIC if found.path else scope
    if m.vercel:
        for project, proj in m.vercel.projects.items():
            if proj.domain is not None:
                yield f"vercel.projects.{project}.domain", proj.domain, NS_BASIC
            for k, v in proj.env.items():
                yield f"vercel.projects.{project}.env.{k}", v, NS_VERCEL


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
    if model is not None and machine_template is not None:
        config = Config(path=path, model=model, machine_template=machine_template, text=text)
        with problems.check():
            _check_secret_formats(config)
        with problems.check():
            _check_templates(config)
        if not any(getattr(p, "key", None) == "app.name" for p in problems.found):
            with problems.check():
                config.app_name(99999)  # the longest plausible name must be valid too
    problems.raise_if_any()
    assert config is not None  # no problems means every part was loaded
    return config


def _raw_machine_path(data: dict[str, Any]) -> str | None:
    """The machine config path of a config that did not validate, when it can be read."""
    section = data.get("machine", {})
    ref = section.get("config", MachineSection().config) if isinstance(section, dict) else None
    return ref if isinstance(ref, str) else None


def _check_secret_formats(config: Config) -> None:
    secrets = config.model.secrets
    for name in secrets.format:
        if name not in secrets.generate:
            raise ConfigError(
                f"[secrets.format.{name}] is for a secret that is not generated: "
                f'add "{name}" to [secrets] generate',
                file=str(config.path),
                key=f"secrets.format.{name}",
                line=line_of(config.text, ["secrets", "format", name]),
            )


def _machine_where(config: Config, key: str) -> tuple[str, int | None, str]:
    """(file, line, key) of a string of the machine config JSON."""
    path = (config.root / config.model.machine.config).resolve()
    inner = key.split(":", 1)[1]
    try:
        line = json_line(path.read_text(encoding="utf-8"), inner)
    except OSError:
        line = None
    return str(path), line, inner


def _check_templates(config: Config) -> None:
    known = config.known
    problems = Problems()
    for key, text, scope in _templated(config):
        file = str(config.path)
        in_machine = ":" in key and key.startswith(config.model.machine.config)
        if in_machine:  # its line is one of the machine config's JSON, not of the TOML
            file, line, key = _machine_where(config, key)
        else:
            line = line_of(config.text, key_path(key))
        if "\x00" in text:
            # no argv, env value, path or header can hold one (execve, open, HTTP)
            problems.add(
                ConfigError(
                    "a NUL character (\\u0000) is not allowed", file=file, key=key, line=line
                )
            )
            continue
        try:
            template.check(text, scope, known)
        except TemplateError as exc:
            problems.add(ConfigError(str(exc), file=file, key=key, line=line))
        if key.startswith("vercel.") and _LOCAL_HOSTS.search(text):
            problems.add(
                ConfigError(
                    "a Vercel value must not point at localhost or a tunnel: Vercel reaches "
                    "the preview through its public hostname (${app.hostname})",
                    file=file,
                    key=key,
                    line=line,
                )
            )
    problems.raise_if_any()  # the check below relies on every reference being known
    vercel = config.model.vercel
    for key, text, _scope in _templated(config):
        if key.startswith("seed["):
            continue  # seed runs after the deployments exist: their URLs are known
        for ref in template.refs(text):
            if (
                ref.namespace == "vercel"
                and vercel is not None
                and vercel.projects[ref.parts[1]].domain is None
            ):
                problems.add(
                    ConfigError(
                        f"{ref} outside [[seed]] needs a `domain` on "
                        f"[vercel.projects.{ref.parts[1]}]: a deployment URL is not "
                        "known before the deployment exists",
                        file=str(config.path),
                        key=key,
                        line=line_of(config.text, key_path(key)),
                    )
                )
    problems.raise_if_any()
