"""The seam between ops and where previews run: a small protocol and the records it speaks.

ops never see a backend's vocabulary (its client, its models, its tools, its host
names). They ask a :class:`PreviewBackend` to converge, wait for, find, list, start,
stop, destroy, reach (tunnels) and price previews, and get :class:`Instance` records
back. What needs no credentials (a hostname for ``plan``, the prerequisites preflight
reports, doctor's checks) is on :class:`Platform`, whose :meth:`Platform.open` gives
the backend. One backend exists (Fly.io, ``backends/fly``): a seam, not a plugin system.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from previewctl.clients.http import RetryPolicy
    from previewctl.config import Config
    from previewctl.managed import Verdict
    from previewctl.reporter import Reporter

# How `doctor` rates a check (the same words in its --json).
PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    state: str | None


@dataclass(frozen=True)
class HealthCheck:
    name: str
    status: str | None  # None: no result reported; not passing
    output: str | None


@dataclass(frozen=True)
class Instance:
    """The machine a preview runs on, as ops see it.

    ``labels`` carry previewctl's bookkeeping (:mod:`previewctl.bookkeeping`);
    ``partial_labels`` what the backend still shows of a config it calls incomplete.
    ``config_unknown``: the backend cannot show its config now (its host is in
    trouble), so its labels may be missing and nothing may act on it.
    """

    id: str
    state: str
    region: str | None = None
    created_at: str | None = None  # the backend's own timestamp (ISO 8601)
    labels: Mapping[str, str] = field(default_factory=dict)
    partial_labels: Mapping[str, str] = field(default_factory=dict)
    config_unknown: bool = False
    host_status: str | None = None
    healthy: bool = False
    size: str = ""
    containers: tuple[Container, ...] = ()
    checks: tuple[HealthCheck, ...] = ()
    native: object = field(default=None, compare=False, repr=False)
    """The backend's own record of it; only the backend looks inside."""


@dataclass(frozen=True)
class ListedApp:
    """An app of the org whose name the app-name template makes, from one listing."""

    app: str
    pr: int
    org: str  # as the listing names it (else the org asked for)


@dataclass(frozen=True)
class Desired:
    """What :meth:`PreviewBackend.converge` makes true for one PR's preview."""

    pr: int
    branch: str | None
    app: str
    region: str
    render: Callable[[dict[str, str]], tuple[dict[str, Any], str]]
    """The instance config for these secrets, and its hash (what tells a change)."""
    complete: Callable[[dict[str, str]], dict[str, str]]
    """The preview's secrets: the stored ones kept, the missing (or unfit) ones generated."""
    addresses: tuple[str, ...] = ()
    """Public address kinds the app should have (only when the instance has services)."""
    profiles: tuple[str, ...] = ()
    """The active profiles, recorded on the instance (what a later run reads back)."""


@dataclass
class Converged:
    app: str
    hostname: str
    instance: Instance
    secrets: dict[str, str]
    actions: list[str] = field(default_factory=list)
    org: str | None = None  # as the backend names the app's organization


@dataclass(frozen=True)
class Cost:
    """USD estimates, not a bill: per day in its state now, so far, and what a stop saves."""

    per_day: float
    so_far: float
    stop_saves_per_day: float


@dataclass(frozen=True)
class TunnelRequest:
    name: str  # the [tunnels.NAME] key
    remote_port: int
    local_port: int  # 0 = any free port


class OpenTunnel(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def remote_port(self) -> int: ...


class Tunnels(Protocol):
    """Tunnels to one instance: entering waits until all listen, exiting ends them all."""

    @property
    def tunnels(self) -> Mapping[str, OpenTunnel]: ...
    def check_alive(self) -> None: ...
    def hold(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass(frozen=True)
class Check:
    """One line of `doctor`: what was checked, how it went, what to do about it."""

    name: str
    status: str
    detail: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


class PreviewBackend(Protocol):
    """Where previews run, with its credentials: every remote thing ops do to a preview."""

    def hostname(self, app: str) -> str: ...

    def find(self, pr: int) -> Verdict | None:
        """The one rule's verdict on the PR's app (its secrets registered); None: no app."""
        ...

    def apps(self) -> list[ListedApp]:
        """Every app of the org named like a preview, from one listing."""
        ...

    def instances(self, app: str) -> list[Instance]:
        """The app's machines, unfiltered, their secrets registered before anything else.

        Raises NotFoundError when the app is gone."""
        ...

    def converge(self, want: Desired, *, deadline: float, wait: bool) -> Converged:
        """App, addresses and exactly one instance, each changed only where it differs.

        With ``wait``, until the instance is started too (not yet healthy)."""
        ...

    def wait_ready(
        self, app: str, instance_id: str, *, deadline: float, reporter: Reporter
    ) -> Instance:
        """Until the instance is started and every health check passes."""
        ...

    def start(self, app: str, instance: Instance, *, deadline: float) -> None: ...

    def stop(self, app: str, instance: Instance, *, deadline: float) -> None:
        """Stop it and wait until it is stopped."""
        ...

    def stop_if_idle(self, app: str, instance: Instance) -> bool:
        """Stop it unless another run is working on it right now (then False); no wait."""
        ...

    def set_label(self, app: str, instance_id: str, key: str, value: str) -> None:
        """Write one of previewctl's labels on the instance (no restart, no lease)."""
        ...

    def destroy(self, app: str) -> bool:
        """Remove the app and everything in it; False when it was already gone."""
        ...

    def tunnels(
        self, app: str, instance_id: str, requests: Sequence[TunnelRequest], *, start_timeout: float
    ) -> Tunnels: ...

    def describe(self, app: str, instance_id: str) -> str:
        """What a person needs when the instance does not answer: states, checks."""
        ...

    def cost(self, instance: Instance, now: datetime) -> Cost: ...

    def prices(self) -> dict[str, float]: ...


class Platform(Protocol):
    """What is known of a backend without its credentials."""

    def hostname(self, app: str) -> str: ...

    def tunnel_route(self, app: str, remote_port: int) -> str:
        """Where a tunnel leads, as ``plan`` shows it."""
        ...

    @property
    def tunnel_tool(self) -> str:
        """What opens the tunnels, as ``plan`` names it."""
        ...

    @property
    def logs_hint(self) -> str:
        """Where to look when a service behind a tunnel does not answer."""
        ...

    def credentials_step(self, org: str) -> str:
        """What a team adopting previewctl does to give it the backend's token."""
        ...

    def has_credentials(self, env: Mapping[str, str]) -> bool:
        """Whether this run was given the backend's token at all (forks are not)."""
        ...

    def check_tunnel_tool(self, env: Mapping[str, str]) -> None:
        """InputError when what opens the tunnels is missing."""
        ...

    def doctor(
        self,
        env: Mapping[str, str],
        config: Config | None,
        *,
        retry: RetryPolicy,
        on_request: Callable[[str], None] | None = None,
    ) -> list[Check]:
        """Read-only checks of the credentials, the org and the tools."""
        ...

    def open(
        self,
        env: Mapping[str, str],
        config: Callable[[], Config],
        reporter: Reporter,
        *,
        retry: RetryPolicy,
    ) -> PreviewBackend:
        """The backend (the config is read when first needed); InputError when its token
        is missing or unusable."""
        ...
