"""Converge one preview's Fly app, IPs and single machine to the config."""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from typing import Any

from previewctl import template
from previewctl.backends.fly.client import APP_VISIBLE_TIMEOUT, FlyClient, is_name_taken
from previewctl.backends.fly.models import App, Machine
from previewctl.config import config_hash
from previewctl.errors import (
    ApiError,
    ConfigError,
    ConflictError,
    NotFoundError,
    NotManagedError,
    PreviewctlError,
    TimeoutExceededError,
)
from previewctl.ops import managed, preview
from previewctl.ops.runtime import Runtime
from previewctl.reporter import Reporter
from previewctl.target import Target
from previewctl.template import TemplateError


class MachineGoneError(PreviewctlError):
    """Our machine vanished under us (a concurrent run removed a duplicate): converge again."""


@dataclass
class MachineResult:
    app: str
    hostname: str
    machine: Machine
    secrets: dict[str, str]
    actions: list[str] = field(default_factory=list)
    org: str | None = None  # as Fly names the app's organization


def _judged(
    rt: Runtime, app: str, org: str | None, pr: int, *, allow_empty: bool = False
) -> list[Machine]:
    """The app's machines when the one rule says up may touch them (ops/managed.py)."""
    return managed.machines_of(
        rt.fly(), rt.config, app, org=org, pr=pr, command="up", allow_empty=allow_empty
    )


def render_machine_config(
    rt: Runtime, target: Target, secrets: dict[str, str]
) -> tuple[dict[str, Any], str]:
    config = rt.config
    values = rt.values(target, secrets=secrets)
    try:
        rendered = template.render_tree(copy.deepcopy(config.machine_template), values)
    except TemplateError as exc:
        raise ConfigError(str(exc), file=config.model.machine.config) from None
    assert isinstance(rendered, dict)
    return rendered, config_hash(rendered, config.model.app.region)


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


def ensure_app(rt: Runtime, app: str, *, deadline: float | None = None) -> tuple[bool, str | None]:
    """Create the app when missing and wait until Fly shows it.

    Returns (created by this run, the organization Fly names). Fly answers 404 or 401
    for a just-created app for a while (flyctl waits up to a minute): that is "not
    yet", waited out until ``deadline`` at most.
    """
    fly = rt.fly()
    org = rt.config.model.app.org
    existing = get_app_in_org(fly, app)
    if existing is not None:
        return False, _owner(existing, app, org)
    visible_by = time.monotonic() + APP_VISIBLE_TIMEOUT
    if deadline is not None:
        visible_by = min(visible_by, deadline)
    rt.reporter.info(f"creating Fly app {app} in {org}")
    try:
        fly.create_app(app, org)
    except ApiError as exc:
        if not is_name_taken(exc):
            raise
        # Our own earlier try, a concurrent run's app Fly does not show yet, or a name
        # held elsewhere: only Fly showing it to us (in our org) makes it ours.
        return False, _owner(_await_taken_name(rt, app, visible_by, exc), app, org)
    with rt.reporter.waiting(f"app {app}") as update:
        update("waiting for Fly to show the new app")
        shown = fly.wait_for_app(app, deadline=visible_by)
    return True, _owner(shown, app, org) or org


def _await_taken_name(rt: Runtime, app: str, deadline: float, taken: ApiError) -> App:
    fly = rt.fly()
    try:
        with rt.reporter.waiting(f"app {app}") as update:
            update("the name is taken: waiting to see whether the app is ours")
            return fly.wait_for_app(app, deadline=deadline)
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


def ensure_ips(rt: Runtime, app: str, actions: list[str], *, fresh_app: bool = False) -> None:
    wanted = rt.config.model.app.ips
    if not wanted or not rt.config.machine_has_services():
        return
    fly = rt.fly()
    have = [] if fresh_app else fly.list_ips(app)
    kinds = {ip.kind for ip in have}
    for kind in wanted:
        if kind not in kinds:
            ip = fly.allocate_ip(app, kind, known=[ip.ip for ip in have])
            actions.append(f"allocated {kind} {ip.ip}")
            rt.reporter.info(f"allocated public {kind} address {ip.ip}")


