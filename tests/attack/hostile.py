"""Hostile versions of the loopback fakes and a runner for the installed console script.

The fakes stay faithful; these subclasses only add what a flaky network or a broken
proxy does to their answers: a raw body instead of the API's (garbage JSON, HTML, a
body echoing the request's Authorization header), an answer that hangs until the test
lets it go, and an answer lost after the fake did the work (the request landed, the
client never hears back).
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.fly_api import FlyEmulator
from tests.fakes.github_api import GitHubFake
from tests.fakes.loopback import LoopbackApi, RecordedRequest
from tests.fakes.vercel_api import VercelFake
from tests.support.cli import CliResult, previewctl_executable
from tests.support.cli import base_env as cli_env

Answer = Callable[[Request], Response]


@dataclass
class _Rule:
    method: str
    path: re.Pattern[str]
    times: int

    def take(self, request: Request) -> bool:
        wanted = self.method in ("*", request.method) and self.path.search(request.path)
        if self.times > 0 and wanted:
            self.times -= 1
            return True
        return False


class Hostile(LoopbackApi):
    """Mixed in before a fake: ``raw`` answers replace the fake's, ``lose`` drops its."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._raw: list[tuple[_Rule, Answer]] = []
        self._lose: list[_Rule] = []

    def answer_raw(self, method: str, path: str, answer: Answer, *, times: int = 10**6) -> None:
        with self.lock:
            self._raw.append((_Rule(method, re.compile(path), times), answer))

    def lose_answer(self, method: str, path: str, *, times: int = 1) -> None:
        """The fake handles the request, then the connection drops before the answer."""
        with self.lock:
            self._lose.append(_Rule(method, re.compile(path), times))

    def _dispatch(self, request: Request, record: RecordedRequest) -> Response | None:
        with self.lock:
            raw = next((answer for rule, answer in self._raw if rule.take(request)), None)
        if raw is not None:
            return raw(request)
        response = super()._dispatch(request, record)
        with self.lock:
            lost = any(rule.take(request) for rule in self._lose)
        return None if lost else response

    def non_get_calls(self) -> list[RecordedRequest]:
        return [r for r in self.calls() if r.method not in ("GET", "HEAD")]


class HostileFly(Hostile, FlyEmulator):
    pass


class HostileVercel(Hostile, VercelFake):
    pass


class HostileGitHub(Hostile, GitHubFake):
    pass


# ---- raw answers ------------------------------------------------------------------------


def body(text: str, status: int = 200, content_type: str = "application/json") -> Answer:
    return lambda request: Response(text, status=status, content_type=content_type)


def echo_authorization(status: int, template: str, content_type: str) -> Answer:
    """An error body that quotes the request's Authorization header (a proxy, a debug page)."""

    def answer(request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        return Response(template.format(auth=header), status=status, content_type=content_type)

    return answer


def held_until(event: threading.Event, inner: Answer) -> Answer:
    """Hang until the test sets ``event`` (or 60 s), then answer with ``inner``."""

    def answer(request: Request) -> Response:
        event.wait(60)
        return inner(request)

    return answer


# ---- the console script -----------------------------------------------------------------


Ran = CliResult  # what one run of the console script ended with


previewctl = previewctl_executable


def base_env(home: Path, **extra: str | None) -> dict[str, str]:
    """tests.support.cli's minimal environment plus ``extra`` (a None removes a name)."""
    env = cli_env(home)
    env.update({k: v for k, v in extra.items() if v is not None})
    return {k: v for k, v in env.items() if extra.get(k, "") is not None}


def run(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    *,
    timeout: float = 120,
    preexec: Callable[[], None] | None = None,
) -> Ran:
    proc = subprocess.run(
        [previewctl(), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        preexec_fn=preexec,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)
