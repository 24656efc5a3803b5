"""[[seed]] steps that write the files later steps send (`creates`), end to end."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.checks import assert_no_leak
from tests.support.stack import Stack

APP = "pr-21-stack"


class _Puts(BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_PUT(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.send_response(201)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def puts() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Puts,), {"bodies": bodies}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def seed_toml(url: str, *, creates: bool, writes: bool) -> str:
    code = "import json; json.dump({'id': 'demo'}, open('out/project.json', 'w'))"
    if not writes:
        code = "print('made nothing')"
    declared = 'creates = ["out/project.json"]\n' if creates else ""
    return f"""
[[seed]]
name = "generate"
run = [{json.dumps(sys.executable)}, "-c", {json.dumps(code)}]
{declared}
[[seed]]
name = "project"
http = {{ method = "PUT", url = "{url}/p", body_file = "out/project.json", headers = {{ Authorization = "Bearer ${{secrets.bypass}}" }} }}
"""


def use_seed(stack: Stack, text: str) -> None:
    (stack.project.root / "out").mkdir(exist_ok=True)
    stack.project.config.write_text(stack.project.config.read_text() + text)


def test_a_body_file_no_step_creates_is_refused_before_any_remote_call(
    stack: Stack, puts: tuple[str, list[bytes]]
) -> None:
    url, bodies = puts
    use_seed(stack, seed_toml(url, creates=False, writes=True))
    result = stack.cli.run("seed", "--pr", "21")
    assert result.code == 2, result.output
    assert "out/project.json" in result.stderr
    assert "`creates`" in result.stderr
    assert "previewctl.toml:" in result.stderr
    assert "[seed[1].http.body_file]" in result.stderr
    assert stack.fly.requests == []
    assert bodies == []
    assert not (stack.project.root / "out" / "project.json").exists()  # no step ran


def test_a_file_an_earlier_step_creates_is_sent(
    stack: Stack, puts: tuple[str, list[bytes]]
) -> None:
    url, bodies = puts
    use_seed(stack, seed_toml(url, creates=True, writes=True))
    assert stack.cli.run("up", "--pr", "21").code == 0
    result = stack.cli.run("seed", "--pr", "21")
    assert result.code == 0, result.output
    assert [json.loads(b) for b in bodies] == [{"id": "demo"}]
    assert_no_leak(stack.cli.all_output(), list(stack.secrets(APP).values()))


def test_a_step_that_does_not_create_what_it_declares_fails_before_the_request(
    stack: Stack, puts: tuple[str, list[bytes]]
) -> None:
    url, bodies = puts
    use_seed(stack, seed_toml(url, creates=True, writes=False))
    assert stack.cli.run("up", "--pr", "21").code == 0
    result = stack.cli.run("seed", "--pr", "21")
    assert result.code == 1, result.output
    assert "step generate succeeded but did not create out/project.json" in result.stderr
    assert bodies == []
