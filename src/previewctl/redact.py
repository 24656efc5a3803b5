"""Secret values and their redaction.

Two kinds, used together:

- Known values. Every value previewctl generates, reads back or renders from a
  secret is registered here the moment it exists; every line previewctl prints,
  every error message and every traceback passes through :func:`scrub` first. In
  GitHub Actions the registration also emits ``::add-mask::`` so that the runner
  masks anything a child process prints.
- Structure. Text previewctl did not write (an API's error message, a traceback)
  may carry secrets previewctl has not read yet: :func:`scrub_structure` masks what
  looks like one whatever its value (URL passwords; values of keys named like a
  secret, key, token, password or credential; everything under ``env`` and
  ``metadata``), in JSON, Python reprs, Go maps and ``KEY=VALUE`` text alike.
  :func:`clean` applies both.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import urllib.parse
from collections.abc import Callable
from typing import TextIO

MASK = "***"

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None
_on_register: list[Callable[[str], None]] = []

# Shorter values would turn ordinary words into asterisks; none of ours are that short.
_MIN_LEN = 4


def on_register(callback: Callable[[str], None]) -> None:
    """Call ``callback(value)`` for every value registered from now on (and those before)."""
    with _lock:
        _on_register.append(callback)
        existing = sorted(_values)
    for value in existing:
        callback(value)


def _forms(value: str) -> list[str]:
    """The value as it may be printed: itself, percent-encoded in a URL, escaped in JSON."""
    forms = [value, urllib.parse.quote(value, safe=""), json.dumps(value)[1:-1]]
    return list(dict.fromkeys(forms))


def register(value: str) -> None:
    """Mark ``value`` as secret: it is scrubbed from all output from now on."""
    global _pattern
    if len(value) < _MIN_LEN:
        return
    with _lock:
        new = [form for form in _forms(value) if form not in _values]
        if not new:
            return
        _values.update(new)
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))
        callbacks = list(_on_register)
    for form in new:
        for callback in callbacks:
            callback(form)


def register_if_contains_secret(text: str) -> None:
    """Register ``text`` itself when it embeds a secret (a URL with a password, say)."""
    if _pattern is not None and text != scrub(text):
        register(text)


def register_url_passwords(text: str, sources: list[str]) -> None:
    """Register the password of every URL in ``text`` made (in part) of one of ``sources``
    (the ``${env.NAME}`` values a template put there): whatever its name, it is one.
    Only those: a literal password in the config (``postgres:postgres@``) is no secret,
    and masking it would mask the word everywhere."""
    if not any(sources):
        return
    for match in _URL_PASSWORD.finditer(text):
        password = match["pw"]
        if any(source and source in password for source in sources):
            register(password)


def scrub(text: str) -> str:
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def clean(text: str) -> str:
    """Both redactions: the structure first (it needs the text whole), then known values."""
    return scrub(scrub_structure(text))


def reset_for_tests() -> None:
    global _pattern
    with _lock:
        _values.clear()
        _on_register.clear()
        _pattern = None


def write(stream: TextIO | None, text: str) -> None:
    """Write scrubbed text to a stream (stderr by default)."""
    out = stream or sys.stderr
    out.write(scrub(text))
    out.flush()


# ---- structural redaction ------------------------------------------------------------------

# A key whose value is masked, whatever it is (case-insensitive, anywhere in the name).
_SECRET_WORDS = (
    "secret",
    "key",
    "token",
    "passw",
    "pwd",
    "auth",
    "cred",
    "cookie",
    "salt",
    "session",
    "signature",
    "raw_value",
)
# "pass" only as a part of its own (DB_PASS, pass, pass.db): not passed, passing, compass.
_PASS_PART = re.compile(r"(?i)(?:^|[_.\-])pass(?:phrase)?(?:$|[_.\-])")
# Keys whose every value is masked (the names inside are kept: they help debugging).
_BLOCK_KEYS = frozenset({"env", "envs", "environment", "metadata"})
# Only as a quoted (JSON / repr) key: Vercel's {"key", "value"} and Fly's files' raw_value.
_QUOTED_ONLY = frozenset({"value", "values", "raw_value"})
_AUTH_SCHEMES = frozenset({"bearer", "basic", "flyv1", "token"})

# A key and its separator: `KEY=`, `KEY:`, `"KEY":`, `'KEY':`, `\"KEY\":` (escaped JSON).
# It starts only where a word starts: a long word is tried once, not once per letter.
_KEY_RE = re.compile(
    r"(?<![\w.\-\\])(?P<q>\\*[\"']?)(?P<key>[A-Za-z_\-][\w.\-]*)(?P=q)\s*(?:=>?|:(?!//))[ \t]*"
)
# Inside Go's map[K:V ...]: the key runs to the first colon.
_GO_KEY_RE = re.compile(r"(?:(?<=[\s\[])|^)(?P<q>)(?P<key>[^\s:\[\]]+):")
_BARE_END = re.compile(r"[\s,;&)}\]\"'<>]")
_GO_BARE_END = re.compile(r"[\s\]]")  # Go prints map values raw: only a space or ] ends one
_URL_PASSWORD = re.compile(
    r"(?i)\b(?P<pre>[a-z][a-z0-9+.\-]{0,30}://[^\s/@:\"'<>]{0,200}:)(?P<pw>[^\s@\"'<>]{1,200})(?=@)"
)
_SCHEME_TOKEN = re.compile(r"(?i)\b(?P<pre>(?:bearer|basic|flyv1)\s+)[A-Za-z0-9._~+/=\-]{8,}")
_PREFIXED_TOKEN = re.compile(
    r"\b(?:fm[12][ar]?_|fo1_|gh[pousr]_|github_pat_)[A-Za-z0-9._+/=\-]{8,}"
)
# Shapes without a `KEY=` of their own. A flag named like a secret and the word after it:
# `--password V` (a shell, Go's %v of an argv), `"--password", "V"` (an argv list).
_FLAG_VALUE = re.compile(
    r"(?<![\w\-])(?P<flag>--?[A-Za-z][\w.\-]*)(?P<sep>\\*[\"']\s*,\s*\\*[\"']|[ \t]+)"
    r"(?P<value>(?!-)[^\s\"'\\,\[\]{}()<>;]+)"
)
# <password>V</password>, and a form field: name="password" ... value="V".
_TAG = re.compile(r"<(?P<tag>[A-Za-z][\w.\-:]*)(?:\s[^<>]*)?>(?P<value>[^<]{1,2000})</(?P=tag)\s*>")
_FORM_FIELD = re.compile(
    r"(?i)\bname\s*=\s*[\"']?(?P<name>[\w.\-\[\]]+)[\"']?(?P<mid>[^<>]{0,200}?\bvalue\s*=\s*[\"']?)"
    r"(?P<value>[^\"'<>\s]+)"
)
_PEM = re.compile(
    r"(?P<begin>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----).*?"
    r"(?P<end>-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.S,
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")
# A word holding percent-escapes (`redirect=postgres%3A%2F%2Fu%3Apw%40h`): read decoded.
_ENCODED = re.compile(r"(?<![^\s\"'<>])[^\s\"'<>]*?%[0-9A-Fa-f]{2}[^\s\"'<>]*")
# A YAML value on the next line (`password:` then the value, or a `|` block).
_NEXT_LINE = re.compile(r"[ \t]*\r?\n[ \t]*")
_YAML_BLOCK = frozenset({"", "|", ">", "|-", ">-", "|+", ">+"})
_OPEN = "{[("
_CLOSE = "}])"


def _sensitive(key: str, quoted: bool) -> bool:
    low = key.lower()
    if quoted and low in _QUOTED_ONLY:
        return True
    return any(word in low for word in _SECRET_WORDS) or _PASS_PART.search(key) is not None


def _quoted_end(text: str, start: int) -> int:
    """End (exclusive) of the quoted string whose opening quote (after any backslashes
    that escape it) begins at ``start``; the end of the text when it is cut off."""
    slashes = 0
    while start + slashes < len(text) - 1 and text[start + slashes] == "\\":
        slashes += 1
    quote = text[start + slashes]
    i = start + slashes + 1
    while i < len(text):
        if text[i] == quote:
            before = 0
            while text[i - 1 - before] == "\\":
                before += 1
            # a quote escaped k times (k = 2^n - 1 backslashes) closes when what precedes
            # it, once unescaped, is an even run: k + 2(k+1)m backslashes
            if before >= slashes and (before - slashes) % (2 * (slashes + 1)) == 0:
                return i + 1
        i += 1
    return len(text)


def _go_map_end(text: str, start: int) -> int:
    """End (exclusive) of Go's ``map[...]`` whose ``[`` is at ``start``: Go prints the
    values raw, so only square brackets count (cut off: the text's end)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "[":
            depth += 1
        elif text[i] == "]":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _block_end(text: str, start: int) -> int:
    """End (exclusive) of the bracketed block opening at ``start`` (cut off: the text's end)."""
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\":
            run = len(text[i:]) - len(text[i:].lstrip("\\"))
            if text[i + run : i + run + 1] in ('"', "'"):
                i = _quoted_end(text, i)
            else:
                i += run
            continue
        if char in "\"'":
            i = _quoted_end(text, i)
            continue
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def _value_end(text: str, start: int, key: str, bare_end: re.Pattern[str] = _BARE_END) -> int:
    """Where the value that starts at ``start`` ends: a string, a block or a bare word."""
    if start >= len(text):
        return start
    if text.startswith("map[", start):
        return _go_map_end(text, start + 3)
    char = text[start]
    if bare_end is not _GO_BARE_END:  # Go prints map values raw: no quotes, no blocks
        if char in "\"'" or (char == "\\" and text[start:].lstrip("\\")[:1] in ('"', "'")):
            return _quoted_end(text, start)
        if char in _OPEN:
            return _block_end(text, start)
    match = bare_end.search(text, start)
    end = match.start() if match else len(text)
    word = text[start:end]
    if "auth" in key.lower() and word.lower() in _AUTH_SCHEMES and text[end : end + 1] == " ":
        match = _BARE_END.search(text, end + 1)
        end = match.start() if match else len(text)
    return end


def _mask_value(text: str, start: int, end: int, *, block: bool) -> str:
    value = text[start:end]
    if not value:
        return value
    if block and (value.startswith("map[") or value[0] in _OPEN):
        head = 4 if value.startswith("map[") else 1
        closed = value[-1] in _CLOSE and end - start > head
        inner = value[head : len(value) - 1] if closed else value[head:]
        masked = _scan(inner, everything=True, go=head == 4)
        return value[:head] + masked + (value[-1] if closed else "")
    quote = value[: len(value) - len(value.lstrip("\\")) + 1]
    if quote[-1] in "\"'" and len(value) > len(quote):
        return f"{quote}{MASK}{quote}"
    return MASK


def _scan(text: str, *, everything: bool = False, go: bool = False) -> str:
    out: list[str] = []
    pos = 0
    keys = _GO_KEY_RE if go else _KEY_RE
    while (match := keys.search(text, pos)) is not None:
        key, quoted = match["key"], bool(match["q"])
        block = key.lower() in _BLOCK_KEYS
        out.append(text[pos : match.end()])
        pos = match.end()
        if everything or block or _sensitive(key, quoted):
            bare = _GO_BARE_END if go else _BARE_END
            end = _value_end(text, pos, key, bare)
            after = _NEXT_LINE.match(text, end)
            if not go and after and text[pos:end].strip() in _YAML_BLOCK:
                out.append(text[pos : after.end()])  # the value is on the next line
                pos = after.end()
                end = _value_end(text, pos, key, bare)
            out.append(_mask_value(text, pos, end, block=block and not everything))
            pos = end
    out.append(text[pos:])
    return "".join(out)


def _masked_if(match: re.Match[str], name: str) -> str:
    """The match with its ``value`` group masked when the group ``name`` names a secret."""
    if not _sensitive(match[name].lstrip("-"), quoted=False):
        return match[0]
    start, end = match.span("value")
    whole = match.string
    return whole[match.start() : start] + MASK + whole[end : match.end()]


def _decoded(match: re.Match[str], depth: int) -> str:
    """A percent-encoded word, decoded and shown redacted when it hides a secret."""
    word = match[0]
    plain = urllib.parse.unquote(word)
    if plain == word:
        return word
    masked = scrub_structure(plain, _depth=depth + 1)
    return masked if masked != plain else word


def scrub_structure(text: str, *, _depth: int = 0) -> str:
    """Mask whatever looks like a secret in ``text``, without knowing any value."""
    if not text:
        return text
    text = _PEM.sub(lambda m: m["begin"] + MASK + m["end"], text)
    text = _scan(text)
    text = _FLAG_VALUE.sub(lambda m: _masked_if(m, "flag"), text)
    text = _TAG.sub(lambda m: _masked_if(m, "tag"), text)
    text = _FORM_FIELD.sub(lambda m: _masked_if(m, "name"), text)
    text = _URL_PASSWORD.sub(lambda m: m["pre"] + MASK, text)
    text = _SCHEME_TOKEN.sub(lambda m: m["pre"] + MASK, text)
    text = _JWT.sub(MASK, text)
    text = _PREFIXED_TOKEN.sub(MASK, text)
    if _depth < 3:  # double encoding, at most; each round is shorter anyway
        text = _ENCODED.sub(lambda m: _decoded(m, _depth), text)
    return text
