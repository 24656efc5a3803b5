"""The lead's attacks on the latest landings: the repository in the marker, the output
streams a caller closed, and what the user can do when the rule says "not managed".

Each test drives the installed console script against the loopback Fly emulator and
asserts the outcome the contract demands (exit code, emulator state, output).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes.fly_api import FlyEmulator
from tests.support.cli import Cli, previewctl_executable
from tests.support.previews import iso

pytestmark = pytest.mark.e2e

APP = "pr-6-svc"


def run_into_closed_pipe(
    console: Cli, *args: str, env: dict[str, str] | None = None, stream: str = "stdout"
) -> tuple[int, str]:
    """Run with ``stream`` a pipe whose reader has gone (``| head -c0``): exit code and
    the other stream's text."""
    reader, writer = os.pipe()
    os.close(reader)
    out, err = (writer, subprocess.PIPE) if stream == "stdout" else (subprocess.PIPE, writer)
    try:
        proc = subprocess.run(
            [previewctl_executable(), "--config", str(console.project.config), *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env={**console.env, **(env or {})},
            cwd=console.project.root,
            timeout=90,
            check=False,
        )
    finally:
        os.close(writer)
    return proc.returncode, (proc.stderr if stream == "stdout" else proc.stdout).decode()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--version",), 0),
        (("--json", "--version"), 0),
        (("--help",), 0),
        (("--json", "gc", "--max-age", "1m"), 2),
        (("gc", "--max-age", "1m"), 2),
    ],
    ids=["version", "json-version", "help", "json-bad-input", "bad-input"],
)
def test_a_reader_that_went_away_changes_no_exit_code(
    console: Cli, args: tuple[str, ...], code: int
) -> None:
    """Break: with stdout a closed pipe (``previewctl --version | head -c0``) the first
    write raised BrokenPipeError: exit 120 with a traceback, or click's silent exit 1,
    where >/dev/null gives 0 or 2. A reader that left must not change the outcome."""
    got, stderr = run_into_closed_pipe(console, *args)
    assert got == code, stderr
    assert "Traceback" not in stderr, stderr
    assert "BrokenPipe" not in stderr, stderr


def test_up_into_a_closed_pipe_does_its_work_and_says_so(console: Cli, fly: FlyEmulator) -> None:
    """Break: ``previewctl --json up | head -c0`` exited 1 (click's EPIPE exit) though the
    preview was made: a workflow step would call a good run failed."""
    got, stderr = run_into_closed_pipe(console, "--json", "up", "--pr", "6")
    assert got == 0, stderr
    assert "Traceback" not in stderr, stderr
    (machine,) = fly.apps[APP].machines.values()
    assert machine.state == "started"


def test_up_with_stderr_into_a_closed_pipe_does_its_work(console: Cli, fly: FlyEmulator) -> None:
    """Break: ``previewctl up 2>&1 | head -c0``-like: progress lines go to stderr, so a
    stderr nobody reads ended up at its first line. It must finish, exit 0, and still
    print its JSON result on stdout."""
    got, stdout = run_into_closed_pipe(console, "--json", "up", "--pr", "6", stream="stderr")
    assert got == 0
    assert '"app": "pr-6-svc"' in stdout or '"app":"pr-6-svc"' in stdout, stdout
    (machine,) = fly.apps[APP].machines.values()
    assert machine.state == "started"


def test_a_laptop_update_keeps_the_recorded_repository(console: Cli, fly: FlyEmulator) -> None:
    """Guard (held): a laptop up (no GITHUB_REPOSITORY) that changes the machine keeps the
    repository and its id the workflow recorded, so the workflow still owns it after."""
    assert console.run("up", "--pr", "6", env=ONE).code == 0
    machine_file = console.project.root / ".fly" / "machine-config.json"
    config = json.loads(machine_file.read_text())
    config["guest"]["memory_mb"] = 2 * config["guest"]["memory_mb"]
    machine_file.write_text(json.dumps(config))
    fly.clear_log()
    assert console.run("up", "--pr", "6").code == 0
    assert fly.mutating_calls(), "the laptop run should have updated the machine"
    (machine,) = fly.apps[APP].machines.values()
    meta = machine.config["metadata"]
    assert (meta["previewctl_repo"], meta["previewctl_repo_id"]) == ("acme/one", "4242")
    assert console.run("up", "--pr", "6", env=ONE).code == 0


# ---- managed-rule 5: the repository in the marker ---------------------------------------

