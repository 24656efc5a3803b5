"""A stand-in for the ``flyctl`` executable, faithful to ``flyctl proxy`` (stdlib only).

It runs as its own process (through the shim that :mod:`tests.fakes.flyctl_fixture`
writes), so previewctl's tunnel code is exercised against a real child process, real
pipes, real signals and real sockets.

Commands::

    flyctl version
    flyctl proxy LOCAL[:REMOTE] [REMOTE_HOST] -a APP [-b BIND_ADDR] [-q|--quiet]
                 [--watch-stdin] [-o ORG] [-t TOKEN]

Behaviour of ``proxy`` (see the shared reference fly.md, "flyctl proxy"):

0. GraphQL: like flyctl (``GetAppNetwork``/``GetAppBasic`` before the WireGuard
   tunnel), it asks the GraphQL API at ``FLY_API_BASE_URL`` (flyctl's name for it;
   default ``https://api.fly.io``, not asked by the stand-in) ``POST /graphql`` about the
   app. Anything but a 200 is ``Error: graphql: server returned a non-200 status code:
   N``, exit 1: which is what handing flyctl a Machines API URL under that name gets.
1. "DNS": the remote host defaults to ``APP.internal`` (any started machine);
   ``MACHINE_ID.vm.APP.internal`` pins one machine. When ``FLY_FLAPS_BASE_URL`` (flyctl's
   name for the Machines API) is set the stand-in asks that (fake) Machines API
   ``GET /v1/apps/{app}/machines`` until the host "resolves" (a started machine, or the
   pinned machine started), polling every 0.1 s for up to ``FAKE_FLYCTL_DNS_WAIT``
   seconds (default 3; real flyctl waits about 4 minutes), then fails with
   ``Error: host was not found in DNS``. Without ``FLY_FLAPS_BASE_URL`` the check is
   skipped.
2. Binds ``BIND_ADDR:LOCAL`` (LOCAL 0 = a free port) and prints, on stdout,
   ``Proxying localhost:PORT to remote [HOST]:REMOTE``. That line only means
   "listening".
3. Each accepted connection is dialled on its own: the host must still resolve (the
   machines API is asked again when ``FLY_FLAPS_BASE_URL`` is set) and the remote port
   must be mapped in ``FAKE_FLYCTL_TARGETS``; otherwise the client connection is closed
   at once, as the real tunnel does when the dial fails.
4. SIGINT/SIGTERM end it with exit 0; with ``--watch-stdin`` so does EOF on stdin.

Environment:

``FLY_API_BASE_URL``
    flyctl's GraphQL base; unset = no GraphQL call (see 0.).
``FLY_FLAPS_BASE_URL``
    Base URL of the (fake) Machines API; unset = no DNS check.
``FLY_ACCESS_TOKEN`` then ``FLY_API_TOKEN`` (or ``-t``)
    Token sent as ``Authorization: FlyV1 TOKEN`` for ``fm1r_``/``fm1a_``/``fm2_``
    macaroons, ``Bearer TOKEN`` otherwise, verbatim when it already holds a scheme.
    Required when ``FLY_FLAPS_BASE_URL`` is set.
``FAKE_FLYCTL_TARGETS``
    JSON object: remote port (string) -> ``"host:port"`` of a real local service.
``FAKE_FLYCTL_DNS_WAIT``
    Seconds to wait for the host to resolve (default 3).
``FAKE_FLYCTL_READY_DELAY``
    Seconds to sleep before binding and printing the ready line (slow tunnel setup).
``FAKE_FLYCTL_DIE_AFTER``
    Seconds after the ready line to fail with ``Error: tunnel unexpectedly closed``, exit 1.
``FAKE_FLYCTL_LOG``
    Path; one JSON line is appended per event: ``{"pid", "argv", "base_urls",
    "event": "start"}`` (``base_urls``: the ``FLY_*_BASE_URL`` variables it was given),
    ``{"pid", "event": "ready", "port"}`` and ``{"pid", "event": "exit", "code"}``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from types import FrameType
from typing import Any

VERSION_LINE = "flyctl v0.3.999 linux/amd64 Commit: fake BuildDate: 2026-01-01T00:00:00Z"
USER_AGENT = "flyctl/v0.3.999 (previewctl test stand-in)"
MACAROON_PREFIXES = ("fm1r_", "fm1a_", "fm2_")
DNS_POLL_INTERVAL = 0.1
BASE_URL_NAMES = ("FLY_API_BASE_URL", "FLY_FLAPS_BASE_URL")
DEFAULT_DNS_WAIT = 3.0
API_TIMEOUT = 5.0
DIAL_TIMEOUT = 5.0
USAGE = """Proxies connections to a Fly Machine through a WireGuard tunnel.

