"""The shared HTTP layer: timeouts, one retry policy, errors translated once.

Transient failures (408, 429, 5xx, connection errors) are retried with exponential
backoff and jitter under an overall deadline, honouring ``Retry-After``; other 4xx
fail at once with the API's own message.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from previewctl import __version__, redact
from previewctl.clients.answers import json_body, message_field, no_message, text_field
from previewctl.errors import (
    ApiError,
    ConflictError,
    ConnectionFailedError,
    InputError,
    NotFoundError,
    TransientApiError,
)
from previewctl.retry import Attempt, Backoff, Jitter, Retry
from previewctl.retry import parse_retry_after as parse_header

USER_AGENT = f"previewctl/{__version__}"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
MAX_MESSAGE = 1000


T = TypeVar("T")


class _Retryable(Exception):
    """Internal: a transient answer, carried through the retry loop."""

    def __init__(
        self, error: ApiError, retry_after: float | None, *, maybe_done: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        self.maybe_done = maybe_done
        """The server may have done it: the answer was lost, or it failed (5xx) after."""


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), capped; None: absent."""
    return parse_header(value, cap=MAX_RETRY_AFTER)


def _server_wait(exc: BaseException, backoff: float) -> float:
    if isinstance(exc, _Retryable) and exc.retry_after is not None:
        return exc.retry_after
    return backoff


class _Runner:
    """``runner(fn, *args)``: ``fn(*args)`` under a policy's retries of transient answers."""

    def __init__(self, policy: RetryPolicy, before_sleep: Callable[[Attempt], None] | None) -> None:
        self.policy = policy
        self.before_sleep = before_sleep

    def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        policy = self.policy
        return policy.retry().call(
            functools.partial(fn, *args),
            retry_if=lambda exc: isinstance(exc, _Retryable),
            # never start a wait (a long Retry-After, say) that would end past the deadline
            deadline=policy.clock() + policy.deadline,
            delay_for=_server_wait,
            before_sleep=self.before_sleep,
        )


