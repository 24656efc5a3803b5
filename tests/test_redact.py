"""Secret registration and scrubbing."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from previewctl import redact


def test_scrub_without_secrets_is_identity() -> None:
    assert redact.scrub("nothing to hide") == "nothing to hide"
    assert redact.scrub("") == ""


def test_scrub_replaces_every_occurrence() -> None:
    redact.register("hunter22")
    assert redact.scrub("a hunter22 b hunter22") == "a *** b ***"


def test_scrub_prefers_the_longest_value() -> None:
    redact.register("abcd")
    redact.register("abcdefgh")
    # longest first: no "***efgh" left behind
    assert redact.scrub("x abcdefgh y abcd") == "x *** y ***"


def test_scrub_longest_first_regardless_of_registration_order() -> None:
    redact.register("postgresql://u:pw12345@h/db")
    redact.register("pw12345")
    assert redact.scrub("url postgresql://u:pw12345@h/db") == "url ***"
    assert redact.scrub("just pw12345") == "just ***"


def test_scrub_treats_values_literally() -> None:
    redact.register("a.b*c+")
    assert redact.scrub("a.b*c+ axbbbc") == "*** axbbbc"


def test_short_values_are_ignored() -> None:
    for short in ("", "a", "ab", "abc"):
        redact.register(short)
    assert redact.scrub("a ab abc") == "a ab abc"
    redact.register("abcd")
    assert redact.scrub("abcd") == "***"


def test_on_register_gets_earlier_and_later_values() -> None:
    redact.register("zzzz-earlier")
    redact.register("aaaa-earlier")
    seen: list[str] = []
    redact.on_register(seen.append)
    assert seen == ["aaaa-earlier", "zzzz-earlier"]
    redact.register("later-value")
    redact.register("later-value")  # a repeat is not announced twice
    redact.register("xyz")  # too short: never announced
    assert seen == ["aaaa-earlier", "zzzz-earlier", "later-value"]


def test_register_if_contains_secret() -> None:
    redact.register_if_contains_secret("before any secret exists")
    assert redact.scrub("before any secret exists") == "before any secret exists"
    redact.register("pw-123456")
    redact.register_if_contains_secret("plain text")
    redact.register_if_contains_secret("user:pw-123456@host")
    assert redact.scrub("plain text") == "plain text"
    assert redact.scrub("see user:pw-123456@host") == "see ***"


def test_reset_for_tests_forgets_values_and_callbacks() -> None:
    seen: list[str] = []
    redact.on_register(seen.append)
    redact.register("forget-me")
    redact.reset_for_tests()
    assert redact.scrub("forget-me") == "forget-me"
    redact.register("new-value")
    assert seen == ["forget-me"]


def test_write_scrubs_and_flushes() -> None:
    redact.register("s3cr3t-token")
    stream = io.StringIO()
    redact.write(stream, "token=s3cr3t-token\n")
    assert stream.getvalue() == "token=***\n"


def test_register_covers_the_forms_a_value_is_printed_in() -> None:
    value = 'p@ss/w"rd&x'
    redact.register(value)
    assert redact.scrub("in a URL: postgresql://u:p%40ss%2Fw%22rd%26x@h/db") == (
        "in a URL: postgresql://u:***@h/db"
    )
    assert redact.scrub(json.dumps({"v": value})) == '{"v": "***"}'


# ---- structural redaction: no value known --------------------------------------------------

S = "Zq8-unknown-value"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # JSON, as an API quotes a config: env and metadata values masked, names kept
        (
            f'bad config: {{"env": {{"GREETING": "{S}", "N": 3}}, "image": "pg:18"}}',
            'bad config: {"env": {"GREETING": "***", "N": ***}, "image": "pg:18"}',
        ),
        (
            f'{{"metadata": {{"previewctl_pr": "8", "x": "{S}"}}}}',
            '{"metadata": {"previewctl_pr": "***", "x": "***"}}',
        ),
        # JSON quoted inside a JSON string (escaped once)
        (f'"{{\\"env\\":{{\\"A\\":\\"{S}\\"}}}}"', '"{\\"env\\":{\\"A\\":\\"***\\"}}"'),
        # a Python repr, as pydantic or an f-string quotes a dict
        (f"{{'config': {{'env': {{'A': '{S}'}}}}}}", "{'config': {'env': {'A': '***'}}}"),
        # Go's %+v of a struct with maps
        (f"&{{Env:map[A:{S} B:{S}] Image:pg}}", "&{Env:map[A:*** B:***] Image:pg}"),
        # keys named like secrets, in every form
        (f"PG_PASSWORD={S} LEVEL=debug", "PG_PASSWORD=*** LEVEL=debug"),
        (f'{{"api_key": "{S}", "name": "db"}}', '{"api_key": "***", "name": "db"}'),
        (f"{{'auth_secret': '{S}'}}", "{'auth_secret': '***'}"),
        (f"--grpc-preshared-key={S}", "--grpc-preshared-key=***"),
        (f"Credentials: {S}", "Credentials: ***"),
        (f'"previewctl_secrets": "{{\\"a\\": \\"{S}\\"}}"', '"previewctl_secrets": "***"'),
        (f'"secrets": [{{"name": "{S}"}}]', '"secrets": ***'),
        # Vercel's env items: value (and the key's name, being named "key")
        (f'[{{"key": "DB", "value": "{S}"}}]', '[{"key": "***", "value": "***"}]'),
        (f'{{"raw_value": "{S}"}}', '{"raw_value": "***"}'),
        # URL passwords, headers, tokens with a known prefix
        (
            f"dial postgresql://app:{S}@db:5432/x failed",
            "dial postgresql://app:***@db:5432/x failed",
        ),
        (f"Authorization: Bearer {S}", "Authorization: ***"),
        (f"sent FlyV1 fm2_{S}", "sent FlyV1 ***"),
        (f"token ghs_{S} expired", "token *** expired"),
        # cut off in the middle: still masked to the end
        (f'{{"env": {{"A": "{S}", "B": "{S[:5]}', '{"env": {"A": "***", "B": "***"'),
    ],
)
def test_scrub_structure_masks_what_looks_like_a_secret(text: str, expected: str) -> None:
    assert redact.scrub_structure(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "app not found: pr-8-svc",
        "machine ID 1234 lease currently held by a@b.com, expires at 2024-01-01T10:00:00Z",
        "https://api.machines.dev/v1/apps/pr-8-svc/machines?region=iad",
        "multi-container machines are not enabled for this organization",
        'A variable with the name `DATABASE_URL` already exists for branch "feat/x"',
        "",
    ],
)
def test_scrub_structure_leaves_ordinary_messages_alone(text: str) -> None:
    assert redact.scrub_structure(text) == text


_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True)
_VALUES = st.text(
    alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=8, max_size=30
)


def _go_map(env: dict[str, str]) -> str:
    return "map[" + " ".join(f"{k}:{v}" for k, v in env.items()) + "]"


def _render(env: dict[str, str], meta: dict[str, str], form: str) -> str:
    config = {"image": "pg:18", "env": env, "metadata": meta, "guest": {"cpus": 2}}
    if form == "go":
        text = f"&{{Image:pg:18 Env:{_go_map(env)} Metadata:{_go_map(meta)}}}"
    elif form == "json":
        text = json.dumps(config)
    elif form == "escaped":
        text = json.dumps(json.dumps(config))
    else:
        text = repr(config)
    return f"failed to update machine: {text}"


def _go_raw(values: dict[str, str]) -> dict[str, str]:
    """Go prints map values raw: one with a space or a bracket is not one token."""
    return {k: v for k, v in values.items() if not any(c in v for c in " []")}


@given(
    env=st.dictionaries(_NAMES, _VALUES, min_size=1, max_size=4),
    meta=st.dictionaries(_NAMES, _VALUES, max_size=2),
    form=st.sampled_from(["json", "escaped", "repr", "go"]),
)
@settings(max_examples=300, deadline=None)
def test_no_env_or_metadata_value_survives_in_any_form(
    env: dict[str, str], meta: dict[str, str], form: str
) -> None:
    if form == "go":
        env, meta = _go_raw(env), _go_raw(meta)
    values = [*env.values(), *meta.values()]
    frame = _render(dict.fromkeys(env, "\0"), dict.fromkeys(meta, "\0"), form)
    assume(values and all(value not in frame for value in values))  # not "metadata", say
    shown = redact.scrub_structure(_render(env, meta, form))
    for value in values:
        assert value not in shown, shown
