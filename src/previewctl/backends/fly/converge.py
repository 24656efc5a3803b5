"""Converge one preview's Fly app, IPs and single machine to what is desired."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from previewctl import bookkeeping, managed
from previewctl.backends.base import Converged, Desired
from previewctl.backends.fly.client import (
    APP_VISIBLE_TIMEOUT,
    IDEMPOTENCY_KEY,
    FlyClient,
    is_name_taken,
)
from previewctl.backends.fly.instances import instance_of
from previewctl.backends.fly.models import App, Machine
from previewctl.config import Config
from previewctl.errors import (
    ApiError,
    ConflictError,
    NotFoundError,
    NotManagedError,
    PreviewctlError,
    TimeoutExceededError,
)
from previewctl.reporter import Reporter
from previewctl.repository import Repository
from previewctl.retry import Attempt, Retry


class MachineGoneError(PreviewctlError):
    """Our machine vanished under us (a concurrent run removed a duplicate): converge again."""


class _Replaced(Exception):
    """Internal: the machine converged lost a race; converge again."""

    def __init__(self, cause: PreviewctlError) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class Ctx:
    """What converging asks of its caller: the client, the config, where to report."""

    fly: FlyClient
    config: Config
    reporter: Reporter
    repo: Repository | None = None  # the repository previewctl runs for, when it knows it


def hostname(app: str) -> str:
    return f"{app}.fly.dev"


def list_machines(fly: FlyClient, app: str) -> list[Machine]:
    """The app's machines, unfiltered. The secrets in them are registered (redacted,
    masked in Actions) at once, before anything else is asked: no later answer, and no
    error that echoes the config, can show them."""
    machines = fly.list_machines(app)
    for machine in machines:
        bookkeeping.register_secrets(machine)
    return machines


def judged(
    ctx: Ctx, app: str, org: str | None, pr: int, *, command: str = "up", allow_empty: bool = True
) -> list[Machine]:
    """The app's machines when the one rule says ``command`` may touch them."""
    machines = [instance_of(m) for m in list_machines(ctx.fly, app)]
    verdict = managed.judge(ctx.config, app, org=org, machines=machines, pr=pr, repo=ctx.repo)
    mine = managed.require(verdict, command, allow_empty=allow_empty)
    return [m.native for m in mine if isinstance(m.native, Machine)]


def _foreign(app: str) -> NotManagedError:
    return NotManagedError(
        f"the app name {app!r} belongs to another Fly organization; "
        "previewctl will not touch it (change [app] name in the config)"
    )


def get_app_in_org(fly: FlyClient, app: str) -> App | None:
    """The app, None when the name is free; another org's app is never ours to touch."""
    try:
        return fly.get_app(app)
    except ApiError as exc:
        if exc.status == 403:
            raise _foreign(app) from None
        raise


def _owner(found: App, app: str, org: str) -> str | None:
    """The organization Fly names for the app; refuses another org's."""
    owner = found.organization.slug if found.organization else None
    if owner and owner != org:
        raise NotManagedError(f"app {app!r} belongs to organization {owner!r}, not {org!r}")
    return owner


def ensure_app(ctx: Ctx, app: str, *, deadline: float | None = None) -> tuple[bool, str | None]:
    """Create the app when missing and wait until Fly shows it.

    Returns (created by this run, the organization Fly names). Fly answers 404 or 401
    for a just-created app for a while (flyctl waits up to a minute): that is "not
    yet", waited out until ``deadline`` at most.
    """
    fly = ctx.fly
    org = ctx.config.model.app.org
    existing = get_app_in_org(fly, app)
    if existing is not None:
        return False, _owner(existing, app, org)
    visible_by = time.monotonic() + APP_VISIBLE_TIMEOUT
    if deadline is not None:
        visible_by = min(visible_by, deadline)
    ctx.reporter.info(f"creating Fly app {app} in {org}")
    try:
        fly.create_app(app, org)
    except ApiError as exc:
        if not is_name_taken(exc):
            raise
        # Our own earlier try, a concurrent run's app Fly does not show yet, or a name
        # held elsewhere: only Fly showing it to us (in our org) makes it ours.
        return False, _owner(_await_taken_name(ctx, app, visible_by, exc), app, org)
    with ctx.reporter.waiting(f"app {app}") as update:
        update("waiting for Fly to show the new app")
        shown = fly.wait_for_app(app, deadline=visible_by)
    return True, _owner(shown, app, org) or org


def _await_taken_name(ctx: Ctx, app: str, deadline: float, taken: ApiError) -> App:
    try:
        with ctx.reporter.waiting(f"app {app}") as update:
            update("the name is taken: waiting to see whether the app is ours")
            return ctx.fly.wait_for_app(app, deadline=deadline)
    except TimeoutExceededError:
        raise NotManagedError(
            f"the app name {app!r} is taken on Fly ({taken.api_message}), by an app this "
            "token cannot see: app names are unique across all of Fly, not only your "
            "organization",
            hint="change [app] name in the config (for example add your org as a prefix)",
        ) from None
    except ApiError as exc:
        if exc.status == 403:
            raise _foreign(app) from None
        raise


