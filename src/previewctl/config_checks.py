"""The checks of a loaded config that need all of it: placeholders and where they may be
used, secret formats, Vercel values that would point at a tunnel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from previewctl import profiles, template
from previewctl.configfile import json_line, key_path, line_of
from previewctl.errors import ConfigError, InputError, Problems
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


def profile_templated(config: Config, name: str) -> Iterator[tuple[str, str, frozenset[Namespace]]]:
    """A profile's templated strings, keyed like the base's under ``profiles.NAME.``."""
    profile = config.profiles[name]
    where = f"profiles.{name}"
    for path, text in template.strings_in(profile.machine):
        yield f"{profile.machine_file}:{path}", text, NS_MACHINE
    for tunnel_name, tunnel in profile.section.tunnels.items():
        if tunnel.login is not None:
            for field, text in tunnel.login.model_dump().items():
                yield f"{where}.tunnels.{tunnel_name}.login.{field}", text, NS_MACHINE
    for i, step in enumerate(profile.section.steps):
        for found in step.templated():
            scope = NS_BASIC if found.path else NS_STEPS
            yield f"{where}.steps[{i}].{found.key}", found.text, scope
    for project, env in profile.section.vercel_env.items():
        for k, v in env.items():
            yield f"{where}.vercel.projects.{project}.env.{k}", v, NS_VERCEL


def profile_strings(config: Config, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(key, string) of the named profiles (the names a run made active)."""
    return [
        (key, text)
        for name in names
        if name in config.model.profiles
        for key, text, _ in profile_templated(config, name)
    ]


def profile_known(config: Config, name: str) -> template.Known:
    """What a profile's strings may name: the base's, and the profile's own."""
    base, section = config.known, config.model.profiles[name]
    return template.Known(
        secrets=base.secrets | frozenset(section.secrets),
        tunnels=base.tunnels | frozenset(section.tunnels),
        vercel_projects=base.vercel_projects,
    )


def check_profiles(config: Config) -> None:
    """Each profile merges over the base alone: collisions with the base are config
    errors whichever profiles a run turns on (those between profiles: when both are)."""
    problems = Problems()
    base = profiles.base_parts(config)
    for profile in config.profiles.values():
        try:
            profiles.merge(base, [profile])
        except ConfigError as exc:
            for problem in getattr(exc, "problems", [exc]):
                problems.add(_located(config, problem))
    problems.raise_if_any()


def _located(config: Config, problem: InputError) -> InputError:
    """A merge problem with the config's file and the line of its key."""
    key = getattr(problem, "key", None)
    if not isinstance(problem, ConfigError) or key is None:
        return problem
    return ConfigError(
        problem.message.removeprefix(f"[{key}]: "),
        file=str(config.path),
        key=key,
        line=line_of(config.text, key_path(key)),
        hint=problem.hint,
    )


def check_secret_formats(config: Config) -> None:
    secrets = config.model.secrets
    generated = set(secrets.generate)
    for profile in config.model.profiles.values():
        generated.update(profile.secrets)
    for name in secrets.format:
        if name not in generated:
            raise ConfigError(
                f"[secrets.format.{name}] is for a secret that is not generated: "
                f'add "{name}" to [secrets] generate (or to a profile\'s secrets)',
                file=str(config.path),
                key=f"secrets.format.{name}",
                line=line_of(config.text, ["secrets", "format", name]),
            )


def _machine_where(config: Config, key: str) -> tuple[str, int | None, str]:
    """(file, line, key) of a string of a machine config JSON (``FILE:path``)."""
    ref, inner = key.split(":", 1)
    path = (config.root / ref).resolve()
    try:
        line = json_line(path.read_text(encoding="utf-8"), inner)
    except OSError:
        line = None
    return str(path), line, inner


def _checked(
    config: Config,
) -> Iterator[tuple[str, str, frozenset[Namespace], template.Known]]:
    """Every templated string with its scope and the names it may refer to."""
    for key, text, scope in templated(config):
        yield key, text, scope, config.known
    for name in config.model.profiles:
        known = profile_known(config, name)
        for key, text, scope in profile_templated(config, name):
            yield key, text, scope, known


def _is_vercel(key: str) -> bool:
    return key.startswith("vercel.") or (key.startswith("profiles.") and ".vercel." in key)


def _machine_files(config: Config) -> set[str]:
    files = {config.model.machine.config}
    files.update(p.machine for p in config.model.profiles.values() if p.machine)
    return files


def _check_one(
    config: Config, key: str, text: str, scope: frozenset[Namespace], known: template.Known
) -> list[ConfigError]:
    file = str(config.path)
    in_machine = ":" in key and key.split(":", 1)[0] in _machine_files(config)
    if in_machine:  # its line is one of the machine config's JSON, not of the TOML
        file, line, key = _machine_where(config, key)
    else:
        line = line_of(config.text, key_path(key))
    if "\x00" in text:
        # no argv, env value, path or header can hold one (execve, open, HTTP)
        return [
            ConfigError("a NUL character (\\u0000) is not allowed", file=file, key=key, line=line)
        ]
    found: list[ConfigError] = []
    try:
        template.check(text, scope, known)
    except TemplateError as exc:
        found.append(ConfigError(str(exc), file=file, key=key, line=line))
    if _is_vercel(key) and _LOCAL_HOSTS.search(text):
        found.append(
            ConfigError(
                "a Vercel value must not point at localhost or a tunnel: Vercel reaches "
                "the preview through its public hostname (${app.hostname})",
                file=file,
                key=key,
                line=line,
            )
        )
    return found


def check_templates(config: Config) -> None:
    problems = Problems()
    for key, text, scope, known in _checked(config):
        for problem in _check_one(config, key, text, scope, known):
            problems.add(problem)
    problems.raise_if_any()  # the check below relies on every reference being known
    vercel = config.model.vercel
    for key, text, _scope, _known in _checked(config):
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