Usage:
  flyctl proxy <local:remote> [remote_host] [flags]

Flags:
  -a, --app string         Application name
  -b, --bind-addr string   Local address to bind to (default "127.0.0.1")
  -o, --org string         The target Fly.io organization
  -q, --quiet              Don't print progress indicators for WireGuard
      --watch-stdin        Watches stdin and terminates once it gets closed
  -t, --access-token string   Fly API Access Token
"""


class Exit(Exception):
    """Unwinds to main() with an exit code and an optional stderr message."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- logging hook ------------------------------------------------------------------


def log_event(event: str, **fields: Any) -> None:
    path = os.environ.get("FAKE_FLYCTL_LOG")
    if not path:
        return
    record: dict[str, Any] = {"pid": os.getpid(), **fields, "event": event}
    line = (json.dumps(record) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return
    try:
        os.write(fd, line)  # one write on an O_APPEND fd: lines never interleave
    finally:
        os.close(fd)


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise Exit(1, f"Error: invalid {name}={raw!r} (stand-in configuration)") from None


# ---- argument parsing (cobra-like messages) ------------------------------------------


@dataclass
class ProxyArgs:
    local_port: int
    remote_port: int
    remote_host: str | None
    app: str | None = None
    bind_addr: str = "127.0.0.1"
    quiet: bool = False
    watch_stdin: bool = False
    org: str | None = None
    access_token: str | None = None


VALUE_FLAGS = {
    "-a": "app",
    "--app": "app",
    "-b": "bind_addr",
    "--bind-addr": "bind_addr",
    "-o": "org",
    "--org": "org",
    "-t": "access_token",
    "--access-token": "access_token",
}
BOOL_FLAGS = {"-q": "quiet", "--quiet": "quiet", "--watch-stdin": "watch_stdin"}


def unknown_flag(arg: str) -> Exit:
    if arg.startswith("--"):
        return Exit(1, f"Error: unknown flag: {arg.split('=', 1)[0]}")
    return Exit(1, f"Error: unknown shorthand flag: '{arg[1:2]}' in {arg}")


def parse_port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise Exit(1, f'Error: invalid port "{text}"')
    return int(text)


def parse_proxy_args(argv: list[str]) -> ProxyArgs:
    values: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if arg in ("-h", "--help"):
            sys.stdout.write(USAGE)
            raise Exit(0)
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, has_value, inline = arg.partition("=")
        if name in BOOL_FLAGS:
            values[BOOL_FLAGS[name]] = inline.lower() not in ("false", "0") if has_value else True
            continue
        if name in VALUE_FLAGS:
            if has_value:
                values[VALUE_FLAGS[name]] = inline
            elif i < len(argv):
                values[VALUE_FLAGS[name]] = argv[i]
                i += 1
            else:
                raise Exit(1, f"Error: flag needs an argument: {name}")
            continue
        if not arg.startswith("--") and arg[:2] in VALUE_FLAGS:  # -aAPP
            values[VALUE_FLAGS[arg[:2]]] = arg[2:]
            continue
        raise unknown_flag(arg)
    if not 1 <= len(positional) <= 2:
        raise Exit(1, f"Error: accepts between 1 and 2 arg(s), received {len(positional)}")
    local_text, _, remote_text = positional[0].partition(":")
    local_port = parse_port(local_text)
    remote_port = parse_port(remote_text) if remote_text else local_port
    return ProxyArgs(
        local_port=local_port,
        remote_port=remote_port,
        remote_host=positional[1] if len(positional) == 2 else None,
        **values,
    )


# ---- the "DNS" check against the (fake) Machines API --------------------------------


def authorization_header(token: str) -> str:
    token = token.strip()
    if " " in token:
        return token
    if token.startswith(MACAROON_PREFIXES):
        return f"FlyV1 {token}"
    return f"Bearer {token}"


@dataclass
class Resolver:
    """Answers "does HOST resolve right now?" from the machines API."""

    base_url: str
    token: str
    app: str
    machine_id: str | None

    def list_machines(self, timeout: float = API_TIMEOUT) -> list[dict[str, Any]] | None:
        """The app's machines, or None on a transient failure. Raises Exit on 404/401/403."""
        url = f"{self.base_url.rstrip('/')}/v1/apps/{urllib.parse.quote(self.app)}/machines"
        request = urllib.request.Request(
            url,
            headers={
                "Authorization": authorization_header(self.token),
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise Exit(1, f'Error: Could not find App "{self.app}"') from None
            if exc.code in (401, 403):
                raise Exit(1, "Error: You must be authenticated to view this.") from None
            return None  # 408/429/5xx: try again
        except (OSError, ValueError):
            return None  # refused, reset, timeout, garbage: try again
        if isinstance(payload, dict):
            payload = payload.get("machines", payload.get("data"))
        if not isinstance(payload, list):
            return None
        return [m for m in payload if isinstance(m, dict)]

    def resolves(self, timeout: float = API_TIMEOUT) -> bool:
        machines = self.list_machines(timeout)
        if machines is None:
            return False
        return any(
            m.get("state") == "started"
            and (self.machine_id is None or m.get("id") == self.machine_id)
            for m in machines
        )


HOST_RE = re.compile(r"^(?:(?P<machine>[^.]+)\.vm\.)?(?P<app>[A-Za-z0-9-]+)\.internal$")


GRAPHQL_APP_QUERY = (
    "query ($appName: String!) { app(name: $appName) { id name network organization { slug } } }"
)


def check_graphql(app: str, token: str | None) -> None:
    """flyctl's GraphQL look-up of the app, at ``FLY_API_BASE_URL`` when that is set."""
    base_url = os.environ.get("FLY_API_BASE_URL", "").strip()
    if not base_url:
        return
    body = json.dumps({"query": GRAPHQL_APP_QUERY, "variables": {"appName": app}}).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = authorization_header(token)
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/graphql", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=API_TIMEOUT) as response:
            payload = json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise Exit(
            1, f"Error: graphql: server returned a non-200 status code: {exc.code}"
        ) from None
    except (OSError, ValueError) as exc:
        raise Exit(1, f"Error: graphql: {exc}") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or not data.get("app"):
        raise Exit(1, f'Error: Could not find App "{app}"')


def make_resolver(host: str, token: str | None) -> Resolver | None:
    base_url = os.environ.get("FLY_FLAPS_BASE_URL", "").strip()
    if not base_url:
        return None
    match = HOST_RE.match(host)
    if match is None:  # a literal address or a name this fake does not model
        return None
    if not token:
        raise Exit(1, "Error: No access token available. Please login with 'flyctl auth login'")
    return Resolver(base_url, token, match["app"], match["machine"])


def wait_for_dns(resolver: Resolver, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        if resolver.resolves(max(DNS_POLL_INTERVAL, deadline - time.monotonic())):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Exit(1, "Error: host was not found in DNS")
        time.sleep(min(DNS_POLL_INTERVAL, remaining))


# ---- forwarding -------------------------------------------------------------------


def load_targets() -> dict[str, tuple[str, int]]:
    raw = os.environ.get("FAKE_FLYCTL_TARGETS", "").strip()
    if not raw:
        return {}
    try:
        mapping = json.loads(raw)
        targets: dict[str, tuple[str, int]] = {}
        for port, address in mapping.items():
            host, _, target_port = str(address).rpartition(":")
            targets[str(port)] = (host.strip("[]") or "127.0.0.1", int(target_port))
    except (ValueError, AttributeError) as exc:
        raise Exit(1, f"Error: invalid FAKE_FLYCTL_TARGETS: {exc}") from None
    return targets


def pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy src -> dst until EOF, then half-close dst; on an error, tear both down."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
    except OSError:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def serve_connection(
    client: socket.socket, target: tuple[str, int] | None, resolver: Resolver | None
) -> None:
    upstream: socket.socket | None = None
    try:
        if target is None:
            return
        if resolver is not None:
            try:
                if not resolver.resolves():
                    return
            except Exit:
                return
        try:
            upstream = socket.create_connection(target, timeout=DIAL_TIMEOUT)
        except OSError:
            return
        upstream.settimeout(None)
        for peer in (client, upstream):
            with contextlib.suppress(OSError):
                peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join()
    finally:
        for open_sock in (client, upstream):
            if open_sock is not None:
                with contextlib.suppress(OSError):
                    open_sock.close()


# ---- the proxy command ----------------------------------------------------------------


def bind_listener(bind_addr: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind_addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # Go's net.Listen sets SO_REUSEADDR: TIME_WAIT leftovers do not block, listeners do.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind_addr, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        shown = f"[{bind_addr}]" if family == socket.AF_INET6 else bind_addr
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        reason = reason[:1].lower() + reason[1:]
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use"
        raise Exit(1, f"Error: listen tcp {shown}:{port}: bind: {reason}") from None
    return sock


def watch_stdin(notify_fd: int) -> None:
    """Read stdin until EOF (or error), then wake the main loop."""
    try:
        while os.read(sys.stdin.fileno(), 65536):
            pass
    except (OSError, ValueError):
        pass
    with contextlib.suppress(OSError):
        os.write(notify_fd, b"e")


def run_proxy(argv: list[str]) -> int:
    args = parse_proxy_args(argv)
    if not args.app:
        raise Exit(
            1,
            "Error: the config for your app is missing an app name, add an app field to the "
            "fly.toml file or specify with the -a flag",
        )
    host = args.remote_host or f"{args.app}.internal"
    token = (
        args.access_token
        or os.environ.get("FLY_ACCESS_TOKEN", "").strip()
        or os.environ.get("FLY_API_TOKEN", "").strip()
        or None
    )
    targets = load_targets()
    die_after = env_float("FAKE_FLYCTL_DIE_AFTER", 0.0)
    ready_delay = env_float("FAKE_FLYCTL_READY_DELAY", 0.0)

    check_graphql(args.app, token)
    resolver = make_resolver(host, token)
    if resolver is not None:
        wait_for_dns(resolver, env_float("FAKE_FLYCTL_DNS_WAIT", DEFAULT_DNS_WAIT))
    if ready_delay > 0:
        time.sleep(ready_delay)

    listener = bind_listener(args.bind_addr, args.local_port)
    try:
        port = listener.getsockname()[1]
        log_event("ready", port=port)  # first: whoever saw the line finds it logged
        sys.stdout.write(f"Proxying localhost:{port} to remote [{host}]:{args.remote_port}\n")
        sys.stdout.flush()
        deadline = time.monotonic() + die_after if die_after > 0 else None

        selector = selectors.DefaultSelector()
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, "accept")
        if args.watch_stdin:
            read_fd, write_fd = os.pipe()
            selector.register(read_fd, selectors.EVENT_READ, "stdin")
            threading.Thread(target=watch_stdin, args=(write_fd,), daemon=True).start()
        target = targets.get(str(args.remote_port))
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            events = selector.select(timeout)
            if deadline is not None and time.monotonic() >= deadline:
                raise Exit(1, "Error: tunnel unexpectedly closed")
            for key, _ in events:
                if key.data == "stdin":
                    return 0
                try:
                    client, _addr = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                client.setblocking(True)
                threading.Thread(
                    target=serve_connection, args=(client, target, resolver), daemon=True
                ).start()
    finally:
        listener.close()


# ---- entry point ----------------------------------------------------------------------


_stopping = False


def on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGINT/SIGTERM: unwind once (closing the listener), exit 0; later signals are ignored."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise Exit(0)


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("help", "-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if argv[0] == "version":
        sys.stdout.write(VERSION_LINE + "\n")
        return 0
    if argv[0] == "proxy":
        return run_proxy(argv[1:])
    if argv[0].startswith("-"):
        raise unknown_flag(argv[0])
    raise Exit(1, f'Error: unknown command "{argv[0]}" for "flyctl"')


def main(argv: list[str]) -> int:
    global _stopping
    base_urls = {k: v for k, v in os.environ.items() if k in BASE_URL_NAMES}
    log_event("start", argv=["flyctl", *argv], base_urls=base_urls)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    message: str | None = None
    try:
        try:
            code = dispatch(argv)
        except Exit as exc:
            code, message = exc.code, exc.message
        except Exception:  # a bug in the stand-in: show it, still log the exit
            traceback.print_exc()
            code = 2
        _stopping = True
    except Exit as exc:  # a signal landed while an error was being handled
        code, message = exc.code, None
    _stopping = True
    with contextlib.suppress(OSError, ValueError):
        if message:
            sys.stderr.write(message + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
    log_event("exit", code=code)
    return code


if __name__ == "__main__":
    # os._exit: never wait on daemon forwarding threads or interpreter teardown.
    os._exit(main(sys.argv[1:]))
