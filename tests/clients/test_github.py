from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from previewctl import redact
from previewctl.clients.github import DEFAULT_MARKER, GitHubClient
from previewctl.clients.http import MAX_RETRY_AFTER, RetryPolicy, build_http_client
from previewctl.errors import ApiError, InputError

BASE = "https://github.test"
REPO = "acme/agents"
HEADERS = {
    "Authorization": "Bearer ghs_token",
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
}


@pytest.fixture(autouse=True)
def _clean_secrets() -> Iterator[None]:
    redact.reset_for_tests()
    yield
    redact.reset_for_tests()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def client() -> Iterator[GitHubClient]:
    with build_http_client(BASE, HEADERS) as http:
        yield GitHubClient(http, retry=RetryPolicy(max_wait=0.01, multiplier=0.001))


def pr(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "number": number,
        "state": "open",
        "merged_at": None,
        "updated_at": "2024-05-01T10:00:00Z",
        "head": {"ref": f"feat-{number}", "repo": {"full_name": REPO}},
        **extra,
    }


# ---- pull requests ----------------------------------------------------------------------
def test_get_pull_reads_head_and_merge_state(api: respx.MockRouter, client: GitHubClient) -> None:
    api.get(f"/repos/{REPO}/pulls/7").respond(
        json=pr(7, state="closed", merged=True, merged_at="2024-05-02T10:00:00Z")
    )
    got = client.get_pull(REPO, 7)
    assert got is not None
    assert (got.number, got.state, got.merged, got.head_ref, got.head_repo) == (
        7,
        "closed",
        True,
        "feat-7",
        REPO,
    )
    assert got.merged_at is not None
    assert got.merged_at.year == 2024
    request = api.calls.last.request
    assert request.headers["Authorization"] == "Bearer ghs_token"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_get_pull_with_deleted_fork_and_missing_pull(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    api.get(f"/repos/{REPO}/pulls/8").respond(
        json={**pr(8), "head": {"ref": "x", "repo": None}, "merged": False}
    )
    api.get(f"/repos/{REPO}/pulls/9").respond(404, json={"message": "Not Found"})
    got = client.get_pull(REPO, 8)
    assert got is not None
    assert got.head_repo is None
    assert got.merged is False
    assert client.get_pull(REPO, 9) is None


def test_bad_repo_name_is_refused_before_any_request(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    with pytest.raises(InputError):
        client.get_pull("acme/agents/../x", 1)
    with pytest.raises(InputError):
        client.list_open_pulls("not-a-repo")
    assert not api.calls


def test_list_open_pulls_follows_link_over_three_pages(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        assert request.url.params["state"] == "open"
        assert request.url.params["per_page"] == "100"
        number = int(request.url.params.get("page", "1"))
        links = []
        if number < 3:
            links.append(
                f'<{BASE}/repos/{REPO}/pulls?state=open&per_page=100&page={number + 1}>; rel="next"'
            )
        links.append(f'<{BASE}/repos/{REPO}/pulls?state=open&per_page=100&page=3>; rel="last"')
        items = [pr(number * 10 + i) for i in range(2)]
        if number == 2:
            items[0]["merged_at"] = "2024-05-03T00:00:00Z"
        return httpx.Response(200, json=items, headers={"Link": ", ".join(links)})

    route = api.get(f"/repos/{REPO}/pulls").mock(side_effect=page)
    pulls = client.list_open_pulls(REPO)
    assert route.call_count == 3
    assert [p.number for p in pulls] == [10, 11, 20, 21, 30, 31]
    assert [p.merged for p in pulls] == [False, False, True, False, False, False]


def test_link_to_another_host_is_not_followed(api: respx.MockRouter, client: GitHubClient) -> None:
    api.get(f"/repos/{REPO}/pulls").respond(
        json=[pr(1)], headers={"Link": '<https://evil.test/steal?page=2>; rel="next"'}
    )
    with pytest.raises(ApiError, match=r"evil\.test"):
        client.list_open_pulls(REPO)
    assert len(api.calls) == 1


# ---- rate limits -----------------------------------------------------------------------
def test_403_rate_limit_is_retried(api: respx.MockRouter, client: GitHubClient) -> None:
    route = api.get(f"/repos/{REPO}/pulls/1")
    route.side_effect = [
        httpx.Response(
            403,
            json={"message": "API rate limit exceeded"},
            headers={
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(time.time())),
            },
        ),
        httpx.Response(200, json=pr(1)),
    ]
    got = client.get_pull(REPO, 1)
    assert got is not None
    assert route.call_count == 2


def test_secondary_rate_limit_with_retry_after_is_retried(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    route = api.get(f"/repos/{REPO}/pulls/1")
    route.side_effect = [
        httpx.Response(
            403,
            json={"message": "You have exceeded a secondary rate limit"},
            headers={"retry-after": "0"},
        ),
        httpx.Response(429, json={"message": "slow"}, headers={"retry-after": "0"}),
        httpx.Response(200, json=pr(1)),
    ]
    assert client.get_pull(REPO, 1) is not None
    assert route.call_count == 3


def test_plain_403_fails_at_once_with_githubs_message(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    route = api.get(f"/repos/{REPO}/pulls/1").respond(
        403,
        json={"message": "Resource not accessible by integration"},
        headers={"x-ratelimit-remaining": "4000", "x-github-request-id": "ABC:123"},
    )
    with pytest.raises(ApiError) as caught:
        client.get_pull(REPO, 1)
    assert route.call_count == 1
    text = str(caught.value)
    assert "Resource not accessible by integration" in text
    assert "ABC:123" in text


def test_retry_after_reads_reset_and_caps_it() -> None:
    now = 1_700_000_000.0
    with build_http_client(BASE, HEADERS) as http:
        gh = GitHubClient(http, clock=lambda: now)

        def answer(headers: dict[str, str]) -> httpx.Response:
            return httpx.Response(403, headers=headers)

        assert gh.retry_after(answer({"retry-after": "7"})) == 7.0
        limited = {"x-ratelimit-remaining": "0"}
        assert gh.retry_after(answer({**limited, "x-ratelimit-reset": str(int(now) + 12)})) == 12
        far = {**limited, "x-ratelimit-reset": str(int(now) + 3600)}
        assert gh.retry_after(answer(far)) == MAX_RETRY_AFTER
        past = {**limited, "x-ratelimit-reset": str(int(now) - 5)}
        assert gh.retry_after(answer(past)) == 0.0
        assert gh.retry_after(answer({})) is None


def test_422_message_includes_the_details(api: respx.MockRouter, client: GitHubClient) -> None:
    api.post(f"/repos/{REPO}/issues/1/comments").respond(
        422,
        json={
            "message": "Validation Failed",
            "errors": [
                {"resource": "IssueComment", "code": "custom", "message": "body is too long"}
            ],
        },
    )
    api.get(f"/repos/{REPO}/issues/1/comments").respond(json=[])
    with pytest.raises(ApiError, match="Validation Failed: body is too long") as caught:
        client.upsert_sticky_comment(REPO, 1, "x")
    assert caught.value.code == "custom"


# ---- sticky comment ---------------------------------------------------------------------
class CommentStore:
    """Just enough of GitHub's issue comments for the sticky-comment tests."""

    def __init__(self, router: respx.MockRouter, number: int = 5) -> None:
        self.comments: list[dict[str, Any]] = [
            {"id": 1, "body": "LGTM", "user": {"login": "human"}},
        ]
        self.next_id = 100
        base = f"/repos/{REPO}/issues"
        self.list = router.get(f"{base}/{number}/comments").mock(side_effect=self._list)
        self.create = router.post(f"{base}/{number}/comments").mock(side_effect=self._create)
        self.update = router.patch(url__regex=rf"{base}/comments/\d+$").mock(
            side_effect=self._update
        )

    def _list(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=self.comments)

    def _create(self, request: httpx.Request) -> httpx.Response:
        comment = {"id": self.next_id, "body": json.loads(request.content)["body"]}
        self.next_id += 1
        self.comments.append(comment)
        return httpx.Response(201, json=comment)

    def _update(self, request: httpx.Request) -> httpx.Response:
        comment_id = int(request.url.path.rsplit("/", 1)[1])
        comment = next(c for c in self.comments if c["id"] == comment_id)
        comment["body"] = json.loads(request.content)["body"]
        return httpx.Response(200, json=comment)


def test_sticky_comment_is_created_once_then_patched(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    store = CommentStore(api)
    first = client.upsert_sticky_comment(REPO, 5, "Preview: building")
    assert store.create.call_count == 1
    assert store.comments[-1]["body"] == f"{DEFAULT_MARKER}\nPreview: building"

    second = client.upsert_sticky_comment(REPO, 5, "Preview: ready")
    assert second == first
    assert store.create.call_count == 1
    assert store.update.call_count == 1
    assert store.update.calls.last.request.url.path.endswith(f"/comments/{first}")
    assert store.comments[-1]["body"] == f"{DEFAULT_MARKER}\nPreview: ready"
    assert store.comments[0]["body"] == "LGTM"


def test_unchanged_sticky_comment_is_not_patched(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    store = CommentStore(api)
    client.upsert_sticky_comment(REPO, 5, "Preview: ready")
    client.upsert_sticky_comment(REPO, 5, "Preview: ready")
    assert store.create.call_count == 1
    assert store.update.call_count == 0


def test_sticky_comment_found_on_a_later_page_with_own_marker(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    marker = "<!-- previewctl:web -->"

    def page(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json=[{"id": 42, "body": f"{marker}\nold"}])
        link = f'<{BASE}/repos/{REPO}/issues/5/comments?per_page=100&page=2>; rel="next"'
        other = [{"id": 41, "body": "<!-- previewctl -->\nanother preview's comment"}]
        return httpx.Response(200, json=other, headers={"Link": link})

    api.get(f"/repos/{REPO}/issues/5/comments").mock(side_effect=page)
    patch = api.patch(f"/repos/{REPO}/issues/comments/42").respond(json={"id": 42})
    post = api.post(f"/repos/{REPO}/issues/5/comments")
    body = f"{marker}\n## Preview\nnew"
    assert client.upsert_sticky_comment(REPO, 5, body, marker=marker) == 42
    assert json.loads(patch.calls.last.request.content) == {"body": body}
    assert not post.called


def test_secret_is_scrubbed_from_the_comment(api: respx.MockRouter, client: GitHubClient) -> None:
    store = CommentStore(api)
    redact.register("s3cr3t-password-value")
    client.upsert_sticky_comment(
        REPO, 5, "db: postgresql://app:s3cr3t-password-value@pr-5.fly.dev/db"
    )
    sent = json.loads(store.create.calls.last.request.content)["body"]
    assert "s3cr3t" not in sent
    assert "postgresql://app:***@pr-5.fly.dev/db" in sent
    assert DEFAULT_MARKER in sent


# ---- against the stateful fake -------------------------------------------------------------
def test_against_the_github_fake_with_a_rate_limit() -> None:
    fakes = pytest.importorskip("tests.fakes.github_api")
    with fakes.GitHubFake(token="ghs_token", repo=REPO, rate_limit_after=5) as fake:
        for number in range(1, 131):
            fake.add_pr(number, f"feat-{number}")
        fake.close_pr(2, merged=True)
        fake.add_comment(1, "LGTM", login="human")
        with build_http_client(fake.url, HEADERS) as http:
            gh = GitHubClient(http, retry=RetryPolicy(max_wait=0.01, multiplier=0.001))
            pulls = gh.list_open_pulls(REPO)  # two pages
            assert len(pulls) == 129
            closed = gh.get_pull(REPO, 2)
            assert closed is not None
            assert closed.merged
            # the 6th request of the window is refused with 403 and ridden out
            first = gh.upsert_sticky_comment(REPO, 1, "building")
            assert gh.upsert_sticky_comment(REPO, 1, "ready") == first
            assert gh.upsert_sticky_comment(REPO, 1, "ready") == first
        bodies = [c["body"] for c in fake.comments_on(1)]
        assert bodies == ["LGTM", f"{DEFAULT_MARKER}\nready"]
        assert len(fake.comment_writes()) == 2
        assert any(r.status == 403 for r in fake.requests)


# ---- a lost answer does not make a duplicate ------------------------------------------------
def sticky_on(fake: Any, number: int) -> list[dict[str, Any]]:
    return [c for c in fake.comments_on(number) if c["body"].startswith(DEFAULT_MARKER)]


def test_a_lost_answer_to_the_comment_post_makes_one_comment() -> None:
    """GitHub made the comment, the answer never came: it is found by its marker."""
    fakes = pytest.importorskip("tests.fakes.github_api")
    with fakes.GitHubFake(token="ghs_token", repo=REPO) as fake:
        fake.add_pr(1, "feat-1")
        fake.add_comment(1, "LGTM", login="human")
        fake.inject("POST", r"/issues/1/comments$", drop_after=True)
        with build_http_client(fake.url, HEADERS) as http:
            gh = GitHubClient(http, retry=RetryPolicy(max_wait=0.01, multiplier=0.001))
            first = gh.upsert_sticky_comment(REPO, 1, "building")
            assert [c["id"] for c in sticky_on(fake, 1)] == [first]
            assert len(fake.calls("POST", r"/issues/1/comments$")) == 1  # never posted twice
            assert gh.upsert_sticky_comment(REPO, 1, "ready") == first
        assert [c["body"] for c in fake.comments_on(1)] == ["LGTM", f"{DEFAULT_MARKER}\nready"]


def test_duplicate_sticky_comments_are_folded_into_the_oldest() -> None:
    fakes = pytest.importorskip("tests.fakes.github_api")
    with fakes.GitHubFake(token="ghs_token", repo=REPO) as fake:
        fake.add_pr(1, "feat-1")
        oldest = fake.add_comment(1, f"{DEFAULT_MARKER}\nbuilding")
        fake.add_comment(1, f"{DEFAULT_MARKER}\nbuilding")
        quoted = fake.add_comment(1, f"{DEFAULT_MARKER}\nmy own notes", login="human")
        fake.add_comment(1, f"> {DEFAULT_MARKER} quoted", login="human")
        fake.add_comment(1, f"{DEFAULT_MARKER}\nbuilding")
        with build_http_client(fake.url, HEADERS) as http:
            gh = GitHubClient(http, retry=RetryPolicy(max_wait=0.01, multiplier=0.001))
            assert gh.upsert_sticky_comment(REPO, 1, "ready") == oldest["id"]
            deletes = len(fake.calls("DELETE"))
            assert gh.upsert_sticky_comment(REPO, 1, "ready") == oldest["id"]  # converged
            assert len(fake.calls("DELETE")) == deletes
        left = [(c["user"]["login"], c["body"]) for c in fake.comments_on(1)]
        assert left == [
            ("github-actions[bot]", f"{DEFAULT_MARKER}\nready"),
            ("human", quoted["body"]),  # never someone else's comment
            ("human", f"> {DEFAULT_MARKER} quoted"),
        ]
        assert deletes == 2


def test_a_duplicate_deleted_meanwhile_is_no_error() -> None:
    """Two runs fold the same duplicate: the second DELETE answers 404, which is done."""
    fakes = pytest.importorskip("tests.fakes.github_api")
    with fakes.GitHubFake(token="ghs_token", repo=REPO) as fake:
        fake.add_pr(1, "feat-1")
        oldest = fake.add_comment(1, f"{DEFAULT_MARKER}\nbuilding")
        extra = fake.add_comment(1, f"{DEFAULT_MARKER}\nbuilding")
        fake.inject("DELETE", rf"/issues/comments/{extra['id']}$", 404)
        with build_http_client(fake.url, HEADERS) as http:
            gh = GitHubClient(http, retry=RetryPolicy(max_wait=0.01, multiplier=0.001))
            assert gh.upsert_sticky_comment(REPO, 1, "ready") == oldest["id"]
            assert gh.delete_comment(REPO, oldest["id"]) is True
            assert gh.delete_comment(REPO, oldest["id"]) is False
        assert len(fake.calls("DELETE", rf"/issues/comments/{extra['id']}$")) == 1


def test_a_post_that_failed_before_it_was_made_is_tried_again(
    api: respx.MockRouter, client: GitHubClient
) -> None:
    store = CommentStore(api)
    failures = iter([httpx.ConnectError("connection refused")])

    def create(request: httpx.Request) -> httpx.Response:
        for failure in failures:
            raise failure
        return store._create(request)

    store.create.side_effect = create
    comment_id = client.upsert_sticky_comment(REPO, 5, "ready")
    assert store.create.call_count == 2
    assert store.list.call_count == 2  # looked for it before the second POST
    assert [c["id"] for c in store.comments if DEFAULT_MARKER in c["body"]] == [comment_id]


@pytest.mark.parametrize(("status", "lookups"), [(429, 0), (502, 1)])
def test_only_an_answer_that_may_hide_a_write_is_looked_for(
    api: respx.MockRouter, client: GitHubClient, status: int, lookups: int
) -> None:
    """A rate limit says nothing was made; a 5xx may come after the write."""
    store = CommentStore(api)
    failures = iter([httpx.Response(status, headers={"retry-after": "0"}, json={"message": "x"})])

    def create(request: httpx.Request) -> httpx.Response:
        for failure in failures:
            return failure
        return store._create(request)

    store.create.side_effect = create
    client.upsert_sticky_comment(REPO, 5, "ready")
    assert store.create.call_count == 2
    assert store.list.call_count == 1 + lookups


@pytest.mark.parametrize("repo", ["acme/agents\n", "acme", "acme/../x", "a/b/c", " acme/agents"])
def test_a_malformed_repository_is_bad_input(client: GitHubClient, repo: str) -> None:
    with pytest.raises(InputError, match="is not of the form owner/name"):
        client.get_pull(repo, 1)
