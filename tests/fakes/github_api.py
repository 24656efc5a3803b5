"""A stateful fake of the parts of the GitHub REST API previewctl uses.

Pull requests (get, list with ``state`` and ``Link`` pagination), issue comments
(list with ``Link`` pagination, create, update, delete), deployments and their statuses
(:mod:`tests.fakes.github_deployments`) and the primary rate limit: every
response carries ``x-ratelimit-*`` headers, and with ``rate_limit_after = N`` the
N+1st request of a window (counted once authorized and routed; injected faults and
401s do not count) answers 403 "API rate limit exceeded" with
``x-ratelimit-remaining: 0``. In the fake the exhausted window resets at the announced
``x-ratelimit-reset`` (the next whole second: GitHub announces epoch seconds) so clients
that honour it can be tested quickly.
Errors have GitHub's shape ``{"message", "documentation_url"}``.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.github_deployments import DEPLOYMENT_RULES, DeploymentsMixin
from tests.fakes.loopback import LoopbackApi, RecordedRequest

DOCS = "https://docs.github.com/rest"
MAX_COMMENT = 65536
_REPO_PREFIX = "/repos/<owner>/<repo>"
_MESSAGES = {
    400: "Problems parsing JSON",
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Validation Failed",
    429: "Too Many Requests",
    500: "Server Error",
    502: "Server Error",
    503: "Service Unavailable",
}


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


class GitHubFake(DeploymentsMixin, LoopbackApi):
    """Loopback fake of ``api.github.com`` for one repository."""

    name = "github"
    rules: ClassVar[list[Rule]] = [
        Rule(_REPO_PREFIX, endpoint="get_repo", methods=["GET"]),
        Rule(f"{_REPO_PREFIX}/pulls/<int:number>", endpoint="get_pull", methods=["GET"]),
        Rule(f"{_REPO_PREFIX}/pulls", endpoint="list_pulls", methods=["GET"]),
        Rule(
            f"{_REPO_PREFIX}/issues/<int:number>/comments",
            endpoint="list_comments",
            methods=["GET"],
        ),
        Rule(
            f"{_REPO_PREFIX}/issues/<int:number>/comments",
            endpoint="create_comment",
            methods=["POST"],
        ),
        Rule(
            f"{_REPO_PREFIX}/issues/comments/<int:comment_id>",
            endpoint="get_comment",
            methods=["GET"],
        ),
        Rule(
            f"{_REPO_PREFIX}/issues/comments/<int:comment_id>",
            endpoint="update_comment",
            methods=["PATCH"],
        ),
        Rule(
            f"{_REPO_PREFIX}/issues/comments/<int:comment_id>",
            endpoint="delete_comment",
            methods=["DELETE"],
        ),
        *DEPLOYMENT_RULES,
    ]

    def __init__(
        self,
        *,
        token: str,
        repo: str = "acme/agents",
        latency: float = 0.0,
        bot_login: str = "github-actions[bot]",
        rate_limit: int = 5000,
        rate_limit_after: int | None = None,
    ) -> None:
        super().__init__(latency=latency)
        self.token = token
        self.repo = repo
        self.bot_login = bot_login
        self.prs: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.rate_limit = rate_limit
        """``x-ratelimit-limit`` announced while ``rate_limit_after`` is None."""
        self.rate_limit_after: int | None = rate_limit_after
        """After this many requests in a window, answer 403 "API rate limit exceeded"."""
        self.unlisted: set[int] = set()
        """PRs the open-PR listing does not show yet (opened after it, or a lagging index)."""
        self._next_comment_id = 1_000_001
        self.token_permissions: dict[str, bool] | None = None
        """A user token's ``permissions`` on the repo; None for an installation token
        (GITHUB_TOKEN), whose repository answer carries none."""
        self._window_used = 0
        self._window_reset = 0
        self.init_deployments()

    # ---- seeding and controls --------------------------------------------------------
    def add_pr(
        self,
        number: int,
        head_ref: str,
        state: str = "open",
        merged: bool = False,
        fork_repo: str | None = None,
        head_repo_deleted: bool = False,
        *,
        base_ref: str = "main",
        sha: str | None = None,
        title: str | None = None,
    ) -> dict[str, Any]:
        """Seed a PR (merged implies closed). Its issue exists for comments too."""
        assert state in ("open", "closed"), state
        now = _iso()
        if merged:
            state = "closed"
        head_repo = None if head_repo_deleted else {"full_name": fork_repo or self.repo}
        owner = (fork_repo or self.repo).split("/")[0]
        pr: dict[str, Any] = {
            "url": f"https://api.github.com/repos/{self.repo}/pulls/{number}",
            "id": 100_000 + number,
            "number": number,
            "state": state,
            "title": title or f"Change {number}",
            "user": {"login": owner, "type": "User"},
            "html_url": f"https://github.com/{self.repo}/pull/{number}",
            "merged": merged,
            "merged_at": now if merged else None,
            "closed_at": now if state == "closed" else None,
            "created_at": now,
            "updated_at": now,
            "head": {
                "label": f"{owner}:{head_ref}",
                "ref": head_ref,
                "sha": sha or secrets.token_hex(20),
                "repo": head_repo,
            },
            "base": {
                "label": f"{self.repo.split('/')[0]}:{base_ref}",
                "ref": base_ref,
                "sha": secrets.token_hex(20),
                "repo": {"full_name": self.repo},
            },
        }
        with self.lock:
            self.prs[number] = pr
            self.comments.setdefault(number, [])
        return pr

    def hide_from_listing(self, number: int, hidden: bool = True) -> None:
        """Leave PR ``number`` out of list answers, as a PR opened just after a listing is."""
        with self.lock:
            if hidden:
                self.unlisted.add(number)
            else:
                self.unlisted.discard(number)

    def close_pr(self, number: int, *, merged: bool = False) -> None:
        with self.lock:
            pr = self.prs[number]
            now = _iso()
            pr.update(
                state="closed",
                merged=merged,
                merged_at=now if merged else None,
                closed_at=now,
                updated_at=now,
            )

    def add_comment(self, number: int, body: str, *, login: str | None = None) -> dict[str, Any]:
        """Seed a comment on issue/PR ``number`` (by ``login``, default the bot)."""
        with self.lock:
            return dict(self._new_comment(number, body, login or self.bot_login))

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self.comments.get(number, [])]

    def comment_writes(self) -> list[RecordedRequest]:
        """Successful comment creations and updates."""
        return [
            r
            for r in self.calls(None, r"/issues/(\d+/)?comments")
            if r.method in ("POST", "PATCH") and r.status in (200, 201)
        ]

    # ---- LoopbackApi hooks -----------------------------------------------------------
    def error_response(self, status: int, message: str, code: str | None = None) -> Response:
        return self.json_response({"message": message, "documentation_url": DOCS}, status)

    def echo_response(self, status: int, request: Request, body: Any) -> Response:
        """GitHub's "Validation Failed": the input comes back in ``errors[].value``."""
        fields = body if isinstance(body, dict) else {"body": body}
        errors = [
            {"resource": "IssueComment", "code": "custom", "field": k, "value": v}
            for k, v in fields.items()
        ]
        return self.json_response(
            {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS}, status
        )

    def authorize(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return self.error_response(401, "Requires authentication")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or token.strip() != self.token:
            return self.error_response(401, "Bad credentials")
        return None

    def _dispatch(self, request: Request, record: RecordedRequest) -> Response | None:
        with self.lock:  # one request at a time: handlers mutate shared state
            return super()._dispatch(request, record)

    def before_handler(
        self, request: Request, endpoint: str, args: Mapping[str, Any]
    ) -> Response | None:
        if self._count_request():
            return self.error_response(
                403,
                "API rate limit exceeded for installation. If you reach out to GitHub "
                "Support for help, please include the request ID.",
            )
        return None

    def finalize_response(self, request: Request, response: Response) -> Response:
        with self.lock:
            response.headers.update(self._rate_headers())
        return response

    def _count_request(self) -> bool:
        now = time.time()
        if now >= self._window_reset:
            self._window_used = 0
            self._window_reset = int(now) + 3600
        self._window_used += 1
        if self.rate_limit_after is not None and self._window_used > self.rate_limit_after:
            # Announce a reset at the next whole second; the fake starts a fresh window then.
            self._window_reset = min(self._window_reset, math.floor(now) + 1)
            return True
        return False

    def _rate_headers(self) -> dict[str, str]:
        limit = self.rate_limit_after if self.rate_limit_after is not None else self.rate_limit
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - self._window_used)),
            "x-ratelimit-reset": str(self._window_reset),
            "x-ratelimit-used": str(min(self._window_used, limit)),
            "x-ratelimit-resource": "core",
        }

    # ---- the repository --------------------------------------------------------------
    def on_get_repo(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        data: dict[str, Any] = {
            "id": 1,
            "name": repo,
            "full_name": self.repo,
            "private": True,
            "default_branch": "main",
        }
        if self.token_permissions is not None:
            data["permissions"] = dict(self.token_permissions)
        return self.json_response(data)

    # ---- pull requests ---------------------------------------------------------------
    def on_get_pull(
        self, request: Request, body: Any, owner: str, repo: str, number: int
    ) -> Response:
        if not self._is_repo(owner, repo) or number not in self.prs:
            return self._not_found()
        return self.json_response(self.prs[number])

    def on_list_pulls(self, request: Request, body: Any, owner: str, repo: str) -> Response:
        if not self._is_repo(owner, repo):
            return self._not_found()
        state = request.args.get("state", "open")
        if state not in ("open", "closed", "all"):
            return self._validation_failed("PullRequest", "state", f"invalid state {state!r}")
        prs = [
            p
            for p in self.prs.values()
            if state in ("all", p["state"]) and p["number"] not in self.unlisted
        ]
        prs.sort(key=lambda p: p["number"], reverse=True)  # sort=created, direction=desc
        items = [{k: v for k, v in p.items() if k != "merged"} for p in prs]
        return self._paged(request, items)

    # ---- comments --------------------------------------------------------------------
    def on_list_comments(
        self, request: Request, body: Any, owner: str, repo: str, number: int
    ) -> Response:
        if not self._is_repo(owner, repo) or number not in self.comments:
            return self._not_found()
        return self._paged(request, self.comments[number])

    def on_create_comment(
        self, request: Request, body: Any, owner: str, repo: str, number: int
    ) -> Response:
        if not self._is_repo(owner, repo) or number not in self.comments:
            return self._not_found()
        problem = self._body_problem(body)
        if problem is not None:
            return problem
        comment = self._new_comment(number, body["body"], self.bot_login)
        return self.json_response(comment, 201)

    def on_get_comment(
        self, request: Request, body: Any, owner: str, repo: str, comment_id: int
    ) -> Response:
        comment = self._find_comment(comment_id) if self._is_repo(owner, repo) else None
        if comment is None:
            return self._not_found()
        return self.json_response(comment)

    def on_update_comment(
        self, request: Request, body: Any, owner: str, repo: str, comment_id: int
    ) -> Response:
        comment = self._find_comment(comment_id) if self._is_repo(owner, repo) else None
        if comment is None:
            return self._not_found()
        problem = self._body_problem(body)
        if problem is not None:
            return problem
        comment.update(body=body["body"], updated_at=_iso())
        return self.json_response(comment)

    def on_delete_comment(
        self, request: Request, body: Any, owner: str, repo: str, comment_id: int
    ) -> Response:
        comment = self._find_comment(comment_id) if self._is_repo(owner, repo) else None
        if comment is None:
            return self._not_found()
        for thread in self.comments.values():
            if comment in thread:
                thread.remove(comment)
        return Response(status=204)

    # ---- internals -------------------------------------------------------------------
    def _is_repo(self, owner: str, repo: str) -> bool:
        return f"{owner}/{repo}".lower() == self.repo.lower()

    def _not_found(self) -> Response:
        return self.error_response(404, "Not Found")

    def _validation_failed(self, resource: str, field: str, message: str) -> Response:
        return self.json_response(
            {
                "message": "Validation Failed",
                "errors": [
                    {"resource": resource, "code": "custom", "field": field, "message": message}
                ],
                "documentation_url": DOCS,
            },
            422,
        )

    def _body_problem(self, body: Any) -> Response | None:
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            return self._validation_failed("IssueComment", "body", "body is missing")
        if len(body["body"]) > MAX_COMMENT:
            return self._validation_failed(
                "IssueComment", "body", f"body is too long (maximum is {MAX_COMMENT} characters)"
            )
        return None

    def _new_comment(self, number: int, body: str, login: str) -> dict[str, Any]:
        comment_id = self._next_comment_id
        self._next_comment_id += 1
        now = _iso()
        comment: dict[str, Any] = {
            "id": comment_id,
            "node_id": f"IC_fake{comment_id}",
            "url": f"https://api.github.com/repos/{self.repo}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{self.repo}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"https://api.github.com/repos/{self.repo}/issues/{number}",
            "body": body,
            "user": {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"},
            "created_at": now,
            "updated_at": now,
        }
        self.comments.setdefault(number, []).append(comment)
        return comment

    def _find_comment(self, comment_id: int) -> dict[str, Any] | None:
        for thread in self.comments.values():
            for comment in thread:
                if comment["id"] == comment_id:
                    return comment
        return None

    def _paged(self, request: Request, items: list[dict[str, Any]]) -> Response:
        """One page of ``items`` with GitHub's ``Link`` header (per_page ≤ 100, default 30)."""
        try:
            per_page = max(1, min(int(request.args.get("per_page", 30)), 100))
            page = max(1, int(request.args.get("page", 1)))
        except ValueError:
            return self._validation_failed("Search", "per_page", "must be an integer")
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links: list[str] = []

        def link(target: int, rel: str) -> str:
            args = {k: v for k, v in request.args.items() if k != "page"}
            args["page"] = str(target)
            return f'<{request.base_url}?{urlencode(args)}>; rel="{rel}"'

        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links.append(link(page + 1, "next"))
            links.append(link(last, "last"))
        if page > 1:
            links.append(link(1, "first"))
        headers = {"Link": ", ".join(links)} if links else None
        return self.json_response([dict(i) for i in chunk], 200, headers)
