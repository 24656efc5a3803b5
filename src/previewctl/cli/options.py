"""Global options that work before or after the command, as gh's persistent flags do.

``previewctl --json plan`` and ``previewctl plan --pr 3 --json`` mean the same: the
group parses the options it sees before the command, and :class:`PreviewctlGroup`
gives every command (also those added later) its own copy of ``--config``, ``--json``
and ``-v``, whose callbacks write the same :class:`Application` (the context object).
A command's own copy has no default and no env var, so it only ever overrides what
was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from previewctl.cli.application import Application
from previewctl.cli.usage import config_path

GLOBAL_NAMES = ("--config", "--json", "--verbose")
CONFIG_HELP = "Path to previewctl.toml (env PREVIEWCTL_CONFIG; default ./previewctl.toml)."
JSON_HELP = 'Print one JSON object on stdout (no secrets); a failure is {"error": {...}}.'
VERBOSE_HELP = "Show each API call and more detail."


ProfileOption = Annotated[
    list[str] | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help=(
            "Turn on a [profiles.NAME] of the config (repeatable). Default: "
            "$PREVIEWCTL_PROFILES (a,b), else the PR's labels on a pull_request event, "
            "else the set recorded on the preview."
        ),
        show_default=False,
    ),
]


def _set_config(ctx: typer.Context, value: str | None) -> None:
    path = config_path(value)
    if path is not None:
        Application.of(ctx).config = path


def _set_json(ctx: typer.Context, value: bool) -> None:
    if value:
        Application.of(ctx).json = True


def _set_verbose(ctx: typer.Context, value: bool) -> None:
    if value:
        Application.of(ctx).verbose = True


def _template(
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            metavar="PATH",
            help=CONFIG_HELP,
            expose_value=False,
            callback=_set_config,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help=JSON_HELP, expose_value=False, callback=_set_json)
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help=VERBOSE_HELP, expose_value=False, callback=_set_verbose
        ),
    ] = False,
) -> None:
    """Never called: typer builds the options from this signature."""


@cache
def command_params() -> tuple[Any, ...]:
    """A command's copy of the global options (no defaults: they only override).

    Built by typer from :func:`_template`, so they are typer's own option objects
    whatever click typer carries.
    """
    helper = typer.Typer(add_completion=False)
    helper.command()(_template)
    params = typer.main.get_command(helper).params
    return tuple(p for p in params if set(getattr(p, "opts", ())) & set(GLOBAL_NAMES))


def _summary(text: str) -> str:
    """The first paragraph of a help text, on one line (never cut off)."""
    first = text.strip().split("\n\n", 1)[0]
    return " ".join(first.replace("\b", "").split())


class PreviewctlGroup(TyperGroup):
    """Adds the global options to every command and keeps command summaries whole."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for command in self.commands.values():
            names = {opt for p in command.params for opt in getattr(p, "opts", ())}
            if not names.intersection(GLOBAL_NAMES):
                command.params.extend(command_params())
            if not command.short_help and command.help:
                command.short_help = _summary(command.help)


def wants_json(argv: Sequence[str]) -> bool:
    """``--json`` anywhere before ``--``: for failures found before the parser set it."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False
