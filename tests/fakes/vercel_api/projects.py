"""Projects (with the connected repo's branches) and the team's domains."""

from __future__ import annotations

import hashlib
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.vercel_api.common import _ID_ALPHABET, ProjectState, VercelBase, _rand

RULES = [
    Rule("/v9/projects/<id_or_name>", endpoint="get_project", methods=["GET"]),
    Rule("/v5/domains/<domain>", endpoint="get_team_domain", methods=["GET"]),
]


class ProjectsApi(VercelBase):
    """``GET /v9/projects/{id}`` and ``GET /v5/domains/{domain}``; seeding of both."""

    def add_project(
        self,
        name: str,
        production_branch: str = "main",
        branches: tuple[str, ...] | list[str] | set[str] = ("main",),
        *,
        repo: str = "acme/agents",
        project_id: str | None = None,
    ) -> ProjectState:
        with self.lock:
            project = ProjectState(
                id=project_id or f"prj_{_rand(24, _ID_ALPHABET)}",
                name=name,
                production_branch=production_branch,
                branches={*branches, production_branch},
                repo=repo,
                created_at=self._now_ms(),
            )
            self.projects[name] = project
            return project

    def add_branch(self, project: str, branch: str) -> None:
        self._require_project(project).branches.add(branch)

    def on_get_project(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        org, _, repo = project.repo.partition("/")
        return self.json_response(
            {
                "id": project.id,
                "name": project.name,
                "accountId": self.team_id or "user_fake",
                "framework": "nextjs",
                "createdAt": project.created_at,
                "updatedAt": project.created_at,
                "link": {
                    "type": "github",
                    "org": org,
                    "repo": repo,
                    "repoId": 1,
                    "productionBranch": project.production_branch,
                },
            }
        )

    def on_get_team_domain(self, request: Request, body: Any, domain: str) -> Response:
        """The shape of ``@vercel/sdk``'s getDomain (``GetDomainResponseBody``)."""
        verified = self.team_domains.get(domain.lower())
        if verified is None:
            return self.error_response(404, f"The domain {domain!r} was not found", "not_found")
        created = self._now_ms()
        return self.json_response(
            {
                "domain": {
                    "id": f"dom_{hashlib.sha256(domain.encode()).hexdigest()[:24]}",
                    "name": domain.lower(),
                    "verified": verified,
                    "serviceType": "external",
                    "suffix": False,
                    "teamId": self.team_id,
                    "userId": "user_fake",
                    "createdAt": created,
                    "boughtAt": None,
                    "expiresAt": None,
                    "nameservers": [],
                    "intendedNameservers": ["ns1.vercel-dns.com", "ns2.vercel-dns.com"],
                    "creator": {"id": "user_fake", "username": "fake", "email": "f@example.com"},
                    "echMode": "auto",
                }
            }
        )
