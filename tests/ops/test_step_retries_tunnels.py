"""A step's `retries` never retry a dead tunnel: nothing the step needs is there any more."""

from __future__ import annotations

from tests.support.processes import wait_gone
from tests.support.stack import Stack

# Runs while the tunnel answers, fails once it has gone (no fixed wait: it asks until then).
NEEDS_THE_TUNNEL = """
import os, pathlib, socket, sys, time, urllib.parse
url = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
with pathlib.Path("runs.log").open("a") as log:
    log.write("run\\n")
while True:
    try:
        socket.create_connection((url.hostname, url.port), timeout=1).close()
    except OSError:
        sys.exit(1)
    time.sleep(0.05)
"""


def test_a_step_with_retries_whose_tunnel_died_is_not_run_again(stack: Stack) -> None:
    config = stack.project.config
    config.write_text(
        config.read_text().replace('timeout = "60s"\n', 'timeout = "60s"\nretries = 2\n', 1)
    )
    (stack.project.root / "migrate.py").write_text(NEEDS_THE_TUNNEL)
    result = stack.cli.run("up", "--pr", "21", env={"FAKE_FLYCTL_DIE_AFTER": "0.5"})
    assert result.code == 1, result.output
    assert "tunnel db" in result.stderr
    assert "retrying" not in result.stderr
    assert (stack.project.root / "runs.log").read_text() == "run\n"
    assert wait_gone(stack.flyctl_pids()) == set()
