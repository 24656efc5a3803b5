"""An API that cannot be reached: named with its URL and what to check, retries shown."""

from __future__ import annotations

import json

import pytest

from previewctl.backends.fly.client import FlyClient
from previewctl.clients.github import GitHubClient
from previewctl.clients.http import ApiClient
from previewctl.clients.vercel import VercelClient
from tests.support.cli import Cli
from tests.support.net import free_port

pytestmark = pytest.mark.e2e


def test_unreachable_fly_api_is_named_retried_visibly_and_an_error_object(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli.run("status", "--json", env={"FLY_API_BASE_URL": url})
    assert result.code == 1
    retries = [line for line in result.stderr.splitlines() if ": retry " in line]
    assert len(retries) == 7, result.stderr  # one line per retry, as they happen
    assert all(
        f"Fly Machines API at {url} is unreachable (connection refused)" in r for r in retries
    )
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 1
    assert error["title"] == "cannot reach the API"
    assert error["message"].startswith(f"cannot reach the Fly Machines API at {url} (GET /v1/apps")
    assert "connection refused" in error["message"]
    assert f"FLY_API_BASE_URL (now {url})" in error["hint"]
    assert f"error: cannot reach the Fly Machines API at {url}" in result.stderr
    assert "Errno" not in result.stderr


@pytest.mark.parametrize(
    ("client", "title", "env"),
    [
        (FlyClient, "Fly Machines API", "FLY_API_BASE_URL"),
        (VercelClient, "Vercel API", "VERCEL_API_URL"),
        (GitHubClient, "GitHub API", "GITHUB_API_URL"),
    ],
)
def test_each_api_is_named_with_the_variable_that_sets_its_url(
    client: type[ApiClient], title: str, env: str
) -> None:
    assert client.api_title == title
    assert client.url_env == env
    assert client.status_page is not None
    assert client.status_page.startswith("https://")
