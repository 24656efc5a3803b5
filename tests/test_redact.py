"""Secret registration and scrubbing."""

from __future__ import annotations

import io

from previewctl import redact
from previewctl.redact import Secret


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


def test_secret_never_shows_its_value() -> None:
    secret = Secret("topsecretvalue")
    assert str(secret) == "***"
    assert repr(secret) == "Secret('***')"
    assert "topsecretvalue" not in f"{secret} {secret!r} {[secret]} { ({'k': secret}) }"
    assert secret.reveal() == "topsecretvalue"


def test_secret_registers_its_value() -> None:
    Secret("another-secret")
    assert redact.scrub("x another-secret") == "x ***"


def test_secret_equality_and_hash() -> None:
    assert Secret("value-one") == Secret("value-one")
    assert Secret("value-one") != Secret("value-two")
    assert Secret("value-one") != "value-one"
    assert len({Secret("value-one"), Secret("value-one")}) == 1


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
