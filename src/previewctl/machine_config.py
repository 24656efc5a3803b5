"""The machine config template: just enough of Fly's machine config to catch mistakes
(and values Fly would refuse) before the API does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from previewctl.configfile import json_line, read_text, validation_problems
from previewctl.errors import ConfigError, Problems
from previewctl.suggest import closest

# Fly machine configs are a handful of levels deep; far deeper is a mistake (and would
# exhaust Python's recursion while rendering it).
MAX_MACHINE_DEPTH = 32

# Fly's memory per CPU (MB): shared 256-2048, performance 2048-8192; multiples of 256.
MEMORY_PER_CPU = {"shared": (256, 2048), "performance": (2048, 8192)}


class _MachineGuest(BaseModel):
    model_config = ConfigDict(extra="allow")
    cpu_kind: Literal["shared", "performance"] = "shared"
    cpus: int = Field(default=1, ge=1, le=64)
    memory_mb: int = Field(default=256, ge=256)

    @field_validator("memory_mb")
    @classmethod
    def _multiple(cls, value: int) -> int:
        if value % 256:
            raise ValueError("memory_mb must be a multiple of 256")
        return value

    @model_validator(mode="after")
    def _fly_limits(self) -> _MachineGuest:
        low, high = MEMORY_PER_CPU[self.cpu_kind]
        if not low * self.cpus <= self.memory_mb <= high * self.cpus:
            raise ValueError(
                f"memory_mb {self.memory_mb} is outside Fly's limits for {self.cpus} "
                f"{self.cpu_kind} CPU(s): {low * self.cpus}-{high * self.cpus} MB "
                f"({low}-{high} MB per CPU)"
            )
        return self


class MachineContainer(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    image: str = Field(min_length=1)


class _MachinePort(BaseModel):
    model_config = ConfigDict(extra="allow")
    port: int | None = Field(default=None, ge=1, le=65535)


class _MachineService(BaseModel):
    model_config = ConfigDict(extra="allow")
    protocol: Literal["tcp", "udp"]
    internal_port: int = Field(ge=1, le=65535)
    ports: list[_MachinePort] = Field(default_factory=list)


class _MachineConfigShape(BaseModel):
    """Just enough of Fly's machine config to catch mistakes before the API does."""

    model_config = ConfigDict(extra="allow")
    image: str | None = None
    guest: _MachineGuest | None = None
    containers: list[MachineContainer] | None = None
    services: list[_MachineService] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _image_or_containers(self) -> _MachineConfigShape:
        if not self.image and not self.containers:
            raise ValueError("the machine config needs `containers` (or a top-level `image`)")
        if self.containers:
            names = [c.name for c in self.containers]
            if len(set(names)) != len(names):
                raise ValueError("container names must be unique")
        return self


# Fly's field names: the json tags of fly-go's MachineConfig, MachineGuest,
# ContainerConfig and MachineService (checked against fly-go; see the reference notes).
# Fly ignores a field it does not know, so `"evn"` for `env` silently drops the
# container's env; a key it does not know that is a near miss of one it does is refused
# here. Other unknown keys pass (Fly adds fields).
# fmt: off
_KNOWN_KEYS: dict[str, frozenset[str]] = {
    "": frozenset(
        {
            "image", "env", "init", "guest", "metadata", "mounts", "services", "metrics",
            "checks", "restart", "auto_destroy", "dns", "processes", "schedule", "standbys",
            "statics", "stop_config", "files", "containers", "volumes", "size", "rootfs",
            "disable_machine_autostart", "cache_drive", "spot",
        }
    ),
    "guest": frozenset(
        {
            "cpu_kind", "cpus", "memory_mb", "max_memory_mb", "gpus", "gpu_kind",
            "kernel_args", "host_dedication_id", "persist_rootfs",
        }
    ),
    "containers": frozenset(
        {
            "name", "image", "env", "env_from", "cmd", "entrypoint", "exec", "user", "secrets",
            "files", "restart", "depends_on", "healthchecks", "stop", "mounts",
        }
    ),
    "services": frozenset(
        {
            "protocol", "internal_port", "ports", "checks", "autostop", "autostart",
            "min_machines_running", "concurrency", "force_instance_key",
            "force_instance_description",
        }
    ),
}
# fmt: on
# Only a close miss is refused (and named): a looser match would suggest the wrong key.
_NEAR_MISS = 0.75


def _objects(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, path, object) for the config itself, its guest, containers and services."""
    found: list[tuple[str, str, dict[str, Any]]] = [("", "", data)]
    if isinstance(data.get("guest"), dict):
        found.append(("guest", "guest", data["guest"]))
    for kind in ("containers", "services"):
        items = data.get(kind)
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                found.append((kind, f"{kind}[{index}]", item))
    return found


def near_miss_keys(data: dict[str, Any], text: str, file: str, problems: Problems) -> None:
    """A config error for each key that is not Fly's but a near miss of one (with its line)."""
    for kind, where, item in _objects(data):
        known = _KNOWN_KEYS[kind]
        for key in item:
            best = closest(key, known, cutoff=_NEAR_MISS) if key not in known else None
            if best is not None:
                path = f"{where}.{key}" if where else str(key)
                problems.add(
                    ConfigError(
                        f"unknown key {key!r} (did you mean {best!r}?): Fly ignores keys it "
                        "does not know",
                        file=file,
                        key=path,
                        line=json_line(text, path),
                    )
                )


def _too_deep(data: Any, limit: int) -> bool:
    """True when ``data`` nests deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def machine_json_depth_ok(data: Any) -> bool:
    """Nested no deeper than :data:`MAX_MACHINE_DEPTH` (rendering recurses)."""
    return not _too_deep(data, MAX_MACHINE_DEPTH)


def load_machine_config(
    path: Path, config_file: str, *, line: int | None, problems: Problems
) -> dict[str, Any]:
    """The machine config; problems of its shape go to ``problems`` (its templates can
    still be checked), an unreadable one raises."""
    if not path.is_file():
        raise ConfigError(
            f"machine config {path.name} not found",
            file=config_file,
            key="machine.config",
            line=line,
        )
    text = read_text(path, "the machine config")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    except RecursionError:
        raise ConfigError(
            f"the machine config nests more than {MAX_MACHINE_DEPTH} levels deep", file=str(path)
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("the machine config must be a JSON object", file=str(path))
    if _too_deep(data, MAX_MACHINE_DEPTH):
        raise ConfigError(
            f"the machine config nests more than {MAX_MACHINE_DEPTH} levels deep", file=str(path)
        )
    try:
        _MachineConfigShape.model_validate(data)
    except ValidationError as exc:
        validation_problems(
            exc,
            str(path),
            None,
            problems,
            root=_MachineConfigShape,
            find_line=lambda key: json_line(text, key),
        )
    near_miss_keys(data, text, str(path), problems)
    metadata = data.get("metadata")
    for key in metadata if isinstance(metadata, dict) else ():
        if str(key).startswith("previewctl"):
            problems.add(
                ConfigError(
                    f"metadata key {key!r} is reserved for previewctl",
                    file=str(path),
                    key="metadata",
                    line=json_line(text, f"metadata.{key}"),
                )
            )
    return data