ONE = {"GITHUB_REPOSITORY": "acme/one", "GITHUB_REPOSITORY_ID": "4242"}


def test_a_renamed_repository_keeps_managing_its_previews(console: Cli, fly: FlyEmulator) -> None:
    """Break: the marker recorded only the repository's name, so after a rename (or a
    transfer) every up, down and gc of the repository refused its own open previews as
    "another repository's", for good. GitHub's repository id does not change: the marker
    records it, and a run whose id matches the recorded one manages the preview."""
    assert console.run("up", "--pr", "6", env=ONE).code == 0
    (machine,) = fly.apps[APP].machines.values()
    assert machine.config["metadata"]["previewctl_repo_id"] == "4242"

    renamed = {"GITHUB_REPOSITORY": "acme/one-renamed", "GITHUB_REPOSITORY_ID": "4242"}
    status = console.run("--json", "status", env=renamed)
    assert status.code == 0, status.output
    assert [r["standing"] for r in status.json()["rows"]] == ["managed"]
    assert console.run("up", "--pr", "6", env=renamed).code == 0

    other = {"GITHUB_REPOSITORY": "acme/one", "GITHUB_REPOSITORY_ID": "777"}
    refused = console.run("down", "--pr", "6", env=other)  # same name, another repository
    assert refused.code == 1, refused.output
    assert "not managed" in refused.stderr
    assert APP in fly.apps

    down = console.run("down", "--pr", "6", env=renamed)
    assert down.code == 0, down.output
    assert APP not in fly.apps


def test_a_preview_recorded_under_an_old_name_says_what_to_do(
    console: Cli, fly: FlyEmulator
) -> None:
    """Break: a preview whose marker names another repository name (an old name, no id
    recorded; or a second repository using the same [app] name template, whose PR numbers
    collide) was refused with "remove or rename this one by hand", naming no way to do
    either. The refusal says both: a template of its own, and a run without
    GITHUB_REPOSITORY (rule 5 passes) to remove the old one."""
    assert console.run("up", "--pr", "6", env={"GITHUB_REPOSITORY": "acme/old"}).code == 0
    fly.clear_log()
    refused = console.run("down", "--pr", "6", env={"GITHUB_REPOSITORY": "acme/new"})
    assert refused.code == 1, refused.output
    assert "made for repository 'acme/old', not 'acme/new'" in refused.stderr
    assert "GITHUB_REPOSITORY" in refused.stderr  # the way out is named
    assert "renamed" in refused.stderr
    assert "[app] name template" in refused.stderr
    assert fly.mutating_calls() == []
    assert console.run("down", "--pr", "6").code == 0  # the way out works
    assert APP not in fly.apps


@pytest.mark.parametrize("variant", ["acme/one ", " Acme/One", "ACME/ONE\n"])
def test_every_command_reads_the_repository_alike(
    console: Cli, fly: FlyEmulator, variant: str
) -> None:
    """Break: up, down and stop stripped GITHUB_REPOSITORY but gc and status did not, so
    with a stray space status called the repository's own preview "not managed" while
    down destroyed it: one rule, two answers."""
    assert console.run("up", "--pr", "6", env={"GITHUB_REPOSITORY": "acme/one"}).code == 0
    status = console.run("--json", "status", env={"GITHUB_REPOSITORY": variant})
    assert status.code == 0, status.output
    assert [r["standing"] for r in status.json()["rows"]] == ["managed"], status.stdout


def test_a_gc_that_does_not_know_its_repository_leaves_other_repositories_previews(
    console: Cli, fly: FlyEmulator
) -> None:
    """Break: rule 5 passed for a run without GITHUB_REPOSITORY, so a laptop gc of one
    repository swept every repository's previews in the org by its own max age (the
    other's may be longer), open PRs included. A sweep acts only on previews it can tell
    are its repository's: one that records a repository is a "not managed" row then."""
    assert console.run("up", "--pr", "6", env=ONE).code == 0
    (machine,) = fly.apps[APP].machines.values()
    two_days_ago = iso(datetime.now(UTC) - timedelta(days=2))
    machine.config["metadata"]["previewctl_last_up"] = two_days_ago
    fly.clear_log()
    gc = console.run("--json", "gc", "--max-age", "1d")
    assert gc.code == 0, gc.output
    assert fly.mutating_calls() == []
    rows = [r for r in gc.json()["rows"] if r["app"] == APP]
    assert [r["action"] for r in rows] == ["skip"], rows
    assert "GITHUB_REPOSITORY" in rows[0]["reason"]
