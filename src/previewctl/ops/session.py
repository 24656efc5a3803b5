"""Tunnels, readiness probes and steps: everything that needs the tunnels runs here,
inside one previewctl process, so nothing outlives the tunnels it depends on."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from previewctl import template
from previewctl.clients.fly import FlyClient
from previewctl.config import StepSection
from previewctl.errors import ConfigError, PreviewctlError, TunnelError
from previewctl.ops.runtime import Runtime
from previewctl.probes import ProbeKind, ProbeTarget, wait_all
from previewctl.steps import CommandStep, HttpStep, run_command, run_http
from previewctl.template import TemplateError
from previewctl.tunnels import TunnelSet, TunnelSpec, find_flyctl


def tunnel_specs(rt: Runtime, app: str, machine_id: str) -> list[TunnelSpec]:
    return [
        TunnelSpec(
            name=name,
            app=app,
            remote_host=f"{machine_id}.vm.{app}.internal",
            remote_port=t.remote_port,
            local_port=t.local_port,
        )
        for name, t in rt.config.model.tunnels.items()
    ]


@contextmanager
def open_tunnels(
    rt: Runtime,
    app: str,
    machine_id: str,
    values: template.Values,
    *,
    fly: FlyClient | None = None,
) -> Iterator[TunnelSet | None]:
    """Open every configured tunnel, probe each through it, fill ``values.tunnels``.

    The tunnels are closed when the block ends, however it ends.
    """
    specs = tunnel_specs(rt, app, machine_id)
    if not specs:
        yield None
        return
    timeouts = rt.config.model.timeouts
    tunnels = TunnelSet(
        specs,
        flyctl=find_flyctl(rt.env),
        env=rt.env,
        reporter=rt.reporter,
        start_timeout=timeouts.tunnel,
    )
    with rt.reporter.phase("tunnels"), tunnels:
        values.tunnels = {n: (t.host, t.port) for n, t in tunnels.tunnels.items()}
        for name, t in tunnels.tunnels.items():
            rt.reporter.info(f"tunnel {name}: localhost:{t.port} -> {t.spec.remote_port}")

        def describe() -> str:
            if fly is None:
                return ""
            try:
                return fly.get_machine(app, machine_id).describe_health()
            except PreviewctlError as exc:
                return f"(machine state unavailable: {exc})"

        targets = [
            ProbeTarget(name, ProbeKind(rt.config.model.tunnels[name].check), t.host, t.port)
            for name, t in tunnels.tunnels.items()
        ]
        wait_all(
            targets,
            deadline=time.monotonic() + timeouts.ready,
            reporter=rt.reporter,
            describe_remote=describe,
            alive_check=tunnels.check_alive,
        )
        yield tunnels


def _render(text: str, values: template.Values, where: str) -> str:
    try:
        return template.render(text, values)
    except TemplateError as exc:
        raise ConfigError(str(exc), key=where) from None


def build_step(
    step: StepSection, values: template.Values, root: Path, where: str
) -> CommandStep | HttpStep:
    env = {k: _render(v, values, f"{where}.env.{k}") for k, v in step.env.items()}
    if step.run is not None:
        if isinstance(step.run, str):
            run: str | list[str] = _render(step.run, values, f"{where}.run")
        else:
            run = [_render(a, values, f"{where}.run") for a in step.run]
        return CommandStep(
            name=step.name, argv=step.argv(run), env=env, cwd=root, timeout=step.timeout
        )
    http = step.http
    assert http is not None
    body: bytes | None = None
    if http.body_file is not None:
        path = root / _render(http.body_file, values, f"{where}.http.body_file")
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read body_file {path}: {exc.strerror}", key=f"{where}.http.body_file"
            ) from None
    elif http.body is not None:
        body = _render(http.body, values, f"{where}.http.body").encode()
    return HttpStep(
        name=step.name,
        method=http.method,
        url=_render(http.url, values, f"{where}.http.url"),
        headers={k: _render(v, values, f"{where}.http.headers") for k, v in http.headers.items()},
        body=body,
        timeout=step.timeout,
    )


def run_steps(
    rt: Runtime,
    steps: Sequence[StepSection],
    values: template.Values,
    *,
    section: str,
    tunnels: TunnelSet | None = None,
) -> None:
    """Run steps in order; a failure stops the run (after saying which tunnel died, if one did)."""
    if not steps:
        return
    http_client: httpx.Client | None = None
    try:
        for index, step in enumerate(steps):
            built = build_step(step, values, rt.config.root, f"{section}[{index}]")
            with rt.reporter.phase(
                f"{section[:-1] if section == 'steps' else section}: {step.name}"
            ):
                for attempt in range(step.retries + 1):
                    try:
                        if isinstance(built, CommandStep):
                            run_command(built, rt.reporter)
                        else:
                            if http_client is None:
                                http_client = httpx.Client(follow_redirects=True)
                            run_http(built, http_client, rt.reporter)
                        break
                    except PreviewctlError as exc:
                        if tunnels is not None:
                            try:
                                tunnels.check_alive()
                            except TunnelError as dead:
                                raise dead from exc
                        if attempt >= step.retries:
                            raise
                        backoff = min(2.0**attempt, 10.0)
                        rt.reporter.warn(
                            f"{step.name} failed (attempt {attempt + 1}/{step.retries + 1}); "
                            f"retrying in {backoff:.0f}s: {exc}"
                        )
                        time.sleep(backoff)
    finally:
        if http_client is not None:
            http_client.close()
