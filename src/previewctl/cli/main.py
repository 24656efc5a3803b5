"""Typer commands: parse, build the runtime, call an operation, render. Nothing else.

Heavy modules are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from previewctl.cli import process_exit

try:  # newer typer vendors its own click; its exceptions are not click's
    from typer._click import exceptions as click_exceptions  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions  # type: ignore[no-redef,unused-ignore]

if TYPE_CHECKING:
    from previewctl.ops.runtime import Runtime

app = typer.Typer(
    name="previewctl",
    help=(
        "Give every pull request its own preview backend on Fly.io and wire it into the "
        "PR's Vercel preview deployments.\n\n"
        "Typical flow: `previewctl up` then `previewctl seed` on PR push, `previewctl down` "
        "on close, `previewctl gc` on a schedule; `previewctl resume --pr N` on a laptop.\n\n"
        "Exit codes: 0 done, 1 an operation failed, 2 bad input (nothing changed), "
        "130 interrupted (after cleanup)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # tracebacks with locals could print secrets
    add_completion=False,
    rich_markup_mode=None,
)


class State:
    config: Path = Path("previewctl.toml")
    json: bool = False
    verbose: bool = False


state = State()

TOKEN_VARS = ("FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN")

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


@app.callback()
def _global(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            envvar="PREVIEWCTL_CONFIG",
            help="Path to previewctl.toml.",
            dir_okay=False,
        ),
    ] = Path("previewctl.toml"),
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object on stdout at the end (no secrets)."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each API call and more detail.")
    ] = False,
) -> None:
    state.config = config
    state.json = json_output
    state.verbose = verbose


def _runtime() -> Runtime:
    from previewctl import redact
    from previewctl.ops.runtime import Runtime

    rt = Runtime.from_environ(state.config, verbose=state.verbose)
    redact.on_register(rt.actions.add_mask)
    for name in TOKEN_VARS:  # no output may carry a token either (an echoed header, say)
        token = rt.env.get(name, "").strip()
        if token:
            redact.register(token)
            redact.register(token.rpartition(" ")[2])  # "FlyV1 fm2_…": the token itself
    return rt


def _emit_json(data: dict[str, Any]) -> None:
    from previewctl import redact

    sys.stdout.write(redact.scrub(json.dumps(data, indent=2, sort_keys=True, default=str)) + "\n")
    sys.stdout.flush()


def _print(text: str) -> None:
    from previewctl import redact

    sys.stdout.write(redact.scrub(text) + ("" if text.endswith("\n") else "\n"))
    sys.stdout.flush()


@app.command()
def plan(pr: PrOption = None, branch: BranchOption = None) -> None:
    """Show everything `up` would do, with no credentials and no network. Validates the config."""
    from previewctl.ops.plan import build_plan, render_plan

    rt = _runtime()
    result = build_plan(rt, pr, branch)
    if state.json:
        _emit_json(result)
    else:
        _print(render_plan(result))


@app.command()
def up(
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
) -> None:
    """Create or converge the PR's preview: app, machine, tunnels, steps, Vercel, comment.

    Idempotent: a repeated run with nothing changed makes no mutating call.
    In a workflow, run `up --no-wait` first so the machine boots while the runner
    installs the repository's tooling.
    """
    from previewctl.ops.up import run_up

    rt = _runtime()
    result = run_up(rt, pr, branch, no_wait=no_wait)
    if state.json:
        _emit_json(result)


@app.command()
def seed(pr: PrOption = None, branch: BranchOption = None) -> None:
    """Run the [[seed]] steps against the PR's preview (waits for Vercel where needed)."""
    from previewctl.ops.seed import run_seed

    rt = _runtime()
    result = run_seed(rt, pr, branch)
    if state.json:
        _emit_json(result)


@app.command()
def down(pr: PrOption = None, branch: BranchOption = None) -> None:
    """Remove the PR's preview: its Vercel vars and domains, then the Fly app.

    Only what previewctl made is touched; an already removed preview is success.
    """
    from previewctl.ops.down import run_down

    rt = _runtime()
    result = run_down(rt, pr, branch)
    if state.json:
        _emit_json(result)


