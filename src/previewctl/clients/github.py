"""The GitHub REST API: pull requests and the PR's sticky comment.

The caller builds the ``httpx.Client`` with ``Authorization: Bearer TOKEN``,
``Accept: application/vnd.github+json`` and ``X-GitHub-Api-Version: 2022-11-28``.
Rate limits answer 403 or 429 with ``x-ratelimit-remaining: 0`` or ``retry-after``:
those are retried like any transient failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, model_validator

from previewctl import redact
from previewctl.clients.answers import json_body, text_field
from previewctl.clients.http import (
    MAX_RETRY_AFTER,
    ApiClient,
    RetryPolicy,
    parse_retry_after,
)
from previewctl.errors import ApiError, InputError, NotFoundError

DEFAULT_MARKER = "<!-- previewctl -->"
_REPO_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")  # fullmatch: no trailing newline
_MAX_PAGES = 100


def _repo_path(repo: str) -> str:
    if not _REPO_RE.fullmatch(repo) or ".." in repo:
        raise InputError(f"GitHub repository {repo!r} is not of the form owner/name")
    return f"/repos/{repo}"


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    number: int
    state: str
    merged: bool = False
    merged_at: datetime | None = None
    head_ref: str
    head_repo: str | None = None
    updated_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "head_ref" in data:
            return data
        head: Any = data.get("head")
        if not isinstance(head, dict):
            head = {}
        repo: Any = head.get("repo")
        if not isinstance(repo, dict):
            repo = None
        merged = data.get("merged")
        return {
            **data,
            "head_ref": head.get("ref"),
            "head_repo": repo.get("full_name") if repo else None,
            # List items carry merged_at only; a single PR carries both.
            "merged": merged if merged is not None else data.get("merged_at") is not None,
        }

    @property
    def is_open(self) -> bool:
        return self.state == "open"


class IssueComment(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    id: int
    body: str | None = None
    html_url: str | None = None
    user_login: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if isinstance(data, dict) and "user_login" not in data:
            user = data.get("user")
            if isinstance(user, dict):
                return {**data, "user_login": user.get("login")}
        return data


def _normalise(body: str) -> str:
    return body.replace("\r\n", "\n").strip()


class GitHubClient(ApiClient):
    api_name = "GitHub"
    api_title = "GitHub API"
    url_env = "GITHUB_API_URL"
    status_page = "https://www.githubstatus.com"

    def __init__(
        self,
        http: httpx.Client,
        *,
        retry: RetryPolicy | None = None,
        on_request: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(http, retry=retry, on_request=on_request)
        self.clock = clock
        """Wall clock (epoch seconds) for ``x-ratelimit-reset``."""

    # ---- ApiClient hooks ---------------------------------------------------------------
    def error_message(self, response: httpx.Response) -> tuple[str, str | None]:
        body = json_body(response)
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            message = str(body["message"])
            code: str | None = None
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                details = []
                for err in errors:
                    # {"resource", "field", "code", "message"?}; "value" may echo the input
                    if isinstance(err, dict):
                        detail = err.get("message")
                        if not isinstance(detail, str):
                            detail = text_field(err.get("code")) or text_field(err.get("field"))
                        details.append(detail or "?")
                        code = code or text_field(err.get("code"))
                    elif isinstance(err, str):
                        details.append(err)
                message += ": " + "; ".join(details)
            return message, code
        return super().error_message(response)

    def request_id(self, response: httpx.Response) -> str | None:
        value = response.headers.get("x-github-request-id")
        return str(value) if value else None

    def is_transient(self, response: httpx.Response) -> bool:
        if super().is_transient(response):
            return True
        if response.status_code in (403, 429):
            headers = response.headers
            return headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
        return False

    def retry_after(self, response: httpx.Response) -> float | None:
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is not None:
            return wait
        reset = response.headers.get("x-ratelimit-reset")
        if reset is None or response.headers.get("x-ratelimit-remaining") != "0":
            return None
        try:
            return max(0.0, min(float(reset) - self.clock(), MAX_RETRY_AFTER))
        except ValueError:
            return None

    # ---- paging ------------------------------------------------------------------------
    def _paged(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Items of a list, following ``Link: rel="next"`` (only to the same host)."""
        url: str = path
        query: Mapping[str, Any] | None = params
        for _ in range(_MAX_PAGES):
            response = self.request("GET", url, params=query)
            body = response.json()
            if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
                # Not a page of the listing: skipping it would make a partial listing
                # look complete (gc sweeps what a listing of open PRs leaves out).
                raise ApiError(
                    self.api_name,
                    "the answer is not a list of objects",
                    status=response.status_code,
                    request_id=self.request_id(response),
                    method="GET",
                    path=path,
                )
            yield from body
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            url = self._same_origin(following)
            query = None  # the next link carries the query
        raise ApiError(self.api_name, f"more than {_MAX_PAGES} pages", method="GET", path=path)

    def _same_origin(self, url: str) -> str:
        target = httpx.URL(url)
        base = self.http.base_url
        if target.is_relative_url:
            return url
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            # Never send the token to a host we were not configured for.
            raise ApiError(self.api_name, f"pagination link leaves {base.host}: {target.host}")
        return url

    # ---- pull requests -----------------------------------------------------------------
    def get_pull(self, repo: str, number: int) -> PullRequest | None:
        """The PR, None when GitHub says there is none; ValueError for a body that is
        not a PR, ApiError for one that is about another PR or in no state GitHub has."""
        path = f"{_repo_path(repo)}/pulls/{int(number)}"
        try:
            response = self.request("GET", path)
        except NotFoundError:
            return None
        pull = PullRequest.model_validate(response.json())
        odd = (
            f"the answer is about PR #{pull.number}"
            if pull.number != number
            else f"the answer has a state GitHub never sends ({pull.state!r})"
            if pull.state not in ("open", "closed")
            else None
        )
        if odd is not None:  # gc would take it for "closed": it is no answer at all
            raise ApiError(self.api_name, odd, status=response.status_code, method="GET", path=path)
        return pull

    def list_open_pulls(self, repo: str) -> list[PullRequest]:
        items = self._paged(f"{_repo_path(repo)}/pulls", {"state": "open", "per_page": 100})
        return [PullRequest.model_validate(item) for item in items]

    # ---- comments ----------------------------------------------------------------------
    def list_comments(self, repo: str, number: int) -> list[IssueComment]:
        items = self._paged(f"{_repo_path(repo)}/issues/{int(number)}/comments", {"per_page": 100})
        return [IssueComment.model_validate(item) for item in items]

    def delete_comment(self, repo: str, comment_id: int) -> bool:
        """Delete one comment; False when it was already gone."""
        try:
            self.request("DELETE", f"{_repo_path(repo)}/issues/comments/{int(comment_id)}")
        except NotFoundError:
            return False
        return True

    def sticky_comments(self, repo: str, number: int, marker: str) -> list[IssueComment]:
        """The comments that begin with ``marker``, oldest first."""
        found = [c for c in self.list_comments(repo, number) if _is_sticky(c, marker)]
        return sorted(found, key=lambda c: c.id)

    def upsert_sticky_comment(
        self,
        repo: str,
        number: int,
        body: str,
        marker: str = DEFAULT_MARKER,
        *,
        update_only: bool = False,
    ) -> int | None:
        """Create or update the PR's one comment beginning with ``marker``; return its id.

        With ``update_only``, a PR that has no such comment gets none (None is returned).

        The body is scrubbed of secrets before it leaves; an unchanged body is not sent.
        A create whose answer was lost is found by its marker before it is tried again,
        and duplicates (of a lost answer, or of racing runs) are folded into the oldest.
        """
        if not marker:
            raise ValueError("a sticky comment needs a marker")
        text = redact.scrub(body)
        if not text.lstrip().startswith(marker):
            text = f"{marker}\n{text}"
        stickies = self.sticky_comments(repo, number, marker)
        if not stickies and update_only:
            return None
        if not stickies:
            created = self.create_once(
                "POST",
                f"{_repo_path(repo)}/issues/{int(number)}/comments",
                json={"body": text},
                build=lambda response: IssueComment.model_validate(response.json()),
                find=lambda: next(iter(self.sticky_comments(repo, number, marker)), None),
            )
            stickies = [created]
        keep = stickies[0]
        if _normalise(keep.body or "") != _normalise(text):
            self.request(
                "PATCH", f"{_repo_path(repo)}/issues/comments/{keep.id}", json={"body": text}
            )
        for extra in stickies[1:]:
            if extra.user_login == keep.user_login:  # never someone else's comment
                self.delete_comment(repo, extra.id)
        return keep.id


def _is_sticky(comment: IssueComment, marker: str) -> bool:
    return bool(comment.body) and (comment.body or "").lstrip().startswith(marker)
