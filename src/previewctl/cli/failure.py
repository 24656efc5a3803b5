"""How a failure reaches the person, the CI log and a program reading ``--json``.

Text: ``error: MESSAGE`` and ``hint: HINT`` on stderr (plus an ``::error``
annotation inside GitHub Actions). ``--json``: additionally ONE object on stdout,
``{"error": {"title", "message", "hint", "exit_code"}}``, whose ``exit_code`` is the
process's. Everything passes through :func:`redact.scrub`.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

from previewctl import redact


def error_object(code: int, title: str, message: str, hint: str | None) -> dict[str, Any]:
    return {
        "error": {
            "title": title,
            "message": redact.scrub(message),
            "hint": redact.scrub(hint) if hint else None,
            "exit_code": code,
        }
    }


def emit_json_error(code: int, title: str, message: str, hint: str | None) -> None:
    text = json.dumps(error_object(code, title, message, hint), indent=2, sort_keys=True)
    sys.stdout.write(redact.scrub(text) + "\n")
    sys.stdout.flush()


def fail(
    code: int,
    title: str,
    message: str,
    hint: str | None = None,
    *,
    json_mode: bool = False,
    annotate: bool = True,
    prefix: str = "error: ",
) -> NoReturn:
    """Say what went wrong (stderr, annotation, JSON) and exit with ``code``."""
    from previewctl.actions import GitHubActions

    actions = GitHubActions(os.environ)
    text = redact.scrub(message)
    if annotate:
        actions.annotate("error", text, title)
    # actions.text: a step's output quoted in the message never reads as a workflow command
    sys.stderr.write(actions.text(f"{prefix}{text}\n"))
    if hint:
        sys.stderr.write(actions.text(f"hint: {redact.scrub(hint)}\n"))
    sys.stderr.flush()
    if json_mode:
        emit_json_error(code, title, message, hint)
    raise SystemExit(code)
