"""What an API's answer says, read defensively: its JSON body, a short field, its message.

Error bodies are shown only through these (and then redacted by structure): a body
without a message field is described by its size and type, never shown.
"""

from __future__ import annotations

from typing import Any

import httpx


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body, or None when there is none."""
    try:
        return response.json()
    except ValueError:
        return None


def text_field(value: Any) -> str | None:
    """A short scalar field (a code, a status) as text; anything else is not shown."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)[:100]
    return None


def no_message(response: httpx.Response) -> str:
    """What is said about a body that has no message field: its size and type, no content."""
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "untyped"
    size = len(response.content)
    reason = response.reason_phrase or f"HTTP {response.status_code}"
    if not size:
        return reason
    return f"{reason} (a {size}-byte {kind} body without a message field; not shown)"


def message_field(response: httpx.Response, value: Any) -> str:
    """The API's message when it is text, else :func:`no_message`."""
    return value if isinstance(value, str) and value.strip() else no_message(response)
