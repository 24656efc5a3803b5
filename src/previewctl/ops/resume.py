"""`resume` and `tunnel`: bring a preview back to a laptop, in the foreground.

Both are context managers: inside the block the preview's tunnels are open (and, for
`resume`, the machine started and the steps re-run); the CLI says what it needs to
say, then holds until Ctrl-C. Leaving the block closes everything.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from previewctl import tunnel_state
from previewctl.backends.base import Tunnels
from previewctl.errors import PreviewctlError
from previewctl.ops.desired import desired
from previewctl.ops.existing import OpenPreview, open_preview
from previewctl.ops.preflight import preflight, resolve
from previewctl.ops.recorded import check_profile_inputs
from previewctl.ops.runtime import Runtime
from previewctl.ops.session import OpenTunnels, open_tunnels, run_steps
from previewctl.reporter import Reporter


@dataclass(frozen=True)
class Foreground:
    """A preview open on this machine until Ctrl-C: what there is to tell, then hold."""

    app: str
    pr: int
    tunnels: dict[str, tuple[str, int]]  # where each tunnel listens here
    env_keys: list[str] = field(default_factory=list)  # what `previewctl env` prints
    any_port: list[str] = field(default_factory=list)  # tunnels on a port chosen at start
    _tunnels: Tunnels | None = field(default=None, repr=False)
    _reporter: Reporter | None = field(default=None, repr=False)

    @property
    def env_command(self) -> str:
        return f'eval "$(previewctl env --pr {self.pr})"'

    def hold(self) -> None:
        """Keep the tunnels up until Ctrl-C; a tunnel that dies ends the command."""
        if self._tunnels is None:
            return
        if self._reporter is not None:
            self._reporter.info("tunnels are open; press Ctrl-C to close them")
        self._tunnels.hold()


def _find(
    rt: Runtime, pr: str, profiles: Sequence[str] | None = None, *, steps: bool = False
) -> OpenPreview:
    target = resolve(rt, pr, None, profiles=profiles)
    # tunnel tool, free ports (and with `steps`, step files): before a start
    preflight(rt, target, tunnels=True, vercel=False, steps="steps" if steps else None)
    found = open_preview(rt, target)
    if target.profiles is None and found.spec.profiles:  # the recorded set's, too
        check_profile_inputs(rt, found.target, steps=steps, tunnels=True)
    return found


def _start(rt: Runtime, found: OpenPreview) -> None:
    """Start the machine; with other profiles than it records, converge it to them."""
    backend = rt.backend()
    deadline = time.monotonic() + rt.config.model.timeouts.machine
    with rt.reporter.phase("start machine"):
        if found.spec.profiles != found.recorded:
            now = ", ".join(found.spec.profiles) or "none"
            rt.reporter.info(f"profiles change to {now}: updating the machine")
            backend.converge(desired(found.spec), deadline=deadline, wait=True)
        else:
            backend.start(found.app, found.instance, deadline=deadline)
        ready = backend.wait_ready(
            found.app, found.instance.id, deadline=deadline, reporter=rt.reporter
        )
        rt.reporter.success(f"machine {ready.id} is started and healthy")


def _published(
    rt: Runtime, found: OpenPreview, tunnels: Tunnels | None
) -> AbstractContextManager[object]:
    """Tell `previewctl env` where this process's tunnels listen, while they are open."""
    if tunnels is None:
        return contextlib.nullcontext()
    ports = {name: t.port for name, t in tunnels.tunnels.items()}
    return tunnel_state.published(
        rt.env, found.app, found.target.pr, found.instance.id, ports, warn=rt.reporter.warn
    )


def _foreground(
    rt: Runtime, found: OpenPreview, opened: OpenTunnels, env_keys: list[str]
) -> Foreground:
    spec = found.spec
    listening = dict(opened.values.tunnels)
    return Foreground(
        app=found.app,
        pr=found.target.pr,
        tunnels=listening,
        env_keys=env_keys,
        any_port=sorted(n for n in listening if not spec.tunnels[n].local_port),
        _tunnels=opened.tunnels,
        _reporter=rt.reporter,
    )


@contextlib.contextmanager
def resumed(rt: Runtime, pr: str, profiles: Sequence[str] = ()) -> Iterator[Foreground]:
    """Start the machine, open the tunnels, re-run ``[[steps]]`` (the data is ephemeral).

    ``profiles`` (or PREVIEWCTL_PROFILES) other than the recorded set converge the
    machine to them first; its Vercel vars follow with the next `up`."""
    found = _find(rt, pr, profiles, steps=True)
    _start(rt, found)
    with (
        open_tunnels(rt, found.spec, found.instance.id, found.values()) as opened,
        _published(rt, found, opened.tunnels),
    ):
        run_steps(rt, found.spec, opened.values, section="steps", tunnels=opened.tunnels)
        rt.reporter.success(f"PR #{found.target.pr} is back: data re-created by the steps")
        env_keys = sorted(found.spec.steps_env(opened.values))
        yield _foreground(rt, found, opened, env_keys)


@contextlib.contextmanager
def tunneled(rt: Runtime, pr: str) -> Iterator[Foreground]:
    """Only the tunnels of a started preview."""
    found = _find(rt, pr)
    if not found.spec.tunnels:
        raise PreviewctlError("the config has no [tunnels]")
    if found.instance.state != "started":
        raise PreviewctlError(
            f"machine {found.instance.id} is {found.instance.state}",
            hint=f"start it with `previewctl resume --pr {found.target.pr}`",
        )
    with (
        open_tunnels(rt, found.spec, found.instance.id, found.values()) as opened,
        _published(rt, found, opened.tunnels),
    ):
        yield _foreground(rt, found, opened, [])
