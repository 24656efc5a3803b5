"""One exception tree; the CLI turns it into a message and an exit code in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class PreviewctlError(Exception):
    """Base of every error previewctl raises on purpose. Exit code 1: an operation failed."""

    exit_code = 1
    title = "previewctl failed"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(PreviewctlError):
    """Bad input found before anything was changed (exit 2)."""

    exit_code = 2
    title = "bad input"


class ConfigError(InputError):
    """previewctl.toml or the machine config is invalid."""

    title = "invalid configuration"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if file:
            where = file + (f":{line}" if line else "")
        if key:
            where = f"{where} [{key}]" if where else f"[{key}]"
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.file = file
        self.key = key
        self.line = line


class MissingCredentialsError(InputError):
    title = "missing credentials"


class InputProblems(InputError):
    """Several problems of bad input, found together: reported in one message (exit 2)."""

    def __init__(self, problems: list[InputError]) -> None:
        lines = [f"{len(problems)} problems, found before anything was changed:"]
        for problem in problems:
            line = f"  - {problem.message}"
            if problem.hint:
                line += f" (hint: {problem.hint})"
            lines.append(line)
        super().__init__("\n".join(lines))
        self.problems = list(problems)


class ConfigProblems(InputProblems, ConfigError):
    """Several problems, all in the configuration."""


class Problems:
    """Collects bad input so that one run reports every problem, not the first one.

    ``with problems.check(): ...`` records an :class:`InputError` raised inside and
    carries on; :meth:`raise_if_any` raises them together (one alone, unchanged).
    """

    def __init__(self) -> None:
        self.found: list[InputError] = []

    def add(self, error: InputError) -> None:
        parts = error.problems if isinstance(error, InputProblems) else [error]
        for part in parts:
            if all(part.message != seen.message for seen in self.found):
                self.found.append(part)

    @contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except InputError as exc:
            self.add(exc)

    def __bool__(self) -> bool:
        return bool(self.found)

    def raise_if_any(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if not self.found:
            return
        if all(isinstance(p, ConfigError) for p in self.found):
            raise ConfigProblems(self.found)
        raise InputProblems(self.found)


class ApiError(PreviewctlError):
    """A remote API answered with an error (after retries, where retrying made sense)."""

    title = "API error"

    def __init__(
        self,
        api: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        parts = [f"{api}"]
        if method and path:
            parts.append(f"{method} {path}")
        if status is not None:
            parts.append(f"-> {status}")
        head = " ".join(parts)
        text = f"{head}: {message}"
        if code:
            text += f" ({code})"
        if request_id:
            text += f" [request id {request_id}]"
        super().__init__(text)
        self.api = api
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.request_id = request_id
        self.api_message = message


class NotFoundError(ApiError):
    """404 from an API: callers that treat 'already gone' as success catch this."""


class ConflictError(ApiError):
    """409/422-style conflicts (lease held, name taken)."""


class TransientApiError(ApiError):
    """Retryable failure (408/429/5xx/connection) that outlived the retry deadline."""

    retry_after: float | None = None
    """The wait the server asked for (its ``Retry-After``, in seconds), when it said one:
    a loop of its own over ``request(retry=False)`` honours it as the policy does."""


class ConnectionFailedError(TransientApiError):
    """An API that could not be reached at all (refused, DNS, timeout) after retries."""

    title = "cannot reach the API"

    def __init__(
        self,
        api: str,
        message: str,
        *,
        hint: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(api, message, method=method, path=path)
        self.message = message  # the whole sentence: which API, where, what happened
        self.hint = hint
        self.args = (message,)
        self.reason = ""  # what went wrong on the wire, in words


class NotManagedError(PreviewctlError):
    """Refusal to touch something previewctl did not make."""

    title = "not managed by previewctl"


class TimeoutExceededError(PreviewctlError):
    title = "timed out"


class StepFailedError(PreviewctlError):
    title = "step failed"


class TunnelError(PreviewctlError):
    title = "tunnel failed"
