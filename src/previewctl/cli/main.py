"""Typer commands: parse, build the runtime, call an operation, render. Nothing else.

Heavy modules are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from previewctl.cli import process_exit

try:  # newer typer vendors its own click; its exceptions are not click's
    from typer._click import exceptions as click_exceptions  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions  # type: ignore[no-redef,unused-ignore]

from previewctl import __version__
from previewctl.cli import ending, failure, helptext, usage
from previewctl.cli.application import Application
from previewctl.cli.options import (
    JSON_HELP,
    VERBOSE_HELP,
    PreviewctlGroup,
    ProfileOption,
    wants_json,
)

app = typer.Typer(
    name="previewctl",
    cls=PreviewctlGroup,
    help=helptext.APP_HELP,
    epilog=helptext.APP_EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks with locals could print secrets
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PrOption = Annotated[
    str | None,
    typer.Option(
        "--pr",
        metavar="N",
        help="Pull request number. Default: $PREVIEWCTL_PR, else the pull_request event.",
        show_default=False,
    ),
]
RequiredPr = Annotated[
    str,
    typer.Option(
        "--pr", metavar="N", envvar="PREVIEWCTL_PR", help="Pull request number.", show_default=False
    ),
]
BranchOption = Annotated[
    str | None,
    typer.Option(
        "--branch",
        metavar="BRANCH",
        help="The PR's head branch. Default: $PREVIEWCTL_BRANCH, else the pull_request event.",
        show_default=False,
    ),
]


def _show_version(value: bool) -> None:
    if value:  # eager: --json may not be parsed yet, so argv says whether it was given
        as_json = wants_json(sys.argv[1:])
        text = json.dumps({"version": __version__}) if as_json else f"previewctl {__version__}"
        sys.stdout.write(text + "\n")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        str,  # not Path: Path("") would be "." before the callback could see it is empty
        typer.Option(
            "--config",
            "-c",
            envvar="PREVIEWCTL_CONFIG",
            metavar="PATH",
            help="Path to previewctl.toml.",
            callback=usage.config_path,
        ),
    ] = "previewctl.toml",
    json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
    version: Annotated[  # noqa: ARG001 - handled by its eager callback
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    application = Application.of(ctx)
    application.config = Path(config)
    application.json = json_output
    application.verbose = verbose


@app.command(**helptext.for_command("plan"))
def plan(
    ctx: typer.Context,
    pr: PrOption = None,
    branch: BranchOption = None,
    profile: ProfileOption = None,
) -> None:
    from previewctl.cli.render.plan import render_plan
    from previewctl.ops.plan import build_plan

    application = Application.of(ctx)
    rt = application.runtime()
    result = build_plan(rt, pr, branch, tuple(profile or ()))
    application.show(result, render_plan)


@app.command(**helptext.for_command("up"))
def up(
    ctx: typer.Context,
    pr: PrOption = None,
    branch: BranchOption = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help=(
                "Only converge the app, IPs and machine and return once Fly accepted them "
                "(needs only the Fly token). A later `up` waits and does the rest."
            ),
        ),
    ] = False,
    profile: ProfileOption = None,
) -> None:
    from previewctl.ops.up import run_up

    application = Application.of(ctx)
    rt = application.runtime()
    result = run_up(rt, pr, branch, no_wait=no_wait, profiles=tuple(profile or ()))
    application.show_json_only(result)


@app.command(**helptext.for_command("seed"))
def seed(ctx: typer.Context, pr: PrOption = None, branch: BranchOption = None) -> None:
    from previewctl.ops.seed import run_seed

    application = Application.of(ctx)
    rt = application.runtime()
    result = run_seed(rt, pr, branch)
    application.show_json_only(result)


@app.command(**helptext.for_command("down"))
def down(ctx: typer.Context, pr: PrOption = None, branch: BranchOption = None) -> None:
    from previewctl.ops.down import run_down

    application = Application.of(ctx)
    rt = application.runtime()
    result = run_down(rt, pr, branch)
    application.show_json_only(result)


@app.command(**helptext.for_command("gc"))
def gc(
    ctx: typer.Context,
    max_age: Annotated[
        str | None,
        typer.Option(
            "--max-age",
            metavar="DURATION",
            help="Destroy previews whose last `up` is older (e.g. 36h, 7d).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; print what would be done.")
    ] = False,
) -> None:
    from previewctl.cli.render.gc import render_gc
    from previewctl.ops.gc import run_gc

    application = Application.of(ctx)
    rt = application.runtime()
    result = run_gc(rt, max_age=max_age, dry_run=dry_run)
    failed = "some previews could not be handled: see the rows marked failed"
    if application.json:
        data = result.to_json()
        if result.failed:  # the result, and the error object a failure always carries
            data.update(failure.error_object(1, "gc failed", failed, None))
        application.emit_json(data)
    else:
        application.print(render_gc(result))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command(**helptext.for_command("status"))
def status(ctx: typer.Context, pr: PrOption = None) -> None:
    from previewctl.cli.render.status import render_status
    from previewctl.ops.status import run_status

    application = Application.of(ctx)
    rt = application.runtime()
    result = run_status(rt, pr)
    application.show(result, render_status)


@app.command(**helptext.for_command("stop"))
def stop(ctx: typer.Context, pr: RequiredPr) -> None:
    from previewctl.ops.stop import run_stop

    application = Application.of(ctx)
    rt = application.runtime()
    result = run_stop(rt, pr)
    application.show_json_only(result)


@app.command(**helptext.for_command("resume"))
def resume(ctx: typer.Context, pr: RequiredPr, profile: ProfileOption = None) -> None:
    from previewctl.cli.render.resume import render_resumed
    from previewctl.ops.resume import resumed

    application = Application.of(ctx)
    rt = application.runtime()
    with resumed(rt, pr, tuple(profile or ())) as held:
        application.print(render_resumed(held, json_output=application.json))
        held.hold()


@app.command(**helptext.for_command("tunnel"))
def tunnel(ctx: typer.Context, pr: RequiredPr) -> None:
    from previewctl.cli.render.resume import render_tunneled
    from previewctl.ops.resume import tunneled

    application = Application.of(ctx)
    rt = application.runtime()
    with tunneled(rt, pr) as held:
        text = render_tunneled(held, json_output=application.json)
        if text is not None:
            application.print(text)
        held.hold()


class EnvFormat(StrEnum):
    shell = "shell"
    dotenv = "dotenv"
    json = "json"


@app.command(name="env", **helptext.for_command("env"))
def env_cmd(
    ctx: typer.Context,
    pr: RequiredPr,
    fmt: Annotated[EnvFormat, typer.Option("--format", "-f", help="Output format.")] = (
        EnvFormat.shell
    ),
) -> None:
    from previewctl.cli.render.env import render_env
    from previewctl.ops.envcmd import run_env

    application = Application.of(ctx)
    if application.json:  # its output is the secrets; --json promises none
        from previewctl.errors import InputError

        raise InputError(
            "`env` prints the preview's secret values, and --json never prints a secret",
            hint=f"for the env as JSON, run `previewctl env --pr {pr} --format json`",
        )
    rt = application.runtime()
    values = run_env(rt, pr)
    sys.stdout.write(render_env(values, fmt.value))
    sys.stdout.flush()


class TemplateName(StrEnum):
    agents = "agents"
    postgres = "postgres"


@app.command(**helptext.for_command("init"))
def init(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="The repository to write into.", file_okay=False),
    ] = Path("."),
    template: Annotated[
        TemplateName,
        typer.Option(
            "--template",
            "-t",
            help="agents: the shipped default (Doltgres, Postgres, SpiceDB, two Vercel "
            "projects); postgres: one Postgres, one tunnel, one migrate step, one project.",
        ),
    ] = TemplateName.agents,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    action: Annotated[
        str,
        typer.Option(
            "--action", metavar="OWNER/REPO@REF", help="The previewctl action the workflows use."
        ),
    ] = "OWNER/previewctl@v0",
) -> None:
    from previewctl.ops.init import render_init, run_init

    result = run_init(directory, template.value, force=force, action=action)
    Application.of(ctx).show(result.to_json(), lambda _data: render_init(result))


@app.command(**helptext.for_command("doctor"))
def doctor(
    ctx: typer.Context,
) -> None:
    from previewctl.ops.doctor import render_doctor, run_doctor

    application = Application.of(ctx)
    rt = application.runtime()
    checks = run_doctor(rt)
    failed = any(c.status == "fail" for c in checks)
    if application.json:
        data: dict[str, Any] = {"ok": not failed, "checks": [c.to_json() for c in checks]}
        if failed:  # the result, and the error object a failure always carries
            message = "some checks failed: see the checks marked fail"
            data.update(failure.error_object(1, "doctor found problems", message, None))
        application.emit_json(data)
    else:
        application.print(render_doctor(checks))
    if failed:
        raise typer.Exit(1)


# ---- the one place errors become messages and exit codes (helpers: cli/ending.py) -------


def main() -> None:
    process_exit.install()
    try:
        _main(Application())
    finally:
        process_exit.ignore_interrupts_if_interrupted()


def _main(application: Application) -> None:
    ending.tolerant_streams()
    json_mode = functools.partial(ending.json_mode, application)
    try:
        result = app(standalone_mode=False, obj=application)
    except click_exceptions.UsageError as exc:
        ending.usage_error(application, exc)
    except click_exceptions.ClickException as exc:
        failure.fail(exc.exit_code, "error", exc.format_message(), json_mode=json_mode())
    except (KeyboardInterrupt, typer.Abort):
        result = 130
    except SystemExit:
        raise
    except Exception as exc:
        from previewctl.errors import PreviewctlError

        if isinstance(exc, PreviewctlError):
            parsed = ending.json_mode(application, parsed=True)
            failure.fail(exc.exit_code, exc.title, exc.message, exc.hint, json_mode=parsed)
        ending.unexpected(application, exc)
    if result == 130:  # typer turns KeyboardInterrupt (Ctrl-C, our SIGTERM) into Exit(130)
        failure.fail(
            130,
            "interrupted",
            "everything previewctl started has been stopped",
            json_mode=json_mode(),
            annotate=False,
            prefix="interrupted: ",
        )
    if isinstance(result, int) and result:
        raise SystemExit(result)
