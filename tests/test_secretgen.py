"""Generated secrets: the default, [secrets.format] shapes, stability, redaction."""

from __future__ import annotations

import base64
import re
import string
import uuid

import pytest

from previewctl import redact, secretgen
from previewctl.secretgen import SYMBOLS, SecretFormat

# The agents repository's auth-init policy, from ../shared/reference/agents-stack.md:
# >= 15 characters with a lower-case letter, an upper-case letter, a digit and a
# special character.
POLICY_SPECIALS = set("!@#$%^&*()_+-=[]{};':\"\\|,.<>/?`~")


def satisfies_auth_init_policy(password: str) -> bool:
    return (
        len(password) >= 15
        and any(c.islower() for c in password)
        and any(c.isupper() for c in password)
        and any(c.isdigit() for c in password)
        and any(c in POLICY_SPECIALS for c in password)
    )


def test_default_is_32_letters_and_digits() -> None:
    for _ in range(50):
        value = secretgen.generate()
        assert len(value) == 32
        assert set(value) <= set(string.ascii_letters + string.digits)


def test_every_symbol_counts_as_special_and_needs_no_quoting() -> None:
    assert set(SYMBOLS) <= POLICY_SPECIALS
    assert not set(SYMBOLS) & set("\"'\\$` ")


def test_required_classes_are_always_present() -> None:
    fmt = SecretFormat(length=24, require=["lower", "upper", "digit", "symbol"])
    for _ in range(300):
        value = secretgen.generate(fmt)
        assert len(value) == 24
        assert satisfies_auth_init_policy(value), value
        assert secretgen.conforms(value, fmt)


def test_require_without_symbol_keeps_letters_and_digits() -> None:
    fmt = SecretFormat(require=["digit", "upper"])
    for _ in range(100):
        value = secretgen.generate(fmt, default_length=20)
        assert len(value) == 20
        assert re.fullmatch(r"[A-Za-z0-9]+", value)
        assert re.search(r"\d", value)
        assert re.search(r"[A-Z]", value)


def test_kinds() -> None:
    value = secretgen.generate(SecretFormat(kind="uuid4"))
    assert uuid.UUID(value).version == 4
    assert str(uuid.UUID(value)) == value
    assert re.fullmatch(r"[0-9a-f]{64}", secretgen.generate(SecretFormat(kind="hex")))
    assert re.fullmatch(r"[0-9a-f]{40}", secretgen.generate(SecretFormat(kind="hex", bytes=20)))
    raw = base64.b64decode(secretgen.generate(SecretFormat(kind="base64")), validate=True)
    assert len(raw) == 32  # NANGO_ENCRYPTION_KEY: base64 of 32 bytes


def test_values_are_unique() -> None:
    fmt = SecretFormat(length=16, require=["symbol"])
    assert len({secretgen.generate(fmt) for _ in range(200)}) == 200


def test_every_generated_value_is_registered_for_redaction() -> None:
    for fmt in (None, SecretFormat(kind="uuid4"), SecretFormat(require=["symbol"])):
        value = secretgen.generate(fmt)
        assert redact.scrub(f"x {value} y") == "x *** y"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"kind": "uuid4", "length": 20}, "fixed shape"),
        ({"kind": "hex", "require": ["digit"]}, "fixed shape"),
        ({"bytes": 32}, "`bytes` is for kind"),
        ({"kind": "uuid4", "bytes": 32}, "`bytes` is for kind"),
        ({"require": ["digit", "digit"]}, "twice"),
        ({"length": 8}, "greater than or equal to 16"),
        ({"require": ["emoji"]}, "'lower', 'upper', 'digit' or 'symbol'"),
        ({"kind": "uuid7"}, "'uuid4', 'hex' or 'base64'"),
    ],
)
def test_bad_formats(fields: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SecretFormat.model_validate(fields)


def test_complete_keeps_stored_values_and_fills_the_missing() -> None:
    formats = {"admin": SecretFormat(length=20, require=["symbol", "digit"])}
    first = secretgen.complete({}, ["pg", "admin"], formats=formats)
    assert set(first) == {"pg", "admin"}
    again = secretgen.complete(first, ["pg", "admin"], formats=formats)
    assert again == first  # stable across runs: no churn in Vercel
    grown = secretgen.complete(first, ["pg", "admin", "new"], formats=formats)
    assert {k: grown[k] for k in first} == first
    assert len(grown["new"]) == 32


def test_a_stored_value_that_no_longer_fits_its_format_is_replaced() -> None:
    """An admin password made before the format existed fails auth-init forever: replace it."""
    old = {"admin": "a" * 16 + "B1", "pg": "x" * 32}
    formats = {"admin": SecretFormat(length=24, require=["lower", "upper", "digit", "symbol"])}
    new = secretgen.complete(old, ["admin", "pg"], formats=formats)
    assert new["pg"] == old["pg"]  # no format: kept whatever it is
    assert new["admin"] != old["admin"]
    assert satisfies_auth_init_policy(new["admin"])


@pytest.mark.parametrize(
    ("value", "fmt", "ok"),
    [
        ("Ab1!" + "x" * 20, SecretFormat(length=24, require=["symbol"]), True),
        ("Ab1x" + "x" * 20, SecretFormat(length=24, require=["symbol"]), False),
        ("Ab1!" + "x" * 19, SecretFormat(length=24, require=["symbol"]), False),
        ("Ab1!" + "x" * 20, SecretFormat(length=24), False),  # symbols not in its alphabet
        ("0f8e3c9a-51d2-4b7e-9a3c-6d2e1f0a4b5c", SecretFormat(kind="uuid4"), True),
        ("0f8e3c9a-51d2-1b7e-9a3c-6d2e1f0a4b5c", SecretFormat(kind="uuid4"), False),  # v1
        ("not-a-uuid", SecretFormat(kind="uuid4"), False),
        ("ab" * 32, SecretFormat(kind="hex"), True),
        ("ab" * 16, SecretFormat(kind="hex"), False),
        (base64.b64encode(b"k" * 32).decode(), SecretFormat(kind="base64"), True),
        (base64.b64encode(b"k" * 31).decode(), SecretFormat(kind="base64"), False),
        ("%%%", SecretFormat(kind="base64"), False),
    ],
)
def test_conforms(value: str, fmt: SecretFormat, ok: bool) -> None:
    assert secretgen.conforms(value, fmt) is ok