@app.command()
def gc(
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
    """Destroy previews of closed, merged or missing PRs and stale ones; sweep Vercel vars.

    Only what gc KNOWS is done goes: a preview whose PR state GitHub did not tell (an
    error, a rate limit) or whose machine Fly cannot show is kept as "undecided".
    Exit 0 when every row was decided and done; 1 when a row failed or is undecided
    (everything decidable is still done; a re-run finishes the rest); 2 bad input.
    """
    from previewctl.cli.render.gc import render_gc
    from previewctl.ops.gc import run_gc

    rt = _runtime()
    result = run_gc(rt, max_age=max_age, dry_run=dry_run)
    if state.json:
        _emit_json(result.to_json())
    else:
        _print(render_gc(result))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command()
def status(pr: PrOption = None) -> None:
    """List previews (state, age, cost), or show one preview in detail with --pr."""
    from previewctl.cli.render.status import render_status
    from previewctl.ops.status import run_status

    rt = _runtime()
    result = run_status(rt, pr)
    if state.json:
        _emit_json(result)
    else:
        _print(render_status(result))


@app.command()
def stop(pr: RequiredPr) -> None:
    """Stop the preview's machine to save cost (data is lost; `resume` brings it back)."""
    from previewctl.ops.lifecycle import run_stop

    rt = _runtime()
    result = run_stop(rt, pr)
    if state.json:
        _emit_json(result)


@app.command()
def resume(pr: RequiredPr) -> None:
    """Start a stopped preview, re-run [[steps]], and keep tunnels open until Ctrl-C."""
    from previewctl.ops.resume import run_resume

    rt = _runtime()
    run_resume(rt, pr, json_output=state.json)


@app.command()
def tunnel(pr: RequiredPr) -> None:
    """Open the preview's tunnels in the foreground until Ctrl-C."""
    from previewctl.ops.resume import run_tunnel

    rt = _runtime()
    run_tunnel(rt, pr, json_output=state.json)


class EnvFormat(StrEnum):
    shell = "shell"
    dotenv = "dotenv"
    json = "json"


@app.command(name="env")
def env_cmd(
    pr: RequiredPr,
    fmt: Annotated[EnvFormat, typer.Option("--format", "-f", help="Output format.")] = (
        EnvFormat.shell
    ),
) -> None:
    """Print the env for local tools, pointing at the tunnel ports.

    Use it as `eval "$(previewctl env --pr N)"` after `previewctl tunnel --pr N`.

    The values hold the preview's secrets: they are printed only here, on stdout.
    """
    from previewctl.ops.envcmd import render_env, run_env

    rt = _runtime()
    values = run_env(rt, pr)
    sys.stdout.write(render_env(values, fmt.value))
    sys.stdout.flush()


class TemplateName(StrEnum):
    agents = "agents"
    postgres = "postgres"


@app.command()
def init(
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
    """Write previewctl.toml, .fly/machine-config.json and the two workflows into DIR.

    Never overwrites a file without --force. Prints what it wrote and what is left to do.
    """
    from previewctl.ops.init import render_init, run_init

    result = run_init(directory, template.value, force=force, action=action)
    if state.json:
        _emit_json(result.to_json())
    else:
        _print(render_init(result))


@app.command()
def doctor() -> None:
    """Check the set-up with read-only calls and report every problem at once.

    Covers the config, the Fly token and org, flyctl, each Vercel project and its
    domain's parent on the team, and the GitHub token. Exit 0 all pass, 1 something
    will fail (each with a hint), 2 a bad command line.
    """
    from previewctl.ops.doctor import render_doctor, run_doctor

    rt = _runtime()
    checks = run_doctor(rt)
    failed = any(c.status == "fail" for c in checks)
    if state.json:
        _emit_json({"ok": not failed, "checks": [c.to_json() for c in checks]})
    else:
        _print(render_doctor(checks))
    if failed:
        raise typer.Exit(1)


# ---- the one place errors become messages and exit codes ---------------------------------


def _unexpected(exc: Exception) -> NoReturn:
    from previewctl.actions import GitHubActions

    short = process_exit.format_exception(exc, full=False)
    GitHubActions(os.environ).annotate("error", short, "unexpected error (a bug in previewctl)")
    text = process_exit.format_exception(exc, full=True) if state.verbose else short
    sys.stderr.write("unexpected error (a bug in previewctl):\n" + text)
    if not state.verbose:
        sys.stderr.write("run with -v for the traceback\n")
    sys.stderr.flush()
    raise SystemExit(1)


def _fail(code: int, title: str, message: str, hint: str | None = None) -> NoReturn:
    from previewctl import redact
    from previewctl.actions import GitHubActions

    actions = GitHubActions(os.environ)
    text = redact.scrub(message)
    actions.annotate("error", text, title)
    sys.stderr.write(f"error: {text}\n")
    if hint:
        sys.stderr.write(f"hint: {redact.scrub(hint)}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def main() -> None:
    process_exit.install()
    try:
        _main()
    finally:
        process_exit.ignore_interrupts_if_interrupted()


def _main() -> None:
    try:
        result = app(standalone_mode=False)
    except click_exceptions.UsageError as exc:
        ctx_help = ""
        if exc.ctx is not None:
            ctx_help = f"Try '{exc.ctx.command_path} --help' for help.\n"
        sys.stderr.write(f"error: {exc.format_message()}\n{ctx_help}")
        raise SystemExit(2) from None
    except click_exceptions.ClickException as exc:
        sys.stderr.write(f"error: {exc.format_message()}\n")
        raise SystemExit(exc.exit_code) from None
    except (KeyboardInterrupt, typer.Abort):
        result = 130
    except SystemExit:
        raise
    except Exception as exc:
        from previewctl.errors import PreviewctlError

        if isinstance(exc, PreviewctlError):
            _fail(exc.exit_code, exc.title, exc.message, exc.hint)
        _unexpected(exc)
    if result == 130:  # typer turns KeyboardInterrupt (Ctrl-C, our SIGTERM) into Exit(130)
        sys.stderr.write("interrupted: everything previewctl started has been stopped\n")
        raise SystemExit(130)
    if isinstance(result, int) and result:
        raise SystemExit(result)
