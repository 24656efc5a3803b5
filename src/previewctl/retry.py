"""One retry/poll primitive, under every wait and retry previewctl does.

Two uses, one loop:

* :meth:`Retry.call` repeats an action that failed transiently (an HTTP request, a
  lease someone else holds, a step). It never starts a wait that would end past the
  deadline: a long ``Retry-After`` is not slept through, the last error is raised at once.
* :meth:`Retry.poll` waits for something to become true (a deployment READY, a probe
  answering, a machine healthy). Its last wait is cut to the deadline and the thing is
  asked once more there; then it gives up with the caller's timeout error.

Backoff is exponential with optional jitter; a server's ``Retry-After`` (seconds or an
HTTP date) can replace it. The clock and the sleep are injected, so tests never wait on
real time and a cancellable wait (``threading.Event.wait``) can be the sleep.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], object]  # Event.wait returns a bool: fine


class Jitter(StrEnum):
    NONE = "none"  # the delay as computed
    FULL = "full"  # uniform in [0, delay]: spreads a crowd of clients best
    HALF = "half"  # uniform in [delay/2, delay]: keeps a floor


@dataclass(frozen=True)
class Backoff:
    """``initial * factor ** (n - 1)`` before retry ``n``, capped at ``maximum``, jittered."""

    initial: float
    maximum: float
    factor: float = 2.0
    jitter: Jitter = Jitter.NONE

    def delay(self, n: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.maximum, self.initial * self.factor ** max(0, n - 1))
        if self.jitter is Jitter.FULL:
            return base * rand()
        if self.jitter is Jitter.HALF:
            return base * (0.5 + 0.5 * rand())
        return base


NO_WAIT = Backoff(0.0, 0.0)


@dataclass(frozen=True)
class Attempt:
    """What a ``before_sleep`` hook is told: retry ``number`` follows after ``delay``."""

    number: int  # attempts made so far (1 after the first failure)
    error: BaseException
    delay: float
    elapsed: float


class NotYet(Exception):
    """Raised by a :meth:`Retry.poll` check: not there yet; ``seen`` says what it saw."""

    def __init__(self, seen: str = "") -> None:
        super().__init__(seen)
        self.seen = seen


def parse_retry_after(value: str | None, *, cap: float, wall: Clock = time.time) -> float | None:
    """``Retry-After`` as seconds to wait, from delta-seconds or an HTTP date; capped.

    None when there is no usable value (then the caller's own backoff applies).
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - wall()
    return max(0.0, min(seconds, cap))


class Retry:
    """How to repeat: a backoff, an optional attempt limit, and the clock and sleep."""

    def __init__(
        self,
        backoff: Backoff = NO_WAIT,
        *,
        attempts: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.backoff = backoff
        self.attempts = attempts
        self.clock = clock
        self.sleep = sleep
        self.rand = rand

    def call(
        self,
        fn: Callable[[], T],
        *,
        retry_if: Callable[[BaseException], bool],
        deadline: float | None = None,
        delay_for: Callable[[BaseException, float], float] | None = None,
        before_sleep: Callable[[Attempt], None] | None = None,
        give_up: Callable[[BaseException], BaseException] | None = None,
    ) -> T:
        """``fn()``, repeated while it raises what ``retry_if`` accepts.

        Stops after ``attempts``, or when the next wait would end at or past
        ``deadline`` (a ``clock()`` instant). Then the last error is raised, or what
        ``give_up(error)`` makes of it. ``delay_for(error, backoff_delay)`` may change
        a wait (a server's Retry-After, a floor for rate limits).
        """
        return self._loop(fn, retry_if, deadline, delay_for, before_sleep, give_up, poll=False)

    def poll(
        self,
        check: Callable[[], T],
        *,
        deadline: float,
        timeout: Callable[[BaseException], BaseException],
        retry_if: Callable[[BaseException], bool] = lambda exc: isinstance(exc, NotYet),
        delay_for: Callable[[BaseException, float], float] | None = None,
        before_sleep: Callable[[Attempt], None] | None = None,
    ) -> T:
        """``check()`` until it returns (it raises :class:`NotYet` meanwhile).

        Waits are cut to what is left before ``deadline``, and ``check`` runs once more
        at the deadline; after that, ``timeout(last NotYet)`` is raised.
        """
        return self._loop(check, retry_if, deadline, delay_for, before_sleep, timeout, poll=True)

    def _loop(
        self,
        fn: Callable[[], T],
        retry_if: Callable[[BaseException], bool],
        deadline: float | None,
        delay_for: Callable[[BaseException, float], float] | None,
        before_sleep: Callable[[Attempt], None] | None,
        give_up: Callable[[BaseException], BaseException] | None,
        *,
        poll: bool,
    ) -> T:
        started = self.clock()
        number = 0
        while True:
            number += 1
            try:
                return fn()
            except BaseException as exc:
                if not retry_if(exc):
                    raise
                error = exc
            delay = self.backoff.delay(number, self.rand)
            if delay_for is not None:
                delay = delay_for(error, delay)
            if not self._may_wait(number, delay, deadline, poll=poll):
                if give_up is None:
                    raise error
                raise give_up(error) from None
            if poll and deadline is not None:
                delay = min(delay, max(0.0, deadline - self.clock()))
            if before_sleep is not None:
                before_sleep(Attempt(number, error, delay, self.clock() - started))
            self.sleep(delay)  # a zero too: the injected sleep sees every wait

    def _may_wait(self, number: int, delay: float, deadline: float | None, *, poll: bool) -> bool:
        if self.attempts is not None and number >= self.attempts:
            return False
        if deadline is None:
            return True
        now = self.clock()
        if poll:
            return now < deadline
        return now + delay < deadline