def converge_started(rt: Runtime, target: Target, *, deadline: float) -> MachineResult:
    """Converge, then wait on Fly's wait endpoint for 'started'.

    Health is waited for separately (see :func:`wait_healthy`), so that tunnels can
    open meanwhile. When a racing run made a second machine, the survivor is the same
    for everyone; a run whose machine lost starts over on the survivor.
    """
    fly = rt.fly()
    for attempt in range(3):
        result = converge_machine(rt, target, deadline=deadline)
        machine_id = result.machine.id
        try:
            with rt.reporter.waiting(f"machine {machine_id}") as update:
                update("waiting for state 'started'")
                fly.wait(result.app, machine_id, "started", deadline=deadline)
            mine = _judged(rt, result.app, result.org, target.pr, allow_empty=True)
            survivor = preview.pick_survivor(mine) if mine else None
            for extra in mine:
                if survivor is not None and extra.id != survivor.id:
                    rt.reporter.warn(f"removing duplicate machine {extra.id} of {result.app}")
                    fly.delete_machine(result.app, extra.id)
            if survivor is None or survivor.id != machine_id:
                raise MachineGoneError(f"machine {machine_id} of {result.app} was replaced")
        except (MachineGoneError, NotFoundError):
            if attempt == 2:
                raise
            rt.reporter.warn("the machine was replaced by a concurrent run; converging again")
            continue
        return result
    raise AssertionError("unreachable")


def converge_machine(rt: Runtime, target: Target, *, deadline: float) -> MachineResult:
    """App, IPs and exactly one managed machine, updated/started only when needed."""
    fly = rt.fly()
    config = rt.config
    app = config.app_name(target.pr)
    hostname = f"{app}.fly.dev"
    actions: list[str] = []
    created_app, org = ensure_app(rt, app, deadline=deadline)
    if created_app:
        actions.append("created app")
    try:
        machine, secrets = _ensure_machine(
            rt, target, app, org, actions, deadline, fresh_app=created_app
        )
        ensure_ips(rt, app, actions, fresh_app=created_app)
    except BaseException:
        if created_app:
            # An app without a marked machine is one gc can't recognise: remove it, unless
            # a concurrent run has put a machine in it meanwhile.
            with contextlib.suppress(Exception):
                if not fly.list_machines(app):
                    rt.reporter.warn(f"removing app {app} created by this run, which failed")
                    fly.delete_app(app)
        raise
    return MachineResult(app, hostname, machine, secrets, actions, org)


def _create_machine(
    rt: Runtime, target: Target, app: str, org: str | None, actions: list[str]
) -> list[Machine]:
    """Create the one machine with fresh secrets; the app's managed machines after it."""
    fly = rt.fly()
    model = rt.config.model
    secrets = preview.complete_secrets(
        {}, model.secrets.generate, model.secrets.length, model.secrets.format
    )
    desired, digest = render_machine_config(rt, target, secrets)
    stamp = preview.now_iso()
    desired["metadata"] = preview.build_metadata(
        dict(desired.get("metadata") or {}),
        pr=target.pr,
        branch=target.branch,
        config_hash=digest,
        created_at=stamp,
        last_up=stamp,
        secrets=secrets,
    )
    rt.reporter.info(f"creating machine in {model.app.region}")
    try:
        fly.create_machine(app, config=desired, region=model.app.region, name=f"{app}-preview")
        actions.append("created machine")
    except ConflictError:
        # A concurrent run may have created it first (the name is taken): adopt
        # theirs; anything else (a 422 validation error, say) is the real answer.
        if not _judged(rt, app, org, target.pr, allow_empty=True):
            raise
        rt.reporter.info("a concurrent run created the machine; using it")
    mine = _judged(rt, app, org, target.pr, allow_empty=True)
    if not mine:
        raise PreviewctlError(f"the machine created in {app} is not listed by Fly")
    return mine


