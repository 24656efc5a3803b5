"""The application object of one run of the command line (hatch's ``Application``).

It holds what the global options said, builds the :class:`Runtime` a command works
with, and is the one way results reach stdout. ``main()`` makes it and hands it to
click as the context object (``ctx.obj``): there is no module-global state, and the
error handler that runs after the command has finished reads the same object.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from previewctl.ops.runtime import Runtime

# No output may carry a token either (an echoed header, say).
TOKEN_VARS = ("FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN")


@dataclass
class Application:
    config: Path = Path("previewctl.toml")
    json: bool = False
    verbose: bool = False
    emitted: bool = False
    """A result went to stdout under --json: it is the one object (no error object after)."""

    @classmethod
    def of(cls, ctx: typer.Context) -> Application:
        """The run's application (one is made when a caller did not pass it)."""
        return ctx.ensure_object(cls)

    def runtime(self) -> Runtime:
        from previewctl import redact
        from previewctl.ops.runtime import Runtime

        rt = Runtime.from_environ(self.config, verbose=self.verbose)
        redact.on_register(rt.actions.add_mask)
        for name in TOKEN_VARS:
            token = rt.env.get(name, "").strip()
            if token:
                redact.register(token)
                redact.register(token.rpartition(" ")[2])  # "FlyV1 fm2_…": the token itself
        return rt

    def emit_json(self, data: dict[str, Any]) -> None:
        from previewctl import redact

        text = json.dumps(data, indent=2, sort_keys=True, default=str)
        sys.stdout.write(redact.scrub(text) + "\n")
        sys.stdout.flush()
        self.emitted = True

    def print(self, text: str) -> None:
        from previewctl import redact

        sys.stdout.write(redact.scrub(text) + ("" if text.endswith("\n") else "\n"))
        sys.stdout.flush()
        self.emitted = self.emitted or self.json  # under --json, what it prints is the object

    def show(self, data: dict[str, Any], render: Callable[[dict[str, Any]], str]) -> None:
        """The result as one JSON object with ``--json``, else as ``render`` writes it."""
        if self.json:
            self.emit_json(data)
        else:
            self.print(render(data))

    def show_json_only(self, data: dict[str, Any]) -> None:
        """Commands whose text output is their progress on stderr: stdout only for --json."""
        if self.json:
            self.emit_json(data)
