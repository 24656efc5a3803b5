"""The read-only routes `doctor` uses: Vercel's team domain and GitHub's repository."""

from __future__ import annotations

import httpx

from tests.fakes.github_api import GitHubFake
from tests.fakes.vercel_api import VercelFake


def test_vercel_team_domain_found_and_not_found() -> None:
    with VercelFake(token="t", team_id="team_1") as vercel:
        vercel.team_domains["example.com"] = False
        headers = {"Authorization": "Bearer t"}
        found = httpx.get(
            f"{vercel.url}/v5/domains/example.com", params={"teamId": "team_1"}, headers=headers
        )
        assert found.status_code == 200
        domain = found.json()["domain"]
        assert (domain["name"], domain["verified"], domain["teamId"]) == (
            "example.com",
            False,
            "team_1",
        )
        missing = httpx.get(
            f"{vercel.url}/v5/domains/other.dev", params={"teamId": "team_1"}, headers=headers
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        # the team scope is enforced as on every route
        assert httpx.get(f"{vercel.url}/v5/domains/example.com", headers=headers).status_code == 403


def test_github_repository_with_and_without_permissions() -> None:
    with GitHubFake(token="g", repo="acme/agents") as github:
        headers = {"Authorization": "Bearer g"}
        plain = httpx.get(f"{github.url}/repos/acme/agents", headers=headers).json()
        assert plain["full_name"] == "acme/agents"
        assert "permissions" not in plain  # an installation token's view
        github.token_permissions = {"pull": True, "push": False}
        user = httpx.get(f"{github.url}/repos/acme/agents", headers=headers).json()
        assert user["permissions"] == {"pull": True, "push": False}
        assert httpx.get(f"{github.url}/repos/acme/other", headers=headers).status_code == 404
        assert httpx.get(f"{github.url}/repos/acme/agents").status_code == 401
