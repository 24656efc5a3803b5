"""Fly.io behind the seam: :class:`FlyBackend` (with a token) and :data:`PLATFORM`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from previewctl import bookkeeping, managed
from previewctl.backends.base import (
    Check,
    Converged,
    Cost,
    Desired,
    Instance,
    ListedApp,
    PreviewBackend,
    TunnelRequest,
    Tunnels,
)
from previewctl.backends.fly import converge, doctor, health
from previewctl.backends.fly.client import FlyClient, build_fly_client
from previewctl.backends.fly.instances import instance_of, machine_of
from previewctl.backends.fly.pricing import Prices, estimate, hourly_cost
from previewctl.backends.fly.tunnels import TunnelSet, TunnelSpec, find_flyctl
from previewctl.clients.http import RetryPolicy
from previewctl.config import Config
from previewctl.errors import ApiError, ConflictError, NotFoundError
from previewctl.managed import Verdict
from previewctl.reporter import Reporter
from previewctl.repository import Repository

# gc stops an idle machine under a short lease: it does not wait for one.
STOP_LEASE_TTL = 60


class FlyBackend:
    """A PreviewBackend on Fly Machines: one app per PR, one machine in it."""

    def __init__(
        self,
        fly: FlyClient,
        config: Callable[[], Config],
        reporter: Reporter,
        env: Mapping[str, str],
    ) -> None:
        self.fly = fly
        self._config = config
        self.reporter = reporter
        self.env = env
        # The repository previewctl runs for: a preview another one made is not ours.
        self.repo = Repository.from_env(env)

    @property
    def config(self) -> Config:
        """Read when first needed: a token problem is found without a readable config."""
        return self._config()

    @property
    def _ctx(self) -> converge.Ctx:
        return converge.Ctx(self.fly, self.config, self.reporter, self.repo)

    def hostname(self, app: str) -> str:
        return converge.hostname(app)

    # ---- finding -------------------------------------------------------------------------
    def find(self, pr: int) -> Verdict | None:
        config = self.config
        app = config.app_name(pr)
        try:
            found = self.fly.get_app(app)
        except ApiError as exc:
            if exc.status == 403:  # another org owns the name
                return managed.other_org(config, app, pr)
            raise
        if found is None:
            return None
        org = found.organization.slug if found.organization else None
        try:
            machines = self.instances(app)
        except NotFoundError:
            return None  # removed meanwhile
        return managed.judge(config, app, org=org, machines=machines, pr=pr, repo=self.repo)

    def apps(self) -> list[ListedApp]:
        """The org's listing: an app it names in another org stays in that org; an app
        listed twice is one app."""
        pattern = self.config.name_pattern
        org = self.config.model.app.org
        found: dict[str, ListedApp] = {}
        for app in self.fly.list_apps(org):
            match = pattern.match(app.name)
            listed = app.organization.slug if app.organization else None
            if match and app.name not in found:
                found[app.name] = ListedApp(app.name, int(match.group("pr")), listed or org)
        return sorted(found.values(), key=lambda item: (item.pr, item.app))

    def instances(self, app: str) -> list[Instance]:
        return [instance_of(m) for m in converge.list_machines(self.fly, app)]

    # ---- converging ------------------------------------------------------------------------
    def converge(self, want: Desired, *, deadline: float, wait: bool) -> Converged:
        if wait:
            return converge.converge_started(self._ctx, want, deadline=deadline)
        return converge.converge_machine(self._ctx, want, deadline=deadline)

    def wait_ready(
        self, app: str, instance_id: str, *, deadline: float, reporter: Reporter
    ) -> Instance:
        machine = health.wait_healthy(
            self.fly, app, instance_id, deadline=deadline, reporter=reporter
        )
        return instance_of(machine)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self, app: str, instance: Instance, *, deadline: float) -> None:
        if instance.state not in ("stopped", "suspended", "created"):
            return
        with self.fly.lease(app, instance.id, deadline=deadline) as nonce:
            self.reporter.info(f"starting machine {instance.id} of {app}")
            self.fly.start_machine(app, instance.id, nonce=nonce)

    def stop(self, app: str, instance: Instance, *, deadline: float) -> None:
        with self.fly.lease(app, instance.id, deadline=deadline) as nonce:
            self.reporter.info(f"stopping machine {instance.id} of {app}")
            self.fly.stop_machine(app, instance.id, nonce=nonce)
            with self.reporter.waiting(f"machine {instance.id}") as update:
                update("waiting for state 'stopped'")
                self.fly.wait(app, instance.id, "stopped", deadline=deadline)

    def stop_if_idle(self, app: str, instance: Instance) -> bool:
        try:
            lease = self.fly.acquire_lease(app, instance.id, ttl=STOP_LEASE_TTL)
        except ConflictError:
            return False  # someone (an `up`, a `resume`) is working on it right now
        try:
            self.fly.stop_machine(app, instance.id, nonce=lease.nonce)
        finally:
            # a lease we fail to release expires on its own after STOP_LEASE_TTL
            with contextlib.suppress(ApiError):
                self.fly.release_lease(app, instance.id, lease.nonce)
        return True

    def destroy(self, app: str) -> bool:
        return self.fly.delete_app(app)

    def set_label(self, app: str, instance_id: str, key: str, value: str) -> None:
        self.fly.set_metadata(app, instance_id, key, value, nonce=None)

    # ---- reaching it -------------------------------------------------------------------------
    def tunnels(
        self, app: str, instance_id: str, requests: Sequence[TunnelRequest], *, start_timeout: float
    ) -> Tunnels:
        specs = [
            TunnelSpec(
                name=r.name,
                app=app,
                remote_host=f"{instance_id}.vm.{app}.internal",
                remote_port=r.remote_port,
                local_port=r.local_port,
            )
            for r in requests
        ]
        return TunnelSet(
            specs,
            flyctl=find_flyctl(self.env),
            env=self.env,
            reporter=self.reporter,
            start_timeout=start_timeout,
        )

    def describe(self, app: str, instance_id: str) -> str:
        return health.describe(self.fly, app, instance_id)

    # ---- money -------------------------------------------------------------------------------
    def _prices(self) -> Prices:
        return Prices.from_config(self.config.model.pricing)

    def cost(self, instance: Instance, now: datetime) -> Cost:
        prices = self._prices()
        guest = machine_of(instance).config.get("guest")
        created = bookkeeping.PreviewInfo.of(instance).created_at
        per_day, so_far = estimate(guest, instance.state, created, now, prices)
        running = hourly_cost(guest, "started", prices)
        stopped = hourly_cost(guest, "stopped", prices)
        return Cost(per_day, so_far, (running - stopped) * 24)

    def prices(self) -> dict[str, float]:
        prices = self._prices()
        return {
            "shared_cpu_hour": prices.shared_cpu_hour,
            "performance_cpu_hour": prices.performance_cpu_hour,
            "memory_gb_hour": prices.memory_gb_hour,
            "rootfs_gb_month": prices.rootfs_gb_month,
            "rootfs_gb": prices.rootfs_gb,
        }


class FlyPlatform:
    """What previewctl knows of Fly without a token."""

    tunnel_tool = "flyctl proxy"
    logs_hint = "check the container's logs with `flyctl logs`; raise the timeout if it is slow"

    def hostname(self, app: str) -> str:
        return converge.hostname(app)

    def tunnel_route(self, app: str, remote_port: int) -> str:
        return f"<machine>.vm.{app}.internal:{remote_port}"

    def credentials_step(self, org: str) -> str:
        return (
            "add the repository secret FLY_API_TOKEN (Settings > Secrets and variables > "
            f"Actions): an org token, `flyctl tokens create org {org}`"
        )

    def has_credentials(self, env: Mapping[str, str]) -> bool:
        """A token is there (usable or not: an unusable one is bad input, said later)."""
        return bool(env.get("FLY_API_TOKEN") or env.get("FLY_ACCESS_TOKEN"))

    def check_tunnel_tool(self, env: Mapping[str, str]) -> None:
        find_flyctl(env)

    def doctor(
        self,
        env: Mapping[str, str],
        config: Config | None,
        *,
        retry: RetryPolicy,
        on_request: Callable[[str], None] | None = None,
    ) -> list[Check]:
        return [
            *doctor.check_fly(env, config, retry=retry, on_request=on_request),
            *doctor.check_flyctl(env, config),
        ]

    def open(
        self,
        env: Mapping[str, str],
        config: Callable[[], Config],
        reporter: Reporter,
        *,
        retry: RetryPolicy,
    ) -> PreviewBackend:
        fly = build_fly_client(env, retry=retry, on_request=reporter.detail)
        fly.on_retry = lambda line: reporter.info(f"  {line}")  # a person sees each retry
        return FlyBackend(fly, config, reporter, env)


PLATFORM = FlyPlatform()
