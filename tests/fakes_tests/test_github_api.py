"""The GitHub fake behaves as shared/reference/vercel-github.md describes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.github_api import MAX_COMMENT, GitHubFake

TOKEN = "gh-token"
REPO = "/repos/acme/agents"


@pytest.fixture
def github() -> Iterator[GitHubFake]:
    with GitHubFake(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def client(github: GitHubFake) -> Iterator[httpx.Client]:
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    # verify=False: plain HTTP on loopback; skips building a CA bundle per test.
    with httpx.Client(base_url=github.url, headers=headers, timeout=5, verify=False) as c:
        yield c


def follow(client: httpx.Client, url: str, params: dict[str, Any]) -> list[list[Any]]:
    """Every page, following ``Link: rel="next"``."""
    pages = [client.get(url, params=params)]
    while "next" in pages[-1].links:
        pages.append(client.get(pages[-1].links["next"]["url"]))
    return [p.json() for p in pages]


# ---- auth ------------------------------------------------------------------------------
def test_auth_failures_use_githubs_error_shape(github: GitHubFake) -> None:
    github.add_pr(1, "feat/x")
    bare = httpx.get(f"{github.url}{REPO}/pulls/1")
    wrong = httpx.get(f"{github.url}{REPO}/pulls/1", headers={"Authorization": "Bearer no"})
    assert bare.status_code == wrong.status_code == 401
    assert bare.json()["message"] == "Requires authentication"
    assert wrong.json() == {
        "message": "Bad credentials",
        "documentation_url": wrong.json()["documentation_url"],
    }
    legacy = httpx.get(f"{github.url}{REPO}/pulls/1", headers={"Authorization": f"token {TOKEN}"})
    assert legacy.status_code == 200


# ---- pull requests ---------------------------------------------------------------------
def test_get_pull_request(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(7, "feat/x", sha="c" * 40)
    pr = client.get(f"{REPO}/pulls/7").json()
    assert pr["number"] == 7
    assert pr["state"] == "open"
    assert pr["merged"] is False
    assert pr["merged_at"] is None
    assert pr["head"]["ref"] == "feat/x"
    assert pr["head"]["sha"] == "c" * 40
    assert pr["head"]["repo"] == {"full_name": "acme/agents"}
    assert pr["base"]["repo"] == {"full_name": "acme/agents"}
    assert pr["html_url"].endswith("/acme/agents/pull/7")
    assert pr["updated_at"].endswith("Z")


def test_merged_fork_and_deleted_head_repo(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(1, "a", merged=True)
    github.add_pr(2, "b", fork_repo="stranger/agents")
    github.add_pr(3, "c", state="closed", head_repo_deleted=True)
    merged = client.get(f"{REPO}/pulls/1").json()
    assert (merged["state"], merged["merged"]) == ("closed", True)
    assert merged["merged_at"] is not None
    assert client.get(f"{REPO}/pulls/2").json()["head"]["repo"]["full_name"] == "stranger/agents"
    assert client.get(f"{REPO}/pulls/3").json()["head"]["repo"] is None


def test_close_pr_control(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(4, "feat/x")
    github.close_pr(4, merged=True)
    pr = client.get(f"{REPO}/pulls/4").json()
    assert (pr["state"], pr["merged"]) == ("closed", True)


def test_unknown_pr_and_other_repo_are_404(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(1, "feat/x")
    for path in (f"{REPO}/pulls/99", "/repos/other/repo/pulls/1", "/repos/other/repo/pulls"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert resp.json()["message"] == "Not Found"
        assert "documentation_url" in resp.json()


def test_list_pulls_paginates_with_link_header(client: httpx.Client, github: GitHubFake) -> None:
    for n in range(1, 76):
        github.add_pr(n, f"b{n}", state="closed" if n % 5 == 0 else "open")
    first = client.get(f"{REPO}/pulls", params={"state": "open", "per_page": 25})
    assert first.links["next"]["url"].endswith("page=2")
    assert "per_page=25" in first.links["next"]["url"]
    assert "state=open" in first.links["next"]["url"]
    assert first.links["last"]["url"].endswith("page=3")
    pages = follow(client, f"{REPO}/pulls", {"state": "open", "per_page": 25})
    numbers = [pr["number"] for page in pages for pr in page]
    assert len(pages) == 3
    assert sorted(numbers) == [n for n in range(1, 76) if n % 5]
    assert all("merged" not in pr and "merged_at" in pr for page in pages for pr in page)
    last = client.get(first.links["last"]["url"])
    assert "next" not in last.links
    assert last.links["prev"]["url"].endswith("page=2")
    assert last.links["first"]["url"].endswith("page=1")


def test_list_pulls_states_and_defaults(client: httpx.Client, github: GitHubFake) -> None:
    for n in range(1, 41):
        github.add_pr(n, f"b{n}", merged=n > 35)
    default = client.get(f"{REPO}/pulls")
    assert len(default.json()) == 30  # default per_page
    closed = client.get(f"{REPO}/pulls", params={"state": "closed"}).json()
    assert {pr["number"] for pr in closed} == {36, 37, 38, 39, 40}
    assert all(pr["merged_at"] for pr in closed)
    everything = follow(client, f"{REPO}/pulls", {"state": "all", "per_page": 500})
    assert [len(p) for p in everything] == [40]  # per_page is capped at 100
    assert client.get(f"{REPO}/pulls", params={"state": "weird"}).status_code == 422


# ---- comments --------------------------------------------------------------------------
def test_comment_create_list_patch(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(5, "feat/x")
    created = client.post(f"{REPO}/issues/5/comments", json={"body": "<!-- previewctl -->\nhi"})
    assert created.status_code == 201
    comment = created.json()
    assert comment["user"]["login"] == "github-actions[bot]"
    assert comment["body"].startswith("<!-- previewctl -->")
    listed = client.get(f"{REPO}/issues/5/comments", params={"per_page": 100}).json()
    assert [c["id"] for c in listed] == [comment["id"]]
    patched = client.patch(f"{REPO}/issues/comments/{comment['id']}", json={"body": "new"})
    assert patched.status_code == 200
    assert patched.json()["body"] == "new"
    assert github.comments_on(5)[0]["body"] == "new"
    assert len(github.comment_writes()) == 2


def test_comment_errors(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(5, "feat/x")
    assert client.patch(f"{REPO}/issues/comments/123", json={"body": "x"}).status_code == 404
    assert client.post(f"{REPO}/issues/999/comments", json={"body": "x"}).status_code == 404
    assert client.get(f"{REPO}/issues/999/comments").status_code == 404
    too_long = client.post(f"{REPO}/issues/5/comments", json={"body": "x" * (MAX_COMMENT + 1)})
    assert too_long.status_code == 422
    assert too_long.json()["message"] == "Validation Failed"
    assert client.post(f"{REPO}/issues/5/comments", json={}).status_code == 422
    assert client.post("/repos/other/repo/issues/5/comments", json={"body": "x"}).status_code == 404
    assert github.comments_on(5) == []


def test_comments_paginate_with_link_header(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(5, "feat/x")
    for i in range(65):
        github.add_comment(5, f"c{i}", login="someone")
    pages = follow(client, f"{REPO}/issues/5/comments", {})
    assert [len(p) for p in pages] == [30, 30, 5]
    assert [c["body"] for page in pages for c in page] == [f"c{i}" for i in range(65)]


# ---- rate limits and faults ------------------------------------------------------------
def test_rate_limit_headers_on_every_response(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(1, "feat/x")
    ok = client.get(f"{REPO}/pulls/1")
    missing = client.get(f"{REPO}/pulls/2")
    for resp in (ok, missing):
        assert resp.headers["x-ratelimit-limit"] == "5000"
        assert int(resp.headers["x-ratelimit-reset"]) > time.time()
    assert int(ok.headers["x-ratelimit-remaining"]) > int(missing.headers["x-ratelimit-remaining"])


def test_rate_limit_after_n_requests(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(1, "feat/x")
    github.rate_limit_after = 2
    assert client.get(f"{REPO}/pulls/1").status_code == 200
    second = client.get(f"{REPO}/pulls/1")
    assert second.status_code == 200
    assert second.headers["x-ratelimit-remaining"] == "0"
    limited = client.get(f"{REPO}/pulls/1")
    assert limited.status_code == 403
    assert limited.json()["message"].startswith("API rate limit exceeded")
    assert limited.headers["x-ratelimit-remaining"] == "0"
    reset = int(limited.headers["x-ratelimit-reset"])
    assert time.time() < reset <= time.time() + 2
    github.rate_limit_after = None
    assert client.get(f"{REPO}/pulls/1").status_code == 200


def test_injected_429_carries_retry_after(client: httpx.Client, github: GitHubFake) -> None:
    github.add_pr(1, "feat/x")
    github.inject("GET", r"/pulls/1$", 429, retry_after="1")
    resp = client.get(f"{REPO}/pulls/1")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"
    assert "message" in resp.json()
    assert "x-ratelimit-remaining" in resp.headers
    assert client.get(f"{REPO}/pulls/1").status_code == 200


def test_drop_after_applies_the_write_and_loses_the_answer(
    github: GitHubFake, client: httpx.Client
) -> None:
    github.add_pr(1, "feat/x")
    github.inject("POST", r"/issues/1/comments$", drop_after=True)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{REPO}/issues/1/comments", json={"body": "hello"})
    assert [c["body"] for c in github.comments_on(1)] == ["hello"]  # it was made
    assert github.calls("POST")[0].status == -1  # and no answer was sent
    again = client.post(f"{REPO}/issues/1/comments", json={"body": "again"})
    assert again.status_code == 201  # the fault was used up


def test_delete_comment(github: GitHubFake, client: httpx.Client) -> None:
    github.add_pr(1, "feat/x")
    made = github.add_comment(1, "bye")
    assert client.delete(f"{REPO}/issues/comments/{made['id']}").status_code == 204
    assert github.comments_on(1) == []
    assert client.delete(f"{REPO}/issues/comments/{made['id']}").status_code == 404
