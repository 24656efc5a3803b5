"""Merging profiles over the base, by type (as hatch's ``apply_overrides`` merges
environment overrides).

Containers, services, tunnels and Vercel vars are added by name, and a duplicate is a
config error; secrets join the base's list; steps run after the base's; the guest is
raised to the largest memory and CPU asked for, within Fly's limits. The machine is one
network namespace, so a port a profile lists must not be one the base uses (tunnel
remote ports, service internal ports, health-check ports) or another active profile
lists. Pure: no request, no output. The same merge checks each profile against the base
when the config loads, and the active set when a spec is built.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from previewctl.config_profiles import Profile
from previewctl.config_sections import TunnelSection
from previewctl.errors import ConfigError, Problems
from previewctl.machine_config import MEMORY_PER_CPU
from previewctl.step_kinds import StepConfig

if TYPE_CHECKING:
    from previewctl.config import Config

# The CPU counts of Fly's guest sizes (shared-cpu-1x ... 8x, performance-1x ... 16x).
CPU_SIZES = {"shared": (1, 2, 4, 6, 8), "performance": (1, 2, 4, 8, 16)}
DEFAULT_GUEST = {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}


@dataclass(frozen=True)
class Parts:
    """What a profile can add to: the base's, then the merge's result."""

    machine: Mapping[str, Any]
    tunnels: Mapping[str, TunnelSection]
    vercel_env: Mapping[str, Mapping[str, str]]  # project -> vars
    secrets: tuple[str, ...]
    steps: tuple[StepConfig, ...]
    ports: Mapping[int, str] = field(default_factory=dict)  # port -> what uses it


def base_parts(config: Config) -> Parts:
    """The base config's parts, before any profile."""
    model = config.model
    vercel = model.vercel
    return Parts(
        machine=config.machine_template,
        tunnels=model.tunnels,
        vercel_env={n: p.env for n, p in vercel.projects.items()} if vercel else {},
        secrets=tuple(model.secrets.generate),
        steps=tuple(model.steps),
    )


def _ints(*values: Any) -> Iterator[int]:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            yield value


def base_ports(machine: Mapping[str, Any], tunnels: Mapping[str, TunnelSection]) -> dict[int, str]:
    """The ports the base machine uses, and what uses each (for a collision's message)."""
    used: dict[int, str] = {}
    for name, tunnel in tunnels.items():
        used.setdefault(tunnel.remote_port, f"tunnel {name}'s remote_port")
    for service in machine.get("services") or []:
        if isinstance(service, dict):
            for port in _ints(service.get("internal_port")):
                used.setdefault(port, "a service's internal_port")
    for port, container in _health_check_ports(machine):
        used.setdefault(port, f"container {container}'s health check")
    checks = machine.get("checks")
    for name, check in checks.items() if isinstance(checks, dict) else ():
        for port in _ints(check.get("port") if isinstance(check, dict) else None):
            used.setdefault(port, f"check {name}")
    return used


def _health_check_ports(machine: Mapping[str, Any]) -> Iterator[tuple[int, str]]:
    """(port, container) of each container health check that probes a port (tcp, http):
    the container listens there."""
    for container in machine.get("containers") or []:
        checks = container.get("healthchecks") if isinstance(container, dict) else None
        for check in checks if isinstance(checks, list) else []:
            for kind in ("tcp", "http"):
                probe = check.get(kind) if isinstance(check, dict) else None
                if isinstance(probe, dict):
                    for port in _ints(probe.get("port")):
                        yield port, str(container.get("name"))


