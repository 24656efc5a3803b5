"""Project domains: add (with the branch it serves), list, get, remove."""

from __future__ import annotations

import re
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.vercel_api.common import ProjectState, VercelBase

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

RULES = [
    Rule("/v10/projects/<id_or_name>/domains", endpoint="add_domain", methods=["POST"]),
    Rule("/v9/projects/<id_or_name>/domains", endpoint="list_domains", methods=["GET"]),
    Rule("/v9/projects/<id_or_name>/domains/<domain>", endpoint="get_domain", methods=["GET"]),
    Rule(
        "/v9/projects/<id_or_name>/domains/<domain>",
        endpoint="delete_domain",
        methods=["DELETE"],
    ),
]


class DomainsApi(VercelBase):
    """``/v10/projects/{id}/domains`` and ``/v9/projects/{id}/domains[/{domain}]``."""

    def domains_for(self, project: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(d) for d in self._require_project(project).domains]

    def on_add_domain(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return self.error_response(400, "Invalid request: missing required property `name`")
        name = body["name"].lower()
        if not _DOMAIN_RE.match(name):
            return self.error_response(400, f"Invalid domain name {name!r}", "invalid_domain")
        git_branch = body.get("gitBranch")
        if git_branch is not None and git_branch not in project.branches:
            return self.error_response(
                400, f'The Git branch "{git_branch}" does not exist in the connected repository'
            )
        for other in self.projects.values():
            if any(d["name"] == name for d in other.domains):
                where = "this project" if other is project else "a different project"
                return self.error_response(
                    409,
                    f'The domain "{name}" is already in use by {where}.',
                    "domain_already_in_use",
                )
        now = self._now_ms()
        domain = {
            "name": name,
            "apexName": ".".join(name.split(".")[-2:]),
            "projectId": project.id,
            "gitBranch": git_branch,
            "redirect": body.get("redirect"),
            "redirectStatusCode": body.get("redirectStatusCode"),
            "verified": True,
            "createdAt": now,
            "updatedAt": now,
        }
        project.domains.append(domain)
        return self.json_response(dict(domain))

    def on_list_domains(self, request: Request, body: Any, id_or_name: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        domains = project.domains
        if "gitBranch" in request.args:
            domains = [d for d in domains if d.get("gitBranch") == request.args["gitBranch"]]
        size = self._page_size(request, default=20, maximum=100)
        page, pagination = self._paginate(domains, request, size)
        return self.json_response({"domains": [dict(d) for d in page], "pagination": pagination})

    def on_get_domain(self, request: Request, body: Any, id_or_name: str, domain: str) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        found = self._find_domain(project, domain)
        if found is None:
            return self._domain_not_found(domain)
        return self.json_response(dict(found))

    def on_delete_domain(
        self, request: Request, body: Any, id_or_name: str, domain: str
    ) -> Response:
        project = self.project(id_or_name)
        if project is None:
            return self._project_not_found(id_or_name)
        found = self._find_domain(project, domain)
        if found is None:
            return self._domain_not_found(domain)
        project.domains.remove(found)
        return self.json_response({})

    def _domain_not_found(self, domain: str) -> Response:
        return self.error_response(404, f"The domain {domain} was not found", "not_found")

    @staticmethod
    def _find_domain(project: ProjectState, name: str) -> dict[str, Any] | None:
        return next((d for d in project.domains if d["name"] == name.lower()), None)
