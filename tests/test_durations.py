"""Human durations."""

from __future__ import annotations

import pytest

from previewctl.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("36h", 129600.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("1h30m", 5400.0),
        ("1d 2h", 93600.0),
        ("1.5h", 5400.0),
        (" 5M ", 300.0),
        ("120", 120.0),
        ("0", 0.0),
        ("2.5", 2.5),
        (45, 45.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    result = parse_duration(text)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "text", ["", "   ", "abc", "5x", "m5", "5m junk", "-5", "5 parsecs", "1h-"]
)
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_parse_duration_rejects_negative_numbers() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_duration(-1)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (0, "0s"),
        (45, "45s"),
        (60, "1m"),
        (90, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (5400, "1h30m"),
        (3605, "1h"),
        (86399, "23h59m"),
        (86400, "1d"),
        (90000, "1d1h"),
        (604800, "7d"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [45.0, 300.0, 5400.0, 86400.0, 129600.0, 604800.0])
def test_formatted_whole_values_parse_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), float("-inf"), "9" * 400, "9" * 400 + "s", 10**400, "3651d"],
)
def test_parse_duration_rejects_non_finite_and_absurd_values(value: str | float | int) -> None:
    """nan compares false with everything: without this it slipped through every bound."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)