def ensure_ips(
    ctx: Ctx, app: str, wanted: tuple[str, ...], actions: list[str], *, fresh_app: bool = False
) -> None:
    if not wanted:
        return
    fly = ctx.fly
    have = [] if fresh_app else fly.list_ips(app)
    kinds = {ip.kind for ip in have}
    for kind in wanted:
        if kind not in kinds:
            ip = fly.allocate_ip(app, kind, known=[ip.ip for ip in have])
            actions.append(f"allocated {kind} {ip.ip}")
            ctx.reporter.info(f"allocated public {kind} address {ip.ip}")


def converge_started(ctx: Ctx, want: Desired, *, deadline: float) -> Converged:
    """Converge, then wait on Fly's wait endpoint for 'started'.

    Health is waited for separately (see health.wait_healthy), so that tunnels can
    open meanwhile. When a racing run made a second machine, the survivor is the same
    for everyone; a run whose machine lost starts over on the survivor (three times).
    """

    def once() -> Converged:
        result = converge_machine(ctx, want, deadline=deadline)
        try:
            _settle(ctx, result, want.pr, deadline=deadline)
        except (MachineGoneError, NotFoundError) as exc:
            raise _Replaced(exc) from exc
        return result

    def again(_attempt: Attempt) -> None:
        ctx.reporter.warn("the machine was replaced by a concurrent run; converging again")

    return Retry(attempts=3).call(
        once,
        retry_if=lambda exc: isinstance(exc, _Replaced),
        before_sleep=again,
        give_up=lambda exc: exc.cause if isinstance(exc, _Replaced) else exc,
    )


def _settle(ctx: Ctx, result: Converged, pr: int, *, deadline: float) -> None:
    """Wait for 'started'; then only the survivor of a race remains, or MachineGoneError."""
    machine_id = result.instance.id
    with ctx.reporter.waiting(f"machine {machine_id}") as update:
        update("waiting for state 'started'")
        ctx.fly.wait(result.app, machine_id, "started", deadline=deadline)
    mine = judged(ctx, result.app, result.org, pr)
    survivor = bookkeeping.pick_survivor(mine) if mine else None
    for extra in mine:
        if survivor is not None and extra.id != survivor.id:
            ctx.reporter.warn(f"removing duplicate machine {extra.id} of {result.app}")
            ctx.fly.delete_machine(result.app, extra.id)
    if survivor is None or survivor.id != machine_id:
        raise MachineGoneError(f"machine {machine_id} of {result.app} was replaced")


def converge_machine(ctx: Ctx, want: Desired, *, deadline: float) -> Converged:
    """App, IPs and exactly one managed machine, updated/started only when needed."""
    app = want.app
    actions: list[str] = []
    created_app, org = ensure_app(ctx, app, deadline=deadline)
    if created_app:
        actions.append("created app")
    try:
        machine, secrets = _ensure_machine(ctx, want, org, actions, deadline, fresh_app=created_app)
        ensure_ips(ctx, app, want.addresses, actions, fresh_app=created_app)
    except BaseException:
        if created_app:
            # An app without a marked machine is one gc can't recognise: remove it, unless
            # a concurrent run has put a machine in it meanwhile.
            with contextlib.suppress(Exception):
                if not ctx.fly.list_machines(app):
                    ctx.reporter.warn(f"removing app {app} created by this run, which failed")
                    ctx.fly.delete_app(app)
        raise
    return Converged(app, hostname(app), instance_of(machine), secrets, actions, org)


def _labels(
    base: dict[str, str],
    want: Desired,
    digest: str,
    *,
    created_at: str,
    last_up: str,
    secrets: dict[str, str],
    repo: Repository | None,
) -> dict[str, str]:
    """previewctl's bookkeeping as Fly metadata (the create key is Fly's business only)."""
    return bookkeeping.build_metadata(
        {k: v for k, v in base.items() if k != IDEMPOTENCY_KEY},
        pr=want.pr,
        branch=want.branch,
        config_hash=digest,
        created_at=created_at,
        last_up=last_up,
        secrets=secrets,
        profiles=want.profiles,
        repo=repo,
    )


