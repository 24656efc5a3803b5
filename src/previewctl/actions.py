"""GitHub Actions integration: masks, groups, annotations, outputs, step summary.

Workflow commands are written to stderr: the runner reads commands from both
streams, and stdout stays clean for ``--json`` and ``env`` output.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from previewctl import redact

# The runner takes a line that starts with "::" once leading spaces are trimmed as a
# workflow command. Only previewctl's own commands may: text it prints (a step's output,
# an API's message) could otherwise stop command processing or set outputs.
_COMMAND_LIKE = re.compile(r"^([ \t]*)(?=::)", re.MULTILINE)


def inert(text: str) -> str:
    """``text`` with every line that would read as a workflow command prefixed by "> "."""
    return _COMMAND_LIKE.sub(r"\1> ", text)


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


class GitHubActions:
    """Writes workflow commands and files; a no-op object when not inside Actions."""

    def __init__(self, env: Mapping[str, str], stream: TextIO | None = None) -> None:
        self.enabled = env.get("GITHUB_ACTIONS") == "true"
        self._output_path = env.get("GITHUB_OUTPUT") if self.enabled else None
        self._summary_path = env.get("GITHUB_STEP_SUMMARY") if self.enabled else None
        self._stream = stream
        self._lock = threading.Lock()

    def text(self, text: str) -> str:
        """What may be printed as plain text: never a workflow command (in Actions)."""
        return inert(text) if self.enabled else text

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def _command(self, line: str) -> None:
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    # Masks must not pass through redact.scrub: they carry the value on purpose.
    def add_mask(self, value: str) -> None:
        if not self.enabled:
            return
        for part in value.splitlines() or [value]:
            if part.strip():
                self._command(f"::add-mask::{_escape_data(part)}")

    def start_group(self, title: str) -> None:
        if self.enabled:
            self._command(f"::group::{_escape_data(redact.scrub(title))}")

    def end_group(self) -> None:
        if self.enabled:
            self._command("::endgroup::")

    def annotate(self, level: str, message: str, title: str | None = None) -> None:
        """``level`` is error, warning or notice."""
        if not self.enabled:
            return
        props = f" title={_escape_property(redact.scrub(title))}" if title else ""
        self._command(f"::{level}{props}::{_escape_data(redact.scrub(message))}")

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        if not self._output_path:
            return
        lines: list[str] = []
        for name, raw in outputs.items():
            value = redact.scrub(raw)
            if "\n" in value or "\r" in value:
                delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
                while delimiter in value:
                    delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
                lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                lines.append(f"{name}={value}\n")
        with Path(self._output_path).open("a", encoding="utf-8") as fh:
            fh.write("".join(lines))

    def append_summary(self, markdown: str) -> None:
        if not self._summary_path:
            return
        with Path(self._summary_path).open("a", encoding="utf-8") as fh:
            fh.write(redact.scrub(markdown).rstrip("\n") + "\n")


def from_environ() -> GitHubActions:
    return GitHubActions(os.environ)
