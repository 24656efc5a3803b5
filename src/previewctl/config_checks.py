"""The checks of a loaded config that need all of it: placeholders and where they may be
used, secret formats, Vercel values that would point at a tunnel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from previewctl import template
from previewctl.configfile import json_line, key_path, line_of
from previewctl.errors import ConfigError, Problems
from previewctl.template import Namespace, TemplateError

if TYPE_CHECKING:
    from previewctl.config import Config

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
_LOCAL_HOSTS = re.compile(r"(?i)(localhost|127\.0\.0\.1|\[?::1\]?(?=[:/]|$)|0\.0\.0\.0)")


def all_strings(config: Config) -> Iterator[tuple[str, str]]:
    """(key path, string) for every templated string, with the scope each key has."""
    for key, text, _ in templated(config):
        yield key, text


def templated(config: Config) -> Iterator[tuple[str, str, frozenset[Namespace]]]:
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


def check_secret_formats(config: Config) -> None:
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


def check_templates(config: Config) -> None:
    known = config.known
    problems = Problems()
    for key, text, scope in templated(config):
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
    for key, text, _scope in templated(config):
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
