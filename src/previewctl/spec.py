"""PreviewSpec: what one PR's preview should be, for this command.

It is computed once per command, from the config, the target (PR and branch) and the
active profiles, and never changes afterwards: every part of a command reads the same
app, machine template, tunnels, steps, seed, Vercel projects and secrets. The values
placeholders resolve to (:class:`~previewctl.template.Values`) are built from it.

Profiles (optional services a PR turns on) are an overlay merged here, by type, over
the base: see :func:`apply_profiles`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from previewctl import profiles, template
from previewctl.config import Config
from previewctl.config_profiles import Profile
from previewctl.config_sections import TunnelSection, VercelProjectSection
from previewctl.errors import ConfigError
from previewctl.secretgen import SecretFormat
from previewctl.selection import ordered
from previewctl.step_kinds import StepConfig
from previewctl.target import Target
from previewctl.template import TemplateError


@dataclass(frozen=True)
class SecretsSpec:
    """The secrets a preview has: generated once, stable across runs."""

    names: tuple[str, ...]
    length: int
    formats: Mapping[str, SecretFormat]


@dataclass(frozen=True)
class PreviewSpec:
    target: Target
    profiles: tuple[str, ...]
    app: str
    hostname: str
    org: str
    region: str
    ips: tuple[str, ...]
    machine_file: str  # where the machine template comes from, for errors
    machine_template: Mapping[str, Any]
    tunnels: Mapping[str, TunnelSection]
    steps: tuple[StepConfig, ...]
    seed: tuple[StepConfig, ...]
    vercel_projects: Mapping[str, VercelProjectSection]
    secrets: SecretsSpec
    root: Path  # the config's directory: steps run here, files are found from here
    env: Mapping[str, str] = field(repr=False)

    @property
    def pr(self) -> int:
        return self.target.pr

    @property
    def branch(self) -> str | None:
        return self.target.branch

    @property
    def has_services(self) -> bool:
        """The machine has public services (so the app's IPs matter)."""
        return bool(self.machine_template.get("services"))

    def values(
        self,
        *,
        secrets: Mapping[str, str] | None = None,
        tunnels: Mapping[str, tuple[str, int]] | None = None,
        vercel_urls: Mapping[str, str] | None = None,
    ) -> template.Values:
        """What placeholders resolve to, given what this moment of the run knows."""
        return template.Values(
            pr=self.pr,
            branch=self.branch or "",
            app_name=self.app,
            app_hostname=self.hostname,
            secrets=dict(secrets or {}),
            tunnels=dict(tunnels or {}),
            vercel_urls=dict(vercel_urls or {}),
            env=self.env,
        )

    def domains(self) -> dict[str, str]:
        """Each Vercel project's branch domain (projects without one are left out).

        A domain that renders empty (an unset ``${env.D:-}``) would make
        ``${vercel.PROJECT.url}`` the bare ``https://``: bad input, found up front.
        """
        values = self.values()
        out: dict[str, str] = {}
        for name, project in self.vercel_projects.items():
            if not project.domain:
                continue
            rendered = template.render(project.domain, values).strip()
            if not rendered:
                raise ConfigError(
                    f"the domain renders empty ({project.domain!r}): set what it uses, or "
                    "drop `domain`",
                    key=f"vercel.projects.{name}.domain",
                )
            out[name] = rendered
        return out

    def domain_urls(self) -> dict[str, str]:
        return {name: f"https://{domain}" for name, domain in self.domains().items()}

    def steps_env(self, values: template.Values) -> dict[str, str]:
        """The union of the ``[[steps]]`` env, rendered (a later step wins on a shared
        key): what local tools need to reach the preview as the steps do."""
        env: dict[str, str] = {}
        for index, step in enumerate(self.steps):
            for key, text in step.env.items():
                try:
                    env[key] = template.render(text, values)
                except TemplateError as exc:
                    raise ConfigError(str(exc), key=f"steps[{index}].env.{key}") from None
        return env

    def render_machine(self, values: template.Values) -> dict[str, Any]:
        """The machine config with its placeholders filled (a new structure each time)."""
        try:
            rendered = template.render_tree(dict(self.machine_template), values)
        except TemplateError as exc:
            raise ConfigError(str(exc), file=self.machine_file) from None
        assert isinstance(rendered, dict)
        return rendered


def build_spec(
    config: Config,
    target: Target,
    env: Mapping[str, str],
    *,
    hostname: Callable[[str], str],
    profiles: tuple[str, ...] = (),
) -> PreviewSpec:
    """The spec of ``target``'s preview: the base from the config, then the profiles."""
    model = config.model
    app = config.app_name(target.pr)
    secrets = model.secrets
    vercel = model.vercel
    base = PreviewSpec(
        target=target,
        profiles=(),
        app=app,
        hostname=hostname(app),
        org=model.app.org,
        region=model.app.region,
        ips=tuple(model.app.ips),
        machine_file=model.machine.config,
        machine_template=MappingProxyType(dict(config.machine_template)),
        tunnels=MappingProxyType(dict(model.tunnels)),
        steps=tuple(model.steps),
        seed=tuple(model.seed),
        vercel_projects=MappingProxyType(dict(vercel.projects) if vercel else {}),
        secrets=SecretsSpec(
            tuple(secrets.generate), secrets.length, MappingProxyType(dict(secrets.format))
        ),
        root=config.root,
        env=MappingProxyType(dict(env)),
    )
    defined = config.profiles
    return apply_profiles(base, [defined[n] for n in ordered(model.profiles, profiles)])


def apply_profiles(base: PreviewSpec, active: Sequence[Profile]) -> PreviewSpec:
    """The base with each profile merged over it, in order (see :mod:`previewctl.profiles`):
    containers, services, tunnels, steps, secrets and Vercel vars added by name (a
    duplicate, or a port used twice, is a config error), the guest raised to the largest
    one asked for. No profile is the base itself."""
    if not active:
        return base
    parts = profiles.merge(
        profiles.Parts(
            machine=base.machine_template,
            tunnels=base.tunnels,
            vercel_env={n: p.env for n, p in base.vercel_projects.items()},
            secrets=base.secrets.names,
            steps=base.steps,
        ),
        active,
    )
    projects = {
        name: project.model_copy(update={"env": dict(parts.vercel_env[name])})
        for name, project in base.vercel_projects.items()
    }
    return dataclasses.replace(
        base,
        profiles=tuple(p.name for p in active),
        machine_template=MappingProxyType(dict(parts.machine)),
        tunnels=MappingProxyType(dict(parts.tunnels)),
        steps=parts.steps,
        vercel_projects=MappingProxyType(projects),
        secrets=dataclasses.replace(base.secrets, names=parts.secrets),
    )
