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
from previewctl.config import Config, StepSection, TunnelSection
from previewctl.errors import ConfigError, PreviewctlError, StepFailedError, TunnelError
from previewctl.ops.runtime import Runtime
from previewctl.probes import PgLogin, ProbeKind, ProbeTarget, wait_all
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
            ProbeTarget(
                name,
                ProbeKind(rt.config.model.tunnels[name].check),
                t.host,
                t.port,
                probe_login(rt.config.model.tunnels[name], values, f"tunnels.{name}.login"),
            )
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


def probe_login(tunnel: TunnelSection, values: template.Values, where: str) -> PgLogin | None:
    """The tunnel's ``login`` with its placeholders (a secret password) rendered."""
    if tunnel.login is None:
        return None
    user, password, database = (
        _render(getattr(tunnel.login, f), values, f"{where}.{f}")
        for f in ("user", "password", "database")
    )
    return PgLogin(user=user, password=password, database=database)


def check_step_files(config: Config, values: template.Values, section: str) -> None:
    """Every ``body_file`` exists, or an earlier ``run`` step declares it in ``creates``:
    bad input is found before the first remote call, files made on the way are not."""
    steps = config.model.seed if section == "seed" else config.model.steps
    root = config.root
    created: set[Path] = set()
    for index, step in enumerate(steps):
        where = f"{section}[{index}]"
        for j, made in enumerate(step.creates):
            created.add(_resolve(root, _render(made, values, f"{where}.creates[{j}]")))
        if step.http is None or step.http.body_file is None:
            continue
        key = f"{where}.http.body_file"
        path = _resolve(root, _render(step.http.body_file, values, key))
        if path not in created and not path.is_file():
            raise ConfigError(
                f"body_file {path} of step {step.name!r} does not exist, and no earlier "
                f"[[{section}]] step declares it in `creates`",
                file=str(config.path),
                key=key,
                line=config.line_of(key),
                hint="commit the file, or add `creates = [...]` to the step that writes it",
            )


def _resolve(root: Path, path: str) -> Path:
    return (root / path).resolve()


def _check_created(step: StepSection, values: template.Values, root: Path, where: str) -> None:
    made = [_render(c, values, f"{where}.creates") for c in step.creates]
    missing = [c for c in made if not _resolve(root, c).exists()]
    if missing:
        raise StepFailedError(
            f"step {step.name} succeeded but did not create {', '.join(missing)} "
            "(listed in its `creates`)"
        )


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
            # Checked before the first remote call (check_step_files): what fails here was
            # changed on the way, by an earlier step (a directory where a file was due).
            raise StepFailedError(
                f"step {step.name}: cannot read body_file {path}: {exc.strerror}",
                hint="the step that `creates` it must write a file there",
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
                            _check_created(step, values, rt.config.root, f"{section}[{index}]")
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