def _create_machine(ctx: Ctx, want: Desired, org: str | None, actions: list[str]) -> list[Machine]:
    """Create the one machine with fresh secrets; the app's managed machines after it."""
    app = want.app
    region = want.region
    secrets = want.complete({})
    desired, digest = want.render(secrets)
    stamp = bookkeeping.now_iso()
    desired["metadata"] = _labels(
        dict(desired.get("metadata") or {}),
        want,
        digest,
        created_at=stamp,
        last_up=stamp,
        secrets=secrets,
        repo=ctx.repo,
    )
    ctx.reporter.info(f"creating machine in {region}")
    try:
        ctx.fly.create_machine(app, config=desired, region=region, name=f"{app}-preview")
        actions.append("created machine")
    except ConflictError:
        # A concurrent run may have created it first (the name is taken): adopt
        # theirs; anything else (a 422 validation error, say) is the real answer.
        if not judged(ctx, app, org, want.pr):
            raise
        ctx.reporter.info("a concurrent run created the machine; using it")
    mine = judged(ctx, app, org, want.pr)
    if not mine:
        raise PreviewctlError(f"the machine created in {app} is not listed by Fly")
    return mine


def _the_one(
    ctx: Ctx, want: Desired, org: str | None, actions: list[str], *, fresh_app: bool
) -> Machine:
    """The app's one managed machine (made when missing), its duplicates removed."""
    app = want.app
    # An app this run just created has no machines: no need to ask. An existing one is
    # touched only when the one rule says it is ours (an empty one may get our machine).
    mine = [] if fresh_app else judged(ctx, app, org, want.pr)
    if not mine:
        mine = _create_machine(ctx, want, org, actions)
    survivor = bookkeeping.pick_survivor(mine)
    for extra in mine:
        if extra.id != survivor.id:
            # A concurrent `up` (or an old race) made another one: ours, so remove it.
            ctx.reporter.warn(f"removing duplicate machine {extra.id} of {app}")
            ctx.fly.delete_machine(app, extra.id)
            actions.append(f"removed duplicate machine {extra.id}")
    machine = ctx.fly.get_machine(app, survivor.id)
    if machine.config_unknown:  # its host went away since the listing: never guess
        verdict = managed.judge(
            ctx.config, app, org=org, machines=[instance_of(machine)], pr=want.pr, repo=ctx.repo
        )
        managed.require(verdict, "up")
    return machine


def _ensure_machine(
    ctx: Ctx,
    want: Desired,
    org: str | None,
    actions: list[str],
    deadline: float,
    *,
    fresh_app: bool = False,
) -> tuple[Machine, dict[str, str]]:
    app, fly = want.app, ctx.fly
    machine = _the_one(ctx, want, org, actions, fresh_app=fresh_app)
    existing = bookkeeping.read_secrets(machine)
    secrets = want.complete(existing)
    desired, digest = want.render(secrets)
    info = bookkeeping.PreviewInfo.of(machine)
    needs_update = digest != info.config_hash or secrets != existing
    if needs_update:
        stamp = bookkeeping.now_iso()
        created = machine.metadata.get(bookkeeping.KEY_CREATED) or stamp
        desired["metadata"] = _labels(
            machine.metadata,
            want,
            digest,
            created_at=created,
            last_up=stamp,
            secrets=secrets,
            repo=ctx.repo,
        )
        with fly.lease(app, machine.id, deadline=deadline) as nonce:
            ctx.reporter.info(f"machine config changed: updating {machine.id}")
            machine = fly.update_machine(app, machine.id, config=desired, nonce=nonce)
            actions.append("updated machine")
            if machine.state in ("stopped", "suspended"):
                fly.start_machine(app, machine.id, nonce=nonce)
                actions.append("started machine")
    elif machine.state in ("stopped", "suspended", "created"):
        with fly.lease(app, machine.id, deadline=deadline) as nonce:
            ctx.reporter.info(f"starting machine {machine.id} ({machine.state})")
            fly.start_machine(app, machine.id, nonce=nonce)
            actions.append("started machine")
            _refresh_last_up(fly, app, machine, nonce, force=True)
    else:
        _refresh_last_up(fly, app, machine, None, force=False)
    if want.branch and not needs_update and info.branch != want.branch:
        # The PR's head branch was renamed: `down` removes the vars of the recorded one.
        fly.set_metadata(app, machine.id, bookkeeping.KEY_BRANCH, want.branch, nonce=None)
    if not needs_update and info.profiles != want.profiles:
        # A set that changes no container (Vercel vars only) is recorded all the same.
        label = bookkeeping.profiles_label(want.profiles)
        fly.set_metadata(app, machine.id, bookkeeping.KEY_PROFILES, label, nonce=None)
    if machine.state == "failed":
        raise PreviewctlError(f"machine {machine.id} of {app} is in state 'failed'")
    return machine, secrets


def _refresh_last_up(
    fly: FlyClient, app: str, machine: Machine, nonce: str | None, *, force: bool
) -> None:
    info = bookkeeping.PreviewInfo.of(machine)
    if not force and info.last_up is not None:
        age = time.time() - info.last_up.timestamp()
        if age < bookkeeping.LAST_UP_REFRESH:
            return
    fly.set_metadata(app, machine.id, bookkeeping.KEY_LAST_UP, bookkeeping.now_iso(), nonce=nonce)