def fit_guest(base: Mapping[str, Any] | None, asks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The base guest raised to the most memory and CPUs asked for, within Fly's limits.

    Memory past the CPUs' share (2048 MB per shared CPU) raises the CPUs; more CPUs
    than the memory covers (256 MB per shared CPU) raise the memory.
    """
    guest = {**DEFAULT_GUEST, **dict(base or {})}
    kinds = [guest.get("cpu_kind"), *(a.get("cpu_kind") for a in asks)]
    kind = "performance" if "performance" in kinds else "shared"
    cpus = max(int(guest["cpus"]), *(int(a.get("cpus") or 1) for a in asks))
    memory = max(int(guest["memory_mb"]), *(int(a.get("memory_mb") or 0) for a in asks))
    low, high = MEMORY_PER_CPU[kind]
    needed = max(cpus, math.ceil(memory / high))
    if needed > int(guest["cpus"]) or kind != guest.get("cpu_kind"):
        sizes = [n for n in CPU_SIZES[kind] if n >= needed]
        if not sizes:
            raise ConfigError(
                f"the active profiles need {memory} MB and {needed} {kind} CPUs, more than "
                f"Fly's largest {kind} guest ({CPU_SIZES[kind][-1]} CPUs x {high} MB)",
                key="profiles",
            )
        cpus = sizes[0]
    memory = max(memory, low * cpus)
    guest.update(cpu_kind=kind, cpus=cpus, memory_mb=memory)
    return guest


def _added(what: str, have: Mapping[str, Any], new: Mapping[str, Any], who: str) -> dict[str, Any]:
    twice = sorted(set(have) & set(new))
    if twice:
        raise ConfigError(
            f"profile {who} adds {what} {', '.join(twice)}, which the base or another active "
            "profile already has: names must be unique",
            key=f"profiles.{who}",
        )
    return {**have, **new}


def _merge_machine(
    machine: Mapping[str, Any], profile: Profile, problems: Problems
) -> dict[str, Any]:
    """The machine with the profile's containers and services added (the rest as is)."""
    who, add = profile.name, profile.machine
    merged = dict(machine)
    if add.get("containers"):
        if not machine.get("containers"):
            problems.add(
                ConfigError(
                    f"profile {who} adds containers, but the base machine config has none "
                    "(it uses a top-level image)",
                    key=f"profiles.{who}.machine",
                )
            )
        with problems.check():
            have = {c.get("name"): c for c in machine.get("containers") or []}
            new = {c["name"]: c for c in add["containers"]}
            merged["containers"] = list(_added("container", have, new, who).values())
    if add.get("services"):
        with problems.check():
            have = {str(s.get("internal_port")): s for s in machine.get("services") or []}
            new = {str(s["internal_port"]): s for s in add["services"]}
            merged["services"] = list(_added("service on port", have, new, who).values())
        with problems.check():
            public = {str(p): s for s in machine.get("services") or [] for p in _public(s)}
            wanted = {str(p): s for s in add["services"] for p in _public(s)}
            _added("public port", public, wanted, who)
    return merged


def _public(service: Mapping[str, Any]) -> list[int]:
    """The edge ports of a service (``ports[].port``)."""
    ports = service.get("ports")
    return list(_ints(*(p.get("port") for p in ports if isinstance(p, dict)))) if ports else []


def profile_ports(profile: Profile) -> list[int]:
    """The ports a profile listens on: its ``ports``, its services' internal ports and
    its containers' health-check ports (where a container of it listens, listed or not),
    as the base's are counted."""
    ports = list(profile.section.ports)
    for service in profile.machine.get("services") or []:
        ports += [p for p in _ints(service.get("internal_port")) if p not in ports]
    for port, _container in _health_check_ports(profile.machine):
        ports += [port] if port not in ports else []
    return ports


def _merge_ports(
    ports: Mapping[int, str], profile: Profile, base: Mapping[int, str], problems: Problems
) -> dict[int, str]:
    merged = dict(ports)
    for port in profile_ports(profile):
        user = base.get(port) or merged.get(port)
        if user is not None:
            problems.add(
                ConfigError(
                    f"profile {profile.name} listens on port {port}, which {user} uses: the "
                    "machine is one network namespace, so each port can be used once",
                    key=f"profiles.{profile.name}.ports",
                    hint="move the profile's container to a free port",
                )
            )
            continue
        merged[port] = f"profile {profile.name}"
    return merged


def _local_ports(tunnels: Mapping[str, TunnelSection], who: str) -> None:
    """Two tunnels cannot listen on one fixed local port (0 is any free port)."""
    by_port: dict[int, list[str]] = {}
    for name, tunnel in tunnels.items():
        if tunnel.local_port:
            by_port.setdefault(tunnel.local_port, []).append(name)
    for port, names in sorted(by_port.items()):
        if len(names) > 1:
            raise ConfigError(
                f"tunnels {' and '.join(names)} all use local_port {port}: each needs its "
                "own port (0 = any free port)",
                key=f"profiles.{who}.tunnels",
            )


def _merge_vercel(
    env: Mapping[str, Mapping[str, str]], profile: Profile, problems: Problems
) -> dict[str, dict[str, str]]:
    merged = {project: dict(vars_) for project, vars_ in env.items()}
    for project, add in profile.section.vercel_env.items():
        if project not in merged:
            problems.add(
                ConfigError(
                    f"profile {profile.name} sets vars of Vercel project {project}, which "
                    "[vercel.projects] does not define",
                    key=f"profiles.{profile.name}.vercel.projects.{project}",
                )
            )
            continue
        with problems.check():
            merged[project] = _added(f"{project} var", merged[project], add, profile.name)
    return merged


def merge(base: Parts, profiles: Sequence[Profile]) -> Parts:
    """``base`` with each profile merged over it, in order; every problem raised at once."""
    problems = Problems()
    machine, tunnels, env = dict(base.machine), dict(base.tunnels), base.vercel_env
    secrets, steps, ports = list(base.secrets), list(base.steps), dict(base.ports)
    used = base_ports(base.machine, base.tunnels)
    for profile in profiles:
        machine = _merge_machine(machine, profile, problems)
        with problems.check():
            tunnels = _added("tunnel", tunnels, profile.section.tunnels, profile.name)
            _local_ports(tunnels, profile.name)
        env = _merge_vercel(env, profile, problems)
        ports = _merge_ports(ports, profile, used, problems)
        taken = sorted(set(profile.section.secrets) & set(base.secrets))
        if taken:
            problems.add(
                ConfigError(
                    f"profile {profile.name} generates {', '.join(taken)}, which [secrets] "
                    "generates already: use it as ${secrets.NAME} without listing it",
                    key=f"profiles.{profile.name}.secrets",
                )
            )
        secrets += [s for s in profile.section.secrets if s not in secrets]
        steps += profile.section.steps
    asks = [p.machine["guest"] for p in profiles if p.machine.get("guest")]
    if asks:
        with problems.check():
            machine["guest"] = fit_guest(machine.get("guest"), asks)
    problems.raise_if_any()
    return Parts(machine, tunnels, env, tuple(secrets), tuple(steps), ports)
