"""Run ``[[steps]]`` and ``[[seed]]``: commands with a rendered env, or HTTP requests.

A command runs in its own process group so that a timeout or Ctrl-C ends the whole
tree it started (``pnpm`` → ``node`` → ...), not just the top process; its output is
streamed through the reporter (which scrubs secrets) as it arrives. An HTTP step is
retried only when repeating it is safe (idempotent methods) and the failure was
transient.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from previewctl import redact
from previewctl.errors import StepFailedError, TimeoutExceededError
from previewctl.process import Child
from previewctl.reporter import Reporter
from previewctl.retry import Attempt, Backoff, Jitter, Retry, Sleep, parse_retry_after

_TAIL_LINES = 20
_TERM_GRACE = 3.0
_BODY_SHOWN = 300

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({408, 429})  # and every 5xx
_BACKOFF_INITIAL = 0.5
_BACKOFF_MAX = 10.0
_RETRY_AFTER_MAX = 30.0

# previewctl's own credentials: a step runs the PR's code and never inherits them. A step
# that needs one names it in its `env` (`GH_TOKEN = "${env.GITHUB_TOKEN}"`).
WITHHELD_FROM_STEPS = frozenset(
    {"FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "VERCEL_TOKEN", "GITHUB_TOKEN"}
)


@dataclass(frozen=True)
class CommandStep:
    name: str
    argv: list[str]
    env: dict[str, str]  # already rendered; merged over os.environ minus the credentials
    cwd: Path
    timeout: float


@dataclass(frozen=True)
class HttpStep:
    name: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float


# ---- commands ---------------------------------------------------------------------------


def _with_tail(message: str, tail: deque[str]) -> str:
    lines = [line for line in tail if line.strip()]
    if lines:
        message += "; last output:\n" + "\n".join(f"  {line}" for line in lines)
    # the step's own output: it may hold secrets previewctl never had (the PR comment
    # and the step summary, where this goes too, are masked by no one else)
    return redact.clean(message)


def step_environment(inherited: Mapping[str, str], rendered: Mapping[str, str]) -> dict[str, str]:
    """The env a step runs with: its own ``env`` over previewctl's, minus the credentials."""
    env = {k: v for k, v in inherited.items() if k not in WITHHELD_FROM_STEPS}
    env.update(rendered)
    return env


def run_command(step: CommandStep, reporter: Reporter) -> None:
    """Run ``step.argv``; raise :class:`StepFailedError` / :class:`TimeoutExceededError`.

    Everything the command started is ended when it finishes, times out or is
    interrupted: the step owns its process group.
    """
    if not step.argv:
        raise StepFailedError(f"step {step.name}: nothing to run (empty command)")
    if not step.cwd.is_dir():
        raise StepFailedError(f"step {step.name}: working directory {step.cwd} does not exist")
    env = step_environment(os.environ, step.env)
    tail: deque[str] = deque(maxlen=_TAIL_LINES)

    def show(line: str) -> None:
        tail.append(line)
        reporter.output_line(line)

    try:
        child = Child.start(
            step.argv, name=f"step-{step.name}", env=env, cwd=step.cwd, on_stdout=show
        )
    except FileNotFoundError as exc:
        raise StepFailedError(
            f"step {step.name}: command not found: {step.argv[0]}",
            hint="install it on the runner, or use its full path in `run`",
        ) from exc
    except PermissionError as exc:
        raise StepFailedError(f"step {step.name}: {step.argv[0]} is not executable") from exc
    except OSError as exc:
        raise StepFailedError(
            f"step {step.name}: cannot run {step.argv[0]}: {exc.strerror or exc}"
        ) from exc
    try:
        code = child.wait(step.timeout)
    finally:
        # Timeout, Ctrl-C, any error, or leftovers (`cmd &`) after a normal exit alike.
        child.end(_TERM_GRACE)
    if code is None:
        raise TimeoutExceededError(
            _with_tail(f"step {step.name} timed out after {step.timeout:g}s", tail)
        )
    if code < 0:
        try:
            signame = signal.Signals(-code).name
        except ValueError:
            signame = f"signal {-code}"
        raise StepFailedError(_with_tail(f"step {step.name} was killed by {signame}", tail))
    if code != 0:
        raise StepFailedError(_with_tail(f"step {step.name} failed with exit code {code}", tail))


# ---- HTTP -------------------------------------------------------------------------------


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


_TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _is_retryable_status(status: int) -> bool:
    return status in RETRY_STATUSES or 500 <= status <= 599


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, _RetryableStatus):
        return str(exc.response.status_code)
    return type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    # send() raises _RetryableStatus only for idempotent methods; POST/PATCH also stop
    # after their single attempt on a connection error (they get one attempt in all).
    return isinstance(exc, (_RetryableStatus, *_TRANSIENT_ERRORS))


def _server_delay(exc: BaseException, backoff: float) -> float:
    if isinstance(exc, _RetryableStatus):
        after = parse_retry_after(exc.response.headers.get("retry-after"), cap=_RETRY_AFTER_MAX)
        if after is not None:
            return after
    return backoff


def run_http(
    step: HttpStep,
    client: httpx.Client,
    reporter: Reporter,
    *,
    attempts: int = 4,
    sleep: Sleep = time.sleep,
) -> httpx.Response:
    """Send the request; retry transient failures of idempotent methods; 2xx or raise."""
    method = step.method.upper()
    shown_url = redact.scrub(step.url)
    idempotent = method in IDEMPOTENT_METHODS
    total = max(1, attempts) if idempotent else 1

    def send() -> httpx.Response:
        response = client.request(
            method, step.url, headers=step.headers, content=step.body, timeout=step.timeout
        )
        if idempotent and _is_retryable_status(response.status_code):
            response.read()
            raise _RetryableStatus(response)
        return response

    def before_sleep(attempt: Attempt) -> None:
        reporter.info(
            f"{step.name}: {method} {shown_url} → {_describe_failure(attempt.error)}, "
            f"retrying in {attempt.delay:.1f}s (attempt {attempt.number + 1}/{total})"
        )

    # Full jitter: uniform in [0, min(max, initial * 2^(n-1))]; a Retry-After replaces it.
    backoff = Backoff(_BACKOFF_INITIAL, _BACKOFF_MAX, jitter=Jitter.FULL)
    retrying = Retry(backoff, attempts=total, sleep=sleep)
    try:
        response = retrying.call(
            send, retry_if=_retryable, delay_for=_server_delay, before_sleep=before_sleep
        )
    except _RetryableStatus as exc:
        response = exc.response
    except httpx.HTTPError as exc:
        tried = f" after {total} attempts" if total > 1 else ""
        raise StepFailedError(
            redact.scrub(f"step {step.name}: {method} {step.url} failed{tried}: {exc}")
        ) from None

    status = response.status_code
    if not 200 <= status <= 299:
        # Scrub before cutting: a cut must not leave part of a secret behind. The body may
        # echo the request (headers, env): structure too, not only the known values.
        body = redact.clean(response.text).strip()[:_BODY_SHOWN]
        raise StepFailedError(
            redact.scrub(f"step {step.name}: {method} {step.url} → {status}: {body}")
        )
    reporter.info(f"{step.name}: {status}")
    return response
