"""The Machines API's answers as previewctl reads them: lenient models, and checks that
a 2xx body has the documented shape (never quoting it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from previewctl import redact

# Checks Fly still invents for old flyctl's blue-green deploys; they say nothing about
# the machine (fly-go drops them before judging health).
COMPAT_CHECK_PREFIX = "bg_deployments_compat"


class Shape(ValueError):
    """A 2xx body that is not what the API documents (raised by the parsers below)."""


def shape_problem(exc: ValueError | TypeError) -> str:
    """What was wrong with a body, without quoting it: it may hold secrets not read yet."""
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the body"
        return f"{where}: {first['msg']}"
    if isinstance(exc, Shape):
        return str(exc)
    return "not JSON" if isinstance(exc, ValueError) else type(exc).__name__


def items(data: Any, key: str | None = None) -> list[Any]:
    """The list in a listing (``data[key]`` when ``key``); null is an empty listing."""
    if key is not None:
        if not isinstance(data, dict):
            raise Shape(f"an object with {key!r} expected, got {type(data).__name__}")
        data = data.get(key)
    if data is None:
        return []
    if not isinstance(data, list):
        raise Shape(f"a list expected, got {type(data).__name__}")
    return data


class _Lenient(BaseModel):
    # An answer that does not parse is never quoted: it may hold env, metadata, secrets.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)


class Organization(_Lenient):
    slug: str | None = None


class App(_Lenient):
    id: str | None = None
    name: str
    organization: Organization | None = None
    status: str | None = None
    machine_count: int | None = None


class Check(_Lenient):
    name: str = ""
    status: str | None = None  # fly-go: omitempty; a check without one is not passing
    # What the check saw: an HTTP check's response body, which may print a config
    output: str | None = None

    @field_validator("output")
    @classmethod
    def _redacted(cls, value: str | None) -> str | None:
        return redact.clean(value) if value else value


class ContainerState(_Lenient):
    name: str
    state: str | None = None


class MachineEvent(_Lenient):
    """fly-go's MachineEvent: what happened to a machine (``exit`` carries an exit_event)."""

    type: str = ""
    status: str = ""
    source: str | None = None
    timestamp: int | None = None  # milliseconds since the epoch
    request: dict[str, Any] | None = None


class Machine(_Lenient):
    id: str
    name: str | None = None
    state: str = "unknown"
    region: str | None = None
    instance_id: str | None = None
    private_ip: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    checks: list[Check] = Field(default_factory=list)
    containers: list[ContainerState] = Field(default_factory=list)
    events: list[MachineEvent] = Field(default_factory=list)
    host_status: str | None = None
    # What Fly still knows while the host is not "ok": partial, not to be trusted.
    incomplete_config: dict[str, Any] | None = None

    @field_validator("config", mode="before")
    @classmethod
    def _null_config(cls, value: Any) -> Any:
        return {} if value is None else value  # host trouble: Fly sends no config

    @field_validator("checks", "containers", "events", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def config_unknown(self) -> bool:
        """Fly cannot show this machine's config (its host is not "ok").

        Then ``config`` is empty and the marker may be missing from what Fly returns:
        such a machine is neither ours nor foreign, and nothing may act on it.
        """
        if (self.host_status or "ok") != "ok":
            return True
        return not self.config and self.incomplete_config is not None

    @field_validator("checks", mode="before")
    @classmethod
    def _drop_compat_checks(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [
            c
            for c in value
            if not (
                isinstance(c, dict) and str(c.get("name") or "").startswith(COMPAT_CHECK_PREFIX)
            )
        ]

    @property
    def metadata(self) -> dict[str, str]:
        meta = self.config.get("metadata") or {}
        if not isinstance(meta, dict):
            return {}
        return {str(k): str(v) for k, v in meta.items()}

    @property
    def labels(self) -> dict[str, str]:
        """previewctl's bookkeeping lives in the metadata (see previewctl.bookkeeping)."""
        return self.metadata

    @property
    def partial_labels(self) -> dict[str, str]:
        """The metadata of a config Fly calls incomplete (its host is in trouble)."""
        partial = (self.incomplete_config or {}).get("metadata")
        if not isinstance(partial, dict):
            return {}
        return {str(k): str(v) for k, v in partial.items()}

    @property
    def configured_checks(self) -> int:
        """Top-level and service checks in the config, which flyctl waits on a result of."""
        top = self.config.get("checks")
        count = len(top) if isinstance(top, dict) else 0
        services = self.config.get("services")
        for service in services if isinstance(services, list) else []:
            checks = service.get("checks") if isinstance(service, dict) else None
            count += len(checks) if isinstance(checks, list) else 0
        return count

    @property
    def awaiting_check_results(self) -> bool:
        """A fresh machine reports no checks yet: with checks configured, that is not health."""
        return self.configured_checks > 0 and not self.checks

    @property
    def healthy(self) -> bool:
        """flyctl's rule: started and every check passing (no checks = healthy, unless the
        config has checks whose results Fly has not reported yet)."""
        if self.state != "started" or self.awaiting_check_results:
            return False
        return all(c.status == "passing" for c in self.checks)


class Lease(_Lenient):
    nonce: str
    expires_at: int | str | None = None


class IpAssignment(_Lenient):
    ip: str
    region: str | None = None
    service_name: str | None = None
    shared: bool | None = None

    @property
    def kind(self) -> str:
        """As ``POST .../ip_assignments`` names it: ``v6``, ``v4`` or ``shared_v4``."""
        if self.shared:
            return "shared_v4"
        return "v6" if ":" in self.ip else "v4"
