"""A loopback stand-in for SpiceDB's gRPC port, with a one-line text protocol.

Real SpiceDB speaks gRPC; what the agents scripts depend on is smaller, and that is
what this keeps (see ../shared/reference/agents-stack.md):

- it accepts TCP connections before it serves: the first ``unavailable_first``
  requests after a boot answer ``UNAVAILABLE`` (the reason ``wait-for-spicedb.ts``
  exists);
- every request carries the preshared key; a wrong one is ``UNAUTHENTICATED``;
- with the memory engine the schema is empty after each boot: ``READ_SCHEMA`` answers
  ``NOT_FOUND no schema has been defined`` until auth-init's ``WRITE_SCHEMA``.

A request is one line ``KEY METHOD [ARG]``; the answer is one line ``CODE [message]``.
A connection that sends nothing (previewctl's TCP probe) is not a request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class SpiceDbRequest:
    key: str
    method: str
    answer: str


@dataclass
class SpiceDbStandIn:
    unavailable_first: int = 2
    key: str | None = None
    schema: str | None = None
    requests: list[SpiceDbRequest] = field(default_factory=list)
    _served: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sock: socket.socket | None = None

    def start(self) -> SpiceDbStandIn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self._sock = sock
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def boot(self, preshared_key: str) -> None:
        """What a fresh container does: the configured key, an empty memory datastore,
        and a start-up period in which it accepts but does not serve."""
        with self._lock:
            self.key, self.schema, self._served = preshared_key, None, 0

    def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            line = conn.makefile("rb").readline().decode("utf-8", "replace").strip()
            if not line:
                return
            conn.sendall((self._answer(line) + "\n").encode())

    def _answer(self, line: str) -> str:
        key, _, rest = line.partition(" ")
        method, _, arg = rest.partition(" ")
        with self._lock:
            self._served += 1
            if self._served <= self.unavailable_first:
                answer = "UNAVAILABLE connection refused: the server is not serving yet"
            elif self.key is None or key != self.key:
                answer = "UNAUTHENTICATED invalid preshared key"
            elif method == "READ_SCHEMA":
                answer = (
                    f"OK {self.schema}"
                    if self.schema
                    else "NOT_FOUND no schema has been defined; please call WriteSchema"
                )
            elif method == "WRITE_SCHEMA" and arg:
                self.schema = arg
                answer = "OK"
            else:
                answer = f"UNIMPLEMENTED unknown method {method!r}"
            self.requests.append(SpiceDbRequest(key, method, answer))
            return answer
