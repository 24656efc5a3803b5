"""Generated secrets and their formats (``[secrets.format.NAME]``).

The default is 32 letters and digits: safe in URLs, env files and every database. A
format can ask for a length and character classes (an admin password that a policy
checks) or a fixed kind (``uuid4``, ``hex``, ``base64``) for APIs that want one.
Every value is registered for redaction the moment it exists.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets as pysecrets
import string
import uuid
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from previewctl import redact

DEFAULT_LENGTH = 32
MIN_LENGTH, MAX_LENGTH = 16, 128
_ALNUM = frozenset(string.ascii_letters + string.digits)
DEFAULT_BYTES = 32
CharClass = Literal["lower", "upper", "digit", "symbol"]
Kind = Literal["uuid4", "hex", "base64"]

# Symbols that count as "special" for common password policies, yet need no quoting in
# an env file, a shell's double quotes or JSON: no quotes, backslash, `$`, backtick,
# space, brackets or shell operators. In a URL they are percent-encoded (template.py).
SYMBOLS = "!#%*+-.:=?@^_~"
CLASSES: dict[str, str] = {
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "digit": string.digits,
    "symbol": SYMBOLS,
}
_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_HEX = re.compile(r"^[0-9a-f]+$")


class SecretFormat(BaseModel):
    """One secret's format. ``length``/``require`` shape a random string of letters and
    digits (plus symbols when ``symbol`` is required); ``kind`` picks a fixed shape,
    where ``bytes`` is the randomness that ``hex``/``base64`` encode."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    length: int | None = Field(default=None, ge=MIN_LENGTH, le=MAX_LENGTH)
    require: list[CharClass] = Field(default_factory=list)
    kind: Kind | None = None
    bytes: int | None = Field(default=None, ge=16, le=128)

    @model_validator(mode="after")
    def _consistent(self) -> SecretFormat:
        if len(set(self.require)) != len(self.require):
            raise ValueError("`require` lists a character class twice")
        if self.kind is not None and (self.length is not None or self.require):
            raise ValueError(
                f'kind = "{self.kind}" has a fixed shape: drop `length` and `require` '
                "(hex and base64 take `bytes`)"
            )
        if self.bytes is not None and self.kind not in ("hex", "base64"):
            raise ValueError('`bytes` is for kind = "hex" or "base64"; use `length` otherwise')
        return self

    def alphabet(self) -> str:
        letters_digits = string.ascii_letters + string.digits
        return letters_digits + (SYMBOLS if "symbol" in self.require else "")


def _random_chars(length: int, alphabet: str, require: list[CharClass]) -> str:
    # Rejection sampling keeps every position uniform; with length >= 16 and at most
    # four classes, a draw misses a class rarely, so this ends after a draw or two.
    while True:
        value = "".join(pysecrets.choice(alphabet) for _ in range(length))
        if all(any(ch in CLASSES[c] for ch in value) for c in require):
            return value


def generate(fmt: SecretFormat | None = None, default_length: int = DEFAULT_LENGTH) -> str:
    """A new random secret in ``fmt`` (None: ``default_length`` letters and digits)."""
    fmt = fmt or SecretFormat()
    if fmt.kind == "uuid4":
        value = str(uuid.uuid4())
    elif fmt.kind == "hex":
        value = pysecrets.token_hex(fmt.bytes or DEFAULT_BYTES)
    elif fmt.kind == "base64":
        value = base64.b64encode(pysecrets.token_bytes(fmt.bytes or DEFAULT_BYTES)).decode()
    else:
        value = _random_chars(fmt.length or default_length, fmt.alphabet(), fmt.require)
    redact.register(value)
    return value


def conforms(value: str, fmt: SecretFormat) -> bool:
    """Does a stored value still satisfy ``fmt`` (False after the format changed)?"""
    if fmt.kind == "uuid4":
        return _UUID4.match(value) is not None
    if fmt.kind == "hex":
        return _HEX.match(value) is not None and len(value) == 2 * (fmt.bytes or DEFAULT_BYTES)
    if fmt.kind == "base64":
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return len(raw) == (fmt.bytes or DEFAULT_BYTES)
    if fmt.length is not None and len(value) != fmt.length:
        return False
    alphabet = fmt.alphabet()
    if any(ch not in alphabet for ch in value):
        return False
    return all(any(ch in CLASSES[c] for ch in value) for c in fmt.require)


def complete(
    existing: Mapping[str, str],
    names: list[str],
    *,
    default_length: int = DEFAULT_LENGTH,
    formats: Mapping[str, SecretFormat] | None = None,
) -> dict[str, str]:
    """Keep what exists (no churn in Vercel); generate what is missing, and what no
    longer fits a format that changed since it was made."""
    formats = formats or {}
    out = dict(existing)
    for name in names:
        fmt = formats.get(name)
        current = out.get(name)
        if not current or not _fits(current, fmt):
            out[name] = generate(fmt, default_length)
    return out


def _fits(value: str, fmt: SecretFormat | None) -> bool:
    """A stored value previewctl could have made: one that fits its format, or, without
    one, letters and digits of an allowed length (any: a changed `[secrets] length`
    makes no churn). Anything else was written by hand, and may be too short to redact
    or break a URL, a shell line or an env file: it is replaced."""
    if fmt is not None:
        return conforms(value, fmt)
    return MIN_LENGTH <= len(value) <= MAX_LENGTH and all(ch in _ALNUM for ch in value)
