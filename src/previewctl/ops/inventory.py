"""The previews that exist: the org's apps named like previews, each judged by the one rule.

The read side that `status` and `gc` share: one app listing, then one unfiltered machine
listing per matching app (on ``[gc] concurrency`` threads), each verdict from
previewctl.managed. Nothing here changes anything or prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from previewctl import bookkeeping, managed
from previewctl.backends.base import Instance, PreviewBackend
from previewctl.config import Config
from previewctl.errors import ApiError, NotFoundError
from previewctl.managed import Verdict
from previewctl.ops.runtime import Runtime
from previewctl.repository import UNKNOWN_REPO, Repository

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
    machines: list[Instance] = field(default_factory=list)
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
    def managed_machines(self) -> list[Instance]:
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
    def survivor(self) -> Instance | None:
        managed = self.managed_machines
        return bookkeeping.pick_survivor(managed) if managed else None

    @property
    def branch(self) -> str | None:
        survivor = self.survivor
        return bookkeeping.PreviewInfo.of(survivor).branch if survivor else None

    def last_activity(self) -> datetime | None:
        """The newest `up` (else creation) of the app's managed machines."""
        times: list[datetime] = []
        for machine in self.managed_machines:
            info = bookkeeping.PreviewInfo.of(machine)
            when = info.last_up or info.created_at
            if when is not None:
                times.append(when)
        return max(times) if times else None


def scan_app(
    backend: PreviewBackend,
    config: Config,
    app: str,
    pr: int,
    *,
    org: str | None,
    repo: Repository | None,
) -> AppScan:
    """All live machines of ``app`` (unfiltered: foreign machines must be seen too)."""
    try:
        machines = backend.instances(app)  # their secrets registered: nothing shows them
    except NotFoundError:
        return AppScan(app, pr, gone=True)
    except ApiError as exc:
        return AppScan(app, pr, error=str(exc))
    verdict = managed.judge(config, app, org=org, machines=machines, pr=pr, repo=repo)
    return AppScan(app, pr, machines=list(verdict.machines), verdict=verdict)


def scan_previews(rt: Runtime, *, sweep: bool = False) -> list[AppScan]:
    """Every app the org's listing names like a preview (so in the org), judged; for a
    ``sweep`` (gc), one recorded for any repository is not managed by a run that does
    not know its own."""
    backend, config = rt.backend(), rt.config
    repo = rt.repository or (UNKNOWN_REPO if sweep else None)
    return bounded_map(
        lambda listed: scan_app(backend, config, listed.app, listed.pr, org=listed.org, repo=repo),
        backend.apps(),
        config.model.gc.concurrency,
    )
