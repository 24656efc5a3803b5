"""The one retry/poll primitive: backoff, attempts, deadline, Retry-After, on a fake clock."""

from __future__ import annotations

import email.utils
from collections.abc import Callable

import pytest

from previewctl.retry import Attempt, Backoff, Jitter, NotYet, Retry, parse_retry_after


class FakeClock:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky(Exception):
    pass


def flaky(times: int, error: type[Exception] = Flaky) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error(f"failure {len(calls)}")
        return "done"

    return calls, fn


def is_flaky(exc: BaseException) -> bool:
    return isinstance(exc, Flaky)


# ---- backoff ----------------------------------------------------------------------------
def test_backoff_grows_by_its_factor_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 5.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert [Backoff(0.1, 0.25, factor=1.6).delay(n) for n in (1, 2, 3)] == pytest.approx(
        [0.1, 0.16, 0.25]
    )


@pytest.mark.parametrize(
    ("jitter", "low", "high"), [(Jitter.FULL, 0.0, 4.0), (Jitter.HALF, 2.0, 4.0)]
)
def test_jitter_stays_within_its_range(jitter: Jitter, low: float, high: float) -> None:
    backoff = Backoff(1.0, 10.0, jitter=jitter)
    assert backoff.delay(3, rand=lambda: 0.0) == low
    assert backoff.delay(3, rand=lambda: 1.0) == high


# ---- call -------------------------------------------------------------------------------
def test_call_retries_until_it_succeeds_with_the_backoff_between() -> None:
    clock = FakeClock()
    calls, fn = flaky(3)
    retry = Retry(Backoff(0.25, 5.0), clock=clock, sleep=clock.sleep)
    assert retry.call(fn, retry_if=is_flaky) == "done"
    assert len(calls) == 4
    assert clock.sleeps == [0.25, 0.5, 1.0]


def test_call_raises_other_errors_at_once() -> None:
    clock = FakeClock()
    calls, fn = flaky(3, error=KeyError)
    with pytest.raises(KeyError):
        Retry(Backoff(1, 1), clock=clock, sleep=clock.sleep).call(fn, retry_if=is_flaky)
    assert len(calls) == 1
    assert clock.sleeps == []


def test_call_stops_after_its_attempts_with_the_last_error() -> None:
    clock = FakeClock()
    calls, fn = flaky(10)
    retry = Retry(Backoff(1, 1), attempts=3, clock=clock, sleep=clock.sleep)
    with pytest.raises(Flaky, match="failure 3"):
        retry.call(fn, retry_if=is_flaky)
    assert len(calls) == 3


def test_call_never_starts_a_wait_that_ends_past_the_deadline() -> None:
    clock = FakeClock()
    calls, fn = flaky(10)
    retry = Retry(Backoff(1.0, 1.0), clock=clock, sleep=clock.sleep)
    with pytest.raises(TimeoutError, match="gave up on failure 3"):
        retry.call(
            fn,
            retry_if=is_flaky,
            deadline=clock() + 2.5,
            give_up=lambda exc: TimeoutError(f"gave up on {exc}"),
        )
    assert clock.sleeps == [1.0, 1.0]  # a third wait would end at 3.0 > 2.5
    assert len(calls) == 3


def test_delay_for_replaces_the_backoff_and_is_told_it() -> None:
    clock = FakeClock()
    _, fn = flaky(2)
    seen: list[float] = []

    def server_says(exc: BaseException, backoff: float) -> float:
        seen.append(backoff)
        return 7.0

    retry = Retry(Backoff(0.5, 5.0), clock=clock, sleep=clock.sleep)
    retry.call(fn, retry_if=is_flaky, delay_for=server_says)
    assert seen == [0.5, 1.0]
    assert clock.sleeps == [7.0, 7.0]


def test_before_sleep_hears_of_every_retry() -> None:
    clock = FakeClock()
    _, fn = flaky(2)
    heard: list[Attempt] = []
    Retry(Backoff(1.0, 1.0), clock=clock, sleep=clock.sleep).call(
        fn,
        retry_if=is_flaky,
        before_sleep=heard.append,
    )
    assert [(a.number, str(a.error), a.delay, a.elapsed) for a in heard] == [
        (1, "failure 1", 1.0, 0.0),
        (2, "failure 2", 1.0, 1.0),
    ]


def test_every_wait_goes_through_the_injected_sleep_even_a_zero() -> None:
    clock = FakeClock()
    calls, fn = flaky(2)
    Retry(clock=clock, sleep=clock.sleep).call(fn, retry_if=is_flaky)
    assert len(calls) == 3
    assert clock.sleeps == [0.0, 0.0]


# ---- poll -------------------------------------------------------------------------------
def test_poll_cuts_its_last_wait_to_the_deadline_and_looks_once_more() -> None:
    clock = FakeClock()
    looks: list[float] = []

    def check() -> str:
        looks.append(clock())
        raise NotYet(f"look {len(looks)}")

    with pytest.raises(TimeoutError, match="last seen: look 5"):
        Retry(Backoff(0.5, 5.0), clock=clock, sleep=clock.sleep).poll(
            check,
            deadline=clock() + 7.0,
            timeout=lambda exc: TimeoutError(f"last seen: {exc}"),
        )
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.5]
    assert looks[-1] == 1007.0  # the last look is at the deadline


def test_poll_returns_what_the_check_returns() -> None:
    clock = FakeClock()
    states = iter(["BUILDING", "BUILDING", "READY"])

    def check() -> str:
        state = next(states)
        if state != "READY":
            raise NotYet(state)
        return state

    retry = Retry(Backoff(0.5, 5.0), clock=clock, sleep=clock.sleep)
    assert retry.poll(check, deadline=clock() + 60, timeout=TimeoutError) == "READY"
    assert clock.sleeps == [0.5, 1.0]


def test_poll_lets_other_errors_through() -> None:
    clock = FakeClock()

    def check() -> str:
        raise ValueError("final state")

    with pytest.raises(ValueError, match="final state"):
        Retry(Backoff(1, 1), clock=clock, sleep=clock.sleep).poll(
            check, deadline=clock() + 60, timeout=TimeoutError
        )
    assert clock.sleeps == []


# ---- Retry-After ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("3600", 60.0), ("", None)],
)
def test_retry_after_in_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, cap=60.0) == expected
    assert parse_retry_after(None, cap=60.0) is None


def test_retry_after_as_an_http_date_counts_from_the_wall_clock() -> None:
    now = 1_700_000_000.0
    in_12s = email.utils.formatdate(now + 12, usegmt=True)
    assert parse_retry_after(in_12s, cap=60.0, wall=lambda: now) == 12.0
    assert parse_retry_after(in_12s, cap=5.0, wall=lambda: now) == 5.0
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert parse_retry_after(past, cap=60.0, wall=lambda: now) == 0.0
    assert parse_retry_after("not a date", cap=60.0, wall=lambda: now) is None
