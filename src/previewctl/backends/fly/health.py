"""Waiting for a machine: Fly's wait endpoint for a state, then its checks until all pass."""

from __future__ import annotations

import time

from previewctl.backends.fly import diagnose
from previewctl.backends.fly.client import FlyClient
from previewctl.backends.fly.converge import MachineGoneError
from previewctl.backends.fly.models import Machine
from previewctl.errors import NotFoundError, PreviewctlError, TimeoutExceededError
from previewctl.reporter import Reporter
from previewctl.retry import Backoff, NotYet, Retry

# Fly has no wait endpoint for checks: a short, bounded backoff between looks.
CHECKS_BACKOFF = Backoff(0.1, 0.25, factor=1.6)
_STARTING = ("started", "starting", "replacing", "updating", "created")


def _look(fly: FlyClient, app: str, machine_id: str) -> Machine:
    """The machine when healthy; NotYet while it may still become so; else an error."""
    try:
        machine = fly.get_machine(app, machine_id)
    except NotFoundError:
        raise MachineGoneError(f"machine {machine_id} of {app} is gone") from None
    if machine.state in ("destroying", "destroyed"):
        raise MachineGoneError(f"machine {machine_id} of {app} was destroyed")
    if machine.healthy:
        return machine
    if machine.state not in _STARTING:
        raise PreviewctlError(
            f"machine {machine_id} of {app} went to '{machine.state}' while starting:\n"
            + diagnose.describe(machine),
            hint=f"see the containers' logs with `flyctl logs -a {app}`",
        )
    raise _Pending(machine)


class _Pending(NotYet):
    def __init__(self, machine: Machine) -> None:
        pending = [
            f"{c.name} ({c.status or 'no status'})" for c in machine.checks if c.status != "passing"
        ]
        super().__init__("checks pending: " + (", ".join(pending) or machine.state))
        self.machine = machine


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

        def look() -> Machine:
            try:
                return _look(fly, app, machine_id)
            except _Pending as pending:
                update(pending.seen)
                raise

        def too_late(last: BaseException) -> TimeoutExceededError:
            health = diagnose.describe(last.machine) if isinstance(last, _Pending) else ""
            return TimeoutExceededError(
                f"machine {machine_id} of {app} did not become healthy in time:\n{health}",
                hint=f"see the containers' logs with `flyctl logs -a {app}`; raise "
                "[timeouts] machine if it is only slow",
            )

        retry = Retry(CHECKS_BACKOFF, clock=time.monotonic, sleep=fly.retry.sleep)
        return retry.poll(look, deadline=deadline, timeout=too_late)


def describe(fly: FlyClient, app: str, machine_id: str) -> str:
    """The machine's state, containers, failing checks and last events, for an error."""
    return f"machine {machine_id}:\n" + diagnose.describe(fly.get_machine(app, machine_id))