class RetryPolicy:
    """How hard to try: exponential backoff with full jitter (a Retry-After replaces it),
    ``attempts`` at most, within ``deadline`` seconds. Tests pass a tiny ``max_wait``."""

    def __init__(
        self,
        *,
        deadline: float = 120.0,
        attempts: int = 8,
        max_wait: float = 10.0,
        multiplier: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deadline = deadline
        self.attempts = attempts
        self.max_wait = max_wait
        self.multiplier = multiplier
        self.sleep = sleep
        self.clock = clock

    def retry(self) -> Retry:
        """The retry primitive with this policy's backoff, attempts, clock and sleep."""
        backoff = Backoff(self.multiplier, self.max_wait, jitter=Jitter.FULL)
        return Retry(backoff, attempts=self.attempts, clock=self.clock, sleep=self.sleep)

    def retrying(self, before_sleep: Callable[[Attempt], None] | None = None) -> _Runner:
        return _Runner(self, before_sleep)


def _transport_reason(exc: httpx.TransportError) -> str:
    """What went wrong on the wire, in words ("connection refused", "timed out")."""
    text = str(exc).strip()
    if isinstance(exc, httpx.ConnectTimeout):
        return "the connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    lowered = text.lower()
    for needle, words in (
        ("refused", "connection refused"),
        ("name or service not known", "the host name does not resolve (DNS)"),
        ("nodename nor servname", "the host name does not resolve (DNS)"),
        ("temporary failure in name resolution", "the host name does not resolve (DNS)"),
        ("certificate", "TLS certificate problem"),
        ("reset", "the connection was reset"),
    ):
        if needle in lowered:
            return words
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the connection closed without an answer ({text or type(exc).__name__})"
    return text or type(exc).__name__


class ApiClient:
    """Base of the API clients: subclasses name the API and parse its error body."""

    api_name = "API"
    api_title = "API"
    """How a person names it: "Fly Machines API"."""
    url_env: str | None = None
    """The env var that sets its base URL, named in connection errors."""
    status_page: str | None = None

    def __init__(
        self,
        http: httpx.Client,
        *,
        retry: RetryPolicy | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.http = http
        self.retry = retry or RetryPolicy()
        self.on_request = on_request
        self.on_retry: Callable[[str], None] | None = None
        """Told about every retry, so that a person sees why nothing seems to happen."""
        self.calls = 0

    # Subclasses override to read their API's error shape. Only the API's own message
    # field is ever shown (scrubbed, see _api_error): a body can echo the request, with
    # env values and secrets in it, so a body without that field is never printed.
    def error_message(self, response: httpx.Response) -> tuple[str, str | None]:
        body = json_body(response)
        if isinstance(body, dict):
            err = body.get("error")
            if isinstance(err, dict):
                return message_field(response, err.get("message")), text_field(err.get("code"))
            if isinstance(err, str):
                return err, text_field(body.get("status")) or text_field(body.get("code"))
            if isinstance(body.get("message"), str):
                return str(body["message"]), text_field(body.get("code"))
        return no_message(response), None

    def request_id(self, response: httpx.Response) -> str | None:  # noqa: ARG002
        return None

    def scope_params(self) -> dict[str, str]:
        """Query parameters every request carries (Vercel's teamId, say)."""
        return {}

    def is_transient(self, response: httpx.Response) -> bool:
        """Subclasses widen this (GitHub's 403 rate limit, say)."""
        return response.status_code in TRANSIENT_STATUS

    def retry_after(self, response: httpx.Response) -> float | None:
        return parse_retry_after(response.headers.get("retry-after"))

    def _api_error(self, response: httpx.Response, method: str, path: str) -> ApiError:
        message, code = self.error_message(response)
        status = response.status_code
        kind: type[ApiError] = ApiError
        if status == 404:
            kind = NotFoundError
        elif status in (409, 422):
            kind = ConflictError
        elif status in TRANSIENT_STATUS:
            kind = TransientApiError
        request_id = self.request_id(response)
        return kind(
            self.api_name,
            redact.clean(message)[:MAX_MESSAGE],
            status=status,
            # shown next to the message: as much the API's text as the message is
            code=redact.clean(code) if code else None,
            request_id=redact.clean(request_id) if request_id else None,
            method=method,
            path=path,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        """Send one logical request; return the 2xx response or raise an ApiError."""
        params = self._scoped(params)
        if not retry:
            try:
                return self._attempt(method, path, params, json, headers, timeout)
            except _Retryable as exc:
                raise exc.error from exc.__cause__
        retries: list[Attempt] = []
        first = time.monotonic()
        try:
            return self.retry.retrying(lambda a: self._before_sleep(a, retries))(
                self._attempt, method, path, params, json, headers, timeout
            )
        except _Retryable as exc:
            error = exc.error
            if isinstance(error, ConnectionFailedError) and retries:
                error.message += f"; gave up after retrying for {time.monotonic() - first:.0f}s"
                error.args = (error.message,)
            raise error from None

    def create_once(
        self,
        method: str,
        path: str,
        *,
        build: Callable[[httpx.Response], T],
        find: Callable[[], T | None],
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> T:
        """A create that must not happen twice, under the same retry policy as any request.

        When an attempt fails so that the write may still have happened (its answer
        lost, a 5xx), ``find()`` looks for what it would have made before the next try.
        A 408 or 429 (a rate limit) says it was not done: it is simply tried again.
        """
        params = self._scoped(params)

        def attempt() -> T:
            try:
                return build(self._attempt(method, path, params, json, None, None))
            except _Retryable as exc:
                if not exc.maybe_done:
                    raise
                try:
                    found = find()
                except ApiError:
                    found = None  # cannot tell: trying again is the lesser harm
                if found is not None:
                    if self.on_request:
                        self.on_request(f"{self.api_name} {method} {path}: found it made")
                    return found
                raise

        try:
            return self.retry.retrying(lambda a: self._before_sleep(a, []))(attempt)
        except _Retryable as exc:
            raise exc.error from None

    def _scoped(self, params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        scope = self.scope_params()
        return {**(params or {}), **scope} if scope else params

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        timeout: float | httpx.Timeout | None,
    ) -> httpx.Response:
        """One try: the 2xx response, an ApiError, or _Retryable for a transient failure."""
        self.calls += 1
        started = time.monotonic()
        try:
            response = self.http.request(
                method,
                path,
                params=params,
                json=json,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            lost: ApiError = self._unreachable(exc, method, path)
            if self.on_request:
                self.on_request(f"{self.api_name} {method} {path} !! {type(exc).__name__}")
            raise _Retryable(lost, None, maybe_done=True) from exc
        if self.on_request:
            took = (time.monotonic() - started) * 1000
            self.on_request(
                f"{self.api_name} {method} {path} -> {response.status_code} ({took:.0f} ms)"
            )
        if response.is_success:
            return response
        error = self._api_error(response, method, path)
        if self.is_transient(response):
            maybe_done = response.status_code >= 500
            wait = self.retry_after(response)
            if isinstance(error, TransientApiError):
                error.retry_after = wait
            raise _Retryable(error, wait, maybe_done=maybe_done)
        raise error

    def _unreachable(
        self, exc: httpx.TransportError, method: str, path: str
    ) -> ConnectionFailedError:
        base = shown_url(self.http.base_url)
        message = (
            f"cannot reach the {self.api_title} at {base} ({method} {path}): "
            f"{_transport_reason(exc)}"
        )
        hint = "check this machine's network (proxy, DNS, firewall)"
        if self.url_env:
            hint = f"check {self.url_env} (now {base}) and " + hint[6:]
        if self.status_page:
            hint += f"; {self.status_page} says whether the service is down"
        failed = ConnectionFailedError(self.api_name, message, hint=hint, method=method, path=path)
        failed.reason = _transport_reason(exc)
        return failed

    def _before_sleep(self, attempt: Attempt, retries: list[Attempt]) -> None:
        retries.append(attempt)
        exc = attempt.error
        if self.on_retry is None or not isinstance(exc, _Retryable):
            return
        error = exc.error
        base = shown_url(self.http.base_url)
        if isinstance(error, ConnectionFailedError):
            what = f"{self.api_title} at {base} is unreachable ({error.reason})"
        elif error.status == 429:
            what = f"{self.api_title} is rate limiting ({error.method} {error.path})"
        else:
            what = f"{self.api_title} answered {error.status} ({error.method} {error.path})"
        self.on_retry(
            f"{what}: retry {attempt.number} of {self.retry.attempts - 1} in {attempt.delay:.1f}s"
        )


def shown_url(url: httpx.URL | str) -> str:
    """A base URL as it may be printed: never with the password it may carry (a proxy's
    ``https://user:PASSWORD@host``), whether or not it was registered as a secret."""
    return redact.clean(str(url).rstrip("/"))


def build_http_client(
    base_url: str, headers: Mapping[str, str], *, timeout: httpx.Timeout = DEFAULT_TIMEOUT
) -> httpx.Client:
    _check_base_url(base_url)
    password = httpx.URL(base_url).password
    if password:  # a credential like the tokens: masked wherever it might show up
        redact.register(password)
    merged = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
    return httpx.Client(base_url=base_url.rstrip("/"), headers=merged, timeout=timeout)


def _check_base_url(base_url: str) -> None:
    """A base URL that cannot work is bad input before the first request, not retries."""
    try:
        url = httpx.URL(base_url)
        usable = url.scheme in ("http", "https") and bool(url.host)
    except httpx.InvalidURL:
        usable = False
    if not usable:
        raise InputError(
            f"API base URL {shown_url(base_url)!r} is not an http:// or https:// URL",
            hint="check FLY_API_BASE_URL, VERCEL_API_URL and GITHUB_API_URL (unset: the real APIs)",
        )
