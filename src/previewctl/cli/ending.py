"""How a run of the command line ends when it fails: whether the failure is also a JSON
object on stdout, usage errors worded for a person, unexpected errors (bugs), and output
streams that never kill the command over a character they cannot encode."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from previewctl import streams
from previewctl.cli import failure, process_exit, usage
from previewctl.cli.application import Application
from previewctl.cli.options import wants_json

try:  # newer typer vendors its own click; its exceptions are not click's
    from typer._click import exceptions as click_exceptions  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions  # type: ignore[no-redef,unused-ignore]


def unexpected(application: Application, exc: Exception) -> NoReturn:
    from previewctl.actions import GitHubActions

    short = process_exit.format_exception(exc, full=False)
    actions = GitHubActions(os.environ)
    actions.annotate("error", short, "unexpected error (a bug in previewctl)")
    text = process_exit.format_exception(exc, full=True) if application.verbose else short
    sys.stderr.write("unexpected error (a bug in previewctl):\n" + actions.text(text))
    if not application.verbose:
        sys.stderr.write("run with -v for the traceback\n")
    sys.stderr.flush()
    if json_mode(application):
        message = "unexpected error (a bug in previewctl): " + short.strip()
        failure.emit_json_error(1, "unexpected error", message, "run with -v for the traceback")
    raise SystemExit(1)


def json_mode(application: Application, *, parsed: bool = False) -> bool:
    """Whether a failure also goes to stdout as JSON: asked for, and no object printed yet
    (stdout holds one JSON object, also when a `tunnel --json` is interrupted).

    ``parsed``: the command line was parsed (the error came from the command), so
    ``--json`` counts only as an option, never as another option's value
    (`--branch --json`); otherwise argv is all there is to go by.
    """
    if application.emitted:
        return False
    return application.json or (not parsed and wants_json(sys.argv[1:]))


def usage_error(application: Application, exc: click_exceptions.UsageError) -> NoReturn:
    no_args = getattr(click_exceptions, "NoArgsIsHelpError", None)
    if no_args is not None and isinstance(exc, no_args) and exc.ctx is not None:
        # bare `previewctl`: the help, on stdout, exit 0 (as gh does)
        sys.stdout.write(exc.ctx.get_help() + "\n")
        raise SystemExit(0)
    if isinstance(exc, click_exceptions.NoSuchOption):
        exc.possibilities = usage.option_suggestion(exc.option_name, exc.ctx)
    hint = f"run '{exc.ctx.command_path} --help' for help" if exc.ctx is not None else None
    failure.fail(2, "usage error", exc.format_message(), hint, json_mode=json_mode(application))


def tolerant_streams() -> None:
    """A stream that cannot encode a character (an ASCII or cp1252 console, a
    PYTHONIOENCODING) shows it escaped: a result line must never kill the command.

    A stream the caller closed (``>&-``: Python then has no ``sys.stdout``) takes what
    would be printed and drops it, as ``>/dev/null`` would: the command still does its
    work and its exit code still says how it went."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    # A reader that went away (`| head -c0`) is a closed stream too: see previewctl.streams.
    sys.stdout = streams.tolerate_broken_pipes(sys.stdout)
    sys.stderr = streams.tolerate_broken_pipes(sys.stderr)
