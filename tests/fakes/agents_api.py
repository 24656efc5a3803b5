"""agents-api's manage API as a Vercel preview deployment serves it, on loopback.

``seed`` PUTs to the READY deployment's own URL, ``https://NAME-xxxx.vercel.app``. To
keep that URL as it is, the stand-in is an HTTPS server with a certificate for
``*.vercel.app`` (from a throw-away CA made with ``openssl``), reached through an HTTP
``CONNECT`` proxy: previewctl gets ``HTTPS_PROXY`` and ``SSL_CERT_FILE``, as any
client behind a proxy would.

The project endpoint behaves as ../shared/reference/agents-stack.md says:
``PUT /manage/tenants/{tenant}/project-full/{projectId}`` needs
``Authorization: Bearer`` + the deployment's ``INKEEP_AGENTS_MANAGE_API_BYPASS_SECRET``
(401 otherwise), a JSON body whose ``id`` is the URL's (400 otherwise), and answers
201 when it created the project, 200 when it updated it.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROJECT_PATH = re.compile(r"^/manage/tenants/([^/]+)/project-full/([^/?]+)$")


def make_certificates(directory: Path, host: str = "*.vercel.app") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``host`` signed by it: (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(
        f"subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_ext += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    sign = ["-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-extfile", ext]
    commands = [
        ["openssl", "req", "-x509", *ec, "-days", "2", "-keyout", ca_key, "-out", ca, "-subj", "/CN=test CA", *ca_ext],
        ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={host}"],
        ["openssl", "x509", "-req", "-in", csr, *sign, "-days", "2", "-out", cert],
    ]  # fmt: skip
    for command in commands:
        subprocess.run([str(c) for c in command], check=True, capture_output=True, timeout=30)
    return ca, cert, key


@dataclass
class ProjectPut:
    host: str
    path: str
    authorization: str
    body: bytes
    status: int


@dataclass
class AgentsApiStandIn:
    """``env_for_host(host)`` is the env the deployment at ``host`` was built with
    (None: no such deployment, 404)."""

    certificates: tuple[Path, Path, Path]
    env_for_host: Callable[[str], dict[str, str] | None]
    puts: list[ProjectPut] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)
    projects: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    _servers: list[Any] = field(default_factory=list)

    def start(self) -> AgentsApiStandIn:
        _, cert, key = self.certificates
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        api = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        api.socket = context.wrap_socket(api.socket, server_side=True)
        proxy = _ConnectProxy(self, api.server_address[1])
        for server in (api, proxy):
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
        return self

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].port}"

    @property
    def ca_file(self) -> Path:
        return self.certificates[0]

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def answer_put(self, host: str, path: str, auth: str, body: bytes) -> tuple[int, Any]:
        match = PROJECT_PATH.match(path)
        env = self.env_for_host(host)
        if match is None or env is None:
            return 404, {"error": {"message": "Not Found"}}
        secret = env.get("INKEEP_AGENTS_MANAGE_API_BYPASS_SECRET")
        if not secret or auth != f"Bearer {secret}":
            return 401, {"error": {"message": "Invalid or missing API key"}}
        try:
            project = json.loads(body)
        except ValueError:
            return 400, {"error": {"message": "invalid JSON"}}
        tenant, project_id = match.groups()
        if not isinstance(project, dict) or project.get("id") != project_id:
            return 400, {"error": {"message": "project id does not match the URL"}}
        key = (host, tenant, project_id)
        status = 200 if key in self.projects else 201
        self.projects[key] = project
        return status, {"data": project}


def _handler(stand_in: AgentsApiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            host = (self.headers.get("host") or "").split(":")[0]
            auth = self.headers.get("authorization") or ""
            status, answer = stand_in.answer_put(host, self.path, auth, body)
            stand_in.puts.append(ProjectPut(host, self.path, auth, body, status))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _ConnectProxy:
    """``CONNECT host:443`` to the HTTPS stand-in, whatever the host (it records it)."""

    def __init__(self, stand_in: AgentsApiStandIn, target_port: int) -> None:
        self._stand_in, self._target = stand_in, target_port
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()

    def serve_forever(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def shutdown(self) -> None:
        self._stop.set()

    def server_close(self) -> None:
        self._sock.close()

    def _tunnel(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            first = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(first) < 2 or first[0] != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                return
            self._stand_in.connects.append(first[1])
            with socket.create_connection(("127.0.0.1", self._target), timeout=10) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pipe(client, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 10)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            peers[sock].sendall(data)
