"""Credentials as the environment holds them.

A blank variable counts as unset; a token that no HTTP header can carry (a line break
from a bad paste, a control or non-ASCII character) is bad input, found before the
first request and described without its value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from previewctl import redact
from previewctl.errors import InputError

TOKEN_VARS = ("FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN")
# Visible ASCII words, one space between them ("FlyV1 fm2_…,fm2_…" has one).
_SENDABLE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_SCHEMES = frozenset({"bearer", "token"})
_SCHEME_WORDS = frozenset({"bearer", "token", "flyv1", "basic"})


def read_token(env: Mapping[str, str], name: str) -> str | None:
    """The token in ``name`` without surrounding whitespace; None when unset or blank."""
    token = (env.get(name) or "").strip()
    if not token:
        return None
    if not _SENDABLE.fullmatch(token):
        raise InputError(
            f"{name} holds characters no token has (a line break, a tab, a control or "
            "non-ASCII character)",
            hint=f"set {name} again from the token itself (in Actions, the repository secret)",
        )
    return token


def fly_token(env: Mapping[str, str]) -> str | None:
    """``FLY_API_TOKEN``, else ``FLY_ACCESS_TOKEN`` (Fly's own tools read both)."""
    return read_token(env, "FLY_API_TOKEN") or read_token(env, "FLY_ACCESS_TOKEN")


def without_scheme(token: str) -> str:
    """``Bearer abc`` -> ``abc``: a token pasted with its scheme does not get a second one."""
    scheme, space, rest = token.partition(" ")
    return rest if space and scheme.lower() in _SCHEMES else token


def register_tokens(env: Mapping[str, str]) -> None:
    """No output may carry a token: not even one an API or a tool echoes back."""
    for name in TOKEN_VARS:
        token = (env.get(name) or "").strip()
        if token:
            redact.register(token)
            for part in token.split():
                if part.lower() not in _SCHEME_WORDS:
                    redact.register(part)