def _ensure_machine(
    rt: Runtime,
    target: Target,
    app: str,
    org: str | None,
    actions: list[str],
    deadline: float,
    *,
    fresh_app: bool = False,
) -> tuple[Machine, dict[str, str]]:
    fly = rt.fly()
    model = rt.config.model
    # An app this run just created has no machines: no need to ask. An existing one is
    # touched only when the one rule says it is ours (an empty one may get our machine).
    mine = [] if fresh_app else _judged(rt, app, org, target.pr, allow_empty=True)
    if not mine:
        mine = _create_machine(rt, target, app, org, actions)
    survivor = preview.pick_survivor(mine)
    for extra in mine:
        if extra.id != survivor.id:
            # A concurrent `up` (or an old race) made another one: ours, so remove it.
            rt.reporter.warn(f"removing duplicate machine {extra.id} of {app}")
            fly.delete_machine(app, extra.id)
            actions.append(f"removed duplicate machine {extra.id}")
    machine = fly.get_machine(app, survivor.id)
    if machine.config_unknown:  # its host went away since the listing: never guess
        verdict = managed.judge(rt.config, app, org=org, machines=[machine], pr=target.pr)
        managed.require(verdict, "up")
    existing = preview.read_secrets(machine)
    secrets = preview.complete_secrets(
        existing, model.secrets.generate, model.secrets.length, model.secrets.format
    )
    desired, digest = render_machine_config(rt, target, secrets)
    info = preview.PreviewInfo.of(machine)
    stamp = preview.now_iso()
    needs_update = digest != info.config_hash or secrets != existing
    if needs_update:
        desired["metadata"] = preview.build_metadata(
            machine.metadata,
            pr=target.pr,
            branch=target.branch,
            config_hash=digest,
            created_at=machine.metadata.get(preview.KEY_CREATED) or stamp,
            last_up=stamp,
            secrets=secrets,
        )
        with fly.lease(app, machine.id, deadline=deadline) as nonce:
            rt.reporter.info(f"machine config changed: updating {machine.id}")
            machine = fly.update_machine(app, machine.id, config=desired, nonce=nonce)
            actions.append("updated machine")
            if machine.state in ("stopped", "suspended"):
                fly.start_machine(app, machine.id, nonce=nonce)
                actions.append("started machine")
    elif machine.state in ("stopped", "suspended", "created"):
        with fly.lease(app, machine.id, deadline=deadline) as nonce:
            rt.reporter.info(f"starting machine {machine.id} ({machine.state})")
            fly.start_machine(app, machine.id, nonce=nonce)
            actions.append("started machine")
            _refresh_last_up(fly, app, machine, nonce, force=True)
    else:
        _refresh_last_up(fly, app, machine, None, force=False)
    if target.branch and not needs_update and info.branch != target.branch:
        # The PR's head branch was renamed: `down` removes the vars of the recorded one.
        fly.set_metadata(app, machine.id, preview.KEY_BRANCH, target.branch, nonce=None)
    if machine.state == "failed":
        raise PreviewctlError(f"machine {machine.id} of {app} is in state 'failed'")
    return machine, secrets


def _refresh_last_up(
    fly: FlyClient, app: str, machine: Machine, nonce: str | None, *, force: bool
) -> None:
    info = preview.PreviewInfo.of(machine)
    if not force and info.last_up is not None:
        age = time.time() - info.last_up.timestamp()
        if age < preview.LAST_UP_REFRESH:
            return
    fly.set_metadata(app, machine.id, preview.KEY_LAST_UP, preview.now_iso(), nonce=nonce)


def wait_healthy(
    fly: FlyClient, app: str, machine_id: str, *, deadline: float, reporter: Reporter
) -> Machine:
    """Fly's wait endpoint for `started`, then the machine's checks until all pass."""
    with reporter.waiting(f"machine {machine_id}") as update:
        update("waiting for state 'started'")
        try:
            fly.wait(app, machine_id, "started", deadline=deadline)
        except NotFoundError:
            raise MachineGoneError(f"machine {machine_id} of {app} is gone") from None
        delay = 0.1
        while True:
            try:
                machine = fly.get_machine(app, machine_id)
            except NotFoundError:
                raise MachineGoneError(f"machine {machine_id} of {app} is gone") from None
            if machine.state in ("destroying", "destroyed"):
                raise MachineGoneError(f"machine {machine_id} of {app} was destroyed")
            if machine.healthy:
                return machine
            if machine.state not in ("started", "starting", "replacing", "updating", "created"):
                raise PreviewctlError(
                    f"machine {machine_id} of {app} went to '{machine.state}' while starting: "
                    + machine.describe_health()
                )
            pending = [c.name for c in machine.checks if c.status != "passing"]
            update("checks pending: " + (", ".join(pending) or machine.state))
            if time.monotonic() + delay > deadline:
                raise TimeoutExceededError(
                    f"machine {machine_id} of {app} did not become healthy in time: "
                    + machine.describe_health()
                )
            time.sleep(delay)  # Fly has no wait endpoint for checks: bounded backoff
            delay = min(delay * 1.6, 0.25)
