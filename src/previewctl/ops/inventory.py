"""The previews that exist: the org's apps named like previews, each judged by the one rule.

The read side that `status` and `gc` share: one app listing, then one unfiltered machine
listing per matching app (on ``[gc] concurrency`` threads), each verdict from
ops/managed.py. Nothing here changes anything or prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from previewctl.backends.fly.client import FlyClient
from previewctl.backends.fly.models import Machine
from previewctl.config import Config
from previewctl.errors import ApiError, NotFoundError
from previewctl.ops import managed, preview
from previewctl.ops.managed import Verdict
from previewctl.ops.runtime import Runtime

T = TypeVar("T")
R = TypeVar("R")


# ---- bounded concurrency ---------------------------------------------------------------


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on at most ``workers`` threads, in order.

    ``fn`` is expected to catch its own errors. On Ctrl-C the calls not yet started
    are cancelled (the running ones finish their request).
    """
    todo = list(items)
    if not todo:
        return []
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))))
    futures: list[Future[R]] = []
    try:
        futures = [pool.submit(fn, item) for item in todo]
        return [f.result() for f in futures]
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


# ---- finding previews ------------------------------------------------------------------


@dataclass
class AppScan:
    """One app whose name matches the template, and the one rule's verdict on it."""

    app: str
    pr: int
    machines: list[Machine] = field(default_factory=list)
    error: str | None = None
    gone: bool = False
    verdict: Verdict | None = None  # None when its machines could not be listed

    @property
    def managed(self) -> bool:
        return self.verdict is not None and self.verdict.managed

    @property
    def unknown(self) -> bool:
        """Not decidable: a machine's config cannot be seen, or the machines listed."""
        return self.error is not None or (self.verdict is not None and self.verdict.unknown)

    @property
    def managed_machines(self) -> list[Machine]:
        return list(self.machines) if self.managed else []

    @property
    def not_managed_reason(self) -> str | None:
        """Why previewctl must leave this app alone; None when it is ours."""
        if self.error is not None:
            return f"machines could not be listed: {self.error}"
        if self.gone:
            return "app is gone"
        assert self.verdict is not None
        return None if self.verdict.managed else self.verdict.reason

    @property
    def survivor(self) -> Machine | None:
        managed = self.managed_machines
        return preview.pick_survivor(managed) if managed else None

    @property
    def branch(self) -> str | None:
        survivor = self.survivor
        return preview.PreviewInfo.of(survivor).branch if survivor else None

    def last_activity(self) -> datetime | None:
        """The newest `up` (else creation) of the app's managed machines."""
        times: list[datetime] = []
        for machine in self.managed_machines:
            info = preview.PreviewInfo.of(machine)
            when = info.last_up or info.created_at
            if when is not None:
                times.append(when)
        return max(times) if times else None


def preview_apps(rt: Runtime) -> list[tuple[str, int, str]]:
    """(app, PR, org) of every app in the org whose name the app-name template can make.

    The org is the one the listing names for the app, when it names one: a listing
    asked for our org that shows another's app does not make it ours. An app listed
    twice is one app.
    """
    pattern = rt.config.name_pattern
    org = rt.config.model.app.org
    found: dict[str, tuple[str, int, str]] = {}
    for app in rt.fly().list_apps(org):
        match = pattern.match(app.name)
        listed = app.organization.slug if app.organization else None
        if match and app.name not in found:
            found[app.name] = (app.name, int(match.group("pr")), listed or org)
    return sorted(found.values(), key=lambda item: (item[1], item[0]))


def scan_app(fly: FlyClient, config: Config, app: str, pr: int, *, org: str | None) -> AppScan:
    """All live machines of ``app`` (unfiltered: foreign machines must be seen too)."""
    try:
        machines = fly.list_machines(app)
    except NotFoundError:
        return AppScan(app, pr, gone=True)
    except ApiError as exc:
        return AppScan(app, pr, error=str(exc))
    return _scanned(config, app, pr, org, machines)


def _scanned(
    config: Config, app: str, pr: int, org: str | None, machines: list[Machine]
) -> AppScan:
    for machine in machines:
        preview.register_secrets(machine)  # nothing printed can carry them
    verdict = managed.judge(config, app, org=org, machines=machines, pr=pr)
    return AppScan(app, pr, machines=list(verdict.machines), verdict=verdict)


def scan_previews(rt: Runtime) -> list[AppScan]:
    """Every app the org's listing names like a preview (so in the org), judged."""
    fly, config = rt.fly(), rt.config
    return bounded_map(
        lambda item: scan_app(fly, config, item[0], item[1], org=item[2]),
        preview_apps(rt),
        config.model.gc.concurrency,
    )
