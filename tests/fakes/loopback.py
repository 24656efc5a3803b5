"""A threaded HTTP server on 127.0.0.1 shared by the API fakes.

Each fake subclasses :class:`LoopbackApi`, declares its routes with werkzeug's
``Map`` and gets, for free: a request log, injectable faults (status codes with or
without ``Retry-After``, dropped connections, and writes that are applied but whose
answer is lost), injectable latency and JSON helpers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

# One line per request on stderr drowns test output; the request log has it all.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return self.body


@dataclass
class Fault:
    """One injected failure: matched by method and a regex on the path."""

    method: str
    path_pattern: re.Pattern[str]
    status: int = 503
    times: int = 1
    retry_after: str | None = None
    drop: bool = False
    body: Any = None
    echo: bool = False
    drop_after: bool = False
    """Apply the request as usual, then drop the connection: the answer is lost."""

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and bool(self.path_pattern.search(path))


class DropConnection(Exception):  # a control signal, not an error
    """Raised by a handler to close the socket without an answer."""


class ApiError(Exception):
    """Raised by a handler (or a helper it calls) to answer with ``error_response``."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class LoopbackApi:
    """Base of the fakes. Subclasses set ``rules`` (werkzeug Rules with endpoint names).

    Optional hooks for subclasses: ``authorize`` (refuse a request),
    ``before_handler`` (e.g. rate limits, once the route is known),
    ``finalize_response`` (e.g. headers every answer carries). Handlers may raise
    :class:`ApiError` instead of building an error response themselves.
    """

    rules: ClassVar[list[Rule]] = []
    name = "fake"

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        # Rule objects bind to one Map only: give each instance its own copies.
        self._url_map = Map([rule.empty() for rule in self.rules], strict_slashes=False)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Self:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        # A short poll interval makes stop() quick (werkzeug's default is 0.5 s).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls ---------------------------------------------------------
    def inject(
        self,
        method: str,
        path_regex: str,
        status: int = 503,
        *,
        times: int = 1,
        retry_after: str | None = None,
        drop: bool = False,
        body: Any = None,
        echo: bool = False,
        drop_after: bool = False,
    ) -> None:
        """Make the next ``times`` matching requests fail (or drop the connection).

        ``echo``: the error quotes what the request is about (its body, the stored
        resource), as real APIs' validation and state errors do; see ``echo_response``.
        ``drop_after``: the request is handled (a write is applied) but its answer is
        never sent, as when a connection dies after the server committed.
        """
        with self.lock:
            self.faults.append(
                Fault(
                    method,
                    re.compile(path_regex),
                    status,
                    times,
                    retry_after,
                    drop,
                    body,
                    echo,
                    drop_after,
                )
            )

    def calls(
        self, method: str | None = None, path_regex: str | None = None
    ) -> list[RecordedRequest]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and (path_regex is None or re.search(path_regex, r.path))
            ]

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    # ---- helpers for subclasses ------------------------------------------------
    @staticmethod
    def json_response(
        data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(
            json.dumps(data), status=status, headers=headers, content_type="application/json"
        )

    def error_response(self, status: int, message: str, code: str | None = None) -> Response:
        """Subclasses override to produce their API's error body."""
        return self.json_response({"error": message, "status": code or str(status)}, status)

    def echo_response(self, status: int, request: Request, body: Any) -> Response:
        """An error that quotes the request body. Subclasses echo in their API's shape."""
        return self.error_response(status, f"invalid request: {json.dumps(body)}")

    def authorize(self, request: Request) -> Response | None:
        """Subclasses override; return a response to refuse the request."""
        return None

    def before_handler(
        self, request: Request, endpoint: str, args: Mapping[str, Any]
    ) -> Response | None:
        """Subclasses override; called once the route matched. A response short-cuts it."""
        return None

    def finalize_response(self, request: Request, response: Response) -> Response:
        """Subclasses override; sees every answer (faults and errors included)."""
        return response

    # ---- WSGI ------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        raw = request.get_data()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query={k: request.args.getlist(k) for k in request.args},
            headers=dict(request.headers),
            body=body,
        )
        with self.lock:
            self.requests.append(record)
        if self.latency:
            time.sleep(self.latency)
        response = self._dispatch(request, record)
        if response is None:  # dropped connection
            record.status = -1
            self._drop(environ)
            return []
        response = self.finalize_response(request, response)
        record.status = response.status_code
        return response(environ, start_response)

    def _drop(self, environ: dict[str, Any]) -> None:
        # Shut the socket down under werkzeug's feet: the client sees a reset/EOF.
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _dispatch(self, request: Request, record: RecordedRequest) -> Response | None:
        fault = self._take_fault(request.method, request.path)
        if fault is not None and fault.drop_after:
            self._handle(request, record)  # the write happens; its answer is never sent
            return None
        if fault is not None:
            if fault.drop:
                return None
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
            if fault.body is not None:
                return self.json_response(fault.body, fault.status, headers)
            if fault.echo:
                resp = self.echo_response(fault.status, request, record.body)
            else:
                resp = self.error_response(fault.status, f"injected {fault.status}")
            if headers:
                resp.headers.update(headers)
            return resp
        return self._handle(request, record)

    def _handle(self, request: Request, record: RecordedRequest) -> Response | None:
        """Authorize, route and run the handler (None: drop the connection)."""
        refused = self.authorize(request)
        if refused is not None:
            return refused
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            return self.error_response(404, f"no route for {request.path}")
        except MethodNotAllowed:
            return self.error_response(405, "method not allowed")
        except HTTPException as exc:
            return self.error_response(exc.code or 400, str(exc))
        handler = getattr(self, f"on_{endpoint}")
        try:
            early = self.before_handler(request, endpoint, args)
            if early is not None:
                return early
            result: Response | None = handler(request, record.body, **args)
        except DropConnection:
            return None
        except ApiError as exc:
            return self.error_response(exc.status, exc.message, exc.code)
        return result
