"""Two sides of one contract: the respx answers the client tests serve, and an emulator.

A contract test runs once per side with the same requests and the same assertions. On the
respx side each call gets the canned answer of ``tests/support/answers.py`` (and every
canned route must be asked, so a test cannot pass around it); on the emulator side the
fake's own state answers. What both must satisfy is written down once, in ``assert_*``
helpers that follow the platforms' own clients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import respx

from previewctl.clients.http import RetryPolicy, build_http_client
from tests.fakes.loopback import LoopbackApi

SIDES = ["respx", "emulator"]


def quick_retry() -> RetryPolicy:
    return RetryPolicy(max_wait=0.01, multiplier=0.001, deadline=5)


@dataclass
class Side:
    kind: str
    base: str
    headers: dict[str, str]
    http: httpx.Client
    router: respx.MockRouter | None
    fake: Any

    def serve(self, method: str, path: str, status: int, body: Any = None) -> None:
        """respx side: answer ``method path`` with the canned ``body`` (the emulator's
        state answers on the other side)."""
        if self.router is not None:
            route = self.router.route(method=method, path=path)
            route.respond(status, json=body) if body is not None else route.respond(status)

    def given(self, arrange: Callable[[Any], object]) -> None:
        """Emulator side: put the fake in the state the call needs (respx: nothing)."""
        if self.fake is not None:
            arrange(self.fake)

    def client_http(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """An ``httpx.Client`` as previewctl builds it, for previewctl's own API client."""
        return build_http_client(self.base, headers or self.headers)


@contextlib.contextmanager
def side(
    kind: str, base: str, headers: dict[str, str], make_fake: Callable[[], LoopbackApi]
) -> Iterator[Side]:
    if kind == "respx":
        with (
            respx.mock(base_url=base, assert_all_called=True) as router,
            httpx.Client(base_url=base, headers=headers) as http,
        ):
            yield Side(kind, base, headers, http, router, None)
        return
    fake = make_fake().start()
    try:
        with httpx.Client(base_url=fake.url, headers=headers) as http:
            yield Side(kind, fake.url, headers, http, None, fake)
    finally:
        fake.stop()


def json_object(answer: httpx.Response) -> dict[str, Any]:
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    body = answer.json()
    assert isinstance(body, dict), body
    return body
