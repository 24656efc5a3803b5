"""Tunnels, readiness probes and steps: everything that needs the tunnels runs here,
inside one previewctl process, so nothing outlives the tunnels it depends on."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from previewctl import template
from previewctl.backends.base import TunnelRequest, Tunnels
from previewctl.config import Config
from previewctl.config_sections import TunnelSection
from previewctl.errors import ConfigError, PreviewctlError, TunnelError
from previewctl.ops.runtime import Runtime
from previewctl.probes import PgLogin, ProbeKind, ProbeTarget, wait_all
from previewctl.retry import Attempt, Backoff, Retry
from previewctl.spec import PreviewSpec
from previewctl.step_kinds import Prepared, Render, StepConfig, StepRunner
from previewctl.template import TemplateError


def tunnel_requests(spec: PreviewSpec) -> list[TunnelRequest]:
    return [
        TunnelRequest(name=name, remote_port=t.remote_port, local_port=t.local_port)
        for name, t in spec.tunnels.items()
    ]


@dataclass(frozen=True)
class OpenTunnels:
    """The open tunnels (None when the preview has none) and the values pointing at them."""

    tunnels: Tunnels | None
    values: template.Values


@contextmanager
def open_tunnels(
    rt: Runtime, spec: PreviewSpec, instance_id: str, values: template.Values
) -> Iterator[OpenTunnels]:
    """Open every tunnel of the preview, probe each through it; ``values`` plus where the
    tunnels listen.

    The tunnels are closed when the block ends, however it ends.
    """
    requests = tunnel_requests(spec)
    if not requests:
        yield OpenTunnels(None, values)
        return
    app = spec.app
    timeouts = rt.config.model.timeouts
    backend = rt.backend()
    tunnels = backend.tunnels(app, instance_id, requests, start_timeout=timeouts.tunnel)
    with rt.reporter.phase("tunnels"), tunnels:
        listening = {n: (t.host, t.port) for n, t in tunnels.tunnels.items()}
        values = dataclasses.replace(values, tunnels=listening)

        def describe() -> str:
            try:
                return backend.describe(app, instance_id)
            except PreviewctlError as exc:
                return f"(machine state unavailable: {exc})"

        targets = [
            ProbeTarget(
                name,
                ProbeKind(spec.tunnels[name].check),
                t.host,
                t.port,
                probe_login(spec.tunnels[name], values, f"tunnels.{name}.login"),
            )
            for name, t in tunnels.tunnels.items()
        ]
        wait_all(
            targets,
            deadline=time.monotonic() + timeouts.ready,
            reporter=rt.reporter,
            describe_remote=describe,
            alive_check=tunnels.check_alive,
            hint=rt.platform.logs_hint,
        )
        _announce(rt, app, targets, tunnels)
        yield OpenTunnels(tunnels, values)


def _announce(rt: Runtime, app: str, targets: list[ProbeTarget], tunnels: Tunnels) -> None:
    """One line per tunnel, once it is open and answers."""
    for target in targets:
        remote = tunnels.tunnels[target.name].remote_port
        check = "no check" if target.kind is ProbeKind.NONE else f"{target.kind} ready"
        rt.reporter.success(
            f"tunnel {target.name}: localhost:{target.port} → {app}:{remote} ({check})"
        )


def _render(text: str, values: template.Values, where: str) -> str:
    try:
        return template.render(text, values)
    except TemplateError as exc:
        raise ConfigError(str(exc), key=where) from None


def probe_login(tunnel: TunnelSection, values: template.Values, where: str) -> PgLogin | None:
    """The tunnel's ``login`` with its placeholders (a secret password) rendered."""
    if tunnel.login is None:
        return None
    user, password, database = (
        _render(getattr(tunnel.login, f), values, f"{where}.{f}")
        for f in ("user", "password", "database")
    )
    return PgLogin(user=user, password=password, database=database)


def step_renderer(values: template.Values, where: str) -> Render:
    """Render a step's strings; an error names the key (``steps[1].env.X``)."""

    def render(text: str, key: str) -> str:
        return _render(text, values, f"{where}.{key}")

    return render


def _section(spec: PreviewSpec, section: str) -> tuple[StepConfig, ...]:
    return spec.seed if section == "seed" else spec.steps


def check_step_files(config: Config, spec: PreviewSpec, section: str) -> None:
    """Every file a step reads exists, or an earlier step declares it in ``creates``:
    bad input is found before the first remote call, files made on the way are not."""
    values = spec.values()
    root = spec.root
    created: set[Path] = set()
    for index, step in enumerate(_section(spec, section)):
        where = f"{section}[{index}]"
        render = step_renderer(values, where)
        created.update(_resolve(root, made) for made in step.files_created(render))
        for needed in step.files_needed(render):
            path = _resolve(root, needed.path)
            if path in created or path.is_file():
                continue
            key = f"{where}.{needed.key}"
            raise ConfigError(
                f"{needed.what} {path} of step {step.name!r} does not exist, and no earlier "
                f"[[{section}]] step declares it in `creates`",
                file=str(config.path),
                key=key,
                line=config.line_of(key),
                hint="commit the file, or add `creates = [...]` to the step that writes it",
            )


def _resolve(root: Path, path: str) -> Path:
    return (root / path).resolve()


# A step's `retries`: 1 s, 2 s, 4 s, ... up to 10 s between attempts.
STEP_BACKOFF = Backoff(1.0, 10.0)


def _step_may_retry(exc: BaseException) -> bool:
    """A step's own failure; a dead tunnel is not retried (nothing it needs is there)."""
    return isinstance(exc, PreviewctlError) and not isinstance(exc, TunnelError)


def _run_once(prepared: Prepared, runner: StepRunner, tunnels: Tunnels | None) -> None:
    try:
        prepared.execute(runner)
    except PreviewctlError as exc:
        if tunnels is not None:
            try:
                tunnels.check_alive()
            except TunnelError as dead:
                raise dead from exc
        raise


def _say_retry(rt: Runtime, step: StepConfig, attempt: Attempt) -> None:
    rt.reporter.warn(
        f"{step.name} failed (attempt {attempt.number}/{step.retries + 1}); "
        f"retrying in {attempt.delay:.0f}s: {attempt.error}"
    )


def run_steps(
    rt: Runtime,
    spec: PreviewSpec,
    values: template.Values,
    *,
    section: str,
    tunnels: Tunnels | None = None,
) -> None:
    """Run the preview's ``[[steps]]`` (or, for ``section="seed"``, its ``[[seed]]``) in
    order; a failure stops the run (after saying which tunnel died, if one did)."""
    steps = _section(spec, section)
    if not steps:
        return
    with StepRunner(rt.reporter, spec.root) as runner:
        for index, step in enumerate(steps):
            prepared = step.build(step_renderer(values, f"{section}[{index}]"), runner.root)
            label = f"{section[:-1] if section == 'steps' else section}: {step.name}"
            with rt.reporter.phase(label):
                Retry(STEP_BACKOFF, attempts=step.retries + 1, sleep=rt.retry.sleep).call(
                    functools.partial(_run_once, prepared, runner, tunnels),
                    retry_if=_step_may_retry,
                    before_sleep=functools.partial(_say_retry, rt, step),
                )
